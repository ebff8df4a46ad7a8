//! How a match resolves: several records by `on_many` (search sorted by creation, or the
//! associated records), and the matches HubSpot cannot serve refused at load.

use crate::harness::{PLAIN, TOKEN, config, deliver, failure, mock, quick};
use serde_json::{Value, json};
use slatis_core::config::load_str;
use slatis_core::connector::MemoryRecordMap;
use slatis_testkit::mock::MockHubSpot;
use std::time::Duration;

fn routes(on_many: &str) -> String {
    format!(
        r#"
    routes:
      BOOKING_UPDATED:
        - connector: hs
          action: update
          object: contacts
          match: {{ property: slatis_ref, value: "{{{{data.id}}}}", on_many: {on_many} }}
          properties: {{ jobtitle: picked }}
      BOOKING_RESCHEDULED:
        - id: contact
          connector: hs
          action: find
          object: contacts
          match: {{ property: email, value: "{{{{data.attendee.email}}}}" }}
        - connector: hs
          action: upsert
          object: meetings
          match: {{ property: slatis_booking_id, value: "{{{{data.id}}}}", on_many: {on_many} }}
          properties: {{ hs_timestamp: "1796205600000", hs_meeting_title: picked }}
          associate:
            - {{ to: contacts, id: "{{{{steps.contact.id}}}}" }}
"#
    )
}

fn event(event: &str) -> String {
    json!({"event": event, "data": {"id": "r1", "attendee": {"email": "ada@example.com"}}})
        .to_string()
}

/// Three contacts sharing `slatis_ref = r1`, made a few milliseconds apart.
async fn three_contacts() -> (MockHubSpot, Vec<String>) {
    let hs = mock(quick()).await;
    hs.define_property("contacts", "slatis_ref", false)
        .expect("defined");
    let mut ids = Vec::new();
    for name in ["Ada", "Bea", "Cy"] {
        ids.push(hs.seed("contacts", json!({"firstname": name, "slatis_ref": "r1"})));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    (hs, ids)
}

fn picked(hs: &MockHubSpot) -> Vec<String> {
    hs.records("contacts")
        .into_iter()
        .filter(|c| c.prop("jobtitle") == Some("picked"))
        .map(|c| c.id)
        .collect()
}

#[tokio::test]
async fn several_search_matches_resolve_to_the_oldest_the_newest_or_fail() {
    for (on_many, want) in [("oldest", 0), ("newest", 2)] {
        let (hs, ids) = three_contacts().await;
        let config = config(&hs, PLAIN, &routes(on_many));
        let r = deliver(
            &config,
            &MemoryRecordMap::default(),
            &event("BOOKING_UPDATED"),
        )
        .await;
        assert!(r[0].failure.is_none(), "{on_many}: {:?}", r[0].failure);
        assert_eq!(picked(&hs), [ids[want].clone()], "{on_many}");
        let search = hs
            .requests()
            .into_iter()
            .find(|q| q.path.ends_with("/search"))
            .expect("a search");
        let direction = if on_many == "newest" {
            "DESCENDING"
        } else {
            "ASCENDING"
        };
        assert_eq!(
            search.json()["sorts"],
            json!([{"propertyName": "createdate", "direction": direction}]),
            "sorted by creation, the wanted end first"
        );
    }
    let (hs, ids) = three_contacts().await;
    let config = config(&hs, PLAIN, &routes("fail"));
    let e = failure(
        &deliver(
            &config,
            &MemoryRecordMap::default(),
            &event("BOOKING_UPDATED"),
        )
        .await,
    )
    .clone();
    assert_eq!(e.class(), "permanent", "{e}");
    assert!(
        e.message().contains(&format!(
            "3 contacts have slatis_ref = \"r1\" (ids {})",
            ids.join(", ")
        )),
        "{e}"
    );
    assert!(picked(&hs).is_empty(), "nothing was written");
}

/// Two meetings of booking r1 linked to Ada (duplicates made by hand), created apart.
async fn two_meetings() -> (MockHubSpot, Vec<String>) {
    let hs = mock(quick()).await;
    let ada = hs.seed("contacts", json!({"email": "ada@example.com"}));
    let client = reqwest::Client::new();
    let mut ids = Vec::new();
    for _ in 0..2 {
        let made: Value = client
            .post(format!("{}/crm/v3/objects/meetings", hs.url()))
            .bearer_auth(TOKEN)
            .json(&json!({
                "properties": {"hs_timestamp": "1796205600000", "slatis_booking_id": "r1"},
                "associations": [{"to": {"id": ada}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 200}]}],
            }))
            .send()
            .await
            .expect("send")
            .json()
            .await
            .expect("JSON");
        ids.push(made["id"].as_str().expect("id").to_owned());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    (hs, ids)
}

