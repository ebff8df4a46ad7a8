//! What every [`Store`] backend guarantees. Each test takes a fresh, empty store;
//! `backend_suite!` runs them all against one backend.

use chrono::{Duration as Delta, Utc};
use serde_json::json;
use slatis_store::*;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

pub use crate::search::*;

pub fn event(tenant: &str, booking: Option<&str>, body: &str, connectors: &[&str]) -> NewEvent {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    NewEvent {
        id: format!("evt_{n:08}"),
        tenant: tenant.into(),
        event_type: "BOOKING_CREATED".into(),
        booking_id: booking.map(Into::into),
        attendee_email: None,
        body: body.as_bytes().to_vec(),
        dedupe_key: format!("{tenant}:{body}").into_bytes(),
        received_at: Utc::now(),
        connectors: connectors.iter().map(|c| (*c).to_owned()).collect(),
    }
}

/// The newest `limit` events (of `tenant`).
pub fn events_of(tenant: Option<&str>, limit: u32) -> EventQuery {
    EventQuery {
        filter: Filter {
            tenant: tenant.map(Into::into),
            ..Filter::default()
        },
        before: None,
        limit,
    }
}

/// Each stored event's attendee email, by event id.
pub async fn emails(store: &dyn Store) -> HashMap<String, Option<String>> {
    let events = store.events(&events_of(None, 100)).await.expect("events");
    events
        .into_iter()
        .map(|e| (e.id, e.attendee_email))
        .collect()
}

pub fn claim_req(worker: &str, limit: usize) -> ClaimRequest {
    ClaimRequest {
        worker: worker.into(),
        limit,
        lease: Duration::from_secs(60),
        now: Utc::now(),
        room: HashMap::new(),
        default_room: 100,
    }
}

pub fn finish(job: &ClaimedJob, worker: &str, outcome: Outcome) -> Finish {
    Finish {
        job: job.id,
        worker: worker.into(),
        outcome,
        progress: Progress {
            steps_done: 1,
            step_results: json!({"contact": {"id": "42", "created": true}}),
        },
        failed_step: None,
        error: Some("HTTP 503: busy".into()),
        dry_run: None,
        started_at: Utc::now(),
        finished_at: Utc::now(),
    }
}

/// Stores an event, which must be new.
async fn add(
    store: &dyn Store,
    tenant: &str,
    booking: Option<&str>,
    body: &str,
    connectors: &[&str],
) -> String {
    match store
        .ingest(event(tenant, booking, body, connectors))
        .await
        .expect("ingest")
    {
        Ingested::New { event_id, .. } => event_id,
        other => panic!("expected a new event: {other:?}"),
    }
}

/// Claims the one due job.
async fn one(store: &dyn Store, worker: &str) -> ClaimedJob {
    store
        .claim(claim_req(worker, 1))
        .await
        .expect("claim")
        .remove(0)
}

async fn ids(store: &dyn Store, worker: &str, limit: usize) -> Vec<JobId> {
    store
        .claim(claim_req(worker, limit))
        .await
        .expect("claim")
        .iter()
        .map(|j| j.id)
        .collect()
}

pub async fn ingest_then_duplicate(store: Arc<dyn Store>) {
    let ev = event(
        "acme",
        Some("b1"),
        r#"{"event":"BOOKING_CREATED"}"#,
        &["crm", "http"],
    );
    let first = store.ingest(ev.clone()).await.expect("ingest");
    let Ingested::New { event_id, jobs } = first else {
        panic!("new: {first:?}")
    };
    assert_eq!(jobs, 2);
    let mut again = ev.clone();
    again.id = "evt_other".into();
    assert_eq!(
        store.ingest(again).await.expect("dup"),
        Ingested::Duplicate {
            event_id: event_id.clone()
        }
    );
    // another tenant with the same body is not a duplicate
    let mut other = ev;
    other.id = "evt_other_tenant".into();
    other.tenant = "globex".into();
    other.dedupe_key = b"globex:x".to_vec();
    assert!(matches!(
        store.ingest(other).await.expect("other"),
        Ingested::New { .. }
    ));
    let jobs = store
        .jobs(&JobQuery {
            filter: Filter {
                tenant: Some("acme".into()),
                ..Filter::default()
            },
            ..JobQuery::default()
        })
        .await
        .expect("jobs");
    assert_eq!(jobs.len(), 2, "a duplicate makes no job");
    assert!(
        jobs.iter()
            .all(|j| j.event_id == event_id && j.status == JobStatus::Pending)
    );
}

