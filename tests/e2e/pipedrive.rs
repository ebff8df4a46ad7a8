//! Pipedrive end to end: signed webhooks through the real binary into the stateful mock
//! Pipedrive, and the account's final state.

use crate::support::{SECRET, bin, post, wait_until};
use serde_json::json;
use slatis_testkit::fixtures::{
    self, BOOKING_CANCELLED, BOOKING_CREATED, BOOKING_RESCHEDULED, SINGLE_NAME,
};
use slatis_testkit::mock::{Fault, MockPipedrive, PipedriveOptions};
use slatis_testkit::process::{Server, run, write_config};
use std::time::Duration;

const FIELD: &str = "3b8e1f6a9c2d5e7f0a4b6c8d1e3f5a7b9c0d2e4f";

fn config(db: &std::path::Path, pd: &MockPipedrive) -> String {
    format!(
        r#"
server: {{ listen: 127.0.0.1:0 }}
storage: {{ url: "sqlite://{db}" }}
delivery: {{ retry: {{ max_attempts: 10, initial_backoff: 100ms, max_backoff: 300ms }} }}
tenants:
  initech:
    signing_secrets: ["{SECRET}"]
    connectors:
      pipedrive: {{ type: pipedrive, base_url: "{url}", api_token: pd-test-token, timeout: 1s }}
    routes:
      BOOKING_CREATED: &booking
        - id: person
          connector: pipedrive
          action: upsert
          object: persons
          match: {{ property: email, value: "{{{{lower data.attendee.email}}}}" }}
          properties: {{ name: "{{{{data.attendee.name}}}}", email: "{{{{lower data.attendee.email}}}}" }}
        - connector: pipedrive
          action: upsert
          object: activities
          match: {{ property: {FIELD}, value: "{{{{data.id}}}}" }}
          properties:
            subject: "{{{{default data.title 'Slatis booking'}}}} with {{{{data.attendee.name}}}}"
            type: meeting
            due_date: "{{{{date_only data.start_time}}}}"
            due_time: "{{{{date data.start_time '%H:%M' 'UTC'}}}}"
            duration: "{{{{duration_hhmm data.start_time data.end_time}}}}"
            person_id: "{{{{steps.person.id}}}}"
            {FIELD}: "{{{{data.id}}}}"
      BOOKING_RESCHEDULED: *booking
      BOOKING_CANCELLED:
        - connector: pipedrive
          action: update
          object: activities
          match: {{ property: {FIELD}, value: "{{{{data.id}}}}" }}
          properties: {{ subject: "Canceled: {{{{data.attendee.name}}}}", done: true }}
      BOOKING_NO_SHOW:
        - {{ connector: pipedrive, action: create, object: deals, properties: {{ title: "{{{{data.id}}}}", status: maybe }} }}
"#,
        db = db.display(),
        url = pd.url()
    )
}

async fn start(options: PipedriveOptions) -> (MockPipedrive, Server, tempfile::TempDir) {
    let pd = MockPipedrive::start(options).await;
    pd.define_field("activities", FIELD, "Slatis booking");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_config(dir.path(), &config(&dir.path().join("s.db"), &pd));
    let server = Server::start(&bin(), &path, &[]);
    (pd, server, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bookings_whole_life_and_retries_that_make_no_second_person() {
    let (pd, server, _dir) = start(PipedriveOptions {
        search_lag: Duration::from_secs(3),
        ..PipedriveOptions::default()
    })
    .await;
    // Ada's person is made but the answer is lost; then her activity fails once
    pd.fail_next(1, Fault::Slow(Duration::from_millis(5)));
    pd.fail_next(1, Fault::Slow(Duration::from_millis(1500)));
    let url = server.webhook("initech");
    assert_eq!(post(&url, BOOKING_CREATED).await.0, 200);
    wait_until("Ada's activity", Duration::from_secs(20), || {
        pd.records("activities").len() == 1
    })
    .await;
    pd.fail_next(
        1,
        Fault::Status {
            status: 503,
            retry_after: None,
            body: String::new(),
        },
    );
    assert_eq!(post(&url, SINGLE_NAME).await.0, 200);
    wait_until("Cher's activity", Duration::from_secs(20), || {
        pd.records("activities").len() == 2
    })
    .await;
    assert_eq!(post(&url, BOOKING_RESCHEDULED).await.0, 200);
    let moved = || {
        pd.records("activities")
            .iter()
            .any(|a| a.text("due_date") == Some("2026-12-02"))
    };
    wait_until("the reschedule", Duration::from_secs(20), moved).await;
    assert_eq!(post(&url, BOOKING_CANCELLED).await.0, 200);
    let done = || {
        pd.records("activities")
            .iter()
            .any(|a| a.field("done") == Some(&json!(true)))
    };
    wait_until("the cancel", Duration::from_secs(20), done).await;

    let persons = pd.records("persons");
    assert_eq!(
        persons.len(),
        2,
        "one person each for Ada and Cher: {persons:?}"
    );
    let activities = pd.records("activities");
    assert_eq!(activities.len(), 2);
    let ada = persons
        .iter()
        .find(|p| p.emails() == vec!["ada@example.com"])
        .expect("Ada");
    let hers = activities
        .iter()
        .find(|a| a.custom(FIELD) == Some(&json!("bkg_01HZX4M2Q8")))
        .expect("Ada's activity");
    assert_eq!(hers.field("person_id"), Some(&json!(ada.id)));
    assert_eq!(
        (hers.text("due_time"), hers.text("duration")),
        (Some("10:00"), Some("00:30"))
    );
    assert_eq!(hers.text("subject"), Some("Canceled: Ada Lovelace"));
    let requests = pd.requests();
    let creates = requests
        .iter()
        .filter(|r| r.method == "POST" && r.path == "/api/v2/persons")
        .count();
    assert_eq!(
        creates, 2,
        "Ada's person was created once; the retry found it"
    );
    assert!(
        requests
            .iter()
            .any(|r| r.path.starts_with("/api/v2/persons?updated_since=")),
        "the retry looked at recent persons"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_error_is_dead_lettered_with_pipedrives_message() {
    let (pd, server, dir) = start(PipedriveOptions::default()).await;
    let no_show = fixtures::booking(
        "BOOKING_NO_SHOW",
        "bkg_ns",
        "Ada Lovelace",
        "ada@example.com",
    );
    assert_eq!(post(&server.webhook("initech"), &no_show).await.0, 200);
    let config = dir
        .path()
        .join("config.yaml")
        .to_string_lossy()
        .into_owned();
    let mut listing = String::new();
    wait_until("the dead letter", Duration::from_secs(15), || {
        listing = run(&bin(), &["dlq", "list", "--config", &config], &[]).1;
        listing.contains("BOOKING_NO_SHOW")
    })
    .await;
    assert!(listing.contains("pipedrive create): HTTP 400"), "{listing}");
    assert!(listing.to_lowercase().contains("status"), "{listing}");
    assert!(pd.records("deals").is_empty());
    assert!(pd.requests().iter().all(|r| !r.token_in_url));
}
