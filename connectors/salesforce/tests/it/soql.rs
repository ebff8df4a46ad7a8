//! Matching by values SOQL would choke on: apostrophes, backslashes, injection attempts.

use crate::harness::{CLIENT_CREDENTIALS, ROUTES, config, ok, org};
use serde_json::json;
use slatis_core::connector::MemoryRecordMap;
use slatis_testkit::mock::SalesforceOptions;

fn booking(id: &str, name: &str, email: &str) -> String {
    json!({"event": "BOOKING_CREATED", "data": {"id": id, "start_time": "2026-12-01T15:00:00Z", "end_time": "2026-12-01T15:30:00Z",
        "attendee": {"name": name, "email": email}}})
    .to_string()
}

#[tokio::test]
async fn values_with_quotes_and_backslashes_match_exactly() {
    let sf = org(SalesforceOptions::default()).await;
    let config = config(&sf, CLIENT_CREDENTIALS, ROUTES);
    let tricky = [
        "conan.o'brien@example.com",
        "back\\slash@example.com",
        "quote\"d@example.com",
    ];
    for (i, email) in tricky.iter().enumerate() {
        ok(
            &config,
            &MemoryRecordMap::default(),
            &booking(&format!("b{i}"), "Conan O'Brien", email),
        )
        .await;
    }
    assert_eq!(sf.records("Contact").len(), 3);
    // again, with an empty record map so SOQL must find each one: no duplicates
    for (i, email) in tricky.iter().enumerate() {
        ok(
            &config,
            &MemoryRecordMap::default(),
            &booking(&format!("c{i}"), "Conan O'Brien", email),
        )
        .await;
    }
    let contacts = sf.records("Contact");
    assert_eq!(
        contacts.len(),
        3,
        "each value matched its own record: {contacts:?}"
    );
    let obrien = contacts
        .iter()
        .find(|c| c.text("Email") == Some("conan.o'brien@example.com"))
        .expect("O'Brien");
    assert_eq!(obrien.text("LastName"), Some("O'Brien"));
    let queries: Vec<String> = sf
        .requests()
        .iter()
        .filter(|r| r.path.contains("/query"))
        .map(|r| r.path.clone())
        .collect();
    assert!(
        queries.iter().any(|q| q.contains("o%5C%27brien")),
        "the apostrophe was escaped: {queries:?}"
    );
}

#[tokio::test]
async fn an_injection_attempt_neither_breaks_nor_widens_the_query() {
    let sf = org(SalesforceOptions::default()).await;
    let victim = sf.seed(
        "Contact",
        json!({"LastName": "Victim", "Email": "victim@example.com"}),
    );
    let routes = r#"
    routes:
      BOOKING_CREATED:
        - id: contact
          connector: sf
          action: upsert
          object: Contact
          match: { property: LastName, value: "{{data.attendee.name}}" }
          properties: { LastName: "{{data.attendee.name}}", Title: attacker }
"#;
    let config = config(&sf, CLIENT_CREDENTIALS, routes);
    for attack in [
        "x' OR LastName != 'y",
        "x\\' OR LastName != \\'y",
        "Victim' AND Title = 'z",
    ] {
        let r = ok(
            &config,
            &MemoryRecordMap::default(),
            &booking("b", attack, "m@example.com"),
        )
        .await;
        assert_eq!(
            r.progress.step_results["contact"]["created"], true,
            "{attack}: matched nothing, so it made a new contact"
        );
    }
    let victim_now = sf.record("Contact", &victim).expect("victim");
    assert_eq!(
        victim_now.text("Title"),
        None,
        "the other record was not touched"
    );
    assert_eq!(sf.records("Contact").len(), 4);
    assert!(
        sf.requests().iter().all(|r| r.status < 400),
        "no MALFORMED_QUERY"
    );
}
