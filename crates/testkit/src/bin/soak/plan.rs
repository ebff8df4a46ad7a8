//! What the soak sends: bookings, each a run of events (create, reschedules, maybe a
//! cancel) that must reach the CRM in order.
//!
//! Invariant: every event carries its booking's sequence number (`data.seq`, 1 = the
//! create), which the mapping writes into the CRM, so the CRM's history of a record shows
//! whether any event overtook an earlier one.

use serde_json::json;

/// One event of a booking.
#[derive(Debug, Clone)]
pub struct Event {
    /// `BOOKING_CREATED`, `BOOKING_RESCHEDULED` or `BOOKING_CANCELLED`.
    pub kind: &'static str,
    /// Its place in the booking's run, from 1.
    pub seq: u64,
    /// The status the CRM record has once this event is applied.
    pub status: &'static str,
}

/// A booking and its events, in the order Slatis sends them.
#[derive(Debug, Clone)]
pub struct Booking {
    /// `data.id`.
    pub id: String,
    /// The attendee's email (one contact per booking).
    pub email: String,
    /// Its events, in order.
    pub events: Vec<Event>,
}

/// `webhooks` events spread over `bookings` bookings: each booking is created, then
/// rescheduled, and every other one ends cancelled.
pub fn bookings(webhooks: usize, bookings: usize, run: &str) -> Vec<Booking> {
    let bookings = bookings.max(1);
    (0..bookings)
        .map(|b| {
            let n = (webhooks / bookings + usize::from(b < webhooks % bookings)).max(1);
            let mut events = vec![Event {
                kind: "BOOKING_CREATED",
                seq: 1,
                status: "scheduled",
            }];
            for i in 1..n {
                let last = i + 1 == n;
                let (kind, status) = if last && b % 2 == 0 {
                    ("BOOKING_CANCELLED", "cancelled")
                } else {
                    ("BOOKING_RESCHEDULED", "rescheduled")
                };
                events.push(Event {
                    kind,
                    seq: u64::try_from(i + 1).unwrap_or(u64::MAX),
                    status,
                });
            }
            Booking {
                id: format!("bkg_{run}_{b}"),
                email: format!("soak+{run}.{b}@example.com"),
                events,
            }
        })
        .collect()
}

/// The body Slatis would send for `event` of `booking`.
pub fn body(booking: &Booking, event: &Event) -> Vec<u8> {
    let hour = event.seq % 24;
    json!({
        "event": event.kind,
        "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "webhook_id": "wh_soak",
        "data": {
            "id": booking.id,
            "seq": event.seq,
            "status": event.status.to_ascii_uppercase(),
            "title": "Soak call",
            "start_time": format!("2026-12-01T{hour:02}:00:00.000Z"),
            "end_time": format!("2026-12-01T{hour:02}:30:00.000Z"),
            "attendee": { "name": "Ada Lovelace", "email": booking.email },
        }
    })
    .to_string()
    .into_bytes()
}

/// The config the server runs with: one tenant whose http connector writes each booking
/// to `PUT /bookings/{id}` (after its contact, on create) with the event's `seq`.
pub fn config(listen: &str, admin: &str, token: &str, db: &str, crm: &str, secret: &str) -> String {
    format!(
        r#"
server: {{ listen: "{listen}", max_body_bytes: 65536 }}
storage: {{ url: "sqlite://{db}" }}
admin: {{ listen: "{admin}", token: "{token}" }}
delivery:
  concurrency: 32
  lease: 5s
  shutdown_grace: 1s
  retry: {{ max_attempts: 30, initial_backoff: 50ms, max_backoff: 1s }}
tenants:
  soak:
    signing_secrets: ["{secret}"]
    connectors:
      crm: {{ type: http, base_url: "{crm}", timeout: 1s, concurrency: 32 }}
    routes:
      BOOKING_CREATED:
        - id: contact
          connector: crm
          action: request
          method: PUT
          path: "/contacts/{{{{lower data.attendee.email}}}}"
          json: {{ email: "{{{{lower data.attendee.email}}}}", name: "{{{{data.attendee.name}}}}" }}
        - connector: crm
          action: request
          method: PUT
          path: "/bookings/{{{{data.id}}}}"
          json:
            contact: "{{{{steps.contact.id}}}}"
            status: scheduled
            seq: {{ value: "{{{{data.seq}}}}", type: integer }}
            start: "{{{{data.start_time}}}}"
      BOOKING_RESCHEDULED:
        - connector: crm
          action: request
          method: PUT
          path: "/bookings/{{{{data.id}}}}"
          json:
            status: rescheduled
            seq: {{ value: "{{{{data.seq}}}}", type: integer }}
            start: "{{{{data.start_time}}}}"
      BOOKING_CANCELLED:
        - connector: crm
          action: request
          method: PUT
          path: "/bookings/{{{{data.id}}}}"
          json:
            status: cancelled
            seq: {{ value: "{{{{data.seq}}}}", type: integer }}
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_spread_and_numbered() {
        let plan = bookings(10, 4, "t");
        let counts: Vec<usize> = plan.iter().map(|b| b.events.len()).collect();
        assert_eq!(counts, vec![3, 3, 2, 2]);
        assert_eq!(
            plan[0].events.last().map(|e| e.kind),
            Some("BOOKING_CANCELLED")
        );
        assert_eq!(
            plan[1].events.last().map(|e| e.kind),
            Some("BOOKING_RESCHEDULED")
        );
        for b in &plan {
            let seqs: Vec<u64> = b.events.iter().map(|e| e.seq).collect();
            assert_eq!(seqs, (1..=b.events.len() as u64).collect::<Vec<_>>());
        }
    }
}
