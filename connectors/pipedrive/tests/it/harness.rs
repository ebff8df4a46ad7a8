//! A config around a mock Pipedrive, and a runner that delivers one event like the worker.

use slatis_core::DeliveryError;
use slatis_core::config::{Config, load_str};
use slatis_core::connector::{MemoryKeyLocks, MemoryRecordMap};
use slatis_core::job::{self, JobEvent, Progress, RunResult};
use slatis_testkit::mock::{MockPipedrive, PipedriveOptions, PipedriveRecord};

// Linked for its inventory registration.
use slatis_connector_pipedrive as _;

/// The instances' per-key locks, shared by every delivery of this test binary (as the
/// server shares them across deliveries).
static LOCKS: std::sync::LazyLock<MemoryKeyLocks> =
    std::sync::LazyLock::new(MemoryKeyLocks::default);

/// The person field that keeps the booking that made the person.
pub const PERSON_FIELD: &str = "9d4f0c2b7a1e5d3c8b6a4f2e0d9c7b5a3e1f8d6c";

/// config.example.yaml's Pipedrive routes (`initech`), plus a delete.
pub const ROUTES: &str = r#"
    routes:
      BOOKING_CREATED: &booking
        - id: person
          connector: pd
          action: upsert
          object: persons
          match: { property: email, value: "{{lower data.attendee.email}}" }
          omit_empty: true
          properties:
            name: { value: "{{data.attendee.name}}", on: empty }
            email: "{{lower data.attendee.email}}"
            phone: "{{default data.attendee.phone ''}}"
            9d4f0c2b7a1e5d3c8b6a4f2e0d9c7b5a3e1f8d6c: { value: "{{data.id}}", on: create }
        - connector: pd
          action: upsert
          object: activities
          match: { property: note_ref, value: "{{data.id}}" }
          omit_empty: true
          properties:
            subject: "{{default data.title 'Slatis booking'}} with {{data.attendee.name}}"
            type: meeting
            due_date: "{{date_only data.start_time}}"
            due_time: "{{date data.start_time '%H:%M' 'UTC'}}"
            duration: "{{duration_hhmm data.start_time data.end_time}}"
            participants: { value: [{ person_id: "{{steps.person.id}}", primary: true }], on: create }
            note: { value: "{{default data.notes ''}}", on: create }
            done: false
      BOOKING_RESCHEDULED: *booking
      BOOKING_CANCELLED:
        - connector: pd
          action: update
          object: activities
          match: { property: note_ref, value: "{{data.id}}" }
          properties: { subject: "Canceled: {{default data.title 'Slatis booking'}} with {{data.attendee.name}}", done: true }
      BOOKING_NO_SHOW:
        - connector: pd
          action: delete
          object: activities
          match: { property: note_ref, value: "{{data.id}}" }
"#;

/// API-token keys for the mock, limits well above what tests use.
pub const TOKEN: &str = "api_token: pd-test-token, rate_limit: { requests: 1000, per: 1s }, search_rate_limit: { requests: 1000, per: 1s }";

/// A config with one `pipedrive` instance `pd` (`keys` holds its auth and extra keys).
pub fn config(mock: &MockPipedrive, keys: &str, routes: &str) -> Config {
    let yaml = format!(
        "tenants:\n  t:\n    signing_secrets: [s]\n    connectors:\n      pd: {{ type: pipedrive, base_url: \"{}\", timeout: 500ms, {keys} }}\n{routes}",
        mock.url()
    );
    load_str(&yaml, &|_| None).unwrap_or_else(|e| panic!("{e}"))
}

/// A mock account with the person field.
pub async fn account(options: PipedriveOptions) -> MockPipedrive {
    let m = MockPipedrive::start(options).await;
    m.define_field("persons", PERSON_FIELD, "Slatis first booking");
    m
}

/// The activity of `booking`: the one whose note carries its reference.
pub fn activity(pd: &MockPipedrive, booking: &str) -> Option<PipedriveRecord> {
    let tag = format!("[slatis:{booking}]");
    pd.records("activities")
        .into_iter()
        .find(|a| a.text("note").is_some_and(|n| n.contains(&tag)))
}

pub fn quick() -> PipedriveOptions {
    PipedriveOptions {
        search_lag: std::time::Duration::from_millis(200),
        burst: 1000,
        search_burst: 1000,
        ..PipedriveOptions::default()
    }
}

/// Runs the job of `body` once: attempt `attempt`, from `progress`.
pub async fn deliver_at(
    config: &Config,
    records: &MemoryRecordMap,
    body: &str,
    progress: Option<Progress>,
    attempt: u32,
) -> RunResult {
    let envelope = slatis_core::Envelope::parse(body.as_bytes()).expect("event");
    let received = chrono::Utc::now() - chrono::Duration::seconds(2);
    let event = JobEvent::of(&envelope, "evt_test", received);
    let job = job::Job {
        config,
        tenant: "t",
        instance: "pd",
        event: &event,
        attempt,
        record_only: false,
    };
    job::run(&job, progress.unwrap_or_default(), records, &*LOCKS).await
}

/// Runs the job of `body` once (a first attempt).
pub async fn deliver(config: &Config, records: &MemoryRecordMap, body: &str) -> RunResult {
    deliver_at(config, records, body, None, 1).await
}

/// Runs `body` and requires success.
pub async fn ok(config: &Config, records: &MemoryRecordMap, body: &str) -> RunResult {
    let r = deliver(config, records, body).await;
    if let Some((step, e)) = &r.failure {
        panic!("step {step} failed: {e}");
    }
    r
}

/// The failure of a run.
pub fn failure(r: &RunResult) -> &DeliveryError {
    &r.failure
        .as_ref()
        .unwrap_or_else(|| panic!("expected a failure"))
        .1
}
