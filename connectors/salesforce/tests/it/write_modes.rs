//! Property write modes (`{value, on: create | empty | always}`) in every action: a
//! create sends every property; an update sends `always` ones and `empty` ones whose
//! field Salesforce holds empty (read with the lookup's SOQL, or `GET ?fields=`), never
//! `create` ones; a native upsert by external id with write modes finds first, then
//! updates or creates.

use crate::harness::{CLIENT_CREDENTIALS, config, deliver, deliver_from, failure, ok, org, param};
use serde_json::{Value, json};
use slatis_core::connector::MemoryRecordMap;
use slatis_testkit::fixtures;
use slatis_testkit::mock::{Fault, MockSalesforce, SalesforceOptions};

const CONTACT_ROUTES: &str = r#"
    routes:
      BOOKING_CREATED:
        - id: contact
          connector: sf
          action: upsert
          object: Contact
          match: { property: Email, value: "{{lower data.attendee.email}}" }
          omit_empty: true
          properties:
            Email: "{{lower data.attendee.email}}"
            FirstName: { value: "{{first_name data.attendee.name}}", on: empty }
            LastName: { value: "{{default (last_name data.attendee.name) data.attendee.name}}", on: empty }
            LeadSource: { value: Slatis, on: create }
            Title: { value: Booked, on: always }
      BOOKING_UPDATED:
        - { connector: sf, action: update, object: Contact, match: { property: Email, value: "{{lower data.attendee.email}}" }, properties: { LeadSource: { value: Slatis, on: create } } }
"#;

const EVENT_ROUTES: &str = r#"
    routes:
      BOOKING_CREATED:
        - connector: sf
          action: upsert
          object: Event
          match: { property: Booking_Uid__c, value: "{{data.id}}", external_id: true }
          properties:
            Subject: "{{default data.title 'Slatis booking'}}"
            StartDateTime: "{{data.start_time}}"
            EndDateTime: "{{data.end_time}}"
            Description: { value: "Booked through Slatis", on: empty }
            ShowAs: { value: Busy, on: create }
"#;

/// The PATCH and POST bodies the mock got, in order.
fn writes(sf: &MockSalesforce) -> Vec<(String, Value)> {
    sf.requests()
        .iter()
        .filter(|q| q.method == "PATCH" || q.method == "POST" && q.path.contains("/sobjects/"))
        .map(|q| (format!("{} {}", q.method, q.path), q.json()))
        .collect()
}

/// The `fields=` of every record read.
fn reads(sf: &MockSalesforce) -> Vec<String> {
    sf.requests()
        .iter()
        .filter(|q| q.method == "GET" && q.path.contains("/sobjects/"))
        .filter_map(|q| param(q, "fields"))
        .collect()
}

#[tokio::test]
async fn a_created_contact_gets_every_property() {
    let sf = org(SalesforceOptions::default()).await;
    let config = config(&sf, CLIENT_CREDENTIALS, CONTACT_ROUTES);
    ok(
        &config,
        &MemoryRecordMap::default(),
        fixtures::BOOKING_CREATED,
    )
    .await;
    let contact = &sf.records("Contact")[0];
    assert_eq!(
        ["FirstName", "LastName", "LeadSource", "Title"].map(|f| contact.text(f)),
        [
            Some("Ada"),
            Some("Lovelace"),
            Some("Slatis"),
            Some("Booked")
        ]
    );
    let query = sf
        .requests()
        .into_iter()
        .find(|q| q.path.contains("/query"))
        .expect("a search");
    assert!(
        query
            .path
            .contains("SELECT+Id%2C+FirstName%2C+LastName+FROM+Contact"),
        "the search reads the `on: empty` fields: {}",
        query.path
    );
}

#[tokio::test]
async fn an_update_keeps_what_a_rep_filled_in() {
    let sf = org(SalesforceOptions::default()).await;
    let rep = sf.seed(
        "Contact",
        json!({"LastName": "Hopper (rep)", "Email": "grace@example.com", "LeadSource": "Web", "Title": "Old"}),
    );
    let config = config(&sf, CLIENT_CREDENTIALS, CONTACT_ROUTES);
    let records = MemoryRecordMap::default();
    let booking = fixtures::booking("BOOKING_CREATED", "b1", "Grace Hopper", "grace@example.com");
    // found by SOQL, its empty fields read in the same query
    ok(&config, &records, &booking).await;
    assert_eq!(
        writes(&sf),
        [(
            format!("PATCH /services/data/v66.0/sobjects/Contact/{rep}"),
            json!({"Email": "grace@example.com", "FirstName": "Grace", "Title": "Booked"})
        )]
    );
    assert!(reads(&sf).is_empty(), "no read beyond the search");
    let contact = sf.record("Contact", &rep).expect("contact");
    assert_eq!(
        ["FirstName", "LastName", "LeadSource", "Title"].map(|f| contact.text(f)),
        [
            Some("Grace"),
            Some("Hopper (rep)"),
            Some("Web"),
            Some("Booked")
        ]
    );
    // again, found through the record map: the fields are read by id first
    ok(&config, &records, &booking).await;
    assert_eq!(reads(&sf), ["Id,FirstName,LastName"]);
    assert_eq!(
        writes(&sf)[1].1,
        json!({"Email": "grace@example.com", "Title": "Booked"}),
        "FirstName is no longer empty"
    );
}

