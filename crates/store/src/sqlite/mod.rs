//! The embedded default backend: one SQLite file in WAL mode.
//!
//! Invariants:
//! - one process owns a file ([`Access::Owner`] holds `FILE.lock`); a second `serve`
//!   refuses to start, the `dlq` commands ([`Access::Shared`]) may run beside it;
//! - every write goes through the group-commit [`writer`]; reads use a small pool;
//! - `synchronous = FULL`: a committed event survives a power cut, not only a crash.

mod writer;

use crate::{
    Access, AttemptRecord, ClaimRequest, ClaimedJob, EventSummary, Finish, Ingested, JobDetail,
    JobFilter, JobId, JobStatus, JobSummary, NewEvent, Outcome, Purged, QueueStats, RecordKey,
    Replay, Result, Store, StoreError, lane,
};
use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use serde_json::Value;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{ConnectOptions, Row, SqliteConnection};
use std::fs::File;
use std::str::FromStr;
use std::time::Duration;
use writer::{BoxFuture, Writer};

/// The columns [`job_summary`] reads (`j` = jobs, `e` = events).
macro_rules! job_columns {
    () => {
        "j.id, j.event_id, j.tenant, j.connector, e.event_type, e.booking_id, j.status, j.attempts, \
         j.run_at, j.last_error, j.created_at, j.updated_at"
    };
}

/// A SQLite-backed [`Store`].
pub struct SqliteStore {
    writer: Writer,
    reader: SqlitePool,
    /// Held for the life of an owning store: the OS releases it if the process dies.
    _lock: Option<File>,
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
        let lock = match access {
            Access::Owner => Some(lock_file(&path)?),
            Access::Shared => None,
        };
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{path}"))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10))
            .log_statements(tracing::log::LevelFilter::Trace);
        let mut conn = options.connect().await?;
        sqlx::migrate!("./migrations/sqlite").run(&mut conn).await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .min_connections(1)
            .connect_with(options.clone().create_if_missing(false))
            .await?;
        Ok(Self {
            writer: Writer::start(conn),
            reader,
            _lock: lock,
        })
    }

    async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T>> + Send + 'static,
    {
        self.writer.write(f).await
    }
}

fn lock_file(path: &str) -> Result<File> {
    let lock_path = format!("{path}.lock");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|source| StoreError::Io {
            path: lock_path.clone(),
            source,
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Locked {
            path: path.to_owned(),
        }),
        Err(std::fs::TryLockError::Error(source)) => Err(StoreError::Io {
            path: lock_path,
            source,
        }),
    }
}

fn ids_json(ids: &[JobId]) -> String {
    serde_json::to_string(ids).unwrap_or_else(|_| "[]".to_owned())
}

#[async_trait]
impl Store for SqliteStore {
    async fn ingest(&self, ev: NewEvent) -> Result<Ingested> {
        self.write(move |c| Box::pin(ingest(c, ev))).await
    }

    async fn claim(&self, req: ClaimRequest) -> Result<Vec<ClaimedJob>> {
        if req.limit == 0 {
            return Ok(Vec::new());
        }
        self.write(move |c| Box::pin(claim(c, req))).await
    }

    async fn heartbeat(&self, worker: &str, jobs: &[JobId], until: DateTime<Utc>) -> Result<()> {
        if jobs.is_empty() {
            return Ok(());
        }
        let (worker, ids) = (worker.to_owned(), ids_json(jobs));
        self.write(move |c| {
            Box::pin(async move {
                sqlx::query(
                    "UPDATE jobs SET lease_until = ?1 WHERE lease_owner = ?2 AND status = 'running' \
                     AND id IN (SELECT value FROM json_each(?3))",
                )
                .bind(ms(until))
                .bind(worker)
                .bind(ids)
                .execute(&mut *c)
                .await?;
                Ok(())
            })
        })
        .await
    }

    async fn finish(&self, f: Finish) -> Result<bool> {
        self.write(move |c| Box::pin(finish(c, f))).await
    }

