//! The real binary on PostgreSQL (a schema per test, from `SLATIS_TEST_POSTGRES_URL`;
//! skipped with a note when it is unset): `migrate`, deliveries, the `dlq` commands, and
//! the database going away and coming back (a TCP proxy cuts every connection).

use crate::support::{QUICK, Setup, post};
use slatis_testkit::fixtures::{self, BOOKING_CANCELLED, BOOKING_CREATED};
use slatis_testkit::mock::{Fault, MockHttp, Received};
use slatis_testkit::postgres::TestSchema;
use slatis_testkit::process::Server;
use slatis_testkit::proxy::Proxy;
use std::collections::HashSet;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_then_serve_delivers_in_order_and_the_dlq_commands_work() {
    let Some(schema) = TestSchema::create().await else {
        return;
    };
    let dest = MockHttp::start().await;
    let setup = Setup::at(schema.url(), &dest.url(), QUICK, "");
    let (code, out, err) = setup.cli(&["migrate", "--check"]);
    assert_eq!(code, 1, "pending migrations: {out}{err}");
    assert!(out.contains("0001_init"), "{out}");
    let (code, out, err) = setup.cli(&["migrate"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("applied 2 migration(s)"), "{out}");
    assert!(out.contains("0002_search"), "{out}");
    let (code, out, _) = setup.cli(&["migrate", "--check"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("up to date"), "{out}");

    dest.fail_next(
        1,
        Fault::Status {
            status: 422,
            retry_after: None,
            body: r#"{"message":"email is not allowed"}"#.into(),
        },
    );
    let server = setup.start();
    assert_eq!(post(&server.webhook("acme"), BOOKING_CREATED).await.0, 200);
    assert_eq!(
        post(&server.webhook("acme"), BOOKING_CANCELLED).await.0,
        200
    );
    // the create is dead-lettered; the cancel of the same booking then runs
    let got = dest.wait_delivered(1, WAIT).await;
    assert_eq!(got[0].method, "PATCH", "the cancel, after the dead create");
    let (code, listing, err) = setup.cli(&["dlq", "list"]);
    assert_eq!(code, 0, "{err}");
    assert!(listing.contains("HTTP 422"), "{listing}");
    let job = listing
        .lines()
        .find(|l| l.contains("BOOKING_CREATED"))
        .and_then(|l| l.split_whitespace().next())
        .expect("the dead job's id");
    let (code, out, err) = setup.cli(&["dlq", "replay", job]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("replayed 1 job(s)"), "{out}");
    // the replay (another process) wakes the server at once, not only at its next poll
    let got = dest.wait_delivered(3, WAIT).await;
    let order: Vec<String> = got
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(
        order,
        vec![
            "PATCH /meetings/bkg_01HZX4M2Q8",
            "POST /contacts",
            "PUT /meetings/bkg_01HZX4M2Q8"
        ]
    );
    assert!(
        !server.log().contains("password"),
        "the log shows no password"
    );
}

/// Posts a new booking; its id when acknowledged, with the status.
async fn book(server: &Server, n: usize) -> (u16, String) {
    let id = format!("bkg_cut_{n}");
    let body = fixtures::booking("BOOKING_CREATED", &id, "Ada Lovelace", "ada@example.com");
    (post(&server.webhook("acme"), &body).await.0, id)
}

async fn ready(admin: &str) -> u16 {
    reqwest::get(format!("{admin}/readyz"))
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

async fn eventually(server: &Server, what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !check().await {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; the server's log:\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn delivered_bookings(got: &[Received]) -> HashSet<String> {
    got.iter()
        .filter(|r| r.method == "POST" && r.path == "/contacts")
        .filter_map(|r| r.json()["booking"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_database_answers_503_and_every_acknowledged_event_is_delivered() {
    let Some(schema) = TestSchema::create().await else {
        return;
    };
    let proxy = Proxy::start(schema.server_addr()).await;
    let dest = MockHttp::start().await;
    let url = schema.url_through(proxy.addr());
    let setup = Setup::at(&url, &dest.url(), QUICK, "admin:\n  listen: 127.0.0.1:0\n");
    let server = setup.start();
    let admin = server.admin_url.clone().expect("admin listener");
    let mut acked = HashSet::new();
    for n in 0..5 {
        let (status, id) = book(&server, n).await;
        assert_eq!(status, 200);
        acked.insert(id);
    }
    assert_eq!(ready(&admin).await, 200);

    proxy.cut();
    eventually(&server, "readiness to fail", async || {
        ready(&admin).await == 503
    })
    .await;
    for n in 5..10 {
        let (status, _) = book(&server, n).await;
        assert_eq!(status, 503, "no 2xx without a commit");
    }

    proxy.restore();
    let mut n = 10;
    eventually(&server, "webhooks to be stored again", async || {
        let (status, id) = book(&server, n).await;
        n += 1;
        if status == 200 {
            acked.insert(id);
        }
        status == 200
    })
    .await;
    eventually(&server, "readiness to come back", async || {
        ready(&admin).await == 200
    })
    .await;
    let got = dest.wait_delivered(2 * acked.len(), WAIT).await;
    let delivered = delivered_bookings(&got);
    assert!(
        acked.is_subset(&delivered),
        "every acknowledged booking delivered: acked {acked:?}, delivered {delivered:?}"
    );
    for n in 5..10 {
        assert!(
            !delivered.contains(&format!("bkg_cut_{n}")),
            "a 503 stored nothing"
        );
    }
}
