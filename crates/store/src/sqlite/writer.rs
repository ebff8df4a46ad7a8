//! The single SQLite writer, with group commit.
//!
//! Every write of the process goes through one connection owned by one task. The task
//! takes all writes that are waiting (up to [`MAX_BATCH`]), runs them in one
//! `BEGIN IMMEDIATE … COMMIT`, each inside its own savepoint, and answers each caller
//! only after the commit. So a burst of webhooks shares one fsync instead of paying one
//! each, and a failed write rolls back alone without failing its batch.
//!
//! Invariant: no caller hears "done" for a write that was not committed.

use crate::{Result, StoreError};
use sqlx::{Connection, Executor, SqliteConnection};
use std::future::Future;
use std::pin::Pin;
use tokio::sync::{mpsc, oneshot};

/// The most writes one transaction takes.
const MAX_BATCH: usize = 512;

pub(super) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A write's result, delivered once the batch's commit is known.
struct Applied {
    ok: bool,
    complete: Box<dyn FnOnce(Result<()>) + Send>,
}

type Apply = Box<dyn for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Applied> + Send>;

/// A queued write: `apply` runs it in a batch; `fail` answers the caller without running
/// it (the batch could not even begin).
struct WriteOp {
    apply: Apply,
    fail: Box<dyn FnOnce(StoreError) + Send>,
}

enum Msg {
    Write(WriteOp),
    Close(oneshot::Sender<()>),
}

/// A handle to the writer task.
#[derive(Clone)]
pub(super) struct Writer {
    tx: mpsc::Sender<Msg>,
}

impl Writer {
    /// Starts the writer on `conn`.
    pub(super) fn start(conn: SqliteConnection) -> Self {
        let (tx, rx) = mpsc::channel(4096);
        tokio::spawn(run(conn, rx));
        Self { tx }
    }

    /// Runs `f` in the next batch; returns its result once the batch is committed.
    pub(super) async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T>> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel::<Result<T>>();
        let tx = std::sync::Arc::new(std::sync::Mutex::new(Some(tx)));
        let answer = move |tx: &std::sync::Mutex<Option<oneshot::Sender<Result<T>>>>,
                           r: Result<T>| {
            if let Some(tx) = tx
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take()
            {
                let _ = tx.send(r);
            }
        };
        let tx2 = std::sync::Arc::clone(&tx);
        let apply: Apply = Box::new(move |conn| {
            Box::pin(async move {
                let result = f(conn).await;
                Applied {
                    ok: result.is_ok(),
                    complete: Box::new(move |commit: Result<()>| answer(&tx, commit.and(result))),
                }
            })
        });
        let fail = Box::new(move |e: StoreError| answer(&tx2, Err(e)));
        self.tx
            .send(Msg::Write(WriteOp { apply, fail }))
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

async fn run(mut conn: SqliteConnection, mut rx: mpsc::Receiver<Msg>) {
    let mut batch: Vec<WriteOp> = Vec::with_capacity(MAX_BATCH);
    let mut closing = None;
    while let Some(first) = rx.recv().await {
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
            commit_batch(&mut conn, &mut batch).await;
        }
        if let Some(done) = closing.take() {
            rx.close();
            while let Ok(Msg::Write(w)) = rx.try_recv() {
                batch.push(w);
            }
            if !batch.is_empty() {
                commit_batch(&mut conn, &mut batch).await;
            }
            let _ = conn.close().await;
            let _ = done.send(());
            return;
        }
    }
}

async fn commit_batch(conn: &mut SqliteConnection, batch: &mut Vec<WriteOp>) {
    metrics::histogram!("slatis_store_write_batch_size").record(batch.len() as f64);
    if let Err(e) = conn.execute("BEGIN IMMEDIATE").await {
        tracing::error!(error = %e, "store: cannot begin a write transaction");
        let message = e.to_string();
        for op in batch.drain(..) {
            (op.fail)(StoreError::Commit(message.clone()));
        }
        return;
    }
    let mut applied = Vec::with_capacity(batch.len());
    for op in batch.drain(..) {
        let savepoint = conn.execute("SAVEPOINT w").await;
        let a = (op.apply)(conn).await;
        let end = if a.ok && savepoint.is_ok() {
            "RELEASE w"
        } else {
            "ROLLBACK TO w; RELEASE w"
        };
        if let Err(e) = conn.execute(end).await {
            tracing::error!(error = %e, "store: savepoint failed");
        }
        applied.push(a);
    }
    match conn.execute("COMMIT").await {
        Ok(_) => applied.into_iter().for_each(|a| (a.complete)(Ok(()))),
        Err(e) => {
            tracing::error!(error = %e, "store: commit failed");
            let _ = conn.execute("ROLLBACK").await;
            let message = e.to_string();
            applied
                .into_iter()
                .for_each(|a| (a.complete)(Err(StoreError::Commit(message.clone()))));
        }
    }
}