pub async fn unrouted_events_are_stored_without_jobs(store: Arc<dyn Store>) {
    let ev = event("acme", None, "{}", &[]);
    assert!(matches!(
        store.ingest(ev.clone()).await.expect("ingest"),
        Ingested::New { jobs: 0, .. }
    ));
    let events = store
        .events(&events_of(Some("acme"), 10))
        .await
        .expect("events");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].jobs, 0);
    assert!(ids(&*store, "w", 10).await.is_empty());
}

pub async fn one_booking_runs_in_arrival_order(store: Arc<dyn Store>) {
    add(&*store, "acme", Some("b1"), "create", &["crm"]).await;
    add(&*store, "acme", Some("b1"), "cancel", &["crm"]).await;
    add(&*store, "acme", Some("b2"), "other", &["crm"]).await;
    // another connector of the same booking is not held up
    add(&*store, "acme", Some("b1"), "log", &["log"]).await;
    let first = store.claim(claim_req("w", 10)).await.expect("claim");
    let bodies: Vec<_> = first
        .iter()
        .map(|j| String::from_utf8_lossy(&j.body).into_owned())
        .collect();
    assert_eq!(
        bodies,
        vec!["create", "other", "log"],
        "the cancel waits for its create"
    );
    // while the create retries, the cancel still waits
    let create = &first[0];
    assert!(
        store
            .finish(finish(
                create,
                "w",
                Outcome::Retry(Utc::now() - Delta::seconds(1))
            ))
            .await
            .expect("finish")
    );
    let next = store.claim(claim_req("w", 10)).await.expect("claim");
    assert_eq!(next.len(), 1);
    assert_eq!(
        next[0].body, b"create",
        "the retried create runs before the cancel"
    );
    assert_eq!(next[0].attempts, 2);
    assert_eq!(next[0].progress.steps_done, 1);
    assert_eq!(next[0].progress.step_results["contact"]["id"], "42");
    assert!(
        store
            .finish(finish(&next[0], "w", Outcome::Done))
            .await
            .expect("done")
    );
    let last = store.claim(claim_req("w", 10)).await.expect("claim");
    assert_eq!(
        last.iter().map(|j| j.body.clone()).collect::<Vec<_>>(),
        vec![b"cancel".to_vec()]
    );
}

pub async fn a_dead_letter_does_not_block_its_booking(store: Arc<dyn Store>) {
    add(&*store, "acme", Some("b1"), "create", &["crm"]).await;
    add(&*store, "acme", Some("b1"), "cancel", &["crm"]).await;
    let c = store.claim(claim_req("w", 10)).await.expect("claim");
    assert!(
        store
            .finish(finish(&c[0], "w", Outcome::Dead))
            .await
            .expect("dead")
    );
    let next = store.claim(claim_req("w", 10)).await.expect("claim");
    assert_eq!(next[0].body, b"cancel");
}