    async fn release(&self, worker: &str, jobs: &[JobId]) -> Result<u64> {
        if jobs.is_empty() {
            return Ok(0);
        }
        let (worker, ids, now) = (worker.to_owned(), ids_json(jobs), ms(Utc::now()));
        self.write(move |c| {
            Box::pin(async move {
                let r = sqlx::query(
                    "UPDATE jobs SET status = 'pending', attempts = MAX(attempts - 1, 0), lease_owner = NULL, \
                     lease_until = NULL, updated_at = ?1 \
                     WHERE lease_owner = ?2 AND status = 'running' AND id IN (SELECT value FROM json_each(?3))",
                )
                .bind(now)
                .bind(worker)
                .bind(ids)
                .execute(&mut *c)
                .await?;
                Ok(r.rows_affected())
            })
        })
        .await
    }

    async fn reclaim(&self, now: DateTime<Utc>, all_running: bool) -> Result<u64> {
        let now = ms(now);
        self.write(move |c| {
            Box::pin(async move {
                let r = sqlx::query(
                    "UPDATE jobs SET status = 'pending', lease_owner = NULL, lease_until = NULL, updated_at = ?1 \
                     WHERE status = 'running' AND (?2 OR lease_until < ?1)",
                )
                .bind(now)
                .bind(all_running)
                .execute(&mut *c)
                .await?;
                Ok(r.rows_affected())
            })
        })
        .await
    }

    async fn record_get(&self, key: &RecordKey) -> Result<Option<String>> {
        Ok(sqlx::query_scalar(
            "SELECT record_id FROM record_map WHERE tenant = ?1 AND connector = ?2 AND object = ?3 \
             AND property = ?4 AND value = ?5",
        )
        .bind(&key.tenant)
        .bind(&key.connector)
        .bind(&key.object)
        .bind(&key.property)
        .bind(&key.value)
        .fetch_optional(&self.reader)
        .await?)
    }

    async fn record_put(&self, key: &RecordKey, record_id: Option<&str>) -> Result<()> {
        let (key, record_id, now) = (key.clone(), record_id.map(str::to_owned), ms(Utc::now()));
        self.write(move |c| {
            Box::pin(async move {
                let q = match &record_id {
                    Some(_) => sqlx::query(
                        "INSERT INTO record_map (tenant, connector, object, property, value, record_id, updated_at) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (tenant, connector, object, property, value) \
                         DO UPDATE SET record_id = excluded.record_id, updated_at = excluded.updated_at",
                    ),
                    None => sqlx::query(
                        "DELETE FROM record_map WHERE tenant = ?1 AND connector = ?2 AND object = ?3 \
                         AND property = ?4 AND value = ?5 AND ?6 IS NULL AND ?7 > 0",
                    ),
                };
                q.bind(key.tenant)
                    .bind(key.connector)
                    .bind(key.object)
                    .bind(key.property)
                    .bind(key.value)
                    .bind(record_id)
                    .bind(now)
                    .execute(&mut *c)
                    .await?;
                Ok(())
            })
        })
        .await
    }

