//! Durable storage: events, jobs, attempts, dedupe keys and the record map.
//!
//! [`Store`] is what the ingress, the worker runtime, the admin API and the CLI call;
//! [`open`] picks the backend from `storage.url`. SQLite is the embedded default;
//! a PostgreSQL backend implements the same trait for scale-out.
//!
//! Guarantees every backend keeps (and `tests/it/conformance.rs` checks):
//! - [`Store::ingest`] returns only after the event, its dedupe key and all its jobs are
//!   committed together; a duplicate body of the same tenant returns the first event's id
//!   and makes no job;
//! - [`Store::claim`] never hands out a job while an earlier job with the same order key
//!   (tenant, connector, booking) is unfinished, and shares the claims fairly between
//!   lanes (tenant, connector);
//! - a job whose lease lapses is claimable again;
//! - a rate-limited outcome counts towards the job's `rate_limited`, not its attempts, and
//!   a replay resets both;
//! - [`Store::write_failure`] reports a failed write until a later write commits.
//! - [`Store::purge`] removes only finished events, and record map entries by the age of
//!   their last write.

mod model;
pub mod postgres;
mod query;
pub mod sqlite;

pub use model::*;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use slatis_core::config::StorageConfig;
use slatis_core::connector::{KeyGuard, SharedWindows};
use std::sync::Arc;

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite answered with an error.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL answered with an error, or the connection failed.
    #[error("database error: {}", postgres::describe(.0))]
    Postgres(#[from] tokio_postgres::Error),
    /// The database cannot be reached (no connection could be had in time).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The schema could not be brought up to date.
    #[error("cannot migrate the database schema: {0}")]
    Migrate(String),
    /// Another `slatis-sync serve` owns this SQLite file.
    #[error(
        "another slatis-sync serve already owns {path} (lock file {path}.lock is held); \
         run one server per SQLite file, or point storage.url at PostgreSQL to run several (the dlq commands work beside it)"
    )]
    Locked {
        /// The database file.
        path: String,
    },
    /// `storage.url` is not one this build understands (shown without user info or query
    /// values: a database URL carries its password).
    #[error("unsupported storage.url `{0}`: use sqlite://FILE or postgres://…")]
    UnsupportedUrl(String),
    /// A file could not be opened or locked.
    #[error("cannot open {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What the OS said.
        source: std::io::Error,
    },
    /// Stored data could not be read back (a corrupt row).
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    /// A write transaction could not be committed (nothing of it was kept).
    #[error("commit failed: {0}")]
    Commit(String),
    /// The store's writer has stopped (the process is shutting down).
    #[error("the store is shutting down")]
    Closed,
}

/// `Result` with [`StoreError`].
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Whether this process owns the database (runs the queue) or only inspects it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// `serve`: exclusive for SQLite (a second server refuses to start); reclaims its
    /// own unfinished jobs at once.
    Owner,
    /// The `dlq` and `migrate` commands: may run beside a server.
    Shared,
}