pub async fn lanes_share_claims_fairly(store: Arc<dyn Store>) {
    for i in 0..10 {
        store
            .ingest(event(
                "big",
                Some(&format!("b{i}")),
                &format!("big{i}"),
                &["crm"],
            ))
            .await
            .expect("big");
    }
    add(&*store, "small", Some("s"), "small", &["crm"]).await;
    let got = store.claim(claim_req("w", 2)).await.expect("claim");
    let tenants: Vec<_> = got.iter().map(|j| j.tenant.as_str()).collect();
    assert_eq!(
        tenants,
        vec!["big", "small"],
        "a backlog does not starve another tenant"
    );
    // a lane with no room is skipped; room caps the rest
    let mut req = claim_req("w", 10);
    req.room.insert("big/crm".into(), 3);
    assert_eq!(store.claim(req).await.expect("claim").len(), 3);
    let mut req = claim_req("w", 10);
    req.room.insert("big/crm".into(), 0);
    assert!(store.claim(req).await.expect("claim").is_empty());
    // the same with both lanes named, as the runtime names them (the job is made before
    // the claim's "now": it is due)
    store
        .ingest(event("small", Some("s2"), "small2", &["crm"]))
        .await
        .expect("small");
    let mut req = claim_req("w", 2);
    req.default_room = 0;
    req.room.insert("big/crm".into(), 10);
    req.room.insert("small/crm".into(), 10);
    let tenants: Vec<_> = store
        .claim(req)
        .await
        .expect("claim")
        .iter()
        .map(|j| j.tenant.clone())
        .collect();
    assert_eq!(tenants.len(), 2);
    assert!(
        tenants.contains(&"big".to_owned()) && tenants.contains(&"small".to_owned()),
        "{tenants:?}"
    );
    // lanes not named are left alone when default_room is 0
    let mut req = claim_req("w", 10);
    req.default_room = 0;
    assert!(store.claim(req).await.expect("claim").is_empty());
}

pub async fn retries_wait_and_rate_limits_do_not_count(store: Arc<dyn Store>) {
    add(&*store, "acme", Some("b1"), "x", &["crm"]).await;
    let j = store
        .claim(claim_req("w", 1))
        .await
        .expect("claim")
        .remove(0);
    assert_eq!(j.attempts, 1);
    let later = Utc::now() + Delta::seconds(3600);
    assert!(
        store
            .finish(finish(&j, "w", Outcome::RateLimited(later)))
            .await
            .expect("finish")
    );
    assert!(ids(&*store, "w", 1).await.is_empty(), "not before its time");
    let mut req = claim_req("w", 1);
    req.now = later + Delta::seconds(1);
    let j = store.claim(req).await.expect("claim").remove(0);
    assert_eq!(j.attempts, 1, "a rate-limited attempt is not counted");
    let detail = store.job(j.id).await.expect("job").expect("exists");
    assert_eq!(detail.attempts_log.len(), 1);
    assert_eq!(detail.attempts_log[0].outcome, "rate_limited");
    assert!(detail.attempts_log[0].retry_at.is_some());
}

pub async fn rate_limited_answers_have_their_own_count(store: Arc<dyn Store>) {
    add(&*store, "acme", Some("b1"), "x", &["crm"]).await;
    let mut now = Utc::now();
    let mut id = 0;
    for n in 0..4 {
        let mut req = claim_req("w", 1);
        req.now = now;
        let j = store.claim(req).await.expect("claim").remove(0);
        assert_eq!((j.attempts, j.rate_limited), (1, n), "after {n} 429s");
        now += Delta::seconds(10);
        let outcome = if n < 3 {
            Outcome::RateLimited(now)
        } else {
            Outcome::Dead
        };
        assert!(
            store
                .finish(finish(&j, "w", outcome))
                .await
                .expect("finish")
        );
        id = j.id;
    }
    assert_eq!(
        store.replay(Replay::Ids(vec![id])).await.expect("replay"),
        vec![id]
    );
    let j = one(&*store, "w").await;
    assert_eq!(
        (j.attempts, j.rate_limited),
        (1, 0),
        "a replay starts both counts again"
    );
}

pub async fn writes_that_commit_leave_no_write_failure(store: Arc<dyn Store>) {
    assert_eq!(store.write_failure(), None, "a fresh store takes writes");
    add(&*store, "acme", Some("b1"), "x", &["crm"]).await;
    let j = one(&*store, "w").await;
    assert!(
        store
            .finish(finish(&j, "w", Outcome::Done))
            .await
            .expect("finish")
    );
    assert_eq!(store.write_failure(), None);
    store.close().await;
    assert!(
        store.write_failure().is_some(),
        "a closed store takes no writes, and says so"
    );
}

