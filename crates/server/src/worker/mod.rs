//! The worker runtime: claims due jobs and runs them.
//!
//! Invariants:
//! - at most `delivery.concurrency` jobs run at once, and at most an instance's
//!   `concurrency` for one connector instance, so a slow or throttled CRM never holds
//!   every worker (isolation between tenants and connectors);
//! - a connector instance that answered "rate limited" gets no job until its reset;
//! - a running job's lease is renewed while it runs; on shutdown, jobs still running
//!   after `delivery.shutdown_grace` are released, not lost;
//! - every claimed job ends its attempt with a recorded outcome, a panicking delivery
//!   included (a retryable failure); what an outcome means is decided in core
//!   (`slatis_core::outcome`), the store records it, this runtime only schedules by it;
//! - finished events older than `storage.retention`, and record map entries not written
//!   for `storage.record_map_retention`, are purged;
//! - the dispatcher and the housekeeping task are supervised: one that dies is logged
//!   and takes readiness down ([`crate::health`]).

mod scoped;

pub use scoped::{ScopedRecords, StoreLocks};

use crate::Shared;
use crate::health::{panic_text, supervise};
use chrono::{DateTime, Utc};
use futures_util::FutureExt;
use serde_json::Value;
use slatis_core::DeliveryError;
use slatis_core::config::Config;
use slatis_core::connector::ScopedKeyLocks;
use slatis_core::job::{self, JobEvent, Progress, RunResult};
use slatis_core::outcome;
use slatis_core::time;
use slatis_store::{ClaimRequest, ClaimedJob, Finish, JobId, Outcome, PurgeBefore};
use std::collections::{HashMap, HashSet};
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// How often the queue is looked at when nothing wakes the dispatcher (retries coming
/// due; replays from another process and other replicas' ingests when the store cannot
/// tell, see [`slatis_store::Store::changed`]).
const POLL: Duration = Duration::from_millis(250);

/// How long the dispatcher waits for more deliveries to end once one has, before it
/// records their outcomes and claims new jobs in one round trip.
const GATHER: Duration = Duration::from_micros(500);

/// How often jobs of lanes that left the config are looked for.
const ORPHAN_SWEEP: Duration = Duration::from_secs(10);

/// What the dispatcher knows about each lane (`tenant/connector`).
#[derive(Default)]
struct Lanes {
    in_flight: HashMap<String, usize>,
    paused_until: HashMap<String, DateTime<Utc>>,
}

/// Runs the dispatcher and its housekeeping, each supervised, until `cancel`.
pub async fn run(shared: Arc<Shared>, cancel: CancellationToken) {
    let worker_id = format!("w-{}", uuid::Uuid::now_v7().simple());
    let leased: Arc<Mutex<HashSet<JobId>>> = Arc::default();
    let housekeeping = housekeeping(
        Arc::clone(&shared),
        worker_id.clone(),
        Arc::clone(&leased),
        cancel.clone(),
    );
    let dispatcher = dispatch(
        Arc::clone(&shared),
        worker_id,
        Arc::clone(&leased),
        cancel.clone(),
    );
    tokio::join!(
        supervise(&shared.health, "housekeeping", &cancel, housekeeping),
        async {
            if supervise(&shared.health, "dispatcher", &cancel, dispatcher).await {
                // Its deliveries went with it: stop renewing their leases, so they lapse
                // and are claimed again (after a restart, or by another replica).
                lock(&leased).clear();
            }
        }
    );
}

fn lock(leased: &Mutex<HashSet<JobId>>) -> std::sync::MutexGuard<'_, HashSet<JobId>> {
    leased
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What a delivery task hands back to the dispatcher.
struct Ended {
    job: JobId,
    lane: String,
    /// The attempt's outcome, to record (none if building it panicked: the job keeps its
    /// lease, which lapses, and it runs again).
    finish: Option<Finish>,
    /// A time to pause the lane until (the CRM said "rate limited").
    pause: Option<DateTime<Utc>>,
}