#[tokio::test]
async fn an_update_with_nothing_to_send_still_checks_the_record() {
    let sf = org(SalesforceOptions::default()).await;
    let id = sf.seed(
        "Contact",
        json!({"LastName": "L", "Email": "l@example.com"}),
    );
    let config = config(&sf, CLIENT_CREDENTIALS, CONTACT_ROUTES);
    let records = MemoryRecordMap::default();
    let updated = fixtures::booking("BOOKING_UPDATED", "b", "L", "l@example.com");
    let r = ok(&config, &records, &updated).await;
    assert_eq!(
        r.trace[0].output.as_ref().and_then(|o| o.id.clone()),
        Some(id.clone())
    );
    assert!(writes(&sf).is_empty(), "`on: create` is never an update");
    assert_eq!(
        sf.record("Contact", &id)
            .and_then(|c| c.text("LeadSource").map(str::to_owned)),
        None
    );
    // through the record map, the record is confirmed by a read
    ok(&config, &records, &updated).await;
    assert_eq!(reads(&sf), ["Id"]);
}

#[tokio::test]
async fn a_native_upsert_with_write_modes_finds_first() {
    let sf = org(SalesforceOptions::default()).await;
    let config = config(&sf, CLIENT_CREDENTIALS, EVENT_ROUTES);
    ok(
        &config,
        &MemoryRecordMap::default(),
        fixtures::BOOKING_CREATED,
    )
    .await;
    let event = &sf.records("Event")[0];
    assert_eq!(
        event.text("Booking_Uid__c"),
        Some("bkg_01HZX4M2Q8"),
        "the create sets the external id"
    );
    assert_eq!(event.text("Description"), Some("Booked through Slatis"));
    assert!(
        writes(&sf).iter().all(|(call, _)| call.starts_with("POST")),
        "found nothing, so created: {:?}",
        writes(&sf)
    );
    assert_eq!(reads(&sf), ["Id,Description"]);

    // a rep's notes stay, `on: create` is not sent, the move is
    let rep = sf.seed(
        "Event",
        json!({"Subject": "s", "StartDateTime": "2026-11-30T09:00:00Z", "DurationInMinutes": 15, "Booking_Uid__c": "bkg_rep", "Description": "Call on mobile", "ShowAs": "Free"}),
    );
    let booking = fixtures::booking("BOOKING_CREATED", "bkg_rep", "A B", "a@b.co");
    ok(&config, &MemoryRecordMap::default(), &booking).await;
    let (call, body) = writes(&sf).pop().expect("a write");
    assert_eq!(
        call,
        format!("PATCH /services/data/v66.0/sobjects/Event/{rep}")
    );
    assert_eq!(
        body,
        json!({"Subject": "Slatis booking", "StartDateTime": "2026-12-01T15:00:00.000Z", "EndDateTime": "2026-12-01T15:30:00.000Z"})
    );
    let event = sf.record("Event", &rep).expect("event");
    assert_eq!(
        (event.text("Description"), event.text("ShowAs")),
        (Some("Call on mobile"), Some("Free"))
    );
}

#[tokio::test]
async fn a_lost_create_answer_after_the_find_makes_no_second_event() {
    let sf = org(SalesforceOptions::default()).await;
    let config = config(&sf, CLIENT_CREDENTIALS, EVENT_ROUTES);
    let records = MemoryRecordMap::default();
    // the find answers; the create is applied, then its answer lost
    sf.fail_next(1, Fault::Slow(std::time::Duration::ZERO));
    sf.fail_next(1, Fault::Drop);
    let first = deliver(&config, &records, fixtures::BOOKING_CREATED).await;
    assert_eq!(failure(&first).class(), "retryable");
    let again = deliver_from(
        &config,
        &records,
        fixtures::BOOKING_CREATED,
        Some(first.progress),
    )
    .await;
    assert!(again.failure.is_none(), "{:?}", again.failure);
    assert_eq!(sf.records("Event").len(), 1);
}

#[tokio::test]
async fn a_field_that_is_no_external_id_is_an_error_not_a_missing_record() {
    let sf = org(SalesforceOptions::default()).await;
    sf.define_field("Activity", "Booking_Uid__c", false);
    let config = config(&sf, CLIENT_CREDENTIALS, EVENT_ROUTES);
    let e = failure(
        &deliver(
            &config,
            &MemoryRecordMap::default(),
            fixtures::BOOKING_CREATED,
        )
        .await,
    )
    .clone();
    assert_eq!(e.class(), "permanent", "{e}");
    assert!(
        e.message()
            .contains("Provided external ID field does not exist"),
        "{e}"
    );
    assert!(sf.records("Event").is_empty(), "nothing created");
}