pub async fn dead_letters_are_listed_and_replayed(store: Arc<dyn Store>) {
    store
        .ingest(event(
            "acme",
            Some("b1"),
            r#"{"event":"BOOKING_CREATED"}"#,
            &["crm"],
        ))
        .await
        .expect("ingest");
    add(&*store, "globex", Some("b1"), r#"{"event":"X"}"#, &["crm"]).await;
    for j in store.claim(claim_req("w", 10)).await.expect("claim") {
        let mut f = finish(&j, "w", Outcome::Dead);
        f.error = Some("HTTP 400: Property \"x\" does not exist".into());
        f.failed_step = Some(0);
        assert!(store.finish(f).await.expect("dead"));
    }
    let dead = store
        .jobs(&JobQuery {
            filter: Filter {
                status: Some(JobStatus::Dead),
                ..Filter::default()
            },
            ..JobQuery::default()
        })
        .await
        .expect("dead");
    assert_eq!(dead.len(), 2);
    let acme = dead.iter().find(|j| j.tenant == "acme").expect("acme");
    assert!(
        acme.last_error
            .as_deref()
            .is_some_and(|e| e.contains("does not exist"))
    );
    let detail = store.job(acme.id).await.expect("job").expect("exists");
    assert_eq!(detail.event["event"], "BOOKING_CREATED");
    assert_eq!(detail.attempts_log[0].step, Some(0));
    assert_eq!(
        store
            .replay(Replay::Ids(vec![acme.id, 999_999]))
            .await
            .expect("replay"),
        vec![acme.id]
    );
    assert!(
        store
            .replay(Replay::Ids(vec![acme.id]))
            .await
            .expect("again")
            .is_empty(),
        "only dead jobs replay"
    );
    let j = store.claim(claim_req("w", 10)).await.expect("claim");
    assert_eq!(j.len(), 1);
    assert_eq!(j[0].attempts, 1, "a replay starts its attempts again");
    let all = store
        .replay(Replay::Matching(Filter {
            tenant: Some("globex".into()),
            ..Filter::default()
        }))
        .await
        .expect("all");
    assert_eq!(all.len(), 1);
}

/// Stores one job and leases it (for 60 s) to `w`.
pub async fn one_running_job(store: &dyn Store) -> ClaimedJob {
    add(store, "acme", Some("b-run"), "running", &["crm"]).await;
    one(store, "w").await
}

pub async fn lapsed_leases_are_claimed_again(store: Arc<dyn Store>) {
    add(&*store, "acme", Some("b1"), "x", &["crm"]).await;
    let j = store
        .claim(claim_req("dead-worker", 1))
        .await
        .expect("claim")
        .remove(0);
    assert!(ids(&*store, "w2", 1).await.is_empty(), "leased");
    assert_eq!(
        store.reclaim(Utc::now(), false).await.expect("reclaim"),
        0,
        "lease still valid"
    );
    assert_eq!(
        store
            .reclaim(Utc::now() + Delta::seconds(61), false)
            .await
            .expect("reclaim"),
        1
    );
    let again = store
        .claim(claim_req("w2", 1))
        .await
        .expect("claim")
        .remove(0);
    assert_eq!(again.id, j.id);
    assert_eq!(again.attempts, 2);
    assert!(
        !store
            .finish(finish(&j, "dead-worker", Outcome::Done))
            .await
            .expect("finish"),
        "the old lease is void"
    );
    store
        .heartbeat("w2", &[again.id], Utc::now() + Delta::seconds(600))
        .await
        .expect("heartbeat");
    assert_eq!(
        store
            .reclaim(Utc::now() + Delta::seconds(61), false)
            .await
            .expect("reclaim"),
        0,
        "renewed"
    );
    assert_eq!(store.release("w2", &[again.id]).await.expect("release"), 1);
    let back = store
        .claim(claim_req("w3", 1))
        .await
        .expect("claim")
        .remove(0);
    assert_eq!(back.attempts, 2, "a released attempt is not counted");
}

pub async fn the_record_map_remembers_and_forgets(store: Arc<dyn Store>) {
    let key = RecordKey {
        tenant: "acme".into(),
        connector: "hubspot".into(),
        object: "contacts".into(),
        property: "email".into(),
        value: "o'brien@example.com".into(),
    };
    assert_eq!(store.record_get(&key).await.expect("get"), None);
    store.record_put(&key, Some("101")).await.expect("put");
    store
        .record_put(&key, Some("102"))
        .await
        .expect("put again");
    assert_eq!(
        store.record_get(&key).await.expect("get").as_deref(),
        Some("102")
    );
    let mut other = key.clone();
    other.tenant = "globex".into();
    assert_eq!(
        store.record_get(&other).await.expect("get"),
        None,
        "scoped by tenant"
    );
    store.record_put(&key, None).await.expect("forget");
    assert_eq!(store.record_get(&key).await.expect("get"), None);
}

pub async fn purge_removes_only_finished_old_events(store: Arc<dyn Store>) {
    add(&*store, "acme", Some("b1"), "done", &["crm"]).await;
    add(&*store, "acme", Some("b2"), "pending", &["crm"]).await;
    add(&*store, "acme", None, "unrouted", &[]).await;
    let j = store
        .claim(claim_req("w", 1))
        .await
        .expect("claim")
        .remove(0);
    store
        .finish(finish(&j, "w", Outcome::Done))
        .await
        .expect("done");
    let purged = store
        .purge(events_before(Utc::now() + Delta::seconds(1)))
        .await
        .expect("purge");
    assert_eq!(
        purged,
        Purged {
            events: 2,
            dedupe_keys: 3,
            records: 0,
        }
    );
    let left = store.events(&events_of(None, 10)).await.expect("events");
    assert_eq!(left.len(), 1);
    assert_eq!(
        store.jobs(&JobQuery::default()).await.expect("jobs").len(),
        1
    );
    assert_eq!(
        store
            .purge(events_before(Utc::now() - Delta::seconds(60)))
            .await
            .expect("purge"),
        Purged::default()
    );
}

/// Purges events before `t`, and no record map entry.
fn events_before(t: chrono::DateTime<Utc>) -> PurgeBefore {
    PurgeBefore {
        events: t,
        records: chrono::DateTime::<Utc>::MIN_UTC,
    }
}

/// Purges record map entries written before `t`, and no event.
fn records_before(t: chrono::DateTime<Utc>) -> PurgeBefore {
    PurgeBefore {
        events: chrono::DateTime::<Utc>::MIN_UTC,
        records: t,
    }
}

/// A moment strictly between what was written before the call and what is written after.
async fn a_moment_between() -> chrono::DateTime<Utc> {
    tokio::time::sleep(Duration::from_millis(20)).await;
    let t = Utc::now();
    tokio::time::sleep(Duration::from_millis(20)).await;
    t
}

fn record_key(value: &str) -> RecordKey {
    RecordKey {
        tenant: "acme".into(),
        connector: "pipedrive".into(),
        object: "activities".into(),
        property: "slatis_booking_id".into(),
        value: value.into(),
    }
}

pub async fn purge_removes_record_map_entries_by_the_age_of_their_last_write(
    store: Arc<dyn Store>,
) {
    store
        .record_put(&record_key("bkg_old"), Some("1"))
        .await
        .expect("put");
    let between = a_moment_between().await;
    store
        .record_put(&record_key("bkg_new"), Some("2"))
        .await
        .expect("put");
    // events are kept: only the record map cutoff is recent
    add(&*store, "acme", Some("b1"), "kept", &[]).await;
    let purged = store.purge(records_before(between)).await.expect("purge");
    assert_eq!(
        purged,
        Purged {
            events: 0,
            dedupe_keys: 0,
            records: 1,
        }
    );
    assert_eq!(
        store.record_get(&record_key("bkg_old")).await.expect("get"),
        None
    );
    assert_eq!(
        store
            .record_get(&record_key("bkg_new"))
            .await
            .expect("get")
            .as_deref(),
        Some("2")
    );
    // a write refreshes an entry's age: an upsert keeps using it
    let before_refresh = a_moment_between().await;
    store
        .record_put(&record_key("bkg_new"), Some("2"))
        .await
        .expect("put again");
    let purged = store
        .purge(records_before(before_refresh))
        .await
        .expect("purge");
    assert_eq!(purged.records, 0);
    assert_eq!(
        store
            .events(&events_of(None, 10))
            .await
            .expect("events")
            .len(),
        1
    );
}

pub async fn concurrent_ingests_all_commit(store: Arc<dyn Store>) {
    let tasks: Vec<_> = (0..300)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                store
                    .ingest(event(
                        "acme",
                        Some(&format!("b{i}")),
                        &format!("body{i}"),
                        &["crm"],
                    ))
                    .await
            })
        })
        .collect();
    for t in tasks {
        assert!(matches!(
            t.await.expect("task").expect("ingest"),
            Ingested::New { jobs: 1, .. }
        ));
    }
    let stats = store.stats().await.expect("stats");
    assert_eq!(stats.pending, 300);
    assert_eq!(
        store
            .events(&events_of(Some("acme"), 1000))
            .await
            .expect("events")
            .len(),
        300
    );
}