async fn dispatch(
    shared: Arc<Shared>,
    worker_id: String,
    leased: Arc<Mutex<HashSet<JobId>>>,
    cancel: CancellationToken,
) {
    let (shared, worker_id, leased) = (&shared, worker_id.as_str(), &leased);
    let mut lanes = Lanes::default();
    let mut tasks: JoinSet<Ended> = JoinSet::new();
    // Outcomes of attempts that ended since the last store round trip: recorded together,
    // beside the next claim, so a busy worker pays one commit for many jobs.
    let mut ended: Vec<Finish> = Vec::new();
    let mut claim_failures = 0u32;
    let mut last_sweep: Option<std::time::Instant> = None;
    while !cancel.is_cancelled() {
        let config = shared.config();
        let free = config.delivery.concurrency.saturating_sub(tasks.len());
        let claim = (free > 0).then(|| {
            let now = Utc::now();
            lanes.paused_until.retain(|_, until| *until > now);
            let mut room = HashMap::new();
            for tenant in config.tenants.values() {
                for instance in tenant.connectors.values() {
                    let lane = slatis_store::lane(&tenant.name, &instance.name);
                    let busy = lanes.in_flight.get(&lane).copied().unwrap_or(0);
                    let left = if lanes.paused_until.contains_key(&lane) {
                        0
                    } else {
                        instance.concurrency.saturating_sub(busy)
                    };
                    room.insert(lane, left);
                }
            }
            // Now and then, jobs of lanes no longer in the config get a slot each, to be
            // dead-lettered with a clear reason (finding them scans the whole backlog).
            let sweep = last_sweep.is_none_or(|t| t.elapsed() >= ORPHAN_SWEEP);
            if sweep {
                last_sweep = Some(std::time::Instant::now());
            }
            ClaimRequest {
                worker: worker_id.to_owned(),
                limit: free,
                lease: config.delivery.lease,
                now,
                room,
                default_room: usize::from(sweep),
            }
        });
        // Both go to the store at once: its writer commits them together.
        let (claim, ()) = tokio::join!(
            async {
                match claim {
                    Some(req) => Some(shared.store.claim(req).await),
                    None => None,
                }
            },
            record_all(shared, std::mem::take(&mut ended))
        );
        match claim {
            Some(Ok(jobs)) => {
                claim_failures = 0;
                for job in jobs {
                    let lane = job.lane();
                    *lanes.in_flight.entry(lane.clone()).or_default() += 1;
                    lock(leased).insert(job.id);
                    let shared = Arc::clone(shared);
                    let worker_id = worker_id.to_owned();
                    tasks.spawn(async move {
                        // A delivery's panic is an outcome of its own, built inside; this
                        // guard only keeps the lane's bookkeeping should building it panic.
                        let (finish, pause) =
                            AssertUnwindSafe(run_job(&shared, &worker_id, &job))
                                .catch_unwind()
                                .await
                                .map_or_else(
                                    |_| {
                                        tracing::error!(
                                            job = job.id,
                                            "recording a delivery's outcome panicked; it runs again when its lease lapses"
                                        );
                                        (None, None)
                                    },
                                    |(finish, pause)| (Some(finish), pause),
                                );
                        Ended {
                            job: job.id,
                            lane,
                            finish,
                            pause,
                        }
                    });
                }
            }
            Some(Err(e)) => {
                claim_failures += 1;
                tracing::error!(error = %e, "cannot claim jobs");
            }
            None => {}
        }
        ::metrics::gauge!("slatis_jobs_in_flight").set(tasks.len() as f64);
        let idle = if claim_failures > 0 {
            POLL * claim_failures.min(20)
        } else {
            POLL
        };
        tokio::select! {
            () = cancel.cancelled() => break,
            () = shared.wake.notified() => {}
            // another replica made jobs due (PostgreSQL's LISTEN/NOTIFY)
            () = shared.store.changed() => {}
            Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                finished(&mut lanes, leased, done, &mut ended);
                // Take every other finished job too, and give a few more a moment to
                // finish, so the next round trip records them and fills their slots at
                // once: a store commit per job would cost more than the delivery.
                let enough = (config.delivery.concurrency / 4).max(1);
                let _ = tokio::time::timeout(GATHER, async {
                    loop {
                        while let Some(done) = tasks.try_join_next() {
                            finished(&mut lanes, leased, done, &mut ended);
                        }
                        if ended.len() >= enough || tasks.is_empty() {
                            break;
                        }
                        match tasks.join_next().await {
                            Some(done) => finished(&mut lanes, leased, done, &mut ended),
                            None => break,
                        }
                    }
                })
                .await;
            }
            () = tokio::time::sleep(idle) => {}
        }
    }
    drain(shared, worker_id, leased, &mut tasks, ended).await;
}

