//! Salesforce end to end: signed webhooks through the real binary into the stateful mock
//! Salesforce, and the org's final state.

use crate::support::{SECRET, bin, post, wait_until};
use slatis_testkit::fixtures::{
    self, BOOKING_CANCELLED, BOOKING_CREATED, BOOKING_RESCHEDULED, SINGLE_NAME,
};
use slatis_testkit::mock::{MockSalesforce, SalesforceOptions};
use slatis_testkit::process::{Server, run, write_config};
use std::time::Duration;

fn config(db: &std::path::Path, sf: &MockSalesforce) -> String {
    format!(
        r#"
server: {{ listen: 127.0.0.1:0 }}
storage: {{ url: "sqlite://{db}" }}
delivery: {{ retry: {{ max_attempts: 10, initial_backoff: 100ms, max_backoff: 500ms }} }}
tenants:
  globex:
    signing_secrets: ["{SECRET}"]
    connectors:
      salesforce:
        type: salesforce
        login_url: "{url}"
        timeout: 2s
        auth: {{ flow: jwt_bearer, client_id: sf-client, username: integration@example.com, private_key_file: "{key}" }}
    routes:
      BOOKING_CREATED: &booking
        - id: contact
          connector: salesforce
          action: upsert
          object: Contact
          match: {{ property: Email, value: "{{{{lower data.attendee.email}}}}" }}
          omit_empty: true
          properties:
            Email: "{{{{lower data.attendee.email}}}}"
            FirstName: "{{{{#if (last_name data.attendee.name)}}}}{{{{first_name data.attendee.name}}}}{{{{/if}}}}"
            LastName: "{{{{default (last_name data.attendee.name) data.attendee.name}}}}"
        - connector: salesforce
          action: upsert
          object: Event
          match: {{ property: Booking_Uid__c, value: "{{{{data.id}}}}", external_id: true }}
          properties:
            Subject: "{{{{default data.title 'Slatis booking'}}}}"
            StartDateTime: "{{{{data.start_time}}}}"
            EndDateTime: "{{{{data.end_time}}}}"
            WhoId: "{{{{steps.contact.id}}}}"
      BOOKING_RESCHEDULED: *booking
      BOOKING_CANCELLED:
        - connector: salesforce
          action: delete
          object: Event
          match: {{ property: Booking_Uid__c, value: "{{{{data.id}}}}", external_id: true }}
      BOOKING_NO_SHOW:
        - connector: salesforce
          action: create
          object: Lead
          properties: {{ LastName: "{{{{data.attendee.name}}}}" }}
"#,
        db = db.display(),
        url = sf.url(),
        key = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/crates/testkit/fixtures/salesforce_jwt_test_key.pem"
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bookings_whole_life_with_a_session_expiring_mid_run() {
    let sf = MockSalesforce::start(SalesforceOptions::default()).await;
    sf.define_field("Event", "Booking_Uid__c", true);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_config(dir.path(), &config(&dir.path().join("s.db"), &sf));
    let server = Server::start(&bin(), &path, &[]);
    let url = server.webhook("globex");
    let obrien = fixtures::booking(
        "BOOKING_CREATED",
        "bkg_ob",
        "Conan O'Brien",
        "conan.o'brien@example.com",
    );
    for body in [BOOKING_CREATED, SINGLE_NAME, obrien.as_str()] {
        assert_eq!(post(&url, body).await.0, 200);
    }
    wait_until("three events", Duration::from_secs(20), || {
        sf.records("Event").len() == 3
    })
    .await;
    sf.expire_sessions();
    assert_eq!(post(&url, BOOKING_RESCHEDULED).await.0, 200);
    let moved = || {
        sf.records("Event")
            .iter()
            .any(|e| e.text("StartDateTime") == Some("2026-12-02T10:00:00.000Z"))
    };
    wait_until("the reschedule", Duration::from_secs(20), moved).await;
    assert_eq!(post(&url, BOOKING_CANCELLED).await.0, 200);
    wait_until("the cancel", Duration::from_secs(20), || {
        sf.records("Event").len() == 2
    })
    .await;
    // the same O'Brien again: found by SOQL (escaped), not duplicated
    let again = fixtures::booking(
        "BOOKING_CREATED",
        "bkg_ob2",
        "Conan O'Brien",
        "conan.o'brien@example.com",
    );
    assert_eq!(post(&url, &again).await.0, 200);
    wait_until("O'Brien's second event", Duration::from_secs(20), || {
        sf.records("Event").len() == 3
    })
    .await;

    let contacts = sf.records("Contact");
    assert_eq!(contacts.len(), 3, "{contacts:?}");
    let cher = contacts
        .iter()
        .find(|c| c.text("Email") == Some("cher@example.com"))
        .expect("Cher");
    assert_eq!(cher.text("LastName"), Some("Cher"));
    let obrien = contacts
        .iter()
        .find(|c| c.text("LastName") == Some("O'Brien"))
        .expect("O'Brien");
    let his: Vec<_> = sf
        .records("Event")
        .into_iter()
        .filter(|e| e.text("WhoId") == Some(obrien.id.as_str()))
        .collect();
    assert_eq!(
        his.len(),
        2,
        "both of O'Brien's events point at his one contact"
    );
    assert_eq!(
        sf.tokens_issued(),
        2,
        "one JWT grant, and one more after the session expired"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_required_field_error_is_dead_lettered_with_salesforces_message() {
    let sf = MockSalesforce::start(SalesforceOptions::default()).await;
    sf.define_field("Event", "Booking_Uid__c", true);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_config(dir.path(), &config(&dir.path().join("s.db"), &sf));
    let server = Server::start(&bin(), &path, &[]);
    let no_show = fixtures::booking(
        "BOOKING_NO_SHOW",
        "bkg_ns",
        "Ada Lovelace",
        "ada@example.com",
    );
    assert_eq!(post(&server.webhook("globex"), &no_show).await.0, 200);
    let config = path.to_string_lossy().into_owned();
    let mut listing = String::new();
    wait_until("the dead letter", Duration::from_secs(15), || {
        listing = run(&bin(), &["dlq", "list", "--config", &config], &[]).1;
        listing.contains("BOOKING_NO_SHOW")
    })
    .await;
    assert!(
        listing.contains("HTTP 400 REQUIRED_FIELD_MISSING: Required fields are missing: [Company]"),
        "{listing}"
    );
    assert!(sf.records("Lead").is_empty());
}
