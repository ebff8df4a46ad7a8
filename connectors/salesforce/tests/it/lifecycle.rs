//! A booking's whole life in Salesforce: Contact found or created, Event upserted by its
//! external id, moved on reschedule, deleted on cancel.

use crate::harness::{CLIENT_CREDENTIALS, ROUTES, config, deliver, deliver_from, failure, ok, org};
use serde_json::json;
use slatis_core::connector::MemoryRecordMap;
use slatis_testkit::fixtures::{
    self, BOOKING_CANCELLED, BOOKING_CREATED, BOOKING_CREATED_FULL, BOOKING_RESCHEDULED,
    SINGLE_NAME,
};
use slatis_testkit::mock::{Fault, SalesforceOptions};
use std::time::Duration;

#[tokio::test]
async fn a_booking_lives_once_in_salesforce() {
    let sf = org(SalesforceOptions::default()).await;
    let config = config(&sf, CLIENT_CREDENTIALS, ROUTES);
    let records = MemoryRecordMap::default();
    for body in [BOOKING_CREATED, BOOKING_CREATED_FULL, SINGLE_NAME] {
        ok(&config, &records, body).await;
    }
    let contacts = sf.records("Contact");
    assert_eq!(contacts.len(), 3);
    let by_email = |e: &str| {
        contacts
            .iter()
            .find(|c| c.text("Email") == Some(e))
            .unwrap_or_else(|| panic!("{e}"))
            .clone()
    };
    let cher = by_email("cher@example.com");
    assert_eq!(
        (cher.text("FirstName"), cher.text("LastName")),
        (None, Some("Cher")),
        "a one-word name is the LastName"
    );
    let jose = by_email("jose.garcia@example.com");
    assert_eq!(
        (jose.text("FirstName"), jose.text("LastName")),
        (Some("José"), Some("María García Pérez"))
    );
    let ada = by_email("ada@example.com");
    assert_eq!(sf.records("Event").len(), 3);

    ok(&config, &records, BOOKING_RESCHEDULED).await;
    let events = sf.records("Event");
    assert_eq!(events.len(), 3, "the reschedule moved the Event, made none");
    let moved = events
        .iter()
        .find(|e| e.text("Booking_Uid__c") == Some("bkg_01HZX4M2Q8"))
        .expect("Ada's event");
    assert_eq!(
        moved.text("StartDateTime"),
        Some("2026-12-02T10:00:00.000+0000")
    );
    assert_eq!(moved.text("WhoId"), Some(ada.id.as_str()));
    assert_eq!(
        sf.records("Contact").len(),
        3,
        "the contact was found again, not duplicated"
    );

    ok(&config, &records, BOOKING_CANCELLED).await;
    assert_eq!(sf.records("Event").len(), 2, "cancel deleted the Event");
    assert_eq!(sf.deleted_records("Event").len(), 1);
    // a second cancel (a Slatis retry that was not a duplicate) finds nothing to delete: fine
    ok(&config, &records, BOOKING_CANCELLED).await;
}

#[tokio::test]
async fn a_lost_answer_to_an_event_upsert_makes_no_second_event() {
    let sf = org(SalesforceOptions::default()).await;
    let config = config(&sf, CLIENT_CREDENTIALS, ROUTES);
    let records = MemoryRecordMap::default();
    // query and contact create answer in time; the Event upsert is applied, then its answer lost
    sf.fail_next(2, Fault::Slow(Duration::from_millis(10)));
    sf.fail_next(1, Fault::Slow(Duration::from_millis(900)));
    let first = deliver(&config, &records, BOOKING_CREATED).await;
    assert_eq!(
        first.failure.as_ref().map(|(s, e)| (*s, e.class())),
        Some((1, "retryable"))
    );
    let again = deliver_from(&config, &records, BOOKING_CREATED, Some(first.progress)).await;
    assert!(again.failure.is_none(), "{:?}", again.failure);
    assert_eq!(sf.records("Event").len(), 1);
    assert_eq!(sf.records("Contact").len(), 1);
}

#[tokio::test]
async fn a_duplicate_rule_resolves_to_the_existing_record() {
    let sf = org(SalesforceOptions::default()).await;
    sf.duplicate_rule("Contact", "Phone");
    let existing = sf.seed("Contact", json!({"LastName": "Lovelace", "Email": "ada@old.example.com", "Phone": "+44 20 7946 0000"}));
    let config = config(&sf, CLIENT_CREDENTIALS, ROUTES);
    let body = json!({"event": "BOOKING_CREATED", "data": {"id": "bkg_dup", "start_time": "2026-12-01T15:00:00Z", "end_time": "2026-12-01T15:30:00Z",
        "attendee": {"name": "Ada Lovelace", "email": "ada@example.com", "phone": "+44 20 7946 0000"}}});
    let r = ok(&config, &MemoryRecordMap::default(), &body.to_string()).await;
    assert_eq!(
        r.progress.step_results["contact"],
        json!({"id": existing, "created": false})
    );
    let contacts = sf.records("Contact");
    assert_eq!(contacts.len(), 1);
    assert_eq!(
        contacts[0].text("Email"),
        Some("ada@example.com"),
        "the existing record was updated"
    );
}

#[tokio::test]
async fn an_update_of_a_missing_record_is_retried() {
    let sf = org(SalesforceOptions::default()).await;
    let config = config(&sf, CLIENT_CREDENTIALS, ROUTES);
    let no_show = fixtures::booking("BOOKING_NO_SHOW", "bkg_unknown", "A B", "a@b.co");
    let e = failure(&deliver(&config, &MemoryRecordMap::default(), &no_show).await).clone();
    assert_eq!(e.class(), "retryable", "{e}");
    assert!(
        e.message()
            .contains("no Event with Booking_Uid__c = \"bkg_unknown\""),
        "{e}"
    );
}

#[tokio::test]
async fn a_dry_run_sends_nothing() {
    let sf = org(SalesforceOptions::default()).await;
    let config = config(&sf, &format!("{CLIENT_CREDENTIALS}, dry_run: true"), ROUTES);
    let r = ok(&config, &MemoryRecordMap::default(), BOOKING_CREATED).await;
    assert!(sf.requests().is_empty());
    let calls: Vec<String> = r
        .trace
        .iter()
        .flat_map(|t| t.requests.iter().map(|q| q.method.clone()))
        .collect();
    assert_eq!(calls, vec!["GET", "POST", "PATCH"]);
}

#[tokio::test]
async fn an_older_api_version_answering_204_to_an_upsert_still_names_the_record() {
    let sf = org(SalesforceOptions::default()).await;
    let config = config(
        &sf,
        &format!("api_version: \"45.0\", {CLIENT_CREDENTIALS}"),
        ROUTES,
    );
    let records = MemoryRecordMap::default();
    ok(&config, &records, BOOKING_CREATED).await;
    let r = ok(&config, &records, BOOKING_RESCHEDULED).await;
    let event = &sf.records("Event")[0];
    assert!(sf.requests().iter().any(|q| q.method == "PATCH"
        && q.status == 204
        && q.path.contains("/v45.0/sobjects/Event/Booking_Uid__c/")));
    let out = r
        .trace
        .last()
        .and_then(|t| t.output.clone())
        .expect("output");
    assert_eq!(out.id.as_deref(), Some(event.id.as_str()));
    assert!(!out.created);
}
