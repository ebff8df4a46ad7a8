//! Pipedrive end to end: the `initech` tenant of config.example.yaml itself, with only its
//! credentials and company domain filled in through its variables, delivering signed
//! webhooks through the real binary into the strict mock Pipedrive; and a permanent
//! error's dead letter.

use crate::support::{SECRET, bin, post, wait_until};
use serde_json::json;
use slatis_testkit::fixtures::{
    self, BOOKING_CANCELLED, BOOKING_CREATED, BOOKING_RESCHEDULED, SINGLE_NAME,
};
use slatis_testkit::mock::{Fault, MockPipedrive, PipedriveOptions, PipedriveRecord};
use slatis_testkit::process::{Server, run, write_config};
use std::time::Duration;

/// The example's person field ("Slatis first booking").
const FIELD: &str = "9d4f0c2b7a1e5d3c8b6a4f2e0d9c7b5a3e1f8d6c";

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.yaml");

/// The activity of `booking`: the one whose note carries its reference.
fn activity(pd: &MockPipedrive, booking: &str) -> Option<PipedriveRecord> {
    let tag = format!("[slatis:{booking}]");
    pd.records("activities")
        .into_iter()
        .find(|a| a.text("note").is_some_and(|n| n.contains(&tag)))
}

/// A faultless answer that lets a queued fault further on reach its call.
fn pass() -> Fault {
    Fault::Slow(Duration::from_millis(1))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_tenant_runs_a_bookings_life_against_the_strict_mock() {
    // search lags well past the first retry: only the primary store shows a lost create
    let pd = MockPipedrive::start(PipedriveOptions {
        search_lag: Duration::from_secs(3),
        ..PipedriveOptions::default()
    })
    .await;
    pd.define_field("persons", FIELD, "Slatis first booking");
    let dir = tempfile::tempdir().expect("tempdir");
    let storage = format!("sqlite://{}", dir.path().join("s.db").display());
    let url = pd.url();
    let env = [
        ("SLATIS_SYNC_LISTEN", "127.0.0.1:0"),
        ("SLATIS_SYNC_ADMIN_LISTEN", "127.0.0.1:0"),
        ("SLATIS_SYNC_STORAGE_URL", storage.as_str()),
        ("INITECH_SLATIS_SECRET", SECRET),
        ("INITECH_PD_DRY_RUN", "false"),
        ("INITECH_PD_API_TOKEN", "pd-test-token"),
        ("INITECH_PD_DOMAIN", url.as_str()),
    ];
    let server = Server::start(&bin(), std::path::Path::new(EXAMPLE), &env);
    let webhook = server.webhook("initech");

    // Ada's person is made, but the answer is lost (search, then the create dropped)
    pd.fail_next(1, pass());
    pd.fail_next(1, Fault::Drop);
    assert_eq!(post(&webhook, BOOKING_CREATED).await.0, 200);
    wait_until("Ada's activity", Duration::from_secs(20), || {
        activity(&pd, "bkg_01HZX4M2Q8").is_some()
    })
    .await;
    // her second booking
    let again = fixtures::booking(
        "BOOKING_CREATED",
        "bkg_second",
        "Ada Lovelace",
        "ADA@example.com",
    );
    assert_eq!(post(&webhook, &again).await.0, 200);
    wait_until("Ada's second activity", Duration::from_secs(20), || {
        activity(&pd, "bkg_second").is_some()
    })
    .await;
    // Cher's activity is made, but the answer is lost (search, person, then the activity)
    pd.fail_next(2, pass());
    pd.fail_next(1, Fault::Drop);
    assert_eq!(post(&webhook, SINGLE_NAME).await.0, 200);
    wait_until("Cher's activity", Duration::from_secs(20), || {
        activity(&pd, "bkg_single").is_some()
    })
    .await;
    let hers = activity(&pd, "bkg_single")
        .map(|a| a.id)
        .unwrap_or_default();
    wait_until("the retry that finds it", Duration::from_secs(20), || {
        pd.requests().iter().any(|r| {
            r.method == "PATCH" && r.path == format!("/api/v2/activities/{hers}") && r.status == 200
        })
    })
    .await;
    assert_eq!(post(&webhook, BOOKING_RESCHEDULED).await.0, 200);
    let moved = || {
        activity(&pd, "bkg_01HZX4M2Q8").is_some_and(|a| a.text("due_date") == Some("2026-12-02"))
    };
    wait_until("the reschedule", Duration::from_secs(20), moved).await;
    assert_eq!(post(&webhook, BOOKING_CANCELLED).await.0, 200);
    let done =
        || activity(&pd, "bkg_01HZX4M2Q8").is_some_and(|a| a.field("done") == Some(&json!(true)));
    wait_until("the cancel", Duration::from_secs(20), done).await;

    let persons = pd.records("persons");
    assert_eq!(persons.len(), 2, "one person per attendee: {persons:?}");
    let ada = persons
        .iter()
        .find(|p| p.emails() == ["ada@example.com"])
        .expect("Ada");
    assert_eq!(
        (ada.text("first_name"), ada.text("last_name")),
        (Some("Ada"), Some("Lovelace"))
    );
    assert_eq!(
        ada.custom(FIELD),
        Some(&json!("bkg_01HZX4M2Q8")),
        "her first booking"
    );
    let cher = persons
        .iter()
        .find(|p| p.emails() == ["cher@example.com"])
        .expect("Cher");
    assert_eq!(cher.text("first_name"), Some("Cher"));
    let activities = pd.records("activities");
    assert_eq!(
        activities.len(),
        3,
        "one activity per booking: {activities:?}"
    );
    for (booking, person) in [
        ("bkg_01HZX4M2Q8", ada.id),
        ("bkg_second", ada.id),
        ("bkg_single", cher.id),
    ] {
        let a = activity(&pd, booking).expect(booking);
        assert_eq!(a.field("person_id"), Some(&json!(person)), "{booking}");
        assert_eq!(
            a.field("participants"),
            Some(&json!([{"person_id": person, "primary": true}]))
        );
        assert_eq!(a.text("type"), Some("meeting"));
    }
    let first = activity(&pd, "bkg_01HZX4M2Q8").expect("the first booking");
    assert_eq!(
        (first.text("due_time"), first.text("duration")),
        (Some("10:00"), Some("00:30"))
    );
    assert_eq!(
        first.text("subject"),
        Some("Canceled: Slatis booking with Ada Lovelace")
    );
    assert_eq!(
        activity(&pd, "bkg_second").and_then(|a| a.field("done").cloned()),
        Some(json!(false))
    );

    let requests = pd.requests();
    let person_creates = requests
        .iter()
        .filter(|r| r.method == "POST" && r.path == "/api/v2/persons")
        .count();
    assert_eq!(
        person_creates, 2,
        "Ada's person was made once: the retry found it"
    );
    assert!(
        requests
            .iter()
            .any(|r| r.path.starts_with("/api/v2/activities?")
                && r.path.contains(&format!("person_id={}", cher.id))),
        "the retry looked among Cher's recent activities"
    );
    assert!(
        requests.iter().all(|r| r.refusal.is_none()),
        "no request the mock refused"
    );
    let (_, listing, _) = run(&bin(), &["dlq", "list", "--config", EXAMPLE], &env);
    assert!(listing.contains("no dead letters"), "{listing}");
    assert!(pd.requests().iter().all(|r| !r.token_in_url));
    // the README's estimate: ~30 tokens a new booking, fewer for the events after it
    let spent = 30_000 - pd.daily_tokens_left().unwrap_or_default();
    println!(
        "tokens spent on the daily budget: {spent} in {} calls",
        pd.requests().len()
    );
    assert!(
        spent <= 5 * 40,
        "five events, retries included, at most 40 tokens each: {spent}"
    );
}

fn config(db: &std::path::Path, pd: &MockPipedrive) -> String {
    format!(
        r#"
server: {{ listen: 127.0.0.1:0 }}
storage: {{ url: "sqlite://{db}" }}
delivery: {{ retry: {{ max_attempts: 3, initial_backoff: 100ms, max_backoff: 300ms }} }}
tenants:
  initech:
    signing_secrets: ["{SECRET}"]
    connectors:
      pipedrive: {{ type: pipedrive, base_url: "{url}", api_token: pd-test-token, timeout: 1s }}
    routes:
      BOOKING_NO_SHOW:
        - {{ connector: pipedrive, action: create, object: deals, properties: {{ title: "{{{{data.id}}}}", status: maybe }} }}
"#,
        db = db.display(),
        url = pd.url()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_error_is_dead_lettered_with_pipedrives_message() {
    let pd = MockPipedrive::start(PipedriveOptions::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_config(dir.path(), &config(&dir.path().join("s.db"), &pd));
    let server = Server::start(&bin(), &path, &[]);
    let no_show = fixtures::booking(
        "BOOKING_NO_SHOW",
        "bkg_ns",
        "Ada Lovelace",
        "ada@example.com",
    );
    assert_eq!(post(&server.webhook("initech"), &no_show).await.0, 200);
    let config = path.to_string_lossy().into_owned();
    let mut listing = String::new();
    wait_until("the dead letter", Duration::from_secs(15), || {
        listing = run(&bin(), &["dlq", "list", "--config", &config], &[]).1;
        listing.contains("BOOKING_NO_SHOW")
    })
    .await;
    assert!(listing.contains("pipedrive create): HTTP 400"), "{listing}");
    assert!(listing.to_lowercase().contains("status"), "{listing}");
    assert!(pd.records("deals").is_empty());
}
