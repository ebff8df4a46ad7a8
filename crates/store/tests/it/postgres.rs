//! The conformance suite on PostgreSQL (each test in a schema of its own), and what only
//! a shared database has: several replicas at once. Skipped, with a note, when
//! `SLATIS_TEST_POSTGRES_URL` is unset; failing when it is set and the server is down.

use crate::conformance::{claim_req, event, finish};
use chrono::Utc;
use slatis_core::config::StorageConfig;
use slatis_store::{Access, ClaimedJob, Ingested, Outcome, Store};
use slatis_testkit::postgres::TestSchema;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

fn storage(url: &str) -> StorageConfig {
    StorageConfig {
        url: url.to_owned(),
        pool_size: 4,
        ..StorageConfig::default()
    }
}

async fn open(schema: &TestSchema) -> Arc<dyn Store> {
    slatis_store::open(&storage(schema.url()), Access::Owner)
        .await
        .expect("open")
}

async fn fresh() -> Option<(Arc<dyn Store>, TestSchema)> {
    let schema = TestSchema::create().await?;
    Some((open(&schema).await, schema))
}

mod conformance_postgres {
    crate::all_conformance_tests!(super::fresh);
}

/// Two replicas on one schema.
async fn replicas() -> Option<(Arc<dyn Store>, Arc<dyn Store>, TestSchema)> {
    let schema = TestSchema::create().await?;
    let (a, b) = tokio::join!(open(&schema), open(&schema));
    Some((a, b, schema))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_starting_at_once_migrate_once() {
    let Some(schema) = TestSchema::create().await else {
        return;
    };
    let opens: Vec<_> = (0..4)
        .map(|_| {
            let s = storage(schema.url());
            tokio::spawn(async move { slatis_store::open(&s, Access::Owner).await })
        })
        .collect();
    for o in opens {
        o.await
            .expect("task")
            .expect("every replica opens")
            .close()
            .await;
    }
    assert!(
        slatis_store::migrate(&storage(schema.url()), true)
            .await
            .expect("check")
            .is_empty(),
        "nothing left to apply"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_booking_keeps_its_order_across_replicas() {
    let Some((a, b, _schema)) = replicas().await else {
        return;
    };
    // the create arrives at A, the cancel at B
    a.ingest(event("acme", Some("b1"), "create", &["crm"]))
        .await
        .expect("create");
    b.ingest(event("acme", Some("b1"), "cancel", &["crm"]))
        .await
        .expect("cancel");
    let on_a = a.claim(claim_req("wa", 10)).await.expect("claim a");
    assert_eq!(on_a.len(), 1);
    assert_eq!(on_a[0].body, b"create");
    assert!(
        b.claim(claim_req("wb", 10))
            .await
            .expect("claim b")
            .is_empty(),
        "the cancel waits while the create runs on the other replica"
    );
    assert!(
        a.finish(finish(&on_a[0], "wa", Outcome::Done))
            .await
            .expect("done")
    );
    let on_b = b.claim(claim_req("wb", 10)).await.expect("claim b");
    assert_eq!(on_b.len(), 1);
    assert_eq!(on_b[0].body, b"cancel");
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_claims_of_replicas_never_share_a_job() {
    let Some((a, b, _schema)) = replicas().await else {
        return;
    };
    for i in 0..200 {
        a.ingest(event(
            "acme",
            Some(&format!("b{i}")),
            &format!("x{i}"),
            &["crm"],
        ))
        .await
        .expect("ingest");
    }
    let claimer = |store: Arc<dyn Store>, worker: &'static str| {
        tokio::spawn(async move {
            let mut got: Vec<ClaimedJob> = Vec::new();
            loop {
                let batch = store.claim(claim_req(worker, 7)).await.expect("claim");
                if batch.is_empty() {
                    return got;
                }
                got.extend(batch);
            }
        })
    };
    let (ja, jb) = tokio::join!(claimer(Arc::clone(&a), "wa"), claimer(Arc::clone(&b), "wb"));
    let (ja, jb) = (ja.expect("a"), jb.expect("b"));
    let ids: HashSet<_> = ja.iter().chain(&jb).map(|j| j.id).collect();
    assert_eq!(ja.len() + jb.len(), 200, "every job leased once");
    assert_eq!(ids.len(), 200, "no job leased twice");
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reclaim_never_takes_a_live_replicas_jobs() {
    let Some((a, b, _schema)) = replicas().await else {
        return;
    };
    let job = crate::conformance::one_running_job(&*a).await;
    assert_eq!(
        b.reclaim(Utc::now(), true).await.expect("reclaim"),
        0,
        "a restarting replica leaves live leases alone"
    );
    assert_eq!(
        b.reclaim(Utc::now() + chrono::Duration::seconds(61), true)
            .await
            .expect("reclaim"),
        1,
        "a lapsed lease is taken back"
    );
    assert_eq!(
        b.claim(claim_req("wb", 1)).await.expect("claim")[0].id,
        job.id
    );
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ingest_on_one_replica_wakes_the_others() {
    let Some((a, b, _schema)) = replicas().await else {
        return;
    };
    // the listener's first wake-up (at connection) is not the one this test wants
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = tokio::time::timeout(Duration::from_millis(50), b.changed()).await;
    let woken = {
        let b = Arc::clone(&b);
        tokio::spawn(async move { tokio::time::timeout(Duration::from_secs(5), b.changed()).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(matches!(
        a.ingest(event("acme", Some("b1"), "wake", &["crm"]))
            .await
            .expect("ingest"),
        Ingested::New { jobs: 1, .. }
    ));
    assert!(
        woken.await.expect("task").is_ok(),
        "B was woken by A's ingest"
    );
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_held_by_one_replica_holds_off_the_others() {
    let Some((a, b, _schema)) = replicas().await else {
        return;
    };
    // keys as connectors make them: parts joined with NUL
    let held = a
        .lock("acme\0pipedrive\0persons\0email\0a@x")
        .await
        .expect("lock");
    let waiter = {
        let b = Arc::clone(&b);
        tokio::spawn(async move { b.lock("acme\0pipedrive\0persons\0email\0a@x").await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiter.is_finished(), "held on the other replica");
    drop(held);
    let again = tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .expect("released across replicas")
        .expect("task")
        .expect("lock");
    drop(again);
    a.close().await;
    b.close().await;
}

#[tokio::test]
async fn an_unreachable_server_fails_without_showing_the_password() {
    // a port nothing listens on
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    let url = format!("postgres://slatis:s3cret-pw@127.0.0.1:{port}/db");
    let err = slatis_store::open(&storage(&url), Access::Owner)
        .await
        .err()
        .expect("unreachable");
    assert!(!err.to_string().contains("s3cret-pw"), "{err}");
    assert!(!format!("{err:?}").contains("s3cret-pw"), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_one_rate_window() {
    use slatis_core::connector::RateLimit;
    let Some((a, b, schema)) = replicas().await else {
        return;
    };
    let c = open(&schema).await;
    let limit = RateLimit::new(5, Duration::from_millis(500));
    let windows = [
        (String::from("acme/crm/all"), limit),
        (
            String::from("acme/crm/search"),
            RateLimit::new(3, Duration::from_millis(500)),
        ),
    ];
    // 3 replicas × 6 sends, all at once; every third is a search (both windows).
    let start = std::time::Instant::now();
    let sends: Vec<_> = [a, b, c]
        .into_iter()
        .flat_map(|store| {
            let windows = windows.clone();
            (0..6).map(move |i| {
                let shared = store.rate_windows().expect("PostgreSQL shares its windows");
                let windows = windows.clone();
                tokio::spawn(async move {
                    let take = if i % 3 == 0 {
                        &windows[..]
                    } else {
                        &windows[..1]
                    };
                    let wait = shared.reserve(take).await.expect("reserve");
                    (start.elapsed() + wait, i % 3 == 0)
                })
            })
        })
        .collect();
    let mut slots = Vec::new();
    for s in sends {
        slots.push(s.await.expect("task"));
    }
    slots.sort();
    // No window of 500 ms holds more than 5 sends, nor more than 3 searches (a little
    // slack for the moments between a reservation and its measurement).
    let window = Duration::from_millis(480);
    for (i, (at, _)) in slots.iter().enumerate() {
        let all = slots[i..]
            .iter()
            .take_while(|(t, _)| *t - *at < window)
            .count();
        assert!(
            all <= 5,
            "{all} sends within {window:?} of {at:?}: {slots:?}"
        );
        let searches = slots[i..]
            .iter()
            .take_while(|(t, _)| *t - *at < window)
            .filter(|(_, search)| *search)
            .count();
        assert!(
            searches <= 3,
            "{searches} searches within {window:?}: {slots:?}"
        );
    }
    // 18 sends at 5 per 500 ms (plus the margin) take at least three more windows.
    let last = slots.last().expect("slots").0;
    assert!(last >= Duration::from_millis(1500), "{last:?}");
}

/// A schema made before the attendee email was a column gets it back-filled from the
/// stored bodies when it is migrated; a body PostgreSQL cannot read as JSON is left
/// without one (and does not stop the migration).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrating_back_fills_the_attendee_email_from_stored_bodies() {
    let Some(schema) = TestSchema::create().await else {
        return;
    };
    let (client, conn) = tokio_postgres::connect(schema.url(), tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    client
        .batch_execute(include_str!("../../migrations/postgres/0001_init.sql"))
        .await
        .expect("old schema");
    client
        .batch_execute(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, \
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now()); \
             INSERT INTO schema_migrations (version, name) VALUES (1, '0001_init')",
        )
        .await
        .expect("version");
    let bodies: [&[u8]; 3] = [
        br#"{"event":"BOOKING_CREATED","data":{"id":"b1","attendee":{"email":" Jane@X.com "}}}"#,
        br#"{"event":"BOOKING_CREATED","data":{"id":"b2","attendee":{"email":"a\u0000b"}}}"#,
        br#"{"event":"BOOKING_CREATED","data":{"id":"b3"}}"#,
    ];
    for (i, body) in bodies.iter().enumerate() {
        client
            .execute(
                "INSERT INTO events (id, tenant, event_type, booking_id, body, received_at, jobs) \
                 VALUES ($1, 'acme', 'BOOKING_CREATED', $2, $3, now(), 0)",
                &[&format!("evt_{i}"), &format!("b{}", i + 1), &body.to_vec()],
            )
            .await
            .expect("old event");
    }
    let store = open(&schema).await;
    let emails = crate::conformance::emails(&*store).await;
    let email = |id: &str| emails.get(id).cloned().flatten();
    assert_eq!(email("evt_0").as_deref(), Some("jane@x.com"));
    assert_eq!(email("evt_1"), None, "\\u0000 is no jsonb");
    assert_eq!(email("evt_2"), None);
    store.close().await;
}
