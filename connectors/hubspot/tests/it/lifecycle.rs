//! A booking's whole life: created, rescheduled, cancelled, and what HubSpot holds after.

use crate::harness::{
    PLAIN, ROUTES, calls, config, deliver, deliver_until_done, failure, mock, quick,
};
use slatis_core::connector::MemoryRecordMap;
use slatis_testkit::fixtures::{
    self, BOOKING_CANCELLED, BOOKING_CREATED, BOOKING_CREATED_FULL, BOOKING_RESCHEDULED,
    SINGLE_NAME,
};

#[tokio::test]
async fn a_booking_lives_once_in_hubspot() {
    let hs = mock(quick()).await;
    let config = config(&hs, PLAIN, ROUTES);
    let records = MemoryRecordMap::default();
    for body in [
        BOOKING_CREATED,
        BOOKING_CREATED_FULL,
        SINGLE_NAME,
        BOOKING_RESCHEDULED,
        BOOKING_CANCELLED,
    ] {
        deliver_until_done(&config, &records, body, 5).await;
    }
    let contacts = hs.records("contacts");
    assert_eq!(contacts.len(), 3, "one contact per email: {contacts:?}");
    let by_email = |e: &str| {
        contacts
            .iter()
            .find(|c| c.prop("email") == Some(e))
            .unwrap_or_else(|| panic!("{e}"))
    };
    let jose = by_email("jose.garcia@example.com");
    assert_eq!(
        (jose.prop("firstname"), jose.prop("lastname")),
        (Some("José"), Some("María García Pérez"))
    );
    let cher = by_email("cher@example.com");
    assert_eq!(
        (cher.prop("firstname"), cher.prop("lastname")),
        (Some("Cher"), None),
        "a one-word name has no last name"
    );

    let meetings = hs.records("meetings");
    assert_eq!(meetings.len(), 3, "one meeting per booking: {meetings:?}");
    let ada = meetings
        .iter()
        .find(|m| m.prop("slatis_booking_id") == Some("bkg_01HZX4M2Q8"))
        .expect("Ada's meeting");
    assert_eq!(
        ada.prop("hs_meeting_outcome"),
        Some("CANCELED"),
        "cancelled after it was rescheduled"
    );
    assert_eq!(
        ada.prop("hs_meeting_start_time"),
        Some("2026-12-02T10:00:00.000Z"),
        "the rescheduled time"
    );
    assert_eq!(ada.prop("hs_timestamp"), Some("1796205600000"));
    let ada_contact = by_email("ada@example.com");
    let links = hs.associations();
    for m in &meetings {
        let booking = m.prop("slatis_booking_id").unwrap_or_default();
        let linked: Vec<_> = links
            .iter()
            .filter(|l| l.0 == "meetings" && l.1 == m.id && l.2 == "contacts")
            .collect();
        assert_eq!(
            linked.len(),
            1,
            "meeting of {booking} linked to exactly one contact: {links:?}"
        );
        if booking == "bkg_01HZX4M2Q8" {
            assert_eq!(linked[0].3, ada_contact.id);
        }
    }
}

#[tokio::test]
async fn later_steps_and_updates_use_the_record_map_not_search() {
    let hs = mock(quick()).await; // 200 ms search lag
    let config = config(&hs, PLAIN, ROUTES);
    let records = MemoryRecordMap::default();
    deliver_until_done(&config, &records, BOOKING_CREATED, 3).await;
    let searches_before = hs
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/search"))
        .count();
    // at once, before search could see the new contact
    let renamed = fixtures::booking(
        "BOOKING_UPDATED",
        "bkg_01HZX4M2Q8",
        "Ada King",
        "ada@example.com",
    );
    let r = deliver(&config, &records, &renamed).await;
    assert!(r[0].failure.is_none(), "{:?}", r[0].failure);
    let searches_after = hs
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/search"))
        .count();
    assert_eq!(
        searches_after, searches_before,
        "the contact came from the record map"
    );
    let contacts = hs.records("contacts");
    assert_eq!(contacts.len(), 1);
    assert_eq!(contacts[0].prop("lastname"), Some("King"));
}