    async fn jobs(&self, filter: &JobFilter) -> Result<Vec<JobSummary>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            job_columns!(),
            " FROM jobs j JOIN events e ON e.id = j.event_id \
             WHERE (?1 IS NULL OR j.status = ?1) AND (?2 IS NULL OR j.tenant = ?2) \
             AND (?3 IS NULL OR j.event_id = ?3) ORDER BY j.id DESC LIMIT ?4"
        ))
        .bind(filter.status.map(JobStatus::as_str))
        .bind(filter.tenant.as_deref())
        .bind(filter.event_id.as_deref())
        .bind(i64::from(filter.limit.unwrap_or(100)))
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(job_summary).collect()
    }

    async fn job(&self, id: JobId) -> Result<Option<JobDetail>> {
        let Some(row) = sqlx::query(concat!(
            "SELECT j.steps_done, j.step_results, j.dry_run, e.body, ",
            job_columns!(),
            " FROM jobs j JOIN events e ON e.id = j.event_id WHERE j.id = ?1"
        ))
        .bind(id)
        .fetch_optional(&self.reader)
        .await?
        else {
            return Ok(None);
        };
        let attempts = sqlx::query(
            "SELECT attempt, started_at, finished_at, outcome, step, error, retry_at FROM attempts \
             WHERE job_id = ?1 ORDER BY id",
        )
        .bind(id)
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(|r| AttemptRecord {
            attempt: u32::try_from(r.get::<i64, _>("attempt")).unwrap_or_default(),
            started_at: time(r.get("started_at")),
            finished_at: time(r.get("finished_at")),
            outcome: r.get("outcome"),
            step: r
                .get::<Option<i64>, _>("step")
                .and_then(|s| usize::try_from(s).ok()),
            error: r.get("error"),
            retry_at: r.get::<Option<i64>, _>("retry_at").map(time),
        })
        .collect();
        let body: Vec<u8> = row.get("body");
        Ok(Some(JobDetail {
            job: job_summary(&row)?,
            steps_done: usize::try_from(row.get::<i64, _>("steps_done")).unwrap_or_default(),
            step_results: json_column(row.get("step_results"))?,
            event: serde_json::from_slice(&body)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned())),
            attempts_log: attempts,
            dry_run: row
                .get::<Option<String>, _>("dry_run")
                .map(json_column)
                .transpose()?,
        }))
    }

    async fn events(&self, tenant: Option<&str>, limit: u32) -> Result<Vec<EventSummary>> {
        let rows = sqlx::query(
            "SELECT id, tenant, event_type, booking_id, received_at, jobs FROM events \
             WHERE (?1 IS NULL OR tenant = ?1) ORDER BY received_at DESC, id DESC LIMIT ?2",
        )
        .bind(tenant)
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?;
        Ok(rows
            .iter()
            .map(|r| EventSummary {
                id: r.get("id"),
                tenant: r.get("tenant"),
                event_type: r.get("event_type"),
                booking_id: r.get("booking_id"),
                received_at: time(r.get("received_at")),
                jobs: u32::try_from(r.get::<i64, _>("jobs")).unwrap_or_default(),
            })
            .collect())
    }

    async fn replay(&self, which: Replay) -> Result<Vec<JobId>> {
        let now = ms(Utc::now());
        self.write(move |c| {
            Box::pin(async move {
                let q = match &which {
                    Replay::Ids(ids) => sqlx::query_scalar(
                        "UPDATE jobs SET status = 'pending', attempts = 0, run_at = ?1, updated_at = ?1 \
                         WHERE status = 'dead' AND id IN (SELECT value FROM json_each(?2)) RETURNING id",
                    )
                    .bind(now)
                    .bind(ids_json(ids)),
                    Replay::All { tenant } => sqlx::query_scalar(
                        "UPDATE jobs SET status = 'pending', attempts = 0, run_at = ?1, updated_at = ?1 \
                         WHERE status = 'dead' AND (?2 IS NULL OR tenant = ?2) RETURNING id",
                    )
                    .bind(now)
                    .bind(tenant.clone()),
                };
                let mut ids: Vec<JobId> = q.fetch_all(&mut *c).await?;
                ids.sort_unstable();
                Ok(ids)
            })
        })
        .await
    }

    async fn purge(&self, before: DateTime<Utc>) -> Result<Purged> {
        let before = ms(before);
        self.write(move |c| {
            Box::pin(async move {
                let events = sqlx::query(
                    "DELETE FROM events WHERE received_at < ?1 AND NOT EXISTS \
                     (SELECT 1 FROM jobs j WHERE j.event_id = events.id AND j.status != 'done')",
                )
                .bind(before)
                .execute(&mut *c)
                .await?
                .rows_affected();
                let dedupe_keys = sqlx::query("DELETE FROM dedupe_keys WHERE created_at < ?1")
                    .bind(before)
                    .execute(&mut *c)
                    .await?
                    .rows_affected();
                Ok(Purged {
                    events,
                    dedupe_keys,
                })
            })
        })
        .await
    }

    async fn stats(&self) -> Result<QueueStats> {
        let mut stats = QueueStats::default();
        for row in sqlx::query("SELECT status, COUNT(*) AS n FROM jobs GROUP BY status")
            .fetch_all(&self.reader)
            .await?
        {
            let n = u64::try_from(row.get::<i64, _>("n")).unwrap_or_default();
            match JobStatus::parse(row.get("status")) {
                Some(JobStatus::Pending) => stats.pending = n,
                Some(JobStatus::Running) => stats.running = n,
                Some(JobStatus::Done) => stats.done = n,
                Some(JobStatus::Dead) => stats.dead = n,
                None => {}
            }
        }
        let now = ms(Utc::now());
        let oldest: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(run_at) FROM jobs WHERE status = 'pending' AND run_at <= ?1",
        )
        .bind(now)
        .fetch_one(&self.reader)
        .await?;
        #[allow(clippy::cast_precision_loss)]
        if let Some(t) = oldest {
            stats.oldest_due_seconds = (now - t).max(0) as f64 / 1000.0;
        }
        Ok(stats)
    }

    async fn close(&self) {
        self.writer.close().await;
        self.reader.close().await;
    }
}