pub async fn a_lock_has_one_holder_per_name(store: Arc<dyn Store>) {
    let held = store.lock("acme/pipedrive/email/a@x").await.expect("lock");
    let other = tokio::time::timeout(Duration::from_secs(2), store.lock("another"))
        .await
        .expect("another name is free")
        .expect("lock");
    drop(other);
    let waiter = {
        let store = Arc::clone(&store);
        tokio::spawn(async move { store.lock("acme/pipedrive/email/a@x").await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiter.is_finished(), "the name is held");
    drop(held);
    let again = tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .expect("released")
        .expect("task")
        .expect("lock");
    drop(again);
}

/// Runs every conformance test against a backend; `$make` is an async fn returning a
/// fresh `Arc<dyn Store>` (and whatever must live as long as it), or `None` when the
/// backend is not available to this run (the test then skips, with a note).
#[macro_export]
macro_rules! backend_suite {
    ($make:path; $($test:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() {
                let Some((store, _guard)) = $make().await else { return };
                $crate::conformance::$test(std::sync::Arc::clone(&store)).await;
                store.close().await;
            }
        )*
    };
}

/// Every conformance test, for `backend_suite!`.
#[macro_export]
macro_rules! all_conformance_tests {
    ($make:path) => {
        $crate::backend_suite!($make;
            ingest_then_duplicate,
            unrouted_events_are_stored_without_jobs,
            one_booking_runs_in_arrival_order,
            a_dead_letter_does_not_block_its_booking,
            lanes_share_claims_fairly,
            retries_wait_and_rate_limits_do_not_count,
            rate_limited_answers_have_their_own_count,
            writes_that_commit_leave_no_write_failure,
            dead_letters_are_listed_and_replayed,
            lapsed_leases_are_claimed_again,
            the_record_map_remembers_and_forgets,
            purge_removes_only_finished_old_events,
            purge_removes_record_map_entries_by_the_age_of_their_last_write,
            concurrent_ingests_all_commit,
            a_lock_has_one_holder_per_name,
            pages_are_filtered_and_continue_without_gaps,
            jobs_are_filtered_by_booking_email_type_and_time,
            dead_letters_replay_by_filter,
            a_booking_s_attempts_and_events_are_found,
            counts_per_tenant_and_per_minute,
        );
    };
}
