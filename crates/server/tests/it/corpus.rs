//! The hostile-CRM corpus: for each way a CRM can misbehave (testkit's [`Fault`]s and token
//! endpoints), a real job runs through the in-process worker and a real connector against
//! the misbehaving mock. Each case must end in a bounded retry (every wait within
//! `max_backoff` of the attempt's end, then a dead letter once its budget is spent) or a
//! dead letter with a clear reason, or be delivered (a hostile `expires_in` only bounds
//! the token's use) — never a panic, never a job left running.

// Link the connectors: their factories register through `inventory`.
#[allow(unused_extern_crates)]
extern crate slatis_connector_http;
#[allow(unused_extern_crates)]
extern crate slatis_connector_hubspot;
#[allow(unused_extern_crates)]
extern crate slatis_connector_pipedrive;
#[allow(unused_extern_crates)]
extern crate slatis_connector_salesforce;

use chrono::Duration as Delta;
use serde_json::{Value, json};
use slatis_server::{Options, Shared, start};
use slatis_store::{Access, JobDetail, JobQuery, JobStatus};
use slatis_testkit::fixtures::BOOKING_CREATED;
use slatis_testkit::mock::{
    Fault, HubSpotOptions, MockHttp, MockHubSpot, MockPipedrive, MockSalesforce, PipedriveOptions,
    SalesforceOptions,
};
use slatis_testkit::signer::post_signed;
use std::time::{Duration, Instant};

const SECRET: &str = "whsec_corpus";
/// The test config's budgets: small, so every case ends within seconds.
const MAX_ATTEMPTS: usize = 3;
const MAX_RATE_LIMITED: usize = 3;
const MAX_BACKOFF_MS: i64 = 200;
/// More faults than any budget takes: every attempt meets one.
const ALWAYS: usize = 50;

/// The far future and the past, as CRMs write them.
const HUGE: &str = "99999999999999999";
const IN_2037: &str = "Wed, 21 Oct 2037 07:28:00 GMT";
const IN_2001: &str = "Mon, 01 Jan 2001 00:00:00 GMT";

/// Which mock, set up how.
enum Crm {
    /// The http connector against [`MockHttp`] with this fault on every call.
    Http(Fault),
    /// HubSpot with a private-app token (`None`) or OAuth whose token answers say this
    /// `expires_in`, and these options and fault.
    HubSpot(HubSpotOptions, Option<Value>, Option<Fault>),
    /// Pipedrive likewise.
    Pipedrive(PipedriveOptions, Option<Value>, Option<Fault>),
    /// Salesforce with these options.
    Salesforce(SalesforceOptions),
}

/// How a case must end.
enum End {
    /// Dead-lettered; the reason holds each of `has` and none of `lacks`.
    Dead {
        has: &'static [&'static str],
        lacks: &'static [&'static str],
    },
    /// Delivered.
    Done,
}

/// A running mock (kept alive for the case).
enum Running {
    Http(MockHttp),
    HubSpot(MockHubSpot),
    Pipedrive(MockPipedrive),
    Salesforce(MockSalesforce),
}

impl Running {
    /// How many requests the CRM got (token and usage calls included).
    fn calls(&self) -> usize {
        match self {
            Self::Http(m) => m.received().len(),
            Self::HubSpot(m) => m.requests().len(),
            Self::Pipedrive(m) => m.requests().len(),
            Self::Salesforce(m) => m.requests().len(),
        }
    }
}

/// The most requests one attempt makes here (a token, a usage lookup, the call).
const CALLS_PER_ATTEMPT: usize = 3;

/// The OAuth app `(client_id, client_secret, refresh_token)` of the token cases.
fn app() -> (String, String, String) {
    ("c".into(), "s".into(), "r".into())
}