async fn ingest(c: &mut SqliteConnection, ev: NewEvent) -> Result<Ingested> {
    let at = ms(ev.received_at);
    let fresh = sqlx::query(
        "INSERT INTO dedupe_keys (tenant, key, event_id, created_at) VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
    )
    .bind(&ev.tenant)
    .bind(&ev.dedupe_key)
    .bind(&ev.id)
    .bind(at)
    .execute(&mut *c)
    .await?
    .rows_affected()
        == 1;
    if !fresh {
        let event_id: String =
            sqlx::query_scalar("SELECT event_id FROM dedupe_keys WHERE tenant = ?1 AND key = ?2")
                .bind(&ev.tenant)
                .bind(&ev.dedupe_key)
                .fetch_one(&mut *c)
                .await?;
        return Ok(Ingested::Duplicate { event_id });
    }
    sqlx::query(
        "INSERT INTO events (id, tenant, event_type, booking_id, body, received_at, jobs) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .bind(&ev.id)
    .bind(&ev.tenant)
    .bind(&ev.event_type)
    .bind(&ev.booking_id)
    .bind(&ev.body)
    .bind(at)
    .bind(i64::try_from(ev.connectors.len()).unwrap_or(i64::MAX))
    .execute(&mut *c)
    .await?;
    for connector in &ev.connectors {
        let lane = lane(&ev.tenant, connector);
        let order_key = format!("{lane}/{}", ev.booking_id.as_deref().unwrap_or(&ev.id));
        sqlx::query(
            "INSERT INTO jobs (event_id, tenant, connector, lane, order_key, status, run_at, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6, ?6, ?6)",
        )
        .bind(&ev.id)
        .bind(&ev.tenant)
        .bind(connector)
        .bind(lane)
        .bind(order_key)
        .bind(at)
        .execute(&mut *c)
        .await?;
    }
    Ok(Ingested::New {
        event_id: ev.id,
        jobs: ev.connectors.len(),
    })
}

async fn claim(c: &mut SqliteConnection, req: ClaimRequest) -> Result<Vec<ClaimedJob>> {
    let per_lane = req
        .room
        .values()
        .copied()
        .chain([req.default_room])
        .max()
        .unwrap_or(0)
        .min(req.limit);
    if per_lane == 0 {
        return Ok(Vec::new());
    }
    // Up to `per_lane` due jobs of each lane, ranked so that every lane's first job comes
    // before any lane's second (fairness); a job waits while an earlier job of its
    // booking is unfinished (order).
    let full: Vec<&String> = req
        .room
        .iter()
        .filter(|(_, n)| **n == 0)
        .map(|(lane, _)| lane)
        .collect();
    let candidates = sqlx::query(
        "SELECT id, lane FROM ( \
           SELECT j.id, j.lane, ROW_NUMBER() OVER (PARTITION BY j.lane ORDER BY j.id) AS rn FROM jobs j \
           WHERE j.status = 'pending' AND j.run_at <= ?1 AND j.lane NOT IN (SELECT value FROM json_each(?4)) \
             AND NOT EXISTS (SELECT 1 FROM jobs p WHERE p.order_key = j.order_key AND p.id < j.id \
                             AND p.status IN ('pending', 'running'))) \
         WHERE rn <= ?2 ORDER BY rn, id LIMIT ?3",
    )
    .bind(ms(req.now))
    .bind(i64::try_from(per_lane).unwrap_or(i64::MAX))
    .bind(i64::try_from(req.limit.saturating_mul(4).max(64)).unwrap_or(i64::MAX))
    .bind(serde_json::to_string(&full).unwrap_or_else(|_| "[]".to_owned()))
    .fetch_all(&mut *c)
    .await?;
    let mut room = req.room;
    let mut chosen: Vec<JobId> = Vec::new();
    for row in &candidates {
        let lane: String = row.get("lane");
        let left = room.entry(lane).or_insert(req.default_room);
        if *left > 0 {
            *left -= 1;
            chosen.push(row.get("id"));
            if chosen.len() == req.limit {
                break;
            }
        }
    }
    if chosen.is_empty() {
        return Ok(Vec::new());
    }
    let ids = ids_json(&chosen);
    let now = ms(req.now);
    let lease_until = now + i64::try_from(req.lease.as_millis()).unwrap_or(i64::MAX / 2);
    sqlx::query(
        "UPDATE jobs SET status = 'running', attempts = attempts + 1, lease_owner = ?1, lease_until = ?2, updated_at = ?3 \
         WHERE id IN (SELECT value FROM json_each(?4))",
    )
    .bind(&req.worker)
    .bind(lease_until)
    .bind(now)
    .bind(&ids)
    .execute(&mut *c)
    .await?;
    let rows = sqlx::query(
        "SELECT j.id, j.event_id, j.tenant, j.connector, e.event_type, e.body, e.received_at, j.attempts, j.steps_done, \
         j.step_results FROM jobs j JOIN events e ON e.id = j.event_id WHERE j.id IN (SELECT value FROM json_each(?1)) \
         ORDER BY j.id",
    )
    .bind(&ids)
    .fetch_all(&mut *c)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(ClaimedJob {
                id: r.get("id"),
                event_id: r.get("event_id"),
                tenant: r.get("tenant"),
                connector: r.get("connector"),
                event_type: r.get("event_type"),
                body: r.get("body"),
                received_at: time(r.get("received_at")),
                attempts: u32::try_from(r.get::<i64, _>("attempts")).unwrap_or(u32::MAX),
                steps_done: usize::try_from(r.get::<i64, _>("steps_done")).unwrap_or_default(),
                step_results: json_column(r.get("step_results"))?,
            })
        })
        .collect()
}

