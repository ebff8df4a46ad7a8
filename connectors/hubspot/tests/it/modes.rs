//! Property write modes in every action: `on: create` only when the record is made,
//! `on: empty` only while HubSpot's field is empty — through search, the 409 race, a
//! unique property (no native upsert then) and a plain update.

use crate::harness::{PLAIN, TOKEN, config, deliver, mock, quick};
use serde_json::json;
use slatis_core::connector::MemoryRecordMap;
use slatis_testkit::mock::{HubSpotOptions, HubSpotRequest, MockHubSpot};
use std::time::Duration;

/// A contact step with each write mode, matched by email, as an external id or not.
fn routes(external_id: bool) -> String {
    format!(
        r#"
    routes:
      BOOKING_CREATED:
        - connector: hs
          action: upsert
          object: contacts
          match: {{ property: email, value: "{{{{lower data.attendee.email}}}}", external_id: {external_id} }}
          properties:
            email: "{{{{lower data.attendee.email}}}}"
            firstname: {{ value: "{{{{first_name data.attendee.name}}}}", on: empty }}
            lastname: "{{{{last_name data.attendee.name}}}}"
            company: {{ value: Slatis, on: create }}
      BOOKING_UPDATED:
        - connector: hs
          action: update
          object: contacts
          match: {{ property: email, value: "{{{{lower data.attendee.email}}}}", external_id: {external_id} }}
          properties:
            company: {{ value: Slatis, on: create }}
"#
    )
}

fn booking(event: &str) -> String {
    slatis_testkit::fixtures::booking(event, "bkg_1", "Ada Lovelace", "ada@example.com")
}

fn calls(hs: &MockHubSpot) -> Vec<String> {
    hs.requests()
        .iter()
        .map(|q: &HubSpotRequest| format!("{} {}", q.method, q.path))
        .collect()
}

/// Ada's (the only contact's) firstname, lastname and company.
fn ada(hs: &MockHubSpot) -> [Option<String>; 3] {
    let contacts = hs.records("contacts");
    assert_eq!(contacts.len(), 1, "{contacts:?}");
    ["firstname", "lastname", "company"].map(|k| contacts[0].prop(k).map(str::to_owned))
}

fn some(values: [Option<&str>; 3]) -> [Option<String>; 3] {
    values.map(|v| v.map(str::to_owned))
}

/// Delivers `event` through the routes above (`external_id` or not); it must succeed.
async fn deliver_ok(hs: &MockHubSpot, external_id: bool, event: &str) {
    let config = config(hs, PLAIN, &routes(external_id));
    let r = deliver(&config, &MemoryRecordMap::default(), &booking(event)).await;
    assert!(r[0].failure.is_none(), "{:?}", r[0].failure);
}

#[tokio::test]
async fn a_new_record_gets_every_property() {
    for external_id in [false, true] {
        let hs = mock(quick()).await;
        deliver_ok(&hs, external_id, "BOOKING_CREATED").await;
        assert_eq!(
            ada(&hs),
            some([Some("Ada"), Some("Lovelace"), Some("Slatis")]),
            "external_id: {external_id}"
        );
        assert!(
            !calls(&hs).iter().any(|c| c.contains("batch/upsert")),
            "a native upsert cannot be conditional: {:?}",
            calls(&hs)
        );
    }
}

#[tokio::test]
async fn what_a_sales_rep_filled_in_stays() {
    for external_id in [false, true] {
        let hs = mock(quick()).await;
        hs.seed(
            "contacts",
            json!({"email": "ada@example.com", "firstname": "Augusta", "company": "Analytical Engines"}),
        );
        deliver_ok(&hs, external_id, "BOOKING_CREATED").await;
        assert_eq!(
            ada(&hs),
            some([
                Some("Augusta"),
                Some("Lovelace"),
                Some("Analytical Engines")
            ]),
            "external_id {external_id}: `empty` kept the rep's name, `create` the company"
        );
        let patch = hs
            .requests()
            .into_iter()
            .find(|q| q.method == "PATCH")
            .expect("an update");
        assert_eq!(
            patch.json()["properties"],
            json!({"email": "ada@example.com", "lastname": "Lovelace"})
        );
        assert!(
            calls(&hs)
                .iter()
                .any(|c| c.starts_with("GET /crm/v3/objects/contacts/")
                    && c.contains("properties=firstname")),
            "the `empty` field was read first: {:?}",
            calls(&hs)
        );
    }
}

#[tokio::test]
async fn a_blank_field_is_filled() {
    let hs = mock(quick()).await;
    hs.seed(
        "contacts",
        json!({"email": "ada@example.com", "lastname": "L"}),
    );
    deliver_ok(&hs, false, "BOOKING_CREATED").await;
    assert_eq!(ada(&hs), some([Some("Ada"), Some("Lovelace"), None]));
}

#[tokio::test]
async fn the_409_race_keeps_the_write_modes() {
    // made elsewhere a moment ago: search cannot see it; the create is answered 409
    let hs = mock(HubSpotOptions {
        search_lag: Duration::from_secs(30),
        ..quick()
    })
    .await;
    let made = reqwest::Client::new()
        .post(format!("{}/crm/v3/objects/contacts", hs.url()))
        .bearer_auth(TOKEN)
        .json(&json!({"properties": {"email": "ada@example.com", "firstname": "Augusta"}}))
        .send()
        .await
        .expect("create");
    assert_eq!(made.status(), 201);
    deliver_ok(&hs, false, "BOOKING_CREATED").await;
    assert!(hs.requests().iter().any(|q| q.status == 409));
    assert_eq!(ada(&hs), some([Some("Augusta"), Some("Lovelace"), None]));
}

#[tokio::test]
async fn an_update_with_nothing_to_send_sends_no_patch() {
    for external_id in [false, true] {
        let hs = mock(quick()).await;
        hs.seed("contacts", json!({"email": "ada@example.com"}));
        deliver_ok(&hs, external_id, "BOOKING_UPDATED").await;
        assert!(
            !hs.requests().iter().any(|q| q.method == "PATCH"),
            "external_id {external_id}: {:?}",
            calls(&hs)
        );
        assert_eq!(ada(&hs)[2], None, "`on: create` is never an update");
    }
    // and a record that is not there is still "not found" (retried)
    let hs = mock(quick()).await;
    let config = config(&hs, PLAIN, &routes(true));
    let r = deliver(
        &config,
        &MemoryRecordMap::default(),
        &booking("BOOKING_UPDATED"),
    )
    .await;
    let e = &r[0].failure.as_ref().expect("no contact").1;
    assert_eq!(e.class(), "retryable", "{e}");
}