/// Starts the mock; returns it with the connector instance's YAML and the step's.
async fn mock(crm: Crm) -> (Running, String, &'static str) {
    match crm {
        Crm::Http(fault) => {
            let m = MockHttp::start().await;
            m.fail_next(ALWAYS, fault);
            let instance = format!(
                "{{ type: http, base_url: \"{}\", timeout: 500ms }}",
                m.url()
            );
            let step = r#"{ connector: crm, action: request, method: POST, path: /contacts, json: { email: "{{data.attendee.email}}" } }"#;
            (Running::Http(m), instance, step)
        }
        Crm::HubSpot(mut options, expires_in, fault) => {
            let oauth = expires_in.is_some();
            options.oauth = oauth.then(app);
            options.token_expires_in = expires_in;
            let m = MockHubSpot::start(options).await;
            if let Some(fault) = fault {
                m.fail_next(ALWAYS, fault);
            }
            let auth = if oauth {
                "oauth: { client_id: c, client_secret: s, refresh_token: r }"
            } else {
                "access_token: pat-test-token"
            };
            let instance = format!(
                "{{ type: hubspot, base_url: \"{}\", timeout: 500ms, {auth} }}",
                m.url()
            );
            let step = r#"{ connector: crm, action: create, object: contacts, properties: { email: "{{data.attendee.email}}" } }"#;
            (Running::HubSpot(m), instance, step)
        }
        Crm::Pipedrive(mut options, expires_in, fault) => {
            let oauth = expires_in.is_some();
            options.oauth = oauth.then(app);
            options.token_expires_in = expires_in;
            let m = MockPipedrive::start(options).await;
            if let Some(fault) = fault {
                m.fail_next(ALWAYS, fault);
            }
            let url = m.url();
            let auth = if oauth {
                format!(
                    "oauth: {{ client_id: c, client_secret: s, refresh_token: r, token_url: \"{url}/oauth/token\" }}"
                )
            } else {
                "api_token: pd-test-token".to_owned()
            };
            let instance =
                format!("{{ type: pipedrive, base_url: \"{url}\", timeout: 500ms, {auth} }}");
            let step = r#"{ connector: crm, action: create, object: persons, properties: { name: "{{data.attendee.name}}" } }"#;
            (Running::Pipedrive(m), instance, step)
        }
        Crm::Salesforce(options) => {
            let m = MockSalesforce::start(options).await;
            let instance = format!(
                "{{ type: salesforce, login_url: \"{}\", timeout: 500ms, auth: {{ flow: client_credentials, client_id: sf-client, client_secret: sf-secret }} }}",
                m.url()
            );
            let step = r#"{ connector: crm, action: create, object: Lead, properties: { LastName: "{{last_name data.attendee.name}}", Company: Acme } }"#;
            (Running::Salesforce(m), instance, step)
        }
    }
}

/// Runs one case to its end; `Err` says what went wrong.
async fn run(name: &str, crm: Crm, end: &End) -> Result<(), String> {
    let (crm, instance, step) = mock(crm).await;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let yaml = format!(
        r#"
server: {{ listen: 127.0.0.1:0 }}
storage: {{ url: "sqlite://{db}" }}
delivery:
  concurrency: 4
  lease: 5s
  shutdown_grace: 1s
  retry: {{ max_attempts: {MAX_ATTEMPTS}, initial_backoff: 10ms, max_backoff: {MAX_BACKOFF_MS}ms, max_rate_limited: {MAX_RATE_LIMITED} }}
tenants:
  t:
    signing_secrets: [{SECRET}]
    connectors:
      crm: {instance}
    routes:
      BOOKING_CREATED:
        - {step}
"#,
        db = dir.path().join("corpus.db").display()
    );
    let config = slatis_core::config::load_str(&yaml, &|_| None).map_err(|e| e.to_string())?;
    let store = slatis_store::open(&config.storage, Access::Owner)
        .await
        .map_err(|e| e.to_string())?;
    let shared = Shared::new(config, store, None);
    let server = start(std::sync::Arc::clone(&shared), Options::default())
        .await
        .map_err(|e| e.to_string())?;
    let url = format!("http://{}/webhooks/t", server.ingress);
    let posted = post_signed(
        &reqwest::Client::new(),
        &url,
        SECRET,
        BOOKING_CREATED.as_bytes(),
    )
    .await
    .map_err(|e| e.to_string())?;
    let ended = if posted.0 == 200 {
        settle(&shared).await
    } else {
        Err(format!("the webhook was answered {}", posted.0))
    };
    let failures = shared.health.failures();
    server.shutdown().await;
    let job = ended?;
    if !failures.is_empty() {
        return Err(format!("background tasks died: {failures:?}"));
    }
    let calls = crm.calls();
    if calls > (MAX_ATTEMPTS + MAX_RATE_LIMITED) * CALLS_PER_ATTEMPT {
        return Err(format!("the CRM was called {calls} times: unbounded"));
    }
    check(name, &job, end)
}

