//! Deliveries through the http connector: what the destination receives, in what
//! order, how often, and what happens on each kind of failure.

use crate::support::{QUICK, Setup, post, wait_until};
use serde_json::Value;
use slatis_testkit::fixtures::{
    self, BOOKING_CANCELLED, BOOKING_CREATED, BOOKING_CREATED_FULL, SINGLE_NAME,
};
use slatis_testkit::mock::{Fault, MockHttp, Received};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(15);

fn contacts(received: &[Received]) -> Vec<Value> {
    received
        .iter()
        .filter(|r| r.method == "POST" && r.path == "/contacts")
        .map(Received::json)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_destination_gets_the_booking_as_mapped() {
    let dest = MockHttp::start().await;
    let setup = Setup::new(&dest.url(), QUICK);
    let server = setup.start();
    for body in [BOOKING_CREATED_FULL, SINGLE_NAME] {
        assert_eq!(post(&server.webhook("acme"), body).await.0, 200);
    }
    let got = dest.wait_delivered(4, WAIT).await;
    assert_eq!(got.len(), 4, "two steps per booking");
    let people = contacts(&got);
    let jose = people
        .iter()
        .find(|p| p["booking"] == "bkg_01HZX4M2Q9")
        .expect("José's contact");
    assert_eq!(jose["email"], "jose.garcia@example.com", "lower-cased");
    assert_eq!(jose["first_name"], "José");
    assert_eq!(jose["last_name"], "María García Pérez");
    assert_eq!(
        jose["notes"], "Asked about \"pricing\" & <enterprise> plan",
        "special characters intact"
    );
    let cher = people
        .iter()
        .find(|p| p["booking"] == "bkg_single")
        .expect("Cher's contact");
    assert_eq!(
        (cher["first_name"].as_str(), cher["last_name"].as_str()),
        (Some("Cher"), Some("Cher")),
        "a one-word name"
    );

    // the second step reads the first step's result; typed values are converted
    let create = got
        .iter()
        .find(|r| r.path == "/contacts" && r.json()["booking"] == "bkg_01HZX4M2Q9")
        .expect("create");
    let meeting = got
        .iter()
        .find(|r| r.path == "/meetings/bkg_01HZX4M2Q9")
        .expect("meeting");
    let contact_id = dest
        .received()
        .iter()
        .position(|r| r.at == create.at)
        .map(|i| (i + 1).to_string());
    assert_eq!(
        meeting.json()["contact"].as_str(),
        contact_id.as_deref(),
        "{{steps.contact.id}} is the id the destination answered"
    );
    assert_eq!(meeting.json()["start_ms"], 1_796_137_200_000_i64);

    // static headers and the forwarding signature
    assert_eq!(create.headers["authorization"], "Bearer tok_e2e_not_secret");
    assert_eq!(create.headers["content-type"], "application/json");
    assert_eq!(
        create.headers["x-forward-signature"],
        slatis_testkit::signer::sign(b"sign_e2e_not_secret", &create.body)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_is_delivered_once() {
    let dest = MockHttp::start().await;
    let setup = Setup::new(&dest.url(), QUICK);
    let server = setup.start();
    for _ in 0..3 {
        assert_eq!(post(&server.webhook("acme"), BOOKING_CREATED).await.0, 200);
    }
    dest.wait_delivered(2, WAIT).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        dest.received().len(),
        2,
        "one delivery (two steps) for three identical webhooks"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_never_overtakes_its_create() {
    let dest = MockHttp::start().await;
    dest.fail_next(1, Fault::Slow(Duration::from_millis(600)));
    let setup = Setup::new(&dest.url(), QUICK);
    let server = setup.start();
    assert_eq!(post(&server.webhook("acme"), BOOKING_CREATED).await.0, 200);
    assert_eq!(
        post(&server.webhook("acme"), BOOKING_CANCELLED).await.0,
        200
    );
    let got = dest.wait_delivered(3, WAIT).await;
    let order: Vec<String> = got
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(
        order,
        vec![
            "POST /contacts",
            "PUT /meetings/bkg_01HZX4M2Q8",
            "PATCH /meetings/bkg_01HZX4M2Q8"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_wait_for_retry_after() {
    let dest = MockHttp::start().await;
    dest.fail_next(
        1,
        Fault::Status {
            status: 503,
            retry_after: Some(2),
            body: "maintenance".into(),
        },
    );
    // a Retry-After is honoured up to max_backoff (past it, it is capped)
    let setup = Setup::new(
        &dest.url(),
        "{ max_attempts: 5, initial_backoff: 50ms, max_backoff: 3s }",
    );
    let server = setup.start();
    assert_eq!(post(&server.webhook("acme"), BOOKING_CREATED).await.0, 200);
    let got = dest.wait_delivered(2, WAIT).await;
    assert_eq!(got.len(), 2);
    let all = dest.received();
    assert_eq!(all[0].status, 503);
    let waited = all[1].at - all[0].at;
    assert!(
        waited >= Duration::from_millis(1900),
        "retried after {waited:?}, before Retry-After: 2"
    );
    // the retry resumed where it failed: the first step ran twice, the second once
    assert_eq!(contacts(&all).len(), 2);
    assert_eq!(
        all.iter()
            .filter(|r| r.path.starts_with("/meetings"))
            .count(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_connections_timeouts_and_429s_are_retried() {
    let dest = MockHttp::start().await;
    dest.fail_next(1, Fault::Drop);
    dest.fail_next(1, Fault::Slow(Duration::from_millis(1500))); // over the 1s timeout
    dest.fail_next(
        1,
        Fault::Status {
            status: 429,
            retry_after: Some(1),
            body: "slow down".into(),
        },
    );
    let setup = Setup::new(&dest.url(), QUICK);
    let server = setup.start();
    assert_eq!(post(&server.webhook("acme"), BOOKING_CREATED).await.0, 200);
    let got = dest.wait_delivered(2, WAIT).await;
    assert_eq!(got.len(), 2, "delivered after a drop, a timeout and a 429");
    assert_eq!(contacts(&dest.received()).len(), 4);
    let (code, out, _) = setup.cli(&["dlq", "list"]);
    assert_eq!(code, 0);
    assert!(out.contains("no dead letters"), "{out}");
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_error_is_dead_lettered_and_replay_delivers_it() {
    let dest = MockHttp::start().await;
    dest.fail_next(
        1,
        Fault::Status {
            status: 422,
            retry_after: None,
            body: r#"{"message":"email is not allowed"}"#.into(),
        },
    );
    let setup = Setup::new(&dest.url(), QUICK);
    let server = setup.start();
    assert_eq!(post(&server.webhook("acme"), BOOKING_CREATED).await.0, 200);
    // and a template error: BOOKING_NO_SHOW's mapping reads data.attendee.phone, which is not sent
    let no_show = fixtures::booking(
        "BOOKING_NO_SHOW",
        "bkg_ns",
        "Ada Lovelace",
        "ada@example.com",
    );
    assert_eq!(post(&server.webhook("acme"), &no_show).await.0, 200);

    let mut listing = String::new();
    wait_until("two dead letters", WAIT, || {
        listing = setup.cli(&["dlq", "list"]).1;
        listing.lines().filter(|l| l.contains("acme")).count() == 2
    })
    .await;
    assert!(
        listing.contains("HTTP 422") && listing.contains("email is not allowed"),
        "{listing}"
    );
    assert!(listing.contains("data.attendee.phone"), "{listing}");
    assert_eq!(dest.received().len(), 1, "a permanent error is not retried");

    let created_job = listing
        .lines()
        .find(|l| l.contains("BOOKING_CREATED"))
        .and_then(|l| l.split_whitespace().next())
        .expect("job id");
    let (code, show, _) = setup.cli(&["dlq", "show", created_job]);
    assert_eq!(code, 0);
    assert!(
        show.contains("dead")
            && show.contains("step 1: ")
            && show.contains("tenants.acme.routes.BOOKING_CREATED[0]"),
        "{show}"
    );
    assert!(show.contains("\"event\": \"BOOKING_CREATED\""), "{show}");

    let (code, out, _) = setup.cli(&["dlq", "replay", created_job]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("replayed 1 job(s)"), "{out}");
    let got = dest.wait_delivered(2, WAIT).await;
    assert_eq!(got.len(), 2, "the replay delivered both steps");
    let (code, _, err) = setup.cli(&["dlq", "replay", created_job]);
    assert_eq!(code, 1, "a job that is not dead is not replayed");
    assert!(err.contains("not dead letters"), "{err}");
    drop(server);
}
