//! What a backfill feeds for one booking: the event its status implies, the delivery body
//! a webhook of that event would carry, and a dedupe key that is the same on every run.
//!
//! Status → event (Slatis reference §6.1; the webhook that a booking in this status last
//! raised):
//!
//! | status                 | event                 |                                        |
//! |------------------------|-----------------------|----------------------------------------|
//! | `SCHEDULED`            | `BOOKING_CREATED`     |                                        |
//! | `PENDING_CONFIRMATION` | `BOOKING_CREATED`     | inferred: created, not yet confirmed   |
//! | `RESCHEDULED`          | `BOOKING_RESCHEDULED` | the active booking at its new time     |
//! | `CANCELLED`            | `BOOKING_CANCELLED`   | also the original of a rescheduled one |
//! | `COMPLETED`            | `BOOKING_COMPLETED`   |                                        |
//! | `NO_SHOW`              | `BOOKING_NO_SHOW`     |                                        |
//! | `DRAFT`                | none (skipped)        | routing in progress, no webhook yet    |
//! | anything else          | none (skipped)        | a status newer than this build         |
//!
//! Invariants: one event per booking (its current status), never its history; the body
//! is the v1 envelope `{event, timestamp, webhook_id, data}` with the booking as Slatis
//! lists it in `data` (inferred: that a delivery's `data` is the booking object), so
//! mappings see what a webhook would have carried; the dedupe key depends only on the
//! booking id and the event type.

use anyhow::{Context as _, bail};
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use serde_json::json;
use slatis_api::Booking;
use slatis_core::envelope;

/// The event a booking in `status` is fed as; `None` for a status that raised none
/// (`DRAFT`) or one this build does not know.
pub fn event_for(status: &str) -> Option<&'static str> {
    Some(match status {
        "SCHEDULED" | "PENDING_CONFIRMATION" => "BOOKING_CREATED",
        "RESCHEDULED" => "BOOKING_RESCHEDULED",
        "CANCELLED" => "BOOKING_CANCELLED",
        "COMPLETED" => "BOOKING_COMPLETED",
        "NO_SHOW" => "BOOKING_NO_SHOW",
        _ => return None,
    })
}

/// A `--since`/`--until` value: `YYYY-MM-DD` (that day's start, UTC) or an RFC 3339 time.
///
/// # Errors
/// When it is neither, naming `flag` and the forms accepted.
pub fn parse_date(flag: &str, value: &str) -> anyhow::Result<DateTime<Utc>> {
    let value = value.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        return Ok(t.with_timezone(&Utc));
    }
    let day = NaiveDate::parse_from_str(value, "%Y-%m-%d").with_context(|| {
        format!(
            "--{flag} {value:?} is not a date: use YYYY-MM-DD (UTC) or an RFC 3339 time such as 2026-05-01T14:00:00Z"
        )
    })?;
    Ok(day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc())
}

/// `[since, until)`, checked to be non-empty.
///
/// # Errors
/// When `until` is not after `since`.
pub fn range(since: DateTime<Utc>, until: DateTime<Utc>) -> anyhow::Result<()> {
    if until <= since {
        bail!(
            "--until ({}) must be after --since ({}): the range is [since, until)",
            rfc3339(until),
            rfc3339(since)
        );
    }
    Ok(())
}

/// A time as Slatis writes it: RFC 3339, milliseconds, `Z`.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The delivery body a webhook of `event` for `booking` would carry, stamped `at`;
/// `webhook_id` is null (no webhook sent it) and `backfill: true` tells a mapping or an
/// operator reading the event where it came from.
pub fn payload(event: &str, booking: &Booking, at: DateTime<Utc>) -> Vec<u8> {
    let body = json!({
        "event": event,
        "timestamp": rfc3339(at),
        "webhook_id": null,
        "backfill": true,
        "data": booking,
    });
    // a Value always serialises
    serde_json::to_vec(&body).unwrap_or_default()
}

