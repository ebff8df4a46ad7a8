//! Group commit of ingests: many concurrent webhooks, one transaction.
//!
//! Ingests queue up for [`Batcher`]'s task, which takes all that are waiting (up to
//! [`MAX_BATCH`]) and stores them in one transaction: `BEGIN`, then every event's
//! statement pipelined on one connection (one round trip for the whole batch), then
//! `COMMIT`. Up to `writers` batches are in flight at once, each on its own pooled
//! connection, so a slow commit does not stall the queue.
//!
//! Invariants:
//! - no caller hears "stored" before the `COMMIT` of its batch returned; a batch that
//!   does not commit answers every caller with the error (nothing of it was kept);
//! - an event's dedupe key, its row and its jobs are one statement, inside the batch's
//!   transaction: all or nothing; a duplicate (in the table, or earlier in the batch)
//!   makes nothing and answers the first event's id;
//! - one event that fails on its own (not the database's fault) does not fail the
//!   others: the batch is then retried one event per transaction;
//! - a batch that made jobs notifies the schema's channel, at commit.

use super::{Health, Pool, describe, fault};
use crate::{Ingested, NewEvent, Result, StoreError};
use std::sync::Arc;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio_postgres::types::ToSql;

/// The most events one transaction takes.
const MAX_BATCH: usize = 256;

/// An event's dedupe key, row and jobs, in one statement.
///
/// `$1` tenant, `$2` dedupe key, `$3` event id, `$4` received at, `$5` event type,
/// `$6` booking, `$7` body, `$8` connectors (route order), `$9` attendee email.
const INGEST: &str = "WITH d AS ( \
       INSERT INTO dedupe_keys (tenant, key, event_id, created_at) VALUES ($1, $2, $3, $4) \
       ON CONFLICT DO NOTHING RETURNING event_id), \
     e AS ( \
       INSERT INTO events (id, tenant, event_type, booking_id, attendee_email, body, received_at, jobs) \
       SELECT $3, $1, $5, $6, $9, $7, $4, cardinality($8::text[]) FROM d RETURNING id), \
     j AS ( \
       INSERT INTO jobs (event_id, tenant, connector, lane, order_key, status, run_at, created_at, updated_at) \
       SELECT e.id, $1, c.connector, $1 || '/' || c.connector, \
              $1 || '/' || c.connector || '/' || COALESCE($6, $3), 'pending', $4, $4, $4 \
       FROM e CROSS JOIN unnest($8::text[]) WITH ORDINALITY AS c (connector, n) ORDER BY c.n \
       RETURNING id) \
     SELECT EXISTS (SELECT 1 FROM d), (SELECT count(*) FROM j)";

/// The first event of a duplicate body.
const FIRST: &str = "SELECT event_id FROM dedupe_keys WHERE tenant = $1 AND key = $2";

struct Waiting {
    event: NewEvent,
    reply: oneshot::Sender<Result<Ingested>>,
}

enum Msg {
    Ingest(Box<Waiting>),
    Close(oneshot::Sender<()>),
}

/// A handle to the group-commit task.
pub(super) struct Batcher {
    tx: mpsc::Sender<Msg>,
}

impl Batcher {
    /// Starts the task: batches run on `pool`, at most `writers` at once.
    pub(super) fn start(pool: Pool, health: Arc<Health>, channel: String, writers: usize) -> Self {
        let (tx, rx) = mpsc::channel(4096);
        let ctx = Arc::new(Ctx {
            pool,
            health,
            channel,
        });
        tokio::spawn(run(ctx, rx, writers.max(1)));
        Self { tx }
    }