fn finished(
    lanes: &mut Lanes,
    leased: &Mutex<HashSet<JobId>>,
    done: Result<Ended, tokio::task::JoinError>,
    ended: &mut Vec<Finish>,
) {
    match done {
        Ok(Ended {
            job,
            lane,
            finish,
            pause,
        }) => {
            if let Some(n) = lanes.in_flight.get_mut(&lane) {
                *n = n.saturating_sub(1);
            }
            if let Some(until) = pause {
                let entry = lanes.paused_until.entry(lane).or_insert(until);
                *entry = (*entry).max(until);
            }
            // No longer renewed: without an outcome to record, the lease lapses and the
            // job runs again.
            lock(leased).remove(&job);
            if let Some(finish) = finish {
                ended.push(finish);
            }
        }
        Err(e) => tracing::error!(error = %e, "a delivery task failed"),
    }
}

/// Records the outcomes of attempts that ended, in one store write.
async fn record_all(shared: &Shared, batch: Vec<Finish>) {
    if batch.is_empty() {
        return;
    }
    let jobs: Vec<JobId> = batch.iter().map(|f| f.job).collect();
    match shared.store.finish_all(batch).await {
        Ok(recorded) => {
            for (job, kept) in jobs.iter().zip(recorded) {
                if !kept {
                    tracing::warn!(
                        job,
                        "the job's lease was lost before it finished; another worker owns it now"
                    );
                }
            }
        }
        Err(e) => tracing::error!(
            error = %e,
            jobs = jobs.len(),
            "cannot record the deliveries' outcomes; they run again when their leases lapse"
        ),
    }
}

/// Shutdown: lets running jobs finish within the grace period and records them, then
/// releases the rest.
async fn drain(
    shared: &Arc<Shared>,
    worker_id: &str,
    leased: &Mutex<HashSet<JobId>>,
    tasks: &mut JoinSet<Ended>,
    mut ended: Vec<Finish>,
) {
    if !tasks.is_empty() {
        let grace = shared.config().delivery.shutdown_grace;
        tracing::info!(in_flight = tasks.len(), grace = %humanize(grace), "shutting down: letting deliveries finish");
        let waited = tokio::time::timeout(grace, async {
            while let Some(done) = tasks.join_next().await {
                if let Ok(Ended {
                    job,
                    finish: Some(finish),
                    ..
                }) = done
                {
                    lock(leased).remove(&job);
                    ended.push(finish);
                }
            }
        })
        .await;
        if waited.is_err() {
            tasks.abort_all();
            while tasks.join_next().await.is_some() {}
        }
    }
    record_all(shared, ended).await;
    let ids: Vec<JobId> = lock(leased).drain().collect();
    if ids.is_empty() {
        return;
    }
    match shared.store.release(worker_id, &ids).await {
        Ok(n) => tracing::info!(
            jobs = n,
            "released unfinished deliveries for the next start"
        ),
        Err(e) => tracing::error!(error = %e, "cannot release leases; they will lapse"),
    }
}

