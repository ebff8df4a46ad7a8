//! A config around a mock Salesforce, and a runner that delivers one event like the worker.

use slatis_core::DeliveryError;
use slatis_core::config::{Config, load_str};
use slatis_core::connector::{MemoryKeyLocks, MemoryRecordMap};
use slatis_core::job::{self, JobEvent, Progress, RunResult};
use slatis_testkit::mock::{MockSalesforce, SalesforceOptions, SalesforceRequest};

// Linked for its inventory registration.
use slatis_connector_salesforce as _;

/// The instances' per-key locks, shared by every delivery of this test binary (as the
/// server shares them across deliveries).
static LOCKS: std::sync::LazyLock<MemoryKeyLocks> =
    std::sync::LazyLock::new(MemoryKeyLocks::default);

/// The routes of config.example.yaml's Salesforce tenant, plus a few for the tests.
pub const ROUTES: &str = r#"
    routes:
      BOOKING_CREATED: &booking
        - id: contact
          connector: sf
          action: upsert
          object: Contact
          match: { property: Email, value: "{{lower data.attendee.email}}" }
          omit_empty: true
          properties:
            Email: "{{lower data.attendee.email}}"
            FirstName: "{{#if (last_name data.attendee.name)}}{{first_name data.attendee.name}}{{/if}}"
            LastName: "{{default (last_name data.attendee.name) data.attendee.name}}"
            Phone: "{{default data.attendee.phone ''}}"
        - connector: sf
          action: upsert
          object: Event
          match: { property: Booking_Uid__c, value: "{{data.id}}", external_id: true }
          properties:
            Subject: "{{default data.title 'Slatis booking'}}"
            StartDateTime: "{{data.start_time}}"
            EndDateTime: "{{data.end_time}}"
            WhoId: "{{steps.contact.id}}"
      BOOKING_RESCHEDULED: *booking
      BOOKING_CANCELLED:
        - connector: sf
          action: delete
          object: Event
          match: { property: Booking_Uid__c, value: "{{data.id}}", external_id: true }
      BOOKING_NO_SHOW:
        - connector: sf
          action: update
          object: Event
          match: { property: Booking_Uid__c, value: "{{data.id}}", external_id: true }
          properties: { Subject: "No show: {{data.id}}" }
      BOOKING_UPDATED:
        - connector: sf
          action: update
          object: Contact
          match: { property: Email, value: "{{lower data.attendee.email}}" }
          properties: { LastName: "{{last_name data.attendee.name}}" }
"#;

/// Client-credentials keys for the mock's defaults.
pub const CLIENT_CREDENTIALS: &str =
    "auth: { flow: client_credentials, client_id: sf-client, client_secret: sf-secret }";

/// A config with one `salesforce` instance `sf` (`keys` holds its auth and extra keys).
pub fn config(mock: &MockSalesforce, keys: &str, routes: &str) -> Config {
    let yaml = format!(
        "tenants:\n  t:\n    signing_secrets: [s]\n    connectors:\n      sf: {{ type: salesforce, login_url: \"{}\", timeout: 500ms, {keys} }}\n{routes}",
        mock.url()
    );
    load_str(&yaml, &|name| {
        (name == "SF_TEST_KEY").then(|| {
            include_str!("../../../../crates/testkit/fixtures/salesforce_jwt_test_key.pem")
                .to_owned()
        })
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

/// A mock org with the Event external id `Booking_Uid__c`.
pub async fn org(options: SalesforceOptions) -> MockSalesforce {
    let m = MockSalesforce::start(options).await;
    m.define_field("Activity", "Booking_Uid__c", true);
    m
}

/// Runs the job of `body` once, from `progress`.
pub async fn deliver_from(
    config: &Config,
    records: &MemoryRecordMap,
    body: &str,
    progress: Option<Progress>,
) -> RunResult {
    let envelope = slatis_core::Envelope::parse(body.as_bytes()).expect("event");
    let event = JobEvent::of(&envelope, "evt_test", chrono::Utc::now());
    let job = job::Job {
        config,
        tenant: "t",
        instance: "sf",
        event: &event,
        attempt: 1,
        record_only: false,
    };
    job::run(&job, progress.unwrap_or_default(), records, &*LOCKS).await
}

/// Runs the job of `body` once.
pub async fn deliver(config: &Config, records: &MemoryRecordMap, body: &str) -> RunResult {
    deliver_from(config, records, body, None).await
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

/// A query parameter of a request the mock got, decoded (`q`, `fields`).
pub fn param(request: &SalesforceRequest, key: &str) -> Option<String> {
    let url = reqwest::Url::parse(&format!("http://mock{}", request.path)).ok()?;
    url.query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}
