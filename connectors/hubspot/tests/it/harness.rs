//! A config around a mock HubSpot, and a runner that delivers one event like the worker
//! does (one job per connector instance, a retry resuming where the last run stopped).

use slatis_core::DeliveryError;
use slatis_core::config::{Config, load_str};
use slatis_core::connector::{MemoryKeyLocks, MemoryRecordMap};
use slatis_core::job::{self, JobEvent, Progress, RunResult};
use slatis_testkit::mock::{HubSpotOptions, MockHubSpot};

// Linked for its inventory registration.
use slatis_connector_hubspot as _;

/// The instances' per-key locks, shared by every delivery of this test binary (as the
/// server shares them across deliveries).
static LOCKS: std::sync::LazyLock<MemoryKeyLocks> =
    std::sync::LazyLock::new(MemoryKeyLocks::default);

pub const TOKEN: &str = "pat-test-token";

/// The routes of config.example.yaml's HubSpot tenant, in short.
pub const ROUTES: &str = r#"
    routes:
      BOOKING_CREATED: &booking
        - id: contact
          connector: hs
          action: upsert
          object: contacts
          match: { property: email, value: "{{lower data.attendee.email}}" }
          omit_empty: true
          properties:
            email: "{{lower data.attendee.email}}"
            firstname: "{{first_name data.attendee.name}}"
            lastname: "{{last_name data.attendee.name}}"
        - id: meeting
          connector: hs
          action: upsert
          object: meetings
          match: { property: slatis_booking_id, value: "{{data.id}}" }
          properties:
            slatis_booking_id: "{{data.id}}"
            hs_timestamp: "{{epoch_ms data.start_time}}"
            hs_meeting_title: "{{default data.title 'Slatis booking'}}"
            hs_meeting_start_time: "{{data.start_time}}"
            hs_meeting_end_time: "{{data.end_time}}"
            hs_meeting_outcome: "{{#if (eq event 'BOOKING_RESCHEDULED')}}RESCHEDULED{{else}}SCHEDULED{{/if}}"
          associate:
            - { to: contacts, id: "{{steps.contact.id}}" }
      BOOKING_RESCHEDULED: *booking
      BOOKING_UPDATED:
        - connector: hs
          action: upsert
          object: contacts
          match: { property: email, value: "{{lower data.attendee.email}}" }
          properties: { firstname: "{{first_name data.attendee.name}}", lastname: "{{last_name data.attendee.name}}" }
      BOOKING_CANCELLED:
        - connector: hs
          action: update
          object: meetings
          match: { property: slatis_booking_id, value: "{{data.id}}" }
          properties: { hs_meeting_outcome: CANCELED }
      BOOKING_NO_SHOW:
        - connector: hs
          action: delete
          object: meetings
          match: { property: slatis_booking_id, value: "{{data.id}}" }
      ASSIGNMENT_CHANGED:
        - connector: hs
          action: update
          object: contacts
          match: { property: email, value: "{{lower data.attendee.email}}" }
          properties: { company: "{{data.company}}" }
"#;

/// A config with one `hubspot` instance `hs` (`instance` holds its extra keys).
pub fn config(mock: &MockHubSpot, instance: &str, routes: &str) -> Config {
    let yaml = format!(
        "tenants:\n  t:\n    signing_secrets: [s]\n    connectors:\n      hs: {{ type: hubspot, base_url: \"{}\", timeout: 500ms, {instance} }}\n{routes}",
        mock.url()
    );
    load_str(&yaml, &|_| None).unwrap_or_else(|e| panic!("{e}"))
}

/// The usual instance keys: the mock's token, limits well above what tests use.
pub const PLAIN: &str = "access_token: pat-test-token, rate_limit: { requests: 1000, per: 1s }, search_rate_limit: { requests: 1000, per: 1s }";

/// A mock with the custom meeting property `slatis_booking_id` (single-line text; HubSpot
/// allows no unique values on meetings).
pub async fn mock(options: HubSpotOptions) -> MockHubSpot {
    let m = MockHubSpot::start(options).await;
    m.define_property("meetings", "slatis_booking_id", false)
        .expect("a meeting property");
    m
}

pub fn quick() -> HubSpotOptions {
    HubSpotOptions {
        search_lag: std::time::Duration::from_millis(200),
        ..HubSpotOptions::default()
    }
}

/// Delivers `body` once (one run of each job); returns each job's result.
pub async fn deliver(config: &Config, records: &MemoryRecordMap, body: &str) -> Vec<RunResult> {
    deliver_from(config, records, body, None).await
}

/// Runs the jobs of `body`, resuming from `progress` (a retry).
pub async fn deliver_from(
    config: &Config,
    records: &MemoryRecordMap,
    body: &str,
    progress: Option<Progress>,
) -> Vec<RunResult> {
    let envelope = slatis_core::Envelope::parse(body.as_bytes()).expect("event");
    let event = JobEvent::of(&envelope, "evt_test", chrono::Utc::now());
    let mut out = Vec::new();
    for name in config.tenants["t"].route(&envelope.event) {
        let job = job::Job {
            config,
            tenant: "t",
            instance: name,
            event: &event,
            attempt: 1,
            record_only: false,
        };
        out.push(job::run(&job, progress.clone().unwrap_or_default(), records, &*LOCKS).await);
    }
    out
}

/// Delivers `body` until it succeeds (at most `tries` runs), like the worker's retries.
pub async fn deliver_until_done(
    config: &Config,
    records: &MemoryRecordMap,
    body: &str,
    tries: usize,
) -> RunResult {
    let mut progress = None;
    for _ in 0..tries {
        let mut results = deliver_from(config, records, body, progress.take()).await;
        let r = results.remove(0);
        match &r.failure {
            None => return r,
            Some((_, DeliveryError::Permanent { message })) => {
                panic!("permanent failure: {message}")
            }
            Some((_, e)) => {
                let wait = match e {
                    DeliveryError::RateLimited { until, .. } => {
                        (*until - chrono::Utc::now()).to_std().unwrap_or_default()
                    }
                    _ => std::time::Duration::from_millis(100),
                };
                tokio::time::sleep(wait).await;
                progress = Some(r.progress);
            }
        }
    }
    panic!("not delivered after {tries} runs");
}

/// The failure of a single-job delivery.
pub fn failure(results: &[RunResult]) -> &DeliveryError {
    &results[0]
        .failure
        .as_ref()
        .unwrap_or_else(|| panic!("expected a failure"))
        .1
}

/// Every request a run made (or, in dry run, would have made), as `METHOD URL`.
pub fn calls(r: &RunResult) -> Vec<String> {
    r.trace
        .iter()
        .flat_map(|t| t.requests.iter().map(|q| format!("{} {}", q.method, q.url)))
        .collect()
}
