//! Salesforce end to end: the `globex` tenant of config.example.yaml itself, with only
//! its credentials, login URL and signing secret set through its variables, through the
//! real binary into the strict mock Salesforce; and a dead letter keeping Salesforce's
//! message.

use crate::support::{SECRET, bin, post, wait_until};
use slatis_testkit::fixtures::{
    self, BOOKING_CANCELLED, BOOKING_CREATED, BOOKING_RESCHEDULED, SINGLE_NAME,
};
use slatis_testkit::mock::{Fault, MockSalesforce, SalesforceOptions, SalesforceRecord};
use slatis_testkit::process::{Server, run, write_config};
use std::time::Duration;

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.yaml");

/// How long one booking may take to land (a retry included).
const LANDS: Duration = Duration::from_secs(20);

/// The example's variables, pointed at the mock and a temporary database.
fn example_env(sf: &MockSalesforce, db: &std::path::Path) -> Vec<(&'static str, String)> {
    vec![
        ("SLATIS_SYNC_LISTEN", "127.0.0.1:0".to_owned()),
        ("SLATIS_SYNC_ADMIN_LISTEN", "127.0.0.1:0".to_owned()),
        (
            "SLATIS_SYNC_STORAGE_URL",
            format!("sqlite://{}", db.display()),
        ),
        ("GLOBEX_SLATIS_SECRET", SECRET.to_owned()),
        ("GLOBEX_SF_DRY_RUN", "false".to_owned()),
        ("GLOBEX_SF_LOGIN_URL", sf.url()),
        ("GLOBEX_SF_CLIENT_ID", "sf-client".to_owned()),
        ("GLOBEX_SF_CLIENT_SECRET", "sf-secret".to_owned()),
    ]
}

fn contact_of<'a>(contacts: &'a [SalesforceRecord], email: &str) -> &'a SalesforceRecord {
    let found: Vec<_> = contacts
        .iter()
        .filter(|c| c.text("Email") == Some(email))
        .collect();
    assert_eq!(found.len(), 1, "one Contact for {email}: {contacts:?}");
    found[0]
}