/// The storage API.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Stores an event and its jobs in one transaction, or finds it as a duplicate.
    ///
    /// # Errors
    /// When the transaction could not be committed (answer 503: Slatis retries).
    async fn ingest(&self, event: NewEvent) -> Result<Ingested>;

    /// Leases up to `req.limit` due jobs, respecting per-booking order and lane room.
    ///
    /// # Errors
    /// On a database failure.
    async fn claim(&self, req: ClaimRequest) -> Result<Vec<ClaimedJob>>;

    /// Extends the leases of `jobs` held by `worker`.
    ///
    /// # Errors
    /// On a database failure.
    async fn heartbeat(&self, worker: &str, jobs: &[JobId], until: DateTime<Utc>) -> Result<()>;

    /// Records how attempts ended and moves each job on (done, retry, dead), all in one
    /// transaction: a worker records every attempt that ended since its last visit in one
    /// commit. Returns, in order, `false` for a job no longer leased by its worker
    /// (nothing changed for it).
    ///
    /// # Errors
    /// On a database failure (then none was recorded).
    async fn finish_all(&self, batch: Vec<Finish>) -> Result<Vec<bool>>;

    /// [`Store::finish_all`] of one attempt.
    ///
    /// # Errors
    /// On a database failure.
    async fn finish(&self, finish: Finish) -> Result<bool> {
        let recorded = self.finish_all(vec![finish]).await?;
        Ok(recorded.first().copied().unwrap_or(false))
    }

    /// Puts `worker`'s leased jobs back to pending without using up an attempt
    /// (graceful shutdown).
    ///
    /// # Errors
    /// On a database failure.
    async fn release(&self, worker: &str, jobs: &[JobId]) -> Result<u64>;

    /// Makes running jobs whose lease lapsed before `now` claimable again; with
    /// `all_running`, every running job (the single owner of a SQLite file restarting).
    /// A store shared by several processes (PostgreSQL) ignores `all_running`: a
    /// running job there may be another live replica's, so only lapsed leases are freed.
    ///
    /// # Errors
    /// On a database failure.
    async fn reclaim(&self, now: DateTime<Utc>, all_running: bool) -> Result<u64>;

    /// The record id remembered for a `match`.
    ///
    /// # Errors
    /// On a database failure.
    async fn record_get(&self, key: &RecordKey) -> Result<Option<String>>;

    /// Remembers (`Some`) or forgets (`None`) the record a `match` resolved to.
    ///
    /// # Errors
    /// On a database failure.
    async fn record_put(&self, key: &RecordKey, record_id: Option<&str>) -> Result<()>;

    /// A page of jobs, newest first (by id), filtered.
    ///
    /// # Errors
    /// On a database failure.
    async fn jobs(&self, query: &JobQuery) -> Result<Vec<JobSummary>>;

    /// One job with its event, attempts and dry-run record.
    ///
    /// # Errors
    /// On a database failure.
    async fn job(&self, id: JobId) -> Result<Option<JobDetail>>;

    /// A page of events, newest first (by arrival, then id), filtered.
    ///
    /// # Errors
    /// On a database failure.
    async fn events(&self, query: &EventQuery) -> Result<Vec<EventSummary>>;

    /// Every attempt of every job of the events of `booking_id` (of `tenant`, if given),
    /// oldest first; at most `limit`.
    ///
    /// # Errors
    /// On a database failure.
    async fn booking_attempts(
        &self,
        tenant: Option<&str>,
        booking_id: &str,
        limit: u32,
    ) -> Result<Vec<AttemptRecord>>;

    /// Whether `tenant` already has an event of `event_type` for `booking_id` (one index
    /// seek: a backfill skips what was received).
    ///
    /// # Errors
    /// On a database failure.
    async fn has_event(&self, tenant: &str, booking_id: &str, event_type: &str) -> Result<bool>;

    /// Per tenant: events received and jobs by state, for every tenant with something
    /// stored, by name.
    ///
    /// # Errors
    /// On a database failure.
    async fn tenant_counts(&self) -> Result<Vec<TenantCounts>>;

    /// Per minute since `since` (of `tenant`, if given): events received, attempts that
    /// delivered and that failed. Minutes with nothing are left out; oldest first.
    ///
    /// # Errors
    /// On a database failure.
    async fn activity(
        &self,
        tenant: Option<&str>,
        since: DateTime<Utc>,
    ) -> Result<Vec<MinuteCounts>>;

    /// Puts dead jobs back in the queue (attempts reset). Returns the ids replayed;
    /// ids that are not dead are left alone.
    ///
    /// # Errors
    /// On a database failure.
    async fn replay(&self, which: Replay) -> Result<Vec<JobId>>;

    /// Deletes finished events (all their jobs done) received before `before.events`,
    /// their attempts, dedupe keys made before it, and record map entries last written
    /// before `before.records`.
    ///
    /// # Errors
    /// On a database failure.
    async fn purge(&self, before: PurgeBefore) -> Result<Purged>;

    /// Counts for metrics and the dashboard.
    ///
    /// # Errors
    /// On a database failure.
    async fn stats(&self) -> Result<QueueStats>;

    /// Why writes are failing, if they are: the last write batch could not be committed, or
    /// a write found the database unable to take it (disk full, I/O error, read-only or
    /// locked), and no later write has committed since; or the store is closed. `None`
    /// while writes go through. Answers at once, without I/O (readiness probes call it):
    /// reads alone cannot tell that the disk is full.
    fn write_failure(&self) -> Option<String>;

    /// Waits for the lock named `key`, then holds it until the returned guard is
    /// dropped: at most one holder per name across every process sharing the store (for
    /// serializing work on one CRM record across replicas). PostgreSQL: a session
    /// advisory lock on a pooled connection (a wait longer than `storage.statement_timeout`
    /// fails); a lost connection releases it. SQLite: in this process.
    ///
    /// # Errors
    /// On a database failure.
    async fn lock(&self, key: &str) -> Result<KeyGuard>;

    /// The connector rate windows every process sharing the store counts in, where the
    /// store keeps them (PostgreSQL); `None` where one process owns the store (SQLite:
    /// the in-process limiters are the whole budget).
    fn rate_windows(&self) -> Option<Arc<dyn SharedWindows>> {
        None
    }

    /// Resolves when another process may have made jobs due (an ingest, a replay, a
    /// reclaim on another replica). Never resolves on a store no other process writes to
    /// (SQLite: the ingress wakes the worker itself); callers keep polling as a fallback.
    async fn changed(&self) {
        std::future::pending::<()>().await;
    }

    /// Waits until pending writes are committed and closes the store.
    async fn close(&self);
}

