//! The worker runtime with a scripted connector: step results, resume after a failure,
//! rate limits (capped, with their own budget), permanent errors, max attempts, and jobs
//! that panic or whose every attempt died.

use crate::support::{SECRET, script, world};
use chrono::Utc;
use slatis_core::DeliveryError;
use slatis_core::connector::StepOutput;
use slatis_server::{Options, start};
use slatis_store::{JobQuery, JobStatus};
use slatis_testkit::fixtures::BOOKING_CREATED;
use slatis_testkit::signer::post_signed;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

async fn run_until<F: Fn() -> bool>(f: F) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn job_status(shared: &slatis_server::Shared) -> (JobStatus, u32, Option<String>) {
    let j = shared
        .store
        .jobs(&JobQuery::default())
        .await
        .expect("jobs")
        .remove(0);
    (j.status, j.attempts, j.last_error)
}

/// A running server whose `tenant` got one `BOOKING_CREATED`; keep the `TempDir` alive.
async fn deliver(
    tenant: &str,
    answers: Vec<Result<StepOutput, DeliveryError>>,
) -> (
    slatis_server::Running,
    Arc<slatis_server::Shared>,
    tempfile::TempDir,
) {
    script(tenant, |s| s.answers = answers.into());
    let w = world(tenant, "").await;
    let shared = Arc::clone(&w.shared);
    let running = start(Arc::clone(&shared), Options::default())
        .await
        .expect("start");
    let url = format!("http://{}/webhooks/{tenant}", running.ingress);
    let (status, _) = post_signed(
        &reqwest::Client::new(),
        &url,
        SECRET,
        BOOKING_CREATED.as_bytes(),
    )
    .await
    .expect("post");
    assert_eq!(status, 200);
    (running, shared, w.dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn later_steps_read_earlier_results() {
    let (running, _, _dir) = deliver(
        "wk1",
        vec![Ok(StepOutput {
            id: Some("C-9".into()),
            created: true,
        })],
    )
    .await;
    run_until(|| script("wk1", |s| s.calls.len()) == 2).await;
    let calls = script("wk1", |s| s.calls.clone());
    assert_eq!(calls[0].properties["email"], "ada@example.com");
    assert_eq!(calls[1].properties["contact"], "C-9");
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_resumes_at_the_failed_step() {
    let answers = vec![
        Ok(StepOutput {
            id: Some("C-1".into()),
            created: true,
        }),
        Err(DeliveryError::retryable("HTTP 503: busy")),
    ];
    let (running, shared, _dir) = deliver("wk2", answers).await;
    run_until(|| script("wk2", |s| s.calls.len()) == 3).await;
    let objects: Vec<_> = script("wk2", |s| {
        s.calls
            .iter()
            .map(|c| c.object.clone().unwrap_or_default())
            .collect()
    });
    assert_eq!(
        objects,
        vec!["contacts", "meetings", "meetings"],
        "the first step is not run again"
    );
    assert_eq!(
        script("wk2", |s| s.calls[2].properties["contact"].clone()),
        "C-1",
        "its result is kept"
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(job_status(&shared).await.0, JobStatus::Done);
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_waits_for_its_reset_without_using_an_attempt() {
    // within max_backoff (50ms), so the reset is kept as the CRM named it
    let until = Utc::now() + chrono::Duration::milliseconds(45);
    let (running, shared, _dir) = deliver(
        "wk3",
        vec![Err(DeliveryError::rate_limited(
            "HTTP 429: TEN_SECONDLY_ROLLING",
            until,
        ))],
    )
    .await;
    run_until(|| script("wk3", |s| s.calls.len()) == 3).await;
    assert!(Utc::now() >= until, "not retried before the reset");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (status, attempts, _) = job_status(&shared).await;
    assert_eq!((status, attempts), (JobStatus::Done, 1));
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permanent_errors_and_spent_attempts_dead_letter_with_the_reason() {
    let (running, shared, _dir) = deliver(
        "wk4",
        vec![Err(DeliveryError::permanent(
            "HTTP 400: Property \"x\" does not exist",
        ))],
    )
    .await;
    run_until(|| script("wk4", |s| s.calls.len()) == 1).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (status, attempts, error) = job_status(&shared).await;
    assert_eq!((status, attempts), (JobStatus::Dead, 1));
    let error = error.expect("reason");
    assert!(
        error.contains("step 1 (tenants.wk4.routes.BOOKING_CREATED[0], script create)")
            && error.contains("does not exist"),
        "{error}"
    );
    running.shutdown().await;

    let busy = || Err(DeliveryError::retryable("HTTP 503"));
    let (running, shared, _dir) = deliver("wk5", vec![busy(), busy(), busy()]).await;
    run_until(|| script("wk5", |s| s.calls.len()) == 3).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (status, attempts, _) = job_status(&shared).await;
    assert_eq!(
        (status, attempts),
        (JobStatus::Dead, 3),
        "dead after max_attempts (3)"
    );
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_far_rate_limit_reset_is_capped_and_the_budget_ends_it() {
    let far = || {
        Err(DeliveryError::rate_limited(
            "HTTP 429: come back in 2037",
            "2037-10-21T07:28:00Z".parse().expect("date"),
        ))
    };
    let (running, shared, _dir) = deliver("wk6", vec![far(), far(), far()]).await;
    // three 429s (max_rate_limited: 3), each waited out within max_backoff (50ms)
    let started = Instant::now();
    run_until(|| script("wk6", |s| s.calls.len()) == 3).await;
    assert!(started.elapsed() < Duration::from_secs(5), "capped waits");
    run_until_async(|| async { job_status(&shared).await.0 == JobStatus::Dead }).await;
    let id = shared.store.jobs(&JobQuery::default()).await.expect("jobs")[0].id;
    let detail = shared.store.job(id).await.expect("job").expect("exists");
    let error = detail.job.last_error.unwrap_or_default();
    assert!(
        error.contains("come back in 2037")
            && error.contains("rate-limited 3 times: delivery.retry.max_rate_limited is spent"),
        "{error}"
    );
    for a in &detail.attempts_log {
        if let Some(at) = a.retry_at {
            assert!(
                at <= a.finished_at + chrono::Duration::milliseconds(50),
                "{a:?}"
            );
        }
    }
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_delivery_is_an_outcome_at_once() {
    script("wk7", |s| s.panics = 3);
    let (running, shared, _dir) = deliver("wk7", Vec::new()).await;
    // without a recorded outcome each attempt would wait out the 60 s lease
    run_until_async(|| async { job_status(&shared).await.0 == JobStatus::Dead }).await;
    let (_, attempts, error) = job_status(&shared).await;
    assert_eq!(attempts, 3, "dead after max_attempts");
    let error = error.unwrap_or_default();
    assert!(
        error.contains("the delivery panicked") && error.contains("gave up after 3 attempts"),
        "{error}"
    );
    assert!(shared.health.failures().is_empty(), "the worker lives on");
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_every_attempt_died_is_dead_lettered_without_running() {
    let w = world("wk8", "").await;
    let shared = Arc::clone(&w.shared);
    let new = slatis_store::NewEvent {
        id: "evt_wk8".into(),
        tenant: "wk8".into(),
        event_type: "BOOKING_CREATED".into(),
        booking_id: Some("bkg_1".into()),
        attendee_email: None,
        body: BOOKING_CREATED.as_bytes().to_vec(),
        dedupe_key: b"wk8".to_vec(),
        received_at: Utc::now(),
        connectors: vec!["crm".into()],
    };
    shared.store.ingest(new).await.expect("ingest");
    // three processes each claimed it and died mid-delivery (max_attempts: 3)
    for _ in 0..3 {
        let claimed = shared
            .store
            .claim(slatis_store::ClaimRequest {
                worker: "died".into(),
                limit: 1,
                lease: Duration::from_secs(60),
                now: Utc::now(),
                room: Default::default(),
                default_room: 1,
            })
            .await
            .expect("claim");
        assert_eq!(claimed.len(), 1);
        shared
            .store
            .reclaim(Utc::now(), true)
            .await
            .expect("reclaim");
    }
    let running = start(Arc::clone(&shared), Options::default())
        .await
        .expect("start");
    run_until_async(|| async { job_status(&shared).await.0 == JobStatus::Dead }).await;
    let (_, attempts, error) = job_status(&shared).await;
    assert_eq!(attempts, 4);
    let error = error.unwrap_or_default();
    assert!(
        error.contains("not run again: this would be attempt 4, past max_attempts (3)"),
        "{error}"
    );
    assert!(script("wk8", |s| s.calls.is_empty()), "it did not run");
    running.shutdown().await;
}

async fn run_until_async<F, Fut>(mut f: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f().await {
        assert!(Instant::now() < deadline, "timed out");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