async fn finish(c: &mut SqliteConnection, f: Finish) -> Result<bool> {
    let (status, run_at, outcome, uncount) = match &f.outcome {
        Outcome::Done => ("done", f.finished_at, "done", 0),
        Outcome::Retry(at) => ("pending", *at, "retry", 0),
        Outcome::RateLimited(at) => ("pending", *at, "rate_limited", 1),
        Outcome::Dead => ("dead", f.finished_at, "dead", 0),
    };
    let attempt: Option<i64> = sqlx::query_scalar(
        "UPDATE jobs SET status = ?1, run_at = ?2, attempts = attempts - ?3, lease_owner = NULL, lease_until = NULL, \
         steps_done = ?4, step_results = ?5, dry_run = COALESCE(?6, dry_run), last_error = ?7, updated_at = ?8 \
         WHERE id = ?9 AND status = 'running' AND lease_owner = ?10 RETURNING attempts + ?3",
    )
    .bind(status)
    .bind(ms(run_at))
    .bind(uncount)
    .bind(i64::try_from(f.steps_done).unwrap_or_default())
    .bind(f.step_results.to_string())
    .bind(f.dry_run.as_ref().map(Value::to_string))
    .bind(f.error.as_deref())
    .bind(ms(f.finished_at))
    .bind(f.job)
    .bind(&f.worker)
    .fetch_optional(&mut *c)
    .await?;
    let Some(attempt) = attempt else {
        return Ok(false);
    };
    let retry_at =
        matches!(f.outcome, Outcome::Retry(_) | Outcome::RateLimited(_)).then(|| ms(run_at));
    sqlx::query(
        "INSERT INTO attempts (job_id, attempt, started_at, finished_at, outcome, step, error, retry_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )
    .bind(f.job)
    .bind(attempt)
    .bind(ms(f.started_at))
    .bind(ms(f.finished_at))
    .bind(outcome)
    .bind(f.failed_step.and_then(|s| i64::try_from(s).ok()))
    .bind(f.error.as_deref())
    .bind(retry_at)
    .execute(&mut *c)
    .await?;
    Ok(true)
}

fn job_summary(r: &SqliteRow) -> Result<JobSummary> {
    let status: String = r.get("status");
    Ok(JobSummary {
        id: r.get("id"),
        event_id: r.get("event_id"),
        tenant: r.get("tenant"),
        connector: r.get("connector"),
        event_type: r.get("event_type"),
        booking_id: r.get("booking_id"),
        status: JobStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("job status {status:?}")))?,
        attempts: u32::try_from(r.get::<i64, _>("attempts")).unwrap_or_default(),
        run_at: time(r.get("run_at")),
        last_error: r.get("last_error"),
        created_at: time(r.get("created_at")),
        updated_at: time(r.get("updated_at")),
    })
}

fn json_column(text: String) -> Result<Value> {
    serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(format!("stored JSON: {e}")))
}
