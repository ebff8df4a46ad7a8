//! The embedded default backend: one SQLite file in WAL mode (rusqlite, SQLite bundled).
//!
//! Invariants:
//! - one process owns a file ([`Access::Owner`] holds `FILE.lock`, FILE resolved through
//!   symlinks and `..`: see [`file`]); a second `serve` refuses to start, the `dlq`
//!   commands ([`Access::Shared`]) may run beside it; the files are private (0600);
//! - every write goes through the group-commit [`writer`] thread; reads run on a few
//!   read connections on the blocking pool;
//! - an acknowledged event (and a replay, and the record map) is committed with
//!   `synchronous = FULL`: it survives a power cut, not only a crash; claims, outcomes and
//!   leases are committed with `NORMAL`, since losing one only repeats a delivery.

mod checkpoint;
mod file;
mod read;
mod writer;

use crate::{
    Access, AttemptRecord, ClaimRequest, ClaimedJob, EventQuery, EventSummary, Finish, Ingested,
    JobDetail, JobId, JobQuery, JobSummary, MinuteCounts, NewEvent, PurgeBefore, Purged,
    QueueStats, RecordKey, Replay, Result, Store, StoreError, TenantCounts, lane,
};
use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params, params_from_iter};
use serde_json::Value;
use std::fs::File;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use writer::{Durability, Writer};

/// The schema, one script per version (`PRAGMA user_version` counts those applied).
const MIGRATIONS: &[(&str, &str)] = &[
    (
        "0001_init",
        include_str!("../../migrations/sqlite/0001_init.sql"),
    ),
    (
        "0002_lane_index",
        include_str!("../../migrations/sqlite/0002_lane_index.sql"),
    ),
    (
        "0003_rate_limited",
        include_str!("../../migrations/sqlite/0003_rate_limited.sql"),
    ),
    (
        "0004_record_map_age",
        include_str!("../../migrations/sqlite/0004_record_map_age.sql"),
    ),
    (
        "0005_search",
        include_str!("../../migrations/sqlite/0005_search.sql"),
    ),
];

/// How many read connections a store keeps.
const READERS: usize = 4;

/// A SQLite-backed [`Store`].
pub struct SqliteStore {
    writer: Writer,
    /// [`Store::lock`]: in process, since one process owns the file.
    locks: slatis_core::connector::MemoryKeyLocks,
    readers: Arc<Readers>,
    /// Held for the life of an owning store: the OS releases it if the process dies.
    _lock: Option<File>,
    /// An owning store's WAL checkpoints, off the writer's path.
    _checkpointer: Option<checkpoint::Checkpointer>,
}

struct Readers {
    conns: Vec<Mutex<Connection>>,
    next: AtomicUsize,
    closed: AtomicBool,
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn time(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

/// The file a `sqlite:` URL names.
fn file_of(url: &str) -> &str {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    rest.split('?').next().unwrap_or(rest)
}

fn connect(path: &Path, flags: OpenFlags) -> Result<Connection> {
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY;",
    )?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// The schema version of `conn`'s database, refused when newer than this build.
fn version(conn: &Connection) -> Result<usize> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let version = usize::try_from(version).unwrap_or_default();
    if version > MIGRATIONS.len() {
        return Err(StoreError::Migrate(format!(
            "the database has schema version {version}, newer than this build knows ({}): upgrade slatis-sync",
            MIGRATIONS.len()
        )));
    }
    Ok(version)
}

/// Applies (or, with `check`, only lists) the pending schema versions of the file `url`
/// names; returns their names. A missing file counts as empty (and is created unless
/// `check`).
///
/// # Errors
/// When the file cannot be opened, is newer than this build, or a migration fails.
pub async fn migrate(url: &str, check: bool) -> Result<Vec<String>> {
    let path = file_of(url).to_owned();
    tokio::task::spawn_blocking(move || {
        let pending_from = |version: usize| -> Vec<String> {
            MIGRATIONS
                .iter()
                .skip(version)
                .map(|(name, _)| (*name).to_owned())
                .collect()
        };
        if check && !Path::new(&path).exists() {
            return Ok(pending_from(0));
        }
        let real = file::prepare(&path)?;
        let mut conn = connect(
            &real,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        let pending = pending_from(version(&conn)?);
        if !check {
            apply(&mut conn)?;
        }
        Ok(pending)
    })
    .await
    .map_err(|_| StoreError::Closed)?
}

fn apply(conn: &mut Connection) -> Result<()> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let version = version(&tx)?;
    for (i, (_, script)) in MIGRATIONS.iter().enumerate().skip(version) {
        tx.execute_batch(script)
            .map_err(|e| StoreError::Migrate(format!("schema version {}: {e}", i + 1)))?;
        tx.pragma_update(
            None,
            "user_version",
            i64::try_from(i + 1).unwrap_or(i64::MAX),
        )?;
    }
    tx.commit()?;
    Ok(())
}

impl SqliteStore {
    /// Opens (creating and migrating if needed) the database `url` names.
    ///
    /// # Errors
    /// [`StoreError::Locked`] when another server owns the file; database errors.
    pub async fn open(url: &str, access: Access) -> Result<Self> {
        let path = file_of(url).to_owned();
        if path.is_empty() || path == ":memory:" {
            return Err(StoreError::UnsupportedUrl(url.to_owned()));
        }
        tokio::task::spawn_blocking(move || Self::open_blocking(&path, access))
            .await
            .map_err(|_| StoreError::Closed)?
    }

