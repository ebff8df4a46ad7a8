//! DESIGN §6 "nothing lost": SIGKILL with deliveries pending, one owner per SQLite file,
//! graceful SIGTERM.

use crate::support::{QUICK, Setup, post, wait_until};
use slatis_testkit::fixtures;
use slatis_testkit::mock::{Fault, MockHttp};
use std::collections::BTreeSet;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_event_is_delivered_after_sigkill() {
    // The first destination hangs: some jobs are in flight (leased), the rest pending.
    let hanging = MockHttp::start().await;
    hanging.fail_next(1000, Fault::Slow(Duration::from_secs(30)));
    let setup = Setup::new(
        &hanging.url(),
        "{ max_attempts: 50, initial_backoff: 50ms, max_backoff: 200ms }",
    );
    let mut server = setup.start();
    let mut acknowledged = BTreeSet::new();
    for i in 0..25 {
        let body = fixtures::booking(
            "BOOKING_CREATED",
            &format!("bkg_kill_{i:02}"),
            "Ada Lovelace",
            &format!("ada{i}@example.com"),
        );
        let (status, answer) = post(&server.webhook("acme"), &body).await;
        assert_eq!(status, 200, "{answer}");
        acknowledged.insert(format!("bkg_kill_{i:02}"));
    }
    wait_until("deliveries in flight", WAIT, || {
        !hanging.received().is_empty()
    })
    .await;
    server.kill();

    let healthy = MockHttp::start().await;
    setup.point_at(&healthy.url(), QUICK);
    let _server = setup.start();
    let got = healthy.wait_delivered(50, WAIT).await;
    let delivered: BTreeSet<String> = got
        .iter()
        .filter(|r| r.path == "/contacts")
        .map(|r| r.json()["booking"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        delivered,
        acknowledged,
        "every acknowledged event reached the destination; log:\n{}",
        _server.log()
    );
    assert_eq!(got.len(), 50, "both steps of each");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_server_on_the_same_file_refuses_to_start() {
    let dest = MockHttp::start().await;
    let setup = Setup::new(&dest.url(), QUICK);
    let _first = setup.start();
    let (code, _, err) = setup.cli(&["serve"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("another slatis-sync serve already owns"),
        "{err}"
    );
    // the dlq commands work beside it
    assert_eq!(setup.cli(&["dlq", "list"]).0, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_a_delivery_in_flight_finish() {
    let dest = MockHttp::start().await;
    dest.fail_next(1, Fault::Slow(Duration::from_millis(800))); // under the 1s timeout
    let setup = Setup::new(&dest.url(), QUICK);
    let mut server = setup.start();
    assert_eq!(
        post(&server.webhook("acme"), fixtures::BOOKING_CREATED)
            .await
            .0,
        200
    );
    wait_until("the delivery in flight", WAIT, || {
        !dest.received().is_empty()
    })
    .await;
    let webhook = server.webhook("acme");
    let stopping = tokio::task::spawn_blocking(move || {
        let ok = server.terminate(Duration::from_secs(10));
        (ok, server.log())
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        reqwest::Client::new()
            .post(&webhook)
            .body("{}")
            .send()
            .await
            .is_err(),
        "no new webhooks while stopping"
    );
    let (ok, log) = stopping.await.expect("join");
    assert!(ok, "exit 0 after SIGTERM; log:\n{log}");
    assert_eq!(
        dest.delivered().len(),
        2,
        "the delivery in flight finished, and its job ran to the end; log:\n{log}"
    );
    // nothing left to do at the next start
    let _again = setup.start();
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(dest.received().len(), 2);
}