fn event_of(sf: &MockSalesforce, booking: &str) -> Option<SalesforceRecord> {
    let events: Vec<_> = sf
        .records("Event")
        .into_iter()
        .filter(|e| e.text("Booking_Uid__c") == Some(booking))
        .collect();
    assert!(events.len() <= 1, "one Event for {booking}: {events:?}");
    events.into_iter().next()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_tenant_runs_a_bookings_life_in_salesforce() {
    let sf = MockSalesforce::start(SalesforceOptions::default()).await;
    sf.define_field("Activity", "Booking_Uid__c", true);
    let dir = tempfile::tempdir().expect("tempdir");
    let env = example_env(&sf, &dir.path().join("globex.db"));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = Server::start(&bin(), std::path::Path::new(EXAMPLE), &env);
    let url = server.webhook("globex");

    // a booking; a second by the same attendee; a one-word name
    let second = fixtures::booking(
        "BOOKING_CREATED",
        "bkg_second",
        "Ada Lovelace",
        "ADA@example.com",
    );
    for (body, booking) in [
        (BOOKING_CREATED, "bkg_01HZX4M2Q8"),
        (second.as_str(), "bkg_second"),
        (SINGLE_NAME, "bkg_single"),
    ] {
        assert_eq!(post(&url, body).await.0, 200);
        wait_until(booking, LANDS, || event_of(&sf, booking).is_some()).await;
    }
    assert_eq!(
        sf.api_usage(),
        9,
        "three calls a booking: find or read the Contact, create or update it, upsert the Event"
    );
    let contacts = sf.records("Contact");
    assert_eq!(contacts.len(), 2, "{contacts:?}");
    let ada = contact_of(&contacts, "ada@example.com");
    assert_eq!(
        (
            ada.text("FirstName"),
            ada.text("LastName"),
            ada.text("LeadSource")
        ),
        (Some("Ada"), Some("Lovelace"), Some("Slatis"))
    );
    let cher = contact_of(&contacts, "cher@example.com");
    assert_eq!(
        (cher.text("FirstName"), cher.text("LastName")),
        (None, Some("Cher"))
    );
    for (booking, who) in [
        ("bkg_01HZX4M2Q8", ada),
        ("bkg_second", ada),
        ("bkg_single", cher),
    ] {
        let event = event_of(&sf, booking).expect("event");
        assert_eq!(event.text("WhoId"), Some(who.id.as_str()), "{booking}");
    }

    // the session expires; the reschedule moves the Event, makes none
    sf.expire_sessions();
    assert_eq!(post(&url, BOOKING_RESCHEDULED).await.0, 200);
    let moved = || {
        event_of(&sf, "bkg_01HZX4M2Q8")
            .is_some_and(|e| e.text("StartDateTime") == Some("2026-12-02T10:00:00.000+0000"))
    };
    wait_until("the reschedule", LANDS, moved).await;
    let event = event_of(&sf, "bkg_01HZX4M2Q8").expect("event");
    assert_eq!(
        event.text("EndDateTime"),
        Some("2026-12-02T10:30:00.000+0000")
    );
    assert_eq!(sf.records("Event").len(), 3);
    assert_eq!(
        sf.tokens_issued(),
        2,
        "minted again once the session expired"
    );

    // cancel removes the Event
    let before = sf.api_usage();
    assert_eq!(post(&url, BOOKING_CANCELLED).await.0, 200);
    wait_until("the cancel", LANDS, || {
        event_of(&sf, "bkg_01HZX4M2Q8").is_none()
    })
    .await;
    assert_eq!(sf.deleted_records("Event").len(), 1);
    assert_eq!(
        sf.api_usage(),
        before + 2,
        "a cancel: find the Event, delete it"
    );

    // a new attendee whose Contact create is applied but its answer lost: the retry finds
    // it by email, and makes neither a second Contact nor a second Event
    sf.fail_next(1, Fault::Slow(Duration::ZERO)); // the search
    sf.fail_next(1, Fault::Drop); // the create
    let lost = fixtures::booking(
        "BOOKING_CREATED",
        "bkg_lost",
        "Grace Hopper",
        "grace@example.com",
    );
    assert_eq!(post(&url, &lost).await.0, 200);
    wait_until("the retried booking", LANDS, || {
        event_of(&sf, "bkg_lost").is_some()
    })
    .await;
    assert!(
        sf.requests()
            .iter()
            .any(|q| q.method == "POST" && q.path.ends_with("/sobjects/Contact/") && q.status == 0),
        "a create's answer was lost"
    );
    let contacts = sf.records("Contact");
    assert_eq!(contacts.len(), 3, "{contacts:?}");
    let grace = contact_of(&contacts, "grace@example.com");
    assert_eq!(
        (grace.text("FirstName"), grace.text("LastName")),
        (Some("Grace"), Some("Hopper"))
    );
    let event = event_of(&sf, "bkg_lost").expect("event");
    assert_eq!(event.text("WhoId"), Some(grace.id.as_str()));
    assert_eq!(sf.records("Event").len(), 3);

    // nothing dead-lettered
    let env_owned = example_env(&sf, &dir.path().join("globex.db"));
    let env: Vec<(&str, &str)> = env_owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (code, listing, err) = run(&bin(), &["dlq", "list", "--config", EXAMPLE], &env);
    assert_eq!(code, 0, "{err}");
    assert!(listing.trim() == "no dead letters", "{listing}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_required_field_error_is_dead_lettered_with_salesforces_message() {
    let sf = MockSalesforce::start(SalesforceOptions::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let yaml = format!(
        r#"
server: {{ listen: 127.0.0.1:0 }}
storage: {{ url: "sqlite://{db}" }}
delivery: {{ retry: {{ max_attempts: 3, initial_backoff: 100ms, max_backoff: 500ms }} }}
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
      BOOKING_NO_SHOW:
        - connector: salesforce
          action: create
          object: Lead
          properties: {{ LastName: "{{{{data.attendee.name}}}}" }}
"#,
        db = dir.path().join("s.db").display(),
        url = sf.url(),
        key = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/crates/testkit/fixtures/salesforce_jwt_test_key.pem"
        ),
    );
    let path = write_config(dir.path(), &yaml);
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
    assert_eq!(
        sf.jwt_claims()[0]["aud"],
        "https://login.salesforce.com",
        "a login URL that is no sandbox or site: the production audience"
    );
}