    fn open_blocking(path: &str, access: Access) -> Result<Self> {
        let real = file::prepare(path)?;
        let path = real.as_path();
        let lock = match access {
            Access::Owner => Some(file::lock(path)?),
            Access::Shared => None,
        };
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut conn = connect(path, flags)?;
        apply(&mut conn)?;
        let checkpointer = match access {
            Access::Owner => {
                conn.pragma_update(None, "wal_autocheckpoint", checkpoint::BACKSTOP_PAGES)?;
                let own = connect(path, flags)?;
                Some(
                    checkpoint::Checkpointer::start(own).map_err(|source| StoreError::Io {
                        path: path.display().to_string(),
                        source,
                    })?,
                )
            }
            Access::Shared => None,
        };
        let conns = (0..READERS)
            .map(|_| {
                connect(
                    path,
                    OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )
                .map(Mutex::new)
            })
            .collect::<Result<Vec<_>>>()?;
        let writer = Writer::start(conn).map_err(|source| StoreError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let readers = Arc::new(Readers {
            conns,
            next: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
        });
        Ok(Self {
            writer,
            locks: slatis_core::connector::MemoryKeyLocks::default(),
            readers,
            _lock: lock,
            _checkpointer: checkpointer,
        })
    }

    /// A write that must survive a power cut before it is answered.
    async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        self.writer.write(Durability::Sync, f).await
    }

    /// A write whose loss in a power cut only makes a delivery run again.
    async fn write_relaxed<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        self.writer.write(Durability::Relaxed, f).await
    }

    async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let readers = Arc::clone(&self.readers);
        if readers.closed.load(Ordering::Acquire) {
            return Err(StoreError::Closed);
        }
        tokio::task::spawn_blocking(move || {
            let i = readers.next.fetch_add(1, Ordering::Relaxed) % readers.conns.len();
            let conn = readers.conns[i]
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            f(&conn)
        })
        .await
        .map_err(|_| StoreError::Closed)?
    }
}

fn ids_json(ids: &[JobId]) -> String {
    serde_json::to_string(ids).unwrap_or_else(|_| "[]".to_owned())
}

fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

#[async_trait]
impl Store for SqliteStore {
    async fn ingest(&self, ev: NewEvent) -> Result<Ingested> {
        self.write(move |c| ingest(c, &ev)).await
    }

    async fn claim(&self, req: ClaimRequest) -> Result<Vec<ClaimedJob>> {
        if req.limit == 0 {
            return Ok(Vec::new());
        }
        self.write_relaxed(move |c| claim(c, req)).await
    }

