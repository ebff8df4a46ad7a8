//! What an update writes: lists merged rather than replaced, write modes (`on: create`,
//! `on: empty`) on every action, and which of several matching records a match takes.

use crate::harness::{PERSON_FIELD, ROUTES, TOKEN, account, config, deliver, failure, ok, quick};
use serde_json::json;
use slatis_core::connector::MemoryRecordMap;
use slatis_testkit::fixtures::{self, BOOKING_CREATED_FULL};
use slatis_testkit::mock::PipedriveOptions;

#[tokio::test]
async fn an_update_adds_the_bookings_email_and_phone_and_keeps_what_reps_entered() {
    let pd = account(quick()).await;
    let jose = pd.seed(
        "persons",
        json!({
            "name": "José (from the trade fair)",
            "emails": [
                {"value": "jose@acme.example", "primary": true, "label": "work"},
                {"value": "jose.garcia@example.com", "primary": false, "label": "home"}
            ],
            "phones": [{"value": "+34 911 111 111", "primary": true, "label": "work"}]
        }),
    );
    let config = config(&pd, TOKEN, ROUTES);
    ok(&config, &MemoryRecordMap::default(), BOOKING_CREATED_FULL).await;
    let person = pd.record("persons", jose).expect("José");
    assert_eq!(
        person.field("emails"),
        Some(&json!([
            {"value": "jose@acme.example", "primary": true, "label": "work"},
            {"value": "jose.garcia@example.com", "primary": false, "label": "home"}
        ])),
        "the booking's email was there: the list is left alone"
    );
    assert_eq!(
        person.field("phones"),
        Some(&json!([
            {"value": "+34 911 111 111", "primary": true, "label": "work"},
            {"value": "+34 600 000 000", "primary": false, "label": "work"}
        ])),
        "the booking's phone is added, not primary"
    );
    assert_eq!(person.text("name"), Some("José (from the trade fair)"));
    assert_eq!(pd.records("persons").len(), 1);
    let patches: Vec<serde_json::Value> = pd
        .requests()
        .iter()
        .filter(|r| r.method == "PATCH" && r.path.starts_with("/api/v2/persons/"))
        .map(|r| r.json())
        .collect();
    assert_eq!(patches.len(), 1);
    assert!(
        patches[0].get("emails").is_none() && patches[0].get("name").is_none(),
        "nothing to change is not sent: {}",
        patches[0]
    );
}

const FIELDED: &str = r#"
    routes:
      BOOKING_CREATED:
        - id: person
          connector: pd
          action: upsert
          object: persons
          match: { property: email, value: "{{lower data.attendee.email}}", on_many: ON_MANY }
          properties:
            name: "{{data.attendee.name}}"
            9d4f0c2b7a1e5d3c8b6a4f2e0d9c7b5a3e1f8d6c: { value: "{{data.id}}", on: empty }
      BOOKING_UPDATED:
        - connector: pd
          action: update
          object: persons
          match: { property: email, value: "{{lower data.attendee.email}}" }
          properties:
            name: { value: "{{data.attendee.name}}", on: create }
"#;

fn routes(on_many: &str) -> String {
    FIELDED.replace("ON_MANY", on_many)
}

#[tokio::test]
async fn on_empty_fills_a_custom_field_once_and_on_create_never_updates() {
    let pd = account(quick()).await;
    let config = config(&pd, TOKEN, &routes("oldest"));
    let records = MemoryRecordMap::default();
    let first = fixtures::booking(
        "BOOKING_CREATED",
        "bkg_1",
        "Ada Lovelace",
        "ada@example.com",
    );
    ok(&config, &records, &first).await;
    let ada = pd.records("persons")[0].id;
    assert_eq!(
        pd.record("persons", ada)
            .and_then(|p| p.custom(PERSON_FIELD).cloned()),
        Some(json!("bkg_1")),
        "a create sends every property"
    );
    let second = fixtures::booking("BOOKING_CREATED", "bkg_2", "Ada King", "ada@example.com");
    ok(&config, &records, &second).await;
    let person = pd.record("persons", ada).expect("Ada");
    assert_eq!(
        person.custom(PERSON_FIELD),
        Some(&json!("bkg_1")),
        "not empty: kept"
    );
    assert_eq!(person.text("name"), Some("Ada King"), "written always");
    let reads = pd
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path == format!("/api/v2/persons/{ada}"))
        .count();
    assert_eq!(
        reads, 1,
        "the update read the person for its on: empty field"
    );

    let renamed = fixtures::booking("BOOKING_UPDATED", "bkg_2", "Lady Ada", "ada@example.com");
    let before = pd.requests().len();
    ok(&config, &records, &renamed).await;
    assert_eq!(
        pd.record("persons", ada)
            .and_then(|p| p.text("name").map(str::to_owned))
            .as_deref(),
        Some("Ada King")
    );
    assert!(
        pd.requests()[before..].iter().all(|r| r.method != "PATCH"),
        "an update with only on: create properties sends nothing"
    );
}

#[tokio::test]
async fn on_many_takes_the_oldest_the_newest_or_fails_whatever_order_search_answers() {
    // search sees each update at once (the updates below would hide the persons a while)
    let pd = account(PipedriveOptions {
        search_lag: std::time::Duration::ZERO,
        ..quick()
    })
    .await;
    let older = pd.seed(
        "persons",
        json!({"name": "Ada 1", "emails": [{"value": "ada@example.com"}]}),
    );
    let newer = pd.seed(
        "persons",
        json!({"name": "Ada 2", "emails": [{"value": "Ada@Example.com"}]}),
    );
    let booking = fixtures::booking(
        "BOOKING_CREATED",
        "bkg_1",
        "Ada Lovelace",
        "ada@example.com",
    );
    for (on_many, want) in [("oldest", older), ("newest", newer)] {
        let config = config(&pd, TOKEN, &routes(on_many));
        let r = ok(&config, &MemoryRecordMap::default(), &booking).await;
        assert_eq!(
            r.progress.step_results["person"]["id"],
            json!(want.to_string()),
            "{on_many}"
        );
    }
    let config = config(&pd, TOKEN, &routes("fail"));
    let e = failure(&deliver(&config, &MemoryRecordMap::default(), &booking).await).clone();
    assert_eq!(e.class(), "permanent");
    assert!(
        e.message().contains(&format!(
            "2 persons have email = \"ada@example.com\" (ids {older}, {newer})"
        )),
        "{e}"
    );
    assert_eq!(pd.records("persons").len(), 2, "none made");
    assert!(
        pd.requests()
            .iter()
            .any(|r| r.path.contains("ids=") && r.path.contains("sort_by=add_time")),
        "the hits were ordered by creation from the primary store"
    );
}
