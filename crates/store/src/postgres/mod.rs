//! The scale-out backend: PostgreSQL, shared by several replicas (tokio-postgres, with a
//! deadpool pool).
//!
//! Invariants (beyond the [`crate`] guarantees, which hold across replicas):
//! - the schema is brought up to date at open, under an advisory lock ([`migrate`]);
//! - an acknowledged event is committed (PostgreSQL's own durability: `synchronous_commit`
//!   as the server is configured); ingests are group-committed ([`batch`]);
//! - a claim locks its jobs with `FOR UPDATE SKIP LOCKED`, so replicas never lease one
//!   job twice and never wait for each other; the per-booking order check runs in the
//!   same statement, so a booking's later job is never leased while an earlier one is
//!   pending or running on any replica ([`claim`]);
//! - leases carry the claiming replica's clock: replicas must keep their clocks in sync
//!   (NTP), far within `delivery.lease`;
//! - [`Store::reclaim`] only ever frees lapsed leases here, whatever `all_running` says:
//!   with several replicas, "running" jobs may be another live replica's, and a
//!   restarting replica's own jobs come back when their leases lapse;
//! - the password of `storage.url` never appears in a log line or an error
//!   ([`describe`] never prints the URL; [`crate::open`] masks it);
//! - writes that fail because the database cannot take them (unreachable, restarting,
//!   disk full, read-only, timed out) mark the store failing ([`Store::write_failure`])
//!   until a later write commits.

mod batch;
mod claim;
mod listen;
mod lock;
mod migrate;
mod read;
mod windows;