fn humanize(d: Duration) -> String {
    format!("{}s", d.as_secs())
}

/// Runs one claimed job inside its `delivery` span (tenant, connector, event, job,
/// attempt on every line it logs); returns its outcome to record and a time to pause its
/// lane until, if any.
///
/// The span is attached with `instrument`, never entered across an `.await`: a task can
/// move between threads at an await, and a guard held over one corrupts the span stack.
async fn run_job(
    shared: &Shared,
    worker_id: &str,
    job: &ClaimedJob,
) -> (Finish, Option<DateTime<Utc>>) {
    let span = tracing::info_span!("delivery", tenant = %job.tenant, connector = %job.connector, event_id = %job.event_id, job = job.id, attempt = job.attempts);
    deliver(shared, worker_id, job).instrument(span).await
}

/// Runs one claimed job, unless it must not run again, and judges its outcome. A
/// delivery that panics has an outcome too: a retryable failure (so a job that panics
/// every time ends after `max_attempts`, like any other).
async fn deliver(
    shared: &Shared,
    worker_id: &str,
    job: &ClaimedJob,
) -> (Finish, Option<DateTime<Utc>>) {
    let config = shared.config();
    let started = Utc::now();
    let clock = std::time::Instant::now();
    let unrun = |e: DeliveryError| RunResult {
        failure: Some((job.progress.steps_done, e)),
        progress: job.progress.clone(),
        trace: Vec::new(),
    };
    let run = match outcome::poisoned(&config.delivery.retry, tries(job)) {
        Some(e) => unrun(e),
        None => AssertUnwindSafe(attempt(shared, &config, job, job.progress.clone()))
            .catch_unwind()
            .await
            .unwrap_or_else(|panic| {
                tracing::error!(panic = %panic_text(&*panic), "the delivery panicked");
                unrun(DeliveryError::retryable(
                    "the delivery panicked (a bug in slatis-sync: see its log)",
                ))
            }),
    };
    judged(&config, worker_id, job, run, (started, clock))
}

/// Runs the job's steps from where earlier attempts left off.
async fn attempt(
    shared: &Shared,
    config: &Config,
    job: &ClaimedJob,
    progress: Progress,
) -> RunResult {
    let envelope = match slatis_core::Envelope::parse(&job.body) {
        Ok(envelope) => envelope,
        Err(e) => {
            return RunResult {
                failure: Some((
                    job.progress.steps_done,
                    DeliveryError::permanent(format!("stored body is not an event: {e}")),
                )),
                progress,
                trace: Vec::new(),
            };
        }
    };
    let records = ScopedRecords {
        store: &*shared.store,
        tenant: &job.tenant,
        connector: &job.connector,
    };
    let event = JobEvent {
        id: &job.event_id,
        event_type: &job.event_type,
        received_at: job.received_at,
        body: &envelope.body,
    };
    let run = job::Job {
        config,
        tenant: &job.tenant,
        instance: &job.connector,
        event: &event,
        attempt: job.attempts,
        record_only: false,
    };
    let store_locks = StoreLocks(&*shared.store);
    let locks = ScopedKeyLocks {
        locks: &store_locks,
        tenant: &job.tenant,
        instance: &job.connector,
    };
    job::run(&run, progress, &records, &locks).await
}

/// What `job` has used up of its budgets, this attempt included.
fn tries(job: &ClaimedJob) -> outcome::Tries {
    outcome::Tries {
        attempts: job.attempts,
        rate_limited: job.rate_limited,
    }
}