/// The jobs a claim takes from each lane's due jobs (oldest first): every lane's first
/// job before any lane's second, so a backlog never starves another lane; at most `limit`.
fn fair_share(per_lane: &[Vec<JobId>], limit: usize) -> Vec<JobId> {
    let mut chosen = Vec::new();
    let deepest = per_lane.iter().map(Vec::len).max().unwrap_or(0);
    for rank in 0..deepest {
        for id in per_lane.iter().filter_map(|ids| ids.get(rank)) {
            if chosen.len() == limit {
                return chosen;
            }
            chosen.push(*id);
        }
    }
    chosen
}

/// Which backend a `storage.url` names.
fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// Opens the store `storage.url` names (migrating its schema).
///
/// # Errors
/// [`StoreError`] when the URL is not supported, the file is owned by another server, or
/// the database cannot be opened or migrated.
pub async fn open(storage: &StorageConfig, access: Access) -> Result<Arc<dyn Store>> {
    let url = &storage.url;
    if url.starts_with("sqlite:") {
        Ok(Arc::new(sqlite::SqliteStore::open(url, access).await?))
    } else if is_postgres(url) {
        Ok(Arc::new(postgres::PgStore::open(storage, access).await?))
    } else {
        Err(StoreError::UnsupportedUrl(slatis_core::redact::mask_url(
            url,
        )))
    }
}

/// Brings the schema of `storage.url` up to date (`check`: only lists what is pending).
/// Returns the migrations applied (or pending).
///
/// # Errors
/// [`StoreError`] when the database cannot be reached, is newer than this build, or a
/// migration fails (nothing of it is kept).
pub async fn migrate(storage: &StorageConfig, check: bool) -> Result<Vec<String>> {
    let url = &storage.url;
    if url.starts_with("sqlite:") {
        sqlite::migrate(url, check).await
    } else if is_postgres(url) {
        postgres::migrate(storage, check).await
    } else {
        Err(StoreError::UnsupportedUrl(slatis_core::redact::mask_url(
            url,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fair_share_takes_each_lanes_first_job_first() {
        let lanes = vec![vec![1, 2, 3], vec![10], vec![20, 21]];
        assert_eq!(fair_share(&lanes, 10), vec![1, 10, 20, 2, 21, 3]);
        assert_eq!(fair_share(&lanes, 2), vec![1, 10]);
        assert!(fair_share(&[], 5).is_empty());
    }
}
