//! The worker runtime with a scripted connector: step results, resume after a failure,
//! rate limits, permanent errors and max attempts.

use crate::support::{SECRET, script, world};
use chrono::Utc;
use slatis_core::DeliveryError;
use slatis_core::connector::StepOutput;
use slatis_server::{Options, start};
use slatis_store::{JobFilter, JobStatus};
use slatis_testkit::fixtures::BOOKING_CREATED;
use slatis_testkit::signer::post_signed;
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
        .jobs(&JobFilter::default())
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
    let until = Utc::now() + chrono::Duration::milliseconds(800);
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