#[tokio::test]
async fn several_associated_matches_resolve_the_same_way() {
    for (on_many, want) in [("oldest", 0), ("newest", 1)] {
        let (hs, ids) = two_meetings().await;
        let config = config(&hs, PLAIN, &routes(on_many));
        let r = deliver(
            &config,
            &MemoryRecordMap::default(),
            &event("BOOKING_RESCHEDULED"),
        )
        .await;
        assert!(r[0].failure.is_none(), "{on_many}: {:?}", r[0].failure);
        let titled: Vec<_> = hs
            .records("meetings")
            .into_iter()
            .filter(|m| m.prop("hs_meeting_title") == Some("picked"))
            .map(|m| m.id)
            .collect();
        assert_eq!(titled, [ids[want].clone()], "{on_many}");
        assert_eq!(hs.records("meetings").len(), 2, "none created");
        assert!(
            !hs.requests()
                .iter()
                .any(|q| q.path.starts_with("/crm/v3/objects/meetings/search")),
            "found through the contact's associations, not search"
        );
    }
    let (hs, ids) = two_meetings().await;
    let config = config(&hs, PLAIN, &routes("fail"));
    let e = failure(
        &deliver(
            &config,
            &MemoryRecordMap::default(),
            &event("BOOKING_RESCHEDULED"),
        )
        .await,
    )
    .clone();
    assert_eq!(e.class(), "permanent", "{e}");
    assert!(
        e.message().contains(&format!("(ids {})", ids.join(", ")))
            && e.message().contains("linked to contacts"),
        "{e}"
    );
}

fn load(step: &str) -> String {
    let yaml = format!(
        "tenants:\n  t:\n    signing_secrets: [s]\n    connectors:\n      hs: {{ type: hubspot, access_token: pat-x }}\n    routes:\n      BOOKING_CREATED:\n        - {step}\n"
    );
    match load_str(&yaml, &|_| None) {
        Ok(_) => String::new(),
        Err(e) => e.to_string(),
    }
}

#[test]
fn matches_hubspot_cannot_serve_are_refused_at_load() {
    let e = load(
        r#"{ connector: hs, action: upsert, object: meetings, match: { property: slatis_booking_id, value: "{{data.id}}", external_id: true }, properties: { hs_timestamp: "1" }, associate: [{ to: contacts, id: "1" }] }"#,
    );
    assert!(
        e.contains("tenants.t.routes.BOOKING_CREATED[0].match.external_id: meetings cannot have unique-value properties in HubSpot"),
        "{e}"
    );
    for object in ["calls", "notes", "tasks", "emails", "0-47"] {
        let e = load(&format!(
            r#"{{ connector: hs, action: update, object: {object}, match: {{ property: x, value: "1", external_id: true }} }}"#
        ));
        assert!(
            e.contains("cannot have unique-value properties"),
            "{object}: {e}"
        );
    }
    let e = load(
        r#"{ connector: hs, action: upsert, object: meetings, match: { property: slatis_booking_id, value: "{{data.id}}" }, properties: { hs_timestamp: "1" } }"#,
    );
    assert!(
        e.contains("tenants.t.routes.BOOKING_CREATED[0].associate: an `upsert` of meetings by `slatis_booking_id` needs `associate:"),
        "{e}"
    );
    // what HubSpot can serve loads: unique properties off activities, activities by id
    for ok in [
        r#"{ connector: hs, action: upsert, object: deals, match: { property: booking_ref, value: "1", external_id: true }, properties: { dealname: x } }"#,
        r#"{ connector: hs, action: update, object: meetings, match: { property: hs_object_id, value: "1" }, properties: { hs_meeting_title: x } }"#,
        r#"{ connector: hs, action: update, object: meetings, match: { property: slatis_booking_id, value: "1" }, properties: { hs_meeting_title: x } }"#,
    ] {
        assert_eq!(load(ok), "", "{ok}");
    }
}