use crate::{
    Access, AttemptRecord, ClaimRequest, ClaimedJob, EventQuery, EventSummary, Finish, Ingested,
    JobDetail, JobId, JobQuery, JobSummary, MinuteCounts, NewEvent, PurgeBefore, Purged,
    QueueStats, RecordKey, Replay, Result, Store, StoreError, TenantCounts,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::{Manager, ManagerConfig, RecyclingMethod, Runtime};
use slatis_core::config::StorageConfig;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::Notify;
use tokio_postgres::NoTls;

type Pool = deadpool_postgres::Pool;

/// How long a connection may take to open, and a caller may wait for a free one: an
/// unreachable database fails writes (503) instead of holding webhooks.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A PostgreSQL-backed [`Store`].
pub struct PgStore {
    pool: Pool,
    /// Connections holding named locks (held through a CRM call): a pool of their own,
    /// so held locks never starve ingest, claims or the rate windows.
    lock_pool: Pool,
    batcher: batch::Batcher,
    health: Arc<Health>,
    wake: Arc<Notify>,
    channel: String,
    _listener: Option<listen::Listener>,
}

/// Whether writes go through, and whether the store is closed.
#[derive(Default)]
struct Health {
    failure: Mutex<Option<String>>,
    closed: AtomicBool,
}

impl Health {
    fn set(&self, failure: Option<String>) {
        *self.failure.lock().unwrap_or_else(PoisonError::into_inner) = failure;
    }

    /// Notes how a write ended: a database fault marks the store failing, a commit that
    /// wrote something marks it healthy.
    fn wrote<T>(&self, result: &Result<T>) {
        match result {
            Ok(_) => self.set(None),
            Err(e) => {
                if let Some(why) = fault(e) {
                    tracing::error!(error = %why, "store: a write failed");
                    self.set(Some(why));
                }
            }
        }
    }

    fn failure(&self) -> Option<String> {
        if self.closed.load(Ordering::Acquire) {
            return Some("the store is closed".to_owned());
        }
        self.failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// A driver error, without its (possibly long) source chain, and never with the URL.
pub(crate) fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => e.to_string(),
    }
}

/// Why `e` says the database cannot take writes (as opposed to a fault of the write
/// itself, such as a constraint): unreachable, restarting, out of space, read-only, a
/// statement timeout, a lost commit.
fn fault(e: &StoreError) -> Option<String> {
    match e {
        StoreError::Unavailable(_) | StoreError::Commit(_) => Some(e.to_string()),
        StoreError::Postgres(pg) => {
            let Some(code) = pg.code() else {
                // no SQLSTATE: the connection itself failed
                return Some(e.to_string());
            };
            let class = &code.code()[..2];
            // 08 connection, 53 resources (disk full), 57 operator intervention
            // (shutdown, statement timeout), 58 system error, 25006 read-only.
            (matches!(class, "08" | "53" | "57" | "58") || code.code() == "25006")
                .then(|| e.to_string())
        }
        _ => None,
    }
}

/// A pooled connection, or [`StoreError::Unavailable`].
async fn get(pool: &Pool) -> Result<deadpool_postgres::Client> {
    pool.get().await.map_err(|e| {
        let why = match &e {
            deadpool_postgres::PoolError::Backend(pg) => describe(pg),
            other => other.to_string(),
        };
        StoreError::Unavailable(why)
    })
}

/// The driver's config for `url`, with the statement timeout and connect timeout.
fn pg_config(storage: &StorageConfig) -> Result<tokio_postgres::Config> {
    let mut config: tokio_postgres::Config = storage
        .url
        .parse()
        .map_err(|_| StoreError::UnsupportedUrl(slatis_core::redact::mask_url(&storage.url)))?;
    let timeout = format!(
        "-c statement_timeout={}",
        storage.statement_timeout.as_millis()
    );
    let options = match config.get_options() {
        Some(given) if !given.is_empty() => format!("{given} {timeout}"),
        _ => timeout,
    };
    config
        .options(&options)
        .connect_timeout(CONNECT_TIMEOUT)
        .keepalives(true)
        .keepalives_idle(Duration::from_secs(30))
        .application_name("slatis-sync");
    Ok(config)
}

/// A pool of `size` connections; a caller waits up to `wait` for a free one.
fn pool(config: tokio_postgres::Config, size: usize, wait: Duration) -> Result<Pool> {
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(size)
        .runtime(Runtime::Tokio1)
        .create_timeout(Some(CONNECT_TIMEOUT))
        .wait_timeout(Some(wait))
        .recycle_timeout(Some(CONNECT_TIMEOUT))
        .build()
        .map_err(|e| StoreError::Unavailable(e.to_string()))
}

/// The schema the connections work in (the first of their `search_path`).
async fn schema(pool: &Pool) -> Result<String> {
    let client = get(pool).await?;
    let row = client.query_one("SELECT current_schema()", &[]).await?;
    row.get::<_, Option<String>>(0).ok_or_else(|| {
        StoreError::Migrate("no schema: the search_path names no schema that exists".to_owned())
    })
}

/// Applies pending migrations (`check`: only lists them); returns their names.
///
/// # Errors
/// When the database cannot be reached or a migration fails.
pub async fn migrate(storage: &StorageConfig, check: bool) -> Result<Vec<String>> {
    let pool = pool(pg_config(storage)?, 1, CONNECT_TIMEOUT)?;
    let mut client = get(&pool).await?;
    let result = if check {
        migrate::check(&client).await
    } else {
        migrate::apply(&mut client).await
    };
    pool.close();
    result
}

impl PgStore {
    /// Connects, migrates the schema and starts the group-commit task and the listener.
    /// [`Access::Shared`] (the `dlq` commands) does not listen.
    ///
    /// # Errors
    /// When the database cannot be reached or migrated.
    pub async fn open(storage: &StorageConfig, access: Access) -> Result<Self> {
        let config = pg_config(storage)?;
        // Waiting for a lock connection is waiting for a lock: as long as a lock wait.
        let lock_pool = pool(config.clone(), storage.pool_size, storage.statement_timeout)?;
        let pool = pool(config.clone(), storage.pool_size, CONNECT_TIMEOUT)?;
        migrate::apply(&mut get(&pool).await?).await?;
        let channel = listen::channel(&schema(&pool).await?);
        let wake = Arc::new(Notify::new());
        let listener = (access == Access::Owner)
            .then(|| listen::Listener::start(config, channel.clone(), Arc::clone(&wake)));
        let health = Arc::new(Health::default());
        let batcher = batch::Batcher::start(
            pool.clone(),
            Arc::clone(&health),
            channel.clone(),
            storage.pool_size.div_ceil(2),
        );
        Ok(Self {
            lock_pool,
            pool,
            batcher,
            health,
            wake,
            channel,
            _listener: listener,
        })
    }

    /// A connection for a call, refused once the store is closed.
    async fn conn(&self) -> Result<deadpool_postgres::Client> {
        if self.health.closed.load(Ordering::Acquire) {
            return Err(StoreError::Closed);
        }
        get(&self.pool).await
    }

    /// Runs a write (one statement, autocommit) and notes its outcome for health.
    async fn write<T>(&self, result: Result<T>) -> Result<T> {
        self.health.wrote(&result);
        result
    }
}

/// The end of a replay statement after its `WITH r AS (UPDATE … RETURNING id)`: notifies
/// the channel (the placeholder given) when it replayed something, answers the ids.
macro_rules! replayed {
    ($channel:literal) => {
        concat!(
            ", n AS (SELECT pg_notify(",
            $channel,
            ", '') WHERE EXISTS (SELECT 1 FROM r)) \
             SELECT id FROM r, (SELECT count(*) FROM n) AS notified ORDER BY id"
        )
    };
}
/// `u64` of a row count.
fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or_default()
}