/// The dedupe key of the backfilled `event` of `booking`: the same on every run, so a
/// re-run (or two at once) stores it once. Ordered by the booking's start time.
pub fn dedupe_key(event: &str, booking: &Booking) -> Vec<u8> {
    let start = DateTime::parse_from_rfc3339(&booking.start_time)
        .ok()
        .map(|t| t.with_timezone(&Utc));
    let id = format!("slatis-sync backfill\n{}\n{event}", booking.id);
    envelope::dedupe_key(start, id.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use slatis_core::Envelope;

    #[test]
    fn each_status_maps_to_the_event_it_raised() {
        for (status, event) in [
            ("SCHEDULED", Some("BOOKING_CREATED")),
            ("PENDING_CONFIRMATION", Some("BOOKING_CREATED")),
            ("RESCHEDULED", Some("BOOKING_RESCHEDULED")),
            ("CANCELLED", Some("BOOKING_CANCELLED")),
            ("COMPLETED", Some("BOOKING_COMPLETED")),
            ("NO_SHOW", Some("BOOKING_NO_SHOW")),
            ("DRAFT", None),
            ("ARCHIVED", None),
            ("scheduled", None),
        ] {
            assert_eq!(event_for(status), event, "{status}");
        }
    }

    #[test]
    fn dates_are_days_or_rfc3339_times() {
        let t = |s: &str| {
            DateTime::parse_from_rfc3339(s)
                .expect("time")
                .with_timezone(&Utc)
        };
        assert_eq!(
            parse_date("since", "2026-05-01").expect("day"),
            t("2026-05-01T00:00:00Z")
        );
        assert_eq!(
            parse_date("since", "2026-05-01T16:30:00+02:00").expect("time"),
            t("2026-05-01T14:30:00Z")
        );
        for bad in [
            "yesterday",
            "2026-13-01",
            "2026-05-01 10:00",
            "",
            "1714572300",
        ] {
            let e = parse_date("until", bad).expect_err(bad).to_string();
            assert!(e.contains("--until") && e.contains("YYYY-MM-DD"), "{e}");
        }
        let (a, b) = (t("2026-05-01T00:00:00Z"), t("2026-05-02T00:00:00Z"));
        assert!(range(a, b).is_ok());
        assert!(range(a, a).is_err(), "empty");
        assert!(
            range(b, a)
                .expect_err("reversed")
                .to_string()
                .contains("must be after")
        );
    }

    fn booking(id: &str) -> Booking {
        serde_json::from_value(json!({
            "id": id, "status": "SCHEDULED", "start_time": "2026-05-01T14:00:00.000Z",
            "end_time": "2026-05-01T14:30:00.000Z",
            "attendee": { "name": "Jane Smith", "email": "Jane@Example.com" },
            "custom_fields": { "company": "Acme" }
        }))
        .expect("booking")
    }

    #[test]
    fn the_payload_reads_as_a_delivery_of_the_booking() {
        let b = booking("bkg_1");
        let raw = payload("BOOKING_CREATED", &b, Utc::now());
        let e = Envelope::parse(&raw).expect("envelope");
        assert_eq!(e.event, "BOOKING_CREATED");
        assert_eq!(e.booking_id.as_deref(), Some("bkg_1"));
        assert_eq!(e.attendee_email.as_deref(), Some("jane@example.com"));
        assert_eq!(e.data()["custom_fields"]["company"], "Acme");
        assert_eq!(e.data()["start_time"], "2026-05-01T14:00:00.000Z");
        assert!(e.timestamp().expect("readable").is_some());
    }

    #[test]
    fn the_dedupe_key_is_the_booking_and_event_only() {
        let b = booking("bkg_1");
        let key = dedupe_key("BOOKING_CREATED", &b);
        let mut moved = b.clone();
        moved.attendee.name = "Jane Doe".into();
        assert_eq!(key, dedupe_key("BOOKING_CREATED", &moved));
        assert_ne!(key, dedupe_key("BOOKING_CANCELLED", &b));
        assert_ne!(key, dedupe_key("BOOKING_CREATED", &booking("bkg_2")));
    }
}