/// Waits until the job is done or dead (never left running or pending for good).
async fn settle(shared: &Shared) -> Result<JobDetail, String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let jobs = shared
            .store
            .jobs(&JobQuery::default())
            .await
            .map_err(|e| e.to_string())?;
        let job = jobs.first().ok_or("no job was made")?;
        if matches!(job.status, JobStatus::Done | JobStatus::Dead) {
            return shared
                .store
                .job(job.id)
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| "the job vanished".to_owned());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "still {:?} after 30 s: {:?}",
                job.status, job.last_error
            ));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn check(name: &str, job: &JobDetail, end: &End) -> Result<(), String> {
    let log = &job.attempts_log;
    let reason = job.job.last_error.clone().unwrap_or_default();
    if let Some(a) = log
        .iter()
        .find(|a| a.error.as_deref().is_some_and(|e| e.contains("panicked")))
    {
        return Err(format!("a delivery panicked: {a:?}"));
    }
    for a in log {
        if let Some(at) = a.retry_at
            && at > a.finished_at + Delta::milliseconds(MAX_BACKOFF_MS)
        {
            return Err(format!("a wait past max_backoff: {a:?}"));
        }
    }
    if log.len() > MAX_ATTEMPTS + MAX_RATE_LIMITED {
        return Err(format!("{} attempts: past every budget", log.len()));
    }
    match end {
        End::Done if job.job.status == JobStatus::Done => Ok(()),
        End::Dead { has, lacks }
            if job.job.status == JobStatus::Dead
                && has.iter().all(|h| reason.contains(h))
                && !lacks.iter().any(|l| reason.contains(l)) =>
        {
            Ok(())
        }
        _ => Err(format!(
            "{name}: ended {:?} with {reason:?} after {} attempts",
            job.job.status,
            log.len()
        )),
    }
}

fn status(status: u16, retry_after: &str) -> Fault {
    Fault::header(status, "retry-after", retry_after)
}

const SPENT_ATTEMPTS: &str = "gave up after 3 attempts";
const SPENT_RATE_LIMITED: &str = "rate-limited 3 times: delivery.retry.max_rate_limited is spent";

fn dead(has: &'static [&'static str]) -> End {
    End::Dead { has, lacks: &[] }
}