#[tokio::test]
async fn a_deleted_record_is_forgotten_and_found_again() {
    let hs = mock(quick()).await;
    let config = config(&hs, PLAIN, ROUTES);
    let records = MemoryRecordMap::default();
    deliver_until_done(&config, &records, BOOKING_CREATED, 3).await;
    // someone deletes the contact in HubSpot; the next booking of that email re-creates it
    let id = hs.records("contacts")[0].id.clone();
    let client = reqwest::Client::new();
    let gone = client
        .delete(format!("{}/crm/v3/objects/contacts/{id}", hs.url()))
        .bearer_auth(crate::harness::TOKEN)
        .send()
        .await
        .expect("delete");
    assert_eq!(gone.status(), 204);
    let again = fixtures::booking(
        "BOOKING_CREATED",
        "bkg_second",
        "Ada Lovelace",
        "ada@example.com",
    );
    deliver_until_done(&config, &records, &again, 3).await;
    let contacts = hs.records("contacts");
    assert_eq!(contacts.len(), 1);
    assert_ne!(contacts[0].id, id);
}

#[tokio::test]
async fn updates_and_deletes_of_missing_records() {
    let hs = mock(quick()).await;
    let config = config(&hs, PLAIN, ROUTES);
    let records = MemoryRecordMap::default();
    // a cancel for a booking HubSpot never saw: retried (it may be an ordering or index lag)
    let e = failure(&deliver(&config, &records, BOOKING_CANCELLED).await).clone();
    assert_eq!(e.class(), "retryable", "{e}");
    assert!(
        e.message()
            .contains("no meetings with slatis_booking_id = \"bkg_01HZX4M2Q8\""),
        "{e}"
    );
    // a delete of something already gone is a success
    let no_show = fixtures::booking("BOOKING_NO_SHOW", "bkg_never", "A B", "a@b.co");
    assert!(
        deliver(&config, &records, &no_show).await[0]
            .failure
            .is_none()
    );
    // and a delete of something there removes it
    deliver_until_done(&config, &records, BOOKING_CREATED, 3).await;
    let no_show = fixtures::booking(
        "BOOKING_NO_SHOW",
        "bkg_01HZX4M2Q8",
        "Ada Lovelace",
        "ada@example.com",
    );
    assert!(
        deliver(&config, &records, &no_show).await[0]
            .failure
            .is_none()
    );
    assert!(hs.records("meetings").is_empty());
    // an update by email of a contact that does not exist: retried, then dead-lettered by the queue
    let assign = serde_json::json!({"event": "ASSIGNMENT_CHANGED", "data": {"id": "b", "company": "Acme", "attendee": {"email": "nobody@example.com"}}}).to_string();
    assert_eq!(
        failure(&deliver(&config, &records, &assign).await).class(),
        "retryable"
    );
}

#[tokio::test]
async fn validation_errors_are_permanent_with_hubspots_message() {
    let hs = mock(quick()).await;
    let routes = r#"
    routes:
      BOOKING_CREATED:
        - { connector: hs, action: create, object: contacts, properties: { email: "{{data.attendee.email}}", favourite_colour: blue } }
      BOOKING_UPDATED:
        - { connector: hs, action: create, object: meetings, properties: { hs_meeting_title: "{{data.id}}" } }
      BOOKING_COMPLETED:
        - { connector: hs, action: create, object: meetings, properties: { hs_timestamp: "{{epoch_ms data.start_time}}", hs_meeting_outcome: CANCELLED } }
"#;
    let config = config(&hs, PLAIN, routes);
    let records = MemoryRecordMap::default();
    let cases = [
        (
            "BOOKING_CREATED",
            "Property \\\"favourite_colour\\\" does not exist",
        ),
        ("BOOKING_UPDATED", "hs_timestamp"),
        (
            "BOOKING_COMPLETED",
            "CANCELLED was not one of the allowed options",
        ),
    ];
    for (event, text) in cases {
        let body = fixtures::booking(event, "bkg_v", "Ada Lovelace", "ada@example.com");
        let e = failure(&deliver(&config, &records, &body).await).clone();
        assert_eq!(e.class(), "permanent", "{event}: {e}");
        assert!(
            e.message().contains("HTTP 400 VALIDATION_ERROR") && e.message().contains(text),
            "{event}: {e}"
        );
    }
    assert!(hs.records("contacts").is_empty() && hs.records("meetings").is_empty());
}