/// Logs and counts how the attempt ended; returns the outcome to record and a time to
/// pause the lane until.
fn judged(
    config: &Config,
    worker_id: &str,
    job: &ClaimedJob,
    run: RunResult,
    (started, clock): (DateTime<Utc>, std::time::Instant),
) -> (Finish, Option<DateTime<Utc>>) {
    for t in &run.trace {
        for r in &t.requests {
            let body = r.body.as_ref().map(Value::to_string).unwrap_or_default();
            tracing::info!(step = t.step + 1, method = %r.method, url = %r.url, body = %body, "dry run: would send");
        }
    }
    let finished_at = Utc::now();
    let dry_run = run
        .has_dry_run()
        .then(|| serde_json::to_value(&run.trace).unwrap_or_default());
    let failed_step = run.failure.as_ref().map(|(step, _)| *step);
    let verdict = outcome::judge(
        &config.delivery.retry,
        tries(job),
        run.failure.as_ref().map(|(_, e)| e),
        finished_at,
    );
    let error = verdict
        .error
        .map(|e| config.redactor.redact(&e).into_owned());
    let elapsed_ms = u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX);
    match (&verdict.outcome, &error, failed_step) {
        (Outcome::Done, _, _) => {
            tracing::info!(elapsed_ms, steps = run.progress.steps_done, "delivered")
        }
        (Outcome::Dead, Some(e), Some(step)) => {
            tracing::warn!(step = step + 1, error = %e, "delivery dead-lettered")
        }
        (Outcome::Retry(at) | Outcome::RateLimited(at), Some(e), Some(step)) => {
            tracing::info!(step = step + 1, error = %e, retry_at = %at.to_rfc3339(), class = verdict.outcome.class(), "delivery failed, will retry");
        }
        _ => {}
    }
    ::metrics::counter!("slatis_deliveries_total", "tenant" => job.tenant.clone(), "connector" => job.connector.clone(), "outcome" => verdict.outcome.class()).increment(1);
    ::metrics::histogram!("slatis_delivery_duration_seconds", "tenant" => job.tenant.clone(), "connector" => job.connector.clone())
        .record(clock.elapsed().as_secs_f64());
    let finish = Finish {
        job: job.id,
        worker: worker_id.to_owned(),
        outcome: verdict.outcome,
        progress: run.progress,
        failed_step,
        error,
        dry_run,
        started_at: started,
        finished_at,
    };
    (finish, verdict.pause)
}

/// Lease renewal, lapsed-lease reclaim, retention purge and queue gauges.
async fn housekeeping(
    shared: Arc<Shared>,
    worker_id: String,
    leased: Arc<Mutex<HashSet<JobId>>>,
    cancel: CancellationToken,
) {
    let lease = shared.config().delivery.lease;
    let mut renew = tokio::time::interval(lease / 3);
    let mut gauges = tokio::time::interval(Duration::from_secs(5));
    let mut purge = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = renew.tick() => {
                let ids: Vec<JobId> = lock(&leased).iter().copied().collect();
                let until = time::add(Utc::now(), lease);
                if let Err(e) = shared.store.heartbeat(&worker_id, &ids, until).await {
                    tracing::warn!(error = %e, "cannot renew leases");
                }
                match shared.store.reclaim(Utc::now(), false).await {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::info!(jobs = n, "reclaimed jobs whose lease lapsed");
                        shared.wake.notify_one();
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot reclaim lapsed leases"),
                }
            }
            _ = gauges.tick() => {
                if let Ok(s) = shared.store.stats().await {
                    for (status, n) in [("pending", s.pending), ("running", s.running), ("done", s.done), ("dead", s.dead)] {
                        ::metrics::gauge!("slatis_queue_jobs", "status" => status).set(n as f64);
                    }
                    ::metrics::gauge!("slatis_queue_oldest_due_seconds").set(s.oldest_due_seconds);
                }
            }
            _ = purge.tick() => {
                let storage = shared.config().storage.clone();
                let before = PurgeBefore::ago(Utc::now(), storage.retention, storage.record_map_retention);
                match shared.store.purge(before).await {
                    Ok(p) if p.events + p.dedupe_keys + p.records > 0 => tracing::info!(events = p.events, dedupe_keys = p.dedupe_keys, records = p.records, "purged finished events and record map entries past retention"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "cannot purge"),
                }
            }
        }
    }
}