/// Every case: what the CRM does, and how the job must end.
fn corpus() -> Vec<(String, Crm, End)> {
    let hs = HubSpotOptions::default;
    let pd = PipedriveOptions::default;
    let retry_afters = [
        ("huge", HUGE),
        ("beyond u64", "999999999999999999999999"),
        ("in 2037", IN_2037),
        ("past", IN_2001),
        ("garbage", "soon"),
        ("negative", "-1"),
    ];
    // Retry-After on a 429 (the rate-limited budget) and on a 503 (the attempts)
    let mut cases: Vec<(String, Crm, End)> = retry_afters
        .iter()
        .flat_map(|(what, value)| {
            [
                (429, dead(&["HTTP 429", SPENT_RATE_LIMITED])),
                (503, dead(&["HTTP 503", SPENT_ATTEMPTS])),
            ]
            .map(|(code, end)| {
                (
                    format!("{code}, Retry-After {what}"),
                    Crm::Http(status(code, value)),
                    end,
                )
            })
        })
        .collect();
    let more: Vec<(&str, Crm, End)> = vec![
        // broken answers
        (
            "an endless body",
            Crm::Http(Fault::Endless),
            dead(&["over 4 MiB", SPENT_ATTEMPTS]),
        ),
        (
            "a slow drip",
            Crm::Http(Fault::Drip(Duration::from_millis(200))),
            dead(&["timed out after 500ms", SPENT_ATTEMPTS]),
        ),
        (
            "a reset mid-answer",
            Crm::Http(Fault::Drop),
            dead(&["POST failed", SPENT_ATTEMPTS]),
        ),
        (
            "a slow answer",
            Crm::Http(Fault::Slow(Duration::from_secs(2))),
            dead(&["timed out", SPENT_ATTEMPTS]),
        ),
        (
            "a redirect to another host",
            Crm::Http(Fault::redirect(
                "https://user:pw@evil.example/steal?token=s3cr3t#frag",
            )),
            End::Dead {
                has: &[
                    "HTTP 302",
                    "redirected to https://evil.example/steal;",
                    "redirects are refused",
                ],
                lacks: &["s3cr3t", "pw@", SPENT_ATTEMPTS],
            },
        ),
        (
            "a relative redirect",
            Crm::Http(Fault::header(307, "location", "/elsewhere?sig=abc")),
            End::Dead {
                has: &["HTTP 307", "/elsewhere;", "redirects are refused"],
                lacks: &["sig=abc"],
            },
        ),
        // CRM-specific rate limits
        (
            "Pipedrive x-ratelimit-reset huge",
            Crm::Pipedrive(
                pd(),
                None,
                Some(Fault::header(429, "x-ratelimit-reset", HUGE)),
            ),
            dead(&["HTTP 429", SPENT_RATE_LIMITED]),
        ),
        (
            "HubSpot 503, Retry-After huge",
            Crm::HubSpot(hs(), None, Some(status(503, HUGE))),
            dead(&["HTTP 503", SPENT_ATTEMPTS]),
        ),
        (
            "HubSpot DAILY limit (resets tomorrow)",
            Crm::HubSpot(
                HubSpotOptions {
                    daily_limit: Some(0),
                    ..hs()
                },
                None,
                None,
            ),
            dead(&["DAILY", SPENT_RATE_LIMITED]),
        ),
        (
            "Salesforce REQUEST_LIMIT_EXCEEDED (an hour)",
            Crm::Salesforce(SalesforceOptions {
                daily_limit: Some(0),
                ..SalesforceOptions::default()
            }),
            dead(&["REQUEST_LIMIT_EXCEEDED", SPENT_RATE_LIMITED]),
        ),
        // token endpoints: whatever expires_in says, the token's use is bounded
        (
            "HubSpot expires_in u64::MAX",
            Crm::HubSpot(hs(), Some(json!(u64::MAX)), None),
            End::Done,
        ),
        (
            "HubSpot expires_in negative",
            Crm::HubSpot(hs(), Some(json!(-5)), None),
            End::Done,
        ),
        (
            "HubSpot expires_in garbage",
            Crm::HubSpot(hs(), Some(json!("soon")), None),
            End::Done,
        ),
        (
            "Pipedrive expires_in u64::MAX",
            Crm::Pipedrive(pd(), Some(json!(u64::MAX)), None),
            End::Done,
        ),
        (
            "Pipedrive expires_in 1e300",
            Crm::Pipedrive(pd(), Some(json!(1e300)), None),
            End::Done,
        ),
    ];
    cases.extend(
        more.into_iter()
            .map(|(name, crm, end)| (name.to_owned(), crm, end)),
    );
    cases
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_hostile_crm_ends_in_a_bounded_retry_or_a_clear_dead_letter() {
    let cases = corpus();
    let n = cases.len();
    let runs = cases.into_iter().map(|(name, crm, end)| async move {
        run(&name, crm, &end)
            .await
            .map_err(|e| format!("{name}: {e}"))
    });
    let failed: Vec<String> = futures_util::future::join_all(runs)
        .await
        .into_iter()
        .filter_map(Result::err)
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {n} cases failed:\n{}",
        failed.len(),
        failed.join("\n")
    ); // the figure RELIABILITY.md quotes (`cargo test -p slatis-server --test it corpus -- --nocapture`)
    eprintln!(
        "hostile-CRM corpus: {n} cases, each a bounded retry, a clear dead letter or a delivery"
    );
}