    async fn heartbeat(&self, worker: &str, jobs: &[JobId], until: DateTime<Utc>) -> Result<()> {
        if jobs.is_empty() {
            return Ok(());
        }
        let (worker, ids) = (worker.to_owned(), ids_json(jobs));
        self.write_relaxed(move |c| {
            c.prepare_cached(
                "UPDATE jobs SET lease_until = ?1 WHERE lease_owner = ?2 AND status = 'running' \
                 AND id IN (SELECT value FROM json_each(?3))",
            )?
            .execute(params![ms(until), worker, ids])?;
            Ok(())
        })
        .await
    }

    async fn finish_all(&self, batch: Vec<Finish>) -> Result<Vec<bool>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        self.write_relaxed(move |c| batch.iter().map(|f| finish(c, f)).collect())
            .await
    }

    async fn release(&self, worker: &str, jobs: &[JobId]) -> Result<u64> {
        if jobs.is_empty() {
            return Ok(0);
        }
        let (worker, ids, now) = (worker.to_owned(), ids_json(jobs), ms(Utc::now()));
        self.write_relaxed(move |c| {
            let n = c
                .prepare_cached(
                    "UPDATE jobs SET status = 'pending', attempts = MAX(attempts - 1, 0), lease_owner = NULL, \
                     lease_until = NULL, updated_at = ?1 \
                     WHERE lease_owner = ?2 AND status = 'running' AND id IN (SELECT value FROM json_each(?3))",
                )?
                .execute(params![now, worker, ids])?;
            Ok(count(n))
        })
        .await
    }

    async fn reclaim(&self, now: DateTime<Utc>, all_running: bool) -> Result<u64> {
        let now = ms(now);
        self.write_relaxed(move |c| {
            let n = c
                .prepare_cached(
                    "UPDATE jobs SET status = 'pending', lease_owner = NULL, lease_until = NULL, updated_at = ?1 \
                     WHERE status = 'running' AND (?2 OR lease_until < ?1)",
                )?
                .execute(params![now, all_running])?;
            Ok(count(n))
        })
        .await
    }

    async fn record_get(&self, key: &RecordKey) -> Result<Option<String>> {
        let key = key.clone();
        self.read(move |c| {
            Ok(c.prepare_cached(
                "SELECT record_id FROM record_map WHERE tenant = ?1 AND connector = ?2 AND object = ?3 \
                 AND property = ?4 AND value = ?5",
            )?
            .query_row(params![key.tenant, key.connector, key.object, key.property, key.value], |r| r.get(0))
            .optional()?)
        })
        .await
    }

    async fn record_put(&self, key: &RecordKey, record_id: Option<&str>) -> Result<()> {
        let (key, record_id, now) = (key.clone(), record_id.map(str::to_owned), ms(Utc::now()));
        self.write(move |c| {
            match record_id {
                Some(id) => c
                    .prepare_cached(
                        "INSERT INTO record_map (tenant, connector, object, property, value, record_id, updated_at) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (tenant, connector, object, property, value) \
                         DO UPDATE SET record_id = excluded.record_id, updated_at = excluded.updated_at",
                    )?
                    .execute(params![key.tenant, key.connector, key.object, key.property, key.value, id, now])?,
                None => c
                    .prepare_cached(
                        "DELETE FROM record_map WHERE tenant = ?1 AND connector = ?2 AND object = ?3 \
                         AND property = ?4 AND value = ?5",
                    )?
                    .execute(params![key.tenant, key.connector, key.object, key.property, key.value])?,
            };
            Ok(())
        })
        .await
    }

    async fn jobs(&self, query: &JobQuery) -> Result<Vec<JobSummary>> {
        let query = query.clone();
        self.read(move |c| read::jobs(c, &query)).await
    }

    async fn job(&self, id: JobId) -> Result<Option<JobDetail>> {
        self.read(move |c| read::job(c, id)).await
    }

    async fn events(&self, query: &EventQuery) -> Result<Vec<EventSummary>> {
        let query = query.clone();
        self.read(move |c| read::events(c, &query)).await
    }

    async fn booking_attempts(
        &self,
        tenant: Option<&str>,
        booking_id: &str,
        limit: u32,
    ) -> Result<Vec<AttemptRecord>> {
        let (tenant, booking_id) = (tenant.map(str::to_owned), booking_id.to_owned());
        self.read(move |c| read::booking_attempts(c, tenant.as_deref(), &booking_id, limit))
            .await
    }

    async fn has_event(&self, tenant: &str, booking_id: &str, event_type: &str) -> Result<bool> {
        let key = [
            tenant.to_owned(),
            booking_id.to_owned(),
            event_type.to_owned(),
        ];
        self.read(move |c| read::has_event(c, &key)).await
    }

    async fn tenant_counts(&self) -> Result<Vec<TenantCounts>> {
        self.read(read::tenant_counts).await
    }

    async fn activity(
        &self,
        tenant: Option<&str>,
        since: DateTime<Utc>,
    ) -> Result<Vec<MinuteCounts>> {
        let tenant = tenant.map(str::to_owned);
        self.read(move |c| read::activity(c, tenant.as_deref(), since))
            .await
    }

    async fn replay(&self, which: Replay) -> Result<Vec<JobId>> {
        let now = ms(Utc::now());
        self.write(move |c| {
            let mut ids: Vec<JobId> = match &which {
                Replay::Ids(ids) => c
                    .prepare_cached(
                        "UPDATE jobs SET status = 'pending', attempts = 0, rate_limited = 0, run_at = ?1, updated_at = ?1 \
                         WHERE status = 'dead' AND id IN (SELECT value FROM json_each(?2)) RETURNING id",
                    )?
                    .query_map(params![now, ids_json(ids)], |r| r.get(0))?
                    .collect::<rusqlite::Result<_>>()?,
                Replay::Matching(filter) => {
                    let mut clause = crate::query::dead(filter, false);
                    let at = clause.bind(crate::query::Arg::Int(now));
                    c.prepare_cached(&format!(
                        "UPDATE jobs SET status = 'pending', attempts = 0, rate_limited = 0, run_at = {at}, updated_at = {at} \
                         WHERE status = 'dead' AND id IN \
                         (SELECT j.id FROM jobs j JOIN events e ON e.id = j.event_id WHERE {}) RETURNING id",
                        clause.text
                    ))?
                    .query_map(params_from_iter(read::args(&clause)), |r| r.get(0))?
                    .collect::<rusqlite::Result<_>>()?
                }
            };
            ids.sort_unstable();
            Ok(ids)
        })
        .await
    }

    async fn purge(&self, before: PurgeBefore) -> Result<Purged> {
        let (records_before, before) = (ms(before.records), ms(before.events));
        self.write_relaxed(move |c| {
            let events = c
                .prepare_cached(
                    "DELETE FROM events WHERE received_at < ?1 AND NOT EXISTS \
                     (SELECT 1 FROM jobs j WHERE j.event_id = events.id AND j.status != 'done')",
                )?
                .execute([before])?;
            let dedupe_keys = c
                .prepare_cached("DELETE FROM dedupe_keys WHERE created_at < ?1")?
                .execute([before])?;
            let records = c
                .prepare_cached(
                    "DELETE FROM record_map INDEXED BY record_map_age WHERE updated_at < ?1",
                )?
                .execute([records_before])?;
            Ok(Purged {
                events: count(events),
                dedupe_keys: count(dedupe_keys),
                records: count(records),
            })
        })
        .await
    }

    async fn stats(&self) -> Result<QueueStats> {
        self.read(read::stats).await
    }

    fn write_failure(&self) -> Option<String> {
        self.writer.failure()
    }

    async fn lock(&self, key: &str) -> Result<slatis_core::connector::KeyGuard> {
        use slatis_core::connector::KeyLocks;
        // In memory: it never fails.
        self.locks
            .lock(key)
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))
    }

    async fn close(&self) {
        self.readers.closed.store(true, Ordering::Release);
        self.writer.close().await;
    }
}