    /// Stores `event` in the next batch; answers once that batch committed.
    pub(super) async fn ingest(&self, event: NewEvent) -> Result<Ingested> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Msg::Ingest(Box::new(Waiting { event, reply })))
            .await
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Lets queued and running batches finish, then stops the task.
    pub(super) async fn close(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Close(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}

struct Ctx {
    pool: Pool,
    health: Arc<Health>,
    channel: String,
}

async fn run(ctx: Arc<Ctx>, mut rx: mpsc::Receiver<Msg>, writers: usize) {
    let slots = Arc::new(Semaphore::new(writers));
    let all = u32::try_from(writers).unwrap_or(u32::MAX);
    let mut closing = None;
    while closing.is_none() {
        let Some(first) = rx.recv().await else { break };
        let mut batch = Vec::new();
        match first {
            Msg::Ingest(w) => batch.push(*w),
            Msg::Close(done) => closing = Some(done),
        }
        // Wait for a free writer first: what arrives meanwhile joins this batch.
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            break;
        };
        while closing.is_none() && batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(Msg::Ingest(w)) => batch.push(*w),
                Ok(Msg::Close(done)) => closing = Some(done),
                Err(_) => break,
            }
        }
        if batch.is_empty() {
            continue;
        }
        let ctx = Arc::clone(&ctx);
        tokio::spawn(async move {
            commit(&ctx, batch).await;
            drop(slot);
        });
    }
    rx.close();
    // Every batch in flight has answered once all writer slots are back.
    let _ = slots.acquire_many(all).await;
    while let Ok(msg) = rx.try_recv() {
        if let Msg::Ingest(w) = msg {
            let _ = w.reply.send(Err(StoreError::Closed));
        }
    }
    if let Some(done) = closing {
        let _ = done.send(());
    }
}

/// Stores a batch and answers each caller.
async fn commit(ctx: &Ctx, batch: Vec<Waiting>) {
    #[allow(clippy::cast_precision_loss)]
    metrics::histogram!("slatis_store_write_batch_size").record(batch.len() as f64);
    let events: Vec<&NewEvent> = batch.iter().map(|w| &w.event).collect();
    let result = store(ctx, &events).await;
    ctx.health.wrote(&result);
    match result {
        Ok(answers) => {
            for (w, a) in batch.into_iter().zip(answers) {
                let _ = w.reply.send(Ok(a));
            }
        }
        Err(e) if batch.len() > 1 && fault(&e).is_none() => {
            // One event's own fault: give each its own transaction.
            tracing::warn!(error = %e, "store: an ingest batch failed; storing its events one by one");
            for w in batch {
                let result = store(ctx, &[&w.event]).await;
                ctx.health.wrote(&result);
                let _ = w.reply.send(result.map(|mut a| a.remove(0)));
            }
        }
        Err(e) => {
            let why = e.to_string();
            for w in batch {
                let _ = w.reply.send(Err(StoreError::Commit(why.clone())));
            }
        }
    }
}

/// Stores `events` in one transaction; the answers are in their order.
async fn store(ctx: &Ctx, events: &[&NewEvent]) -> Result<Vec<Ingested>> {
    let mut client = super::get(&ctx.pool).await?;
    let tx = client.transaction().await?;
    let ingest = tx.prepare_cached(INGEST).await?;
    let params: Vec<[&(dyn ToSql + Sync); 9]> = events
        .iter()
        .map(|ev| -> [&(dyn ToSql + Sync); 9] {
            [
                &ev.tenant,
                &ev.dedupe_key,
                &ev.id,
                &ev.received_at,
                &ev.event_type,
                &ev.booking_id,
                &ev.body,
                &ev.connectors,
                &ev.attendee_email,
            ]
        })
        .collect();
    // Sent together: one round trip for the whole batch.
    let rows =
        futures_util::future::try_join_all(params.iter().map(|p| tx.query_one(&ingest, p))).await?;
    let mut answers = Vec::with_capacity(events.len());
    let mut jobs_made = false;
    for (ev, row) in events.iter().zip(&rows) {
        let fresh: bool = row.get(0);
        let jobs: i64 = row.get(1);
        if fresh {
            jobs_made |= jobs > 0;
            answers.push(Ingested::New {
                event_id: ev.id.clone(),
                jobs: usize::try_from(jobs).unwrap_or_default(),
            });
        } else {
            let first = tx.prepare_cached(FIRST).await?;
            let event_id: String = tx
                .query_one(&first, &[&ev.tenant, &ev.dedupe_key])
                .await?
                .get(0);
            answers.push(Ingested::Duplicate { event_id });
        }
    }
    if jobs_made {
        tx.execute("SELECT pg_notify($1, '')", &[&ctx.channel])
            .await?;
    }
    tx.commit()
        .await
        .map_err(|e| StoreError::Commit(describe(&e)))?;
    Ok(answers)
}
