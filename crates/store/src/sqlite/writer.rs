//! The single SQLite writer, with group commit.
//!
//! Every write of the process runs on one connection owned by one OS thread. The thread
//! takes all writes that are waiting (up to [`MAX_BATCH`]), runs them in one
//! `BEGIN IMMEDIATE … COMMIT`, each inside its own savepoint, and answers each caller only
//! after the commit. So a burst of webhooks shares one fsync instead of paying one each,
//! a failed write rolls back alone without failing its batch, and no statement pays a
//! thread hop: the whole batch runs on the writer thread.
//!
//! A batch that holds a [`Durability::Sync`] write (an acknowledged event, an operator's
//! replay) commits with `synchronous = FULL`: it survives a power cut. Batches of only
//! [`Durability::Relaxed`] writes (claims, outcomes, leases) commit with `NORMAL`: a
//! process crash keeps them, a power cut may lose the last few, which only means a
//! delivery runs again (at-least-once).
//!
//! Invariant: no caller hears "done" for a write that was not committed.

use crate::{Result, StoreError};
use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

/// The most writes one transaction takes.
const MAX_BATCH: usize = 512;

/// A write's result, delivered once the batch's commit is known.
struct Applied {
    ok: bool,
    complete: Box<dyn FnOnce(Result<()>) + Send>,
}

/// How hard a write's commit must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Durability {
    /// Survives a power cut (fsync at commit).
    Sync,
    /// Survives a process crash; a power cut may lose it, and losing it is harmless.
    Relaxed,
}

/// A queued write: `apply` runs it in a batch; `fail` answers the caller without running
/// it (the batch could not even begin).
struct WriteOp {
    durability: Durability,
    apply: Box<dyn FnOnce(&Connection) -> Applied + Send>,
    fail: Box<dyn FnOnce(StoreError) + Send>,
}

enum Msg {
    Write(WriteOp),
    Close(oneshot::Sender<()>),
}

/// A handle to the writer thread.
#[derive(Clone)]
pub(super) struct Writer {
    tx: mpsc::Sender<Msg>,
}

type Reply<T> = std::sync::Arc<std::sync::Mutex<Option<oneshot::Sender<Result<T>>>>>;

fn answer<T>(reply: &Reply<T>, r: Result<T>) {
    if let Some(tx) = reply
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take()
    {
        let _ = tx.send(r);
    }
}

impl Writer {
    /// Starts the writer thread on `conn`.
    pub(super) fn start(conn: Connection) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel(4096);
        std::thread::Builder::new()
            .name("slatis-sqlite-writer".into())
            .spawn(move || run(conn, rx))?;
        Ok(Self { tx })
    }

    /// Runs `f` in the next batch; returns its result once the batch is committed.
    pub(super) async fn write<T, F>(&self, durability: Durability, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel::<Result<T>>();
        let reply: Reply<T> = std::sync::Arc::new(std::sync::Mutex::new(Some(tx)));
        let on_fail = std::sync::Arc::clone(&reply);
        let op = WriteOp {
            durability,
            apply: Box::new(move |conn| {
                let result = f(conn);
                Applied {
                    ok: result.is_ok(),
                    complete: Box::new(move |commit: Result<()>| {
                        answer(&reply, commit.and(result))
                    }),
                }
            }),
            fail: Box::new(move |e| answer(&on_fail, Err(e))),
        };
        self.tx
            .send(Msg::Write(op))
            .await
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Lets queued writes finish, then stops the writer.
    pub(super) async fn close(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Close(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}

fn run(conn: Connection, mut rx: mpsc::Receiver<Msg>) {
    let mut batch: Vec<WriteOp> = Vec::with_capacity(MAX_BATCH);
    let mut current = Durability::Sync;
    let mut closing = None;
    while let Some(first) = rx.blocking_recv() {
        match first {
            Msg::Write(w) => batch.push(w),
            Msg::Close(done) => closing = Some(done),
        }
        while closing.is_none() && batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(Msg::Write(w)) => batch.push(w),
                Ok(Msg::Close(done)) => closing = Some(done),
                Err(_) => break,
            }
        }
        if !batch.is_empty() {
            commit_batch(&conn, &mut batch, &mut current);
        }
        if let Some(done) = closing.take() {
            rx.close();
            while let Ok(Msg::Write(w)) = rx.try_recv() {
                batch.push(w);
            }
            if !batch.is_empty() {
                commit_batch(&conn, &mut batch, &mut current);
            }
            drop(conn);
            let _ = done.send(());
            return;
        }
    }
}

fn commit_batch(conn: &Connection, batch: &mut Vec<WriteOp>, current: &mut Durability) {
    #[allow(clippy::cast_precision_loss)]
    metrics::histogram!("slatis_store_write_batch_size").record(batch.len() as f64);
    let wanted = if batch.iter().any(|op| op.durability == Durability::Sync) {
        Durability::Sync
    } else {
        Durability::Relaxed
    };
    if wanted != *current {
        let pragma = if wanted == Durability::Sync {
            "PRAGMA synchronous = FULL"
        } else {
            "PRAGMA synchronous = NORMAL"
        };
        match conn.execute_batch(pragma) {
            Ok(()) => *current = wanted,
            Err(e) => tracing::error!(error = %e, "store: cannot set synchronous"),
        }
    }
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        tracing::error!(error = %e, "store: cannot begin a write transaction");
        let message = e.to_string();
        for op in batch.drain(..) {
            (op.fail)(StoreError::Commit(message.clone()));
        }
        return;
    }
    let mut applied = Vec::with_capacity(batch.len());
    for op in batch.drain(..) {
        let savepoint = conn.execute_batch("SAVEPOINT w");
        let a = (op.apply)(conn);
        let end = if a.ok && savepoint.is_ok() {
            "RELEASE w"
        } else {
            "ROLLBACK TO w; RELEASE w"
        };
        if let Err(e) = conn.execute_batch(end) {
            tracing::error!(error = %e, "store: savepoint failed");
        }
        applied.push(a);
    }
    match conn.execute_batch("COMMIT") {
        Ok(()) => applied.into_iter().for_each(|a| (a.complete)(Ok(()))),
        Err(e) => {
            tracing::error!(error = %e, "store: commit failed");
            let _ = conn.execute_batch("ROLLBACK");
            let message = e.to_string();
            applied
                .into_iter()
                .for_each(|a| (a.complete)(Err(StoreError::Commit(message.clone()))));
        }
    }
}