#[tokio::test]
async fn a_dry_run_sends_nothing_and_records_every_call() {
    let hs = mock(quick()).await;
    let config = config(&hs, &format!("{PLAIN}, dry_run: true"), ROUTES);
    let records = MemoryRecordMap::default();
    let r = deliver(&config, &records, BOOKING_CREATED).await;
    assert!(r[0].failure.is_none(), "{:?}", r[0].failure);
    assert!(hs.requests().is_empty(), "nothing reached HubSpot");
    let calls = calls(&r[0]);
    let base = hs.url();
    assert_eq!(
        calls,
        vec![
            format!("POST {base}/crm/v3/objects/contacts/search"),
            format!("POST {base}/crm/v3/objects/contacts"),
            // the meeting is looked for among the contact's meetings, then created
            // with its association in the same call
            format!("GET {base}/crm/v4/objects/contacts/dry-run/associations/meetings?limit=***"),
            format!("POST {base}/crm/v3/objects/meetings"),
        ]
    );
    let create = &r[0].trace[1].requests[1];
    let body = create.body.as_ref().expect("a body");
    assert_eq!(
        body["associations"],
        serde_json::json!([{"to": {"id": "dry-run"}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 200}]}])
    );
    let auth = r[0].trace[0].requests[0]
        .headers
        .iter()
        .find(|(k, _)| k == "authorization")
        .map(|(_, v)| v.as_str());
    assert_eq!(auth, Some("***"));
}

/// Rendered values in a URL path (a match value, an association's `to` and `id`) are
/// each one segment: a hostile one cannot reach another endpoint.
#[tokio::test]
async fn rendered_path_values_stay_one_segment() {
    let hs = mock(quick()).await;
    let routes = r#"
    routes:
      BOOKING_CREATED:
        - connector: hs
          action: update
          object: meetings
          match: { property: hs_object_id, value: "{{data.id}}" }
          properties: { hs_meeting_title: x }
          associate:
            - { to: "{{data.to}}", id: "{{data.other}}" }
"#;
    let config = config(&hs, &format!("{PLAIN}, dry_run: true"), routes);
    let records = MemoryRecordMap::default();
    let event = |id: &str, to: &str, other: &str| {
        serde_json::json!({"event": "BOOKING_CREATED", "timestamp": "2026-01-01T00:00:00Z",
                           "data": {"id": id, "to": to, "other": other}})
        .to_string()
    };
    let r = deliver(
        &config,
        &records,
        &event("../../contacts/1?x=", "contacts/../../../admin", "#1 ?"),
    )
    .await;
    assert!(r[0].failure.is_none(), "{:?}", r[0].failure);
    let calls = calls(&r[0]);
    let base = hs.url();
    assert_eq!(
        calls,
        vec![
            format!("PATCH {base}/crm/v3/objects/meetings/..%2F..%2Fcontacts%2F1%3Fx%3D"),
            format!(
                "PUT {base}/crm/v4/objects/meetings/..%2F..%2Fcontacts%2F1%3Fx%3D/associations/default/contacts%2F..%2F..%2F..%2Fadmin/%231%20%3F"
            ),
        ]
    );
    for (id, to, other) in [
        ("..", "contacts", "1"),
        ("1", "..", "2"),
        ("1", "contacts", "."),
    ] {
        let e = failure(&deliver(&config, &records, &event(id, to, other)).await).clone();
        assert_eq!(e.class(), "permanent", "{id} {to} {other}: {e}");
        assert!(e.message().contains("cannot be a URL path segment"), "{e}");
    }
    assert!(hs.requests().is_empty(), "nothing reached HubSpot");
}