fn ingest(c: &Connection, ev: &NewEvent) -> Result<Ingested> {
    let at = ms(ev.received_at);
    let fresh = c
        .prepare_cached(
            "INSERT INTO dedupe_keys (tenant, key, event_id, created_at) VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
        )?
        .execute(params![ev.tenant, ev.dedupe_key, ev.id, at])?
        == 1;
    if !fresh {
        let event_id: String = c
            .prepare_cached("SELECT event_id FROM dedupe_keys WHERE tenant = ?1 AND key = ?2")?
            .query_row(params![ev.tenant, ev.dedupe_key], |r| r.get(0))?;
        return Ok(Ingested::Duplicate { event_id });
    }
    c.prepare_cached(
        "INSERT INTO events (id, tenant, event_type, booking_id, attendee_email, body, received_at, jobs) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![ev.id, ev.tenant, ev.event_type, ev.booking_id, ev.attendee_email, ev.body, at, i64::try_from(ev.connectors.len()).unwrap_or(i64::MAX)])?;
    let mut insert_job = c.prepare_cached(
        "INSERT INTO jobs (event_id, tenant, connector, lane, order_key, status, run_at, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6, ?6, ?6)",
    )?;
    for connector in &ev.connectors {
        let lane = lane(&ev.tenant, connector);
        let order_key = format!("{lane}/{}", ev.booking_id.as_deref().unwrap_or(&ev.id));
        insert_job.execute(params![ev.id, ev.tenant, connector, lane, order_key, at])?;
    }
    Ok(Ingested::New {
        event_id: ev.id.clone(),
        jobs: ev.connectors.len(),
    })
}

fn claim(c: &Connection, req: ClaimRequest) -> Result<Vec<ClaimedJob>> {
    let now = ms(req.now);
    // Each lane's first due jobs, oldest first, skipping a job while an earlier job of its
    // booking is unfinished (order). One index seek per lane, whatever the backlog.
    let mut per_lane: Vec<Vec<JobId>> = Vec::new();
    let mut lane_head = c.prepare_cached(
        "SELECT j.id FROM jobs j INDEXED BY jobs_lane WHERE j.lane = ?1 AND j.status = 'pending' AND j.run_at <= ?2 \
           AND NOT EXISTS (SELECT 1 FROM jobs p WHERE p.order_key = j.order_key AND p.id < j.id \
                           AND p.status IN ('pending', 'running')) \
         ORDER BY j.id LIMIT ?3",
    )?;
    for (lane, room) in &req.room {
        let take = (*room).min(req.limit);
        if take > 0 {
            let ids = lane_head
                .query_map(
                    params![lane, now, i64::try_from(take).unwrap_or(i64::MAX)],
                    |r| r.get(0),
                )?
                .collect::<rusqlite::Result<Vec<JobId>>>()?;
            per_lane.push(ids);
        }
    }
    if req.default_room > 0 {
        per_lane.extend(other_lanes(c, &req)?);
    }
    let chosen = crate::fair_share(&per_lane, req.limit);
    if chosen.is_empty() {
        return Ok(Vec::new());
    }
    let ids = ids_json(&chosen);
    let lease_until = now.saturating_add(i64::try_from(req.lease.as_millis()).unwrap_or(i64::MAX));
    c.prepare_cached(
        "UPDATE jobs SET status = 'running', attempts = attempts + 1, lease_owner = ?1, lease_until = ?2, updated_at = ?3 \
         WHERE id IN (SELECT value FROM json_each(?4))",
    )?
    .execute(params![req.worker, lease_until, now, ids])?;
    let mut stmt = c.prepare_cached(
        "SELECT j.id, j.event_id, j.tenant, j.connector, e.event_type, e.body, e.received_at, j.attempts, j.rate_limited, \
         j.steps_done, j.step_results FROM jobs j JOIN events e ON e.id = j.event_id WHERE j.id IN (SELECT value FROM json_each(?1)) \
         ORDER BY j.id",
    )?;
    let rows = stmt.query_map([ids], |r| {
        Ok((
            ClaimedJob {
                id: r.get("id")?,
                event_id: r.get("event_id")?,
                tenant: r.get("tenant")?,
                connector: r.get("connector")?,
                event_type: r.get("event_type")?,
                body: r.get("body")?,
                received_at: time(r.get("received_at")?),
                attempts: u32::try_from(r.get::<_, i64>("attempts")?).unwrap_or(u32::MAX),
                rate_limited: u32::try_from(r.get::<_, i64>("rate_limited")?).unwrap_or(u32::MAX),
                progress: crate::Progress {
                    steps_done: usize::try_from(r.get::<_, i64>("steps_done")?).unwrap_or_default(),
                    step_results: Value::Null,
                },
            },
            r.get::<_, String>("step_results")?,
        ))
    })?;
    rows.map(|row| {
        let (mut job, results) = row?;
        job.progress.step_results = json_column(&results)?;
        Ok(job)
    })
    .collect()
}

/// Due jobs of lanes not in `req.room` (a tenant or connector no longer in the config),
/// up to `default_room` each. This looks at the whole due backlog, so the runtime asks
/// for it only now and then.
fn other_lanes(c: &Connection, req: &ClaimRequest) -> Result<Vec<Vec<JobId>>> {
    let known: Vec<&String> = req.room.keys().collect();
    let mut stmt = c.prepare_cached(
        "SELECT id, lane FROM ( \
           SELECT j.id, j.lane, ROW_NUMBER() OVER (PARTITION BY j.lane ORDER BY j.id) AS rn FROM jobs j \
           WHERE j.status = 'pending' AND j.run_at <= ?1 AND j.lane NOT IN (SELECT value FROM json_each(?2)) \
             AND NOT EXISTS (SELECT 1 FROM jobs p WHERE p.order_key = j.order_key AND p.id < j.id \
                             AND p.status IN ('pending', 'running'))) \
         WHERE rn <= ?3 ORDER BY lane, rn LIMIT ?4",
    )?;
    let rows = stmt
        .query_map(
            params![
                ms(req.now),
                serde_json::to_string(&known).unwrap_or_else(|_| "[]".to_owned()),
                i64::try_from(req.default_room.min(req.limit)).unwrap_or(i64::MAX),
                i64::try_from(req.limit.saturating_mul(4)).unwrap_or(i64::MAX),
            ],
            |r| Ok((r.get::<_, JobId>(0)?, r.get::<_, String>(1)?)),
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut lanes: Vec<(String, Vec<JobId>)> = Vec::new();
    for (id, lane) in rows {
        match lanes.last_mut() {
            Some((l, ids)) if *l == lane => ids.push(id),
            _ => lanes.push((lane, vec![id])),
        }
    }
    Ok(lanes.into_iter().map(|(_, ids)| ids).collect())
}

fn finish(c: &Connection, f: &Finish) -> Result<bool> {
    // A rate-limited attempt moves from `attempts` to the job's `rate_limited` count.
    let crate::model::NextState {
        status,
        run_at,
        rate_limited: limited,
        retry_at,
    } = f.next_state();
    let attempt: Option<i64> = c
        .prepare_cached(
            "UPDATE jobs SET status = ?1, run_at = ?2, attempts = attempts - ?3, rate_limited = rate_limited + ?3, \
             lease_owner = NULL, lease_until = NULL, \
             steps_done = ?4, step_results = ?5, dry_run = COALESCE(?6, dry_run), last_error = ?7, updated_at = ?8 \
             WHERE id = ?9 AND status = 'running' AND lease_owner = ?10 RETURNING attempts + ?3",
        )?
        .query_row(
            params![
                status,
                ms(run_at),
                limited,
                i64::try_from(f.progress.steps_done).unwrap_or(i64::MAX),
                f.progress.step_results.to_string(),
                f.dry_run.as_ref().map(Value::to_string),
                f.error,
                ms(f.finished_at),
                f.job,
                f.worker,
            ],
            |r| r.get(0),
        )
        .optional()?;
    let Some(attempt) = attempt else {
        return Ok(false);
    };
    let step = f.failed_step.and_then(|s| i64::try_from(s).ok());
    c.prepare_cached(
        "INSERT INTO attempts (job_id, attempt, started_at, finished_at, outcome, step, error, retry_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![f.job, attempt, ms(f.started_at), ms(f.finished_at), f.outcome.class(), step, f.error, retry_at.map(ms)])?;
    Ok(true)
}

fn json_column(text: &str) -> Result<Value> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("stored JSON: {e}")))
}