/// `i32` of a small count.
fn small(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

#[async_trait]
impl Store for PgStore {
    async fn ingest(&self, event: NewEvent) -> Result<Ingested> {
        if self.health.closed.load(Ordering::Acquire) {
            return Err(StoreError::Closed);
        }
        self.batcher.ingest(event).await
    }

    async fn claim(&self, req: ClaimRequest) -> Result<Vec<ClaimedJob>> {
        if req.limit == 0 {
            return Ok(Vec::new());
        }
        let result = async {
            let mut client = self.conn().await?;
            claim::claim(&mut client, &req).await
        }
        .await;
        self.write(result).await
    }

    async fn heartbeat(&self, worker: &str, jobs: &[JobId], until: DateTime<Utc>) -> Result<()> {
        if jobs.is_empty() {
            return Ok(());
        }
        let result = async {
            let client = self.conn().await?;
            let stmt = client
                .prepare_cached(
                    "UPDATE jobs SET lease_until = $1 WHERE lease_owner = $2 AND status = 'running' AND id = ANY($3)",
                )
                .await?;
            client.execute(&stmt, &[&until, &worker, &jobs]).await?;
            Ok(())
        }
        .await;
        self.write(result).await
    }

    async fn finish_all(&self, batch: Vec<Finish>) -> Result<Vec<bool>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let result = async {
            let mut client = self.conn().await?;
            let tx = client.transaction().await?;
            // pipelined: one round trip for the batch, then the commit
            let recorded =
                futures_util::future::try_join_all(batch.iter().map(|f| claim::finish(&tx, f)))
                    .await?;
            tx.commit().await?;
            Ok(recorded)
        }
        .await;
        self.write(result).await
    }

    async fn release(&self, worker: &str, jobs: &[JobId]) -> Result<u64> {
        if jobs.is_empty() {
            return Ok(0);
        }
        let result = async {
            let client = self.conn().await?;
            let stmt = client
                .prepare_cached(
                    "WITH r AS (UPDATE jobs SET status = 'pending', attempts = GREATEST(attempts - 1, 0), \
                     lease_owner = NULL, lease_until = NULL, updated_at = $1 \
                     WHERE lease_owner = $2 AND status = 'running' AND id = ANY($3) RETURNING id) \
                     SELECT count(*), pg_notify($4, '') FROM r",
                )
                .await?;
            let row = client
                .query_one(&stmt, &[&Utc::now(), &worker, &jobs, &self.channel])
                .await?;
            Ok(count(row.get(0)))
        }
        .await;
        self.write(result).await
    }

    async fn reclaim(&self, now: DateTime<Utc>, _all_running: bool) -> Result<u64> {
        // Only lapsed leases, even for `all_running`: see the module's invariants.
        let result = async {
            let client = self.conn().await?;
            let stmt = client
                .prepare_cached(
                    "WITH r AS (UPDATE jobs SET status = 'pending', lease_owner = NULL, lease_until = NULL, updated_at = $1 \
                     WHERE status = 'running' AND lease_until < $1 RETURNING id) \
                     SELECT count(*), pg_notify($2, '') FROM r",
                )
                .await?;
            let row = client.query_one(&stmt, &[&now, &self.channel]).await?;
            Ok(count(row.get(0)))
        }
        .await;
        self.write(result).await
    }

    async fn record_get(&self, key: &RecordKey) -> Result<Option<String>> {
        let client = self.conn().await?;
        let stmt = client
            .prepare_cached(
                "SELECT record_id FROM record_map WHERE tenant = $1 AND connector = $2 AND object = $3 \
                 AND property = $4 AND value = $5",
            )
            .await?;
        let row = client
            .query_opt(
                &stmt,
                &[
                    &key.tenant,
                    &key.connector,
                    &key.object,
                    &key.property,
                    &key.value,
                ],
            )
            .await?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn record_put(&self, key: &RecordKey, record_id: Option<&str>) -> Result<()> {
        let result = async {
            let client = self.conn().await?;
            match record_id {
                Some(id) => {
                    let stmt = client
                        .prepare_cached(
                            "INSERT INTO record_map (tenant, connector, object, property, value, record_id, updated_at) \
                             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (tenant, connector, object, property, value) \
                             DO UPDATE SET record_id = excluded.record_id, updated_at = excluded.updated_at",
                        )
                        .await?;
                    client
                        .execute(
                            &stmt,
                            &[&key.tenant, &key.connector, &key.object, &key.property, &key.value, &id, &Utc::now()],
                        )
                        .await?
                }
                None => {
                    let stmt = client
                        .prepare_cached(
                            "DELETE FROM record_map WHERE tenant = $1 AND connector = $2 AND object = $3 \
                             AND property = $4 AND value = $5",
                        )
                        .await?;
                    client
                        .execute(
                            &stmt,
                            &[&key.tenant, &key.connector, &key.object, &key.property, &key.value],
                        )
                        .await?
                }
            };
            Ok(())
        }
        .await;
        self.write(result).await
    }

    async fn jobs(&self, query: &JobQuery) -> Result<Vec<JobSummary>> {
        read::jobs(&self.conn().await?, query).await
    }

    async fn job(&self, id: JobId) -> Result<Option<JobDetail>> {
        read::job(&self.conn().await?, id).await
    }

    async fn events(&self, query: &EventQuery) -> Result<Vec<EventSummary>> {
        read::events(&self.conn().await?, query).await
    }

    async fn booking_attempts(
        &self,
        tenant: Option<&str>,
        booking_id: &str,
        limit: u32,
    ) -> Result<Vec<AttemptRecord>> {
        read::booking_attempts(&self.conn().await?, tenant, booking_id, limit).await
    }

    async fn has_event(&self, tenant: &str, booking_id: &str, event_type: &str) -> Result<bool> {
        read::has_event(&self.conn().await?, tenant, booking_id, event_type).await
    }

    async fn tenant_counts(&self) -> Result<Vec<TenantCounts>> {
        read::tenant_counts(&self.conn().await?).await
    }

    async fn activity(
        &self,
        tenant: Option<&str>,
        since: DateTime<Utc>,
    ) -> Result<Vec<MinuteCounts>> {
        read::activity(&self.conn().await?, tenant, since).await
    }

    async fn replay(&self, which: Replay) -> Result<Vec<JobId>> {
        let result = async {
            let client = self.conn().await?;
            let ids: Vec<JobId> = match &which {
                Replay::Ids(ids) => {
                    let stmt = client
                        .prepare_cached(concat!(
                            "WITH r AS (UPDATE jobs SET status = 'pending', attempts = 0, rate_limited = 0, \
                             run_at = $1, updated_at = $1 WHERE status = 'dead' AND id = ANY($2) RETURNING id)",
                            replayed!("$3")
                        ))
                        .await?;
                    client
                        .query(&stmt, &[&Utc::now(), ids, &self.channel])
                        .await?
                        .iter()
                        .map(|r| r.get(0))
                        .collect()
                }
                Replay::Matching(filter) => {
                    let mut clause = crate::query::dead(filter, true);
                    let at = clause.bind(crate::query::Arg::Time(Utc::now()));
                    let channel = clause.bind(crate::query::Arg::Text(self.channel.clone()));
                    let sql = format!(
                        concat!(
                            "WITH r AS (UPDATE jobs SET status = 'pending', attempts = 0, rate_limited = 0, \
                             run_at = {at}, updated_at = {at} WHERE status = 'dead' AND id IN \
                             (SELECT j.id FROM jobs j JOIN events e ON e.id = j.event_id WHERE {filter}) RETURNING id)",
                            replayed!("{channel}")
                        ),
                        at = at,
                        channel = channel,
                        filter = clause.text
                    );
                    client
                        .query(&sql, &read::args(&clause))
                        .await?
                        .iter()
                        .map(|r| r.get(0))
                        .collect()
                }
            };
            Ok(ids)
        }
        .await;
        self.write(result).await
    }

    async fn purge(&self, before: PurgeBefore) -> Result<Purged> {
        // PostgreSQL's timestamps start in 4713 BC; nothing stored is older than 1970.
        let (events_before, records_before) = (
            before.events.max(DateTime::UNIX_EPOCH),
            before.records.max(DateTime::UNIX_EPOCH),
        );
        let result = async {
            let client = self.conn().await?;
            let events = client
                .execute(
                    "DELETE FROM events WHERE received_at < $1 AND NOT EXISTS \
                     (SELECT 1 FROM jobs j WHERE j.event_id = events.id AND j.status != 'done')",
                    &[&events_before],
                )
                .await?;
            let dedupe_keys = client
                .execute(
                    "DELETE FROM dedupe_keys WHERE created_at < $1",
                    &[&events_before],
                )
                .await?;
            let records = client
                .execute(
                    "DELETE FROM record_map WHERE updated_at < $1",
                    &[&records_before],
                )
                .await?;
            Ok(Purged {
                events,
                dedupe_keys,
                records,
            })
        }
        .await;
        self.write(result).await
    }

    async fn stats(&self) -> Result<QueueStats> {
        read::stats(&self.conn().await?).await
    }

    fn write_failure(&self) -> Option<String> {
        self.health.failure()
    }

    async fn lock(&self, key: &str) -> Result<slatis_core::connector::KeyGuard> {
        if self.health.closed.load(Ordering::Acquire) {
            return Err(StoreError::Closed);
        }
        lock::lock(get(&self.lock_pool).await?, key).await
    }

    fn rate_windows(&self) -> Option<Arc<dyn slatis_core::connector::SharedWindows>> {
        Some(Arc::new(windows::PgWindows {
            pool: self.pool.clone(),
        }))
    }

    async fn changed(&self) {
        self.wake.notified().await;
    }

    async fn close(&self) {
        self.health.closed.store(true, Ordering::Release);
        self.batcher.close().await;
        self.pool.close();
        self.lock_pool.close();
    }
}
