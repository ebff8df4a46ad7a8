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
//! The writer keeps its health for readiness: a batch that could not begin or commit, or
//! a write that failed because the database cannot take writes (disk full, I/O error,
//! read-only or locked file), marks it failing until a later batch commits a change.
//!
//! Invariant: no caller hears "done" for a write that was not committed.

use crate::{Result, StoreError};
use rusqlite::Connection;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::{mpsc, oneshot};

/// The most writes one transaction takes.
const MAX_BATCH: usize = 512;

/// A write's result, delivered once the batch's commit is known.
struct Applied {
    ok: bool,
    /// Why the write failed, when the database could not take it (not the write's fault).
    fault: Option<String>,
    complete: Box<dyn FnOnce(Result<()>) + Send>,
}

/// Why the last batch failed, until a later one commits cleanly.
type Health = Arc<Mutex<Option<String>>>;

fn set_health(health: &Health, failure: Option<String>) {
    *health.lock().unwrap_or_else(PoisonError::into_inner) = failure;
}

/// Whether `e` says the database cannot take writes (as opposed to a fault of the write
/// itself, such as a constraint): disk full, I/O error, a read-only, locked, busy or
/// corrupt file.
fn storage_fault(e: &StoreError) -> Option<String> {
    use rusqlite::ErrorCode as C;
    match e {
        StoreError::Sqlite(rusqlite::Error::SqliteFailure(f, _))
            if matches!(
                f.code,
                C::DiskFull
                    | C::SystemIoFailure
                    | C::ReadOnly
                    | C::CannotOpen
                    | C::DatabaseBusy
                    | C::DatabaseLocked
                    | C::DatabaseCorrupt
                    | C::NotADatabase
            ) =>
        {
            Some(e.to_string())
        }
        _ => None,
    }
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
    health: Health,
}

type Reply<T> = Arc<Mutex<Option<oneshot::Sender<Result<T>>>>>;

fn answer<T>(reply: &Reply<T>, r: Result<T>) {
    if let Some(tx) = reply.lock().unwrap_or_else(PoisonError::into_inner).take() {
        let _ = tx.send(r);
    }
}

impl Writer {
    /// Starts the writer thread on `conn`.
    pub(super) fn start(conn: Connection) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel(4096);
        let health = Health::default();
        let thread_health = Arc::clone(&health);
        std::thread::Builder::new()
            .name("slatis-sqlite-writer".into())
            .spawn(move || run(conn, rx, &thread_health))?;
        Ok(Self { tx, health })
    }

    /// Why writes are failing, if the last batch failed (or the writer stopped).
    pub(super) fn failure(&self) -> Option<String> {
        if self.tx.is_closed() {
            return Some("the writer has stopped".to_owned());
        }
        self.health
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Runs `f` in the next batch; returns its result once the batch is committed.
    pub(super) async fn write<T, F>(&self, durability: Durability, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel::<Result<T>>();
        let reply: Reply<T> = Arc::new(Mutex::new(Some(tx)));
        let on_fail = Arc::clone(&reply);
        let op = WriteOp {
            durability,
            apply: Box::new(move |conn| {
                let result = f(conn);
                Applied {
                    ok: result.is_ok(),
                    fault: result.as_ref().err().and_then(storage_fault),
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

/// Moves waiting messages into `batch` (up to [`MAX_BATCH`]), stopping at a close.
fn drain(
    rx: &mut mpsc::Receiver<Msg>,
    batch: &mut Vec<WriteOp>,
    closing: &mut Option<oneshot::Sender<()>>,
) {
    while closing.is_none() && batch.len() < MAX_BATCH {
        match rx.try_recv() {
            Ok(Msg::Write(w)) => batch.push(w),
            Ok(Msg::Close(done)) => *closing = Some(done),
            Err(_) => break,
        }
    }
}

fn run(conn: Connection, mut rx: mpsc::Receiver<Msg>, health: &Health) {
    let mut batch: Vec<WriteOp> = Vec::with_capacity(MAX_BATCH);
    let mut current = Durability::Sync;
    let mut closing = None;
    while let Some(first) = rx.blocking_recv() {
        match first {
            Msg::Write(w) => batch.push(w),
            Msg::Close(done) => closing = Some(done),
        }
        drain(&mut rx, &mut batch, &mut closing);
        if !batch.is_empty() {
            commit_batch(&conn, &mut batch, &mut current, health);
        }
        if let Some(done) = closing.take() {
            rx.close();
            while let Ok(Msg::Write(w)) = rx.try_recv() {
                batch.push(w);
            }
            if !batch.is_empty() {
                commit_batch(&conn, &mut batch, &mut current, health);
            }
            drop(conn);
            let _ = done.send(());
            return;
        }
    }
}

/// Runs one statement without parameters, prepared once per connection.
fn run_cached(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(drop)
}

fn commit_batch(
    conn: &Connection,
    batch: &mut Vec<WriteOp>,
    current: &mut Durability,
    health: &Health,
) {
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
        set_health(health, Some(format!("cannot begin a write: {message}")));
        for op in batch.drain(..) {
            (op.fail)(StoreError::Commit(message.clone()));
        }
        return;
    }
    let changes_before = conn.total_changes();
    let mut applied = Vec::with_capacity(batch.len());
    let mut lost: Option<String> = None;
    for op in batch.drain(..) {
        if let Some(why) = &lost {
            (op.fail)(StoreError::Commit(why.clone()));
            continue;
        }
        // cached statements: parsing these three on every write showed in the profile
        let savepoint = run_cached(conn, "SAVEPOINT w");
        let a = (op.apply)(conn);
        if conn.is_autocommit() {
            // SQLite rolled the whole transaction back (a full disk, an I/O error): no
            // write of this batch is kept, and what follows must not commit on its own.
            lost = Some(
                a.fault
                    .clone()
                    .unwrap_or_else(|| "the write transaction was rolled back".to_owned()),
            );
            applied.push(a);
            continue;
        }
        let end = if a.ok && savepoint.is_ok() {
            run_cached(conn, "RELEASE w")
        } else {
            run_cached(conn, "ROLLBACK TO w").and_then(|()| run_cached(conn, "RELEASE w"))
        };
        if let Err(e) = end {
            tracing::error!(error = %e, "store: savepoint failed");
        }
        applied.push(a);
    }
    let committed = match lost {
        Some(why) => Err(why),
        None => conn.execute_batch("COMMIT").map_err(|e| {
            let _ = conn.execute_batch("ROLLBACK");
            format!("commit failed: {e}")
        }),
    };
    match committed {
        Ok(()) => {
            // Healthy again only once something was really written (an empty claim
            // commits even on a full disk).
            match applied.iter().find_map(|a| a.fault.clone()) {
                Some(fault) => {
                    tracing::error!(error = %fault, "store: a write failed");
                    set_health(health, Some(fault));
                }
                None if conn.total_changes() > changes_before => set_health(health, None),
                None => {}
            }
            applied.into_iter().for_each(|a| (a.complete)(Ok(())));
        }
        Err(why) => {
            tracing::error!(error = %why, "store: a write batch was not committed");
            set_health(health, Some(why.clone()));
            applied
                .into_iter()
                .for_each(|a| (a.complete)(Err(StoreError::Commit(why.clone()))));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store_row(size: usize) -> impl FnOnce(&Connection) -> Result<()> + Send + 'static {
        move |c| {
            c.execute("INSERT INTO t (b) VALUES (zeroblob(?1))", [size as i64])?;
            Ok(())
        }
    }

    /// A writer on a database that holds 16 pages at most: a full disk, in effect.
    fn small_disk() -> (tempfile::TempDir, Writer) {
        let dir = tempfile::tempdir().expect("tempdir");
        let conn = Connection::open(dir.path().join("w.db")).expect("open");
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; CREATE TABLE t (b BLOB); PRAGMA max_page_count = 16;",
        )
        .expect("setup");
        (dir, Writer::start(conn).expect("start"))
    }

    /// A full disk (here: a page budget) marks the writer failing; a later write that
    /// commits marks it healthy again.
    #[tokio::test]
    async fn a_failing_batch_marks_the_writer_unhealthy_until_one_commits() {
        let (_dir, writer) = small_disk();
        assert_eq!(writer.failure(), None);
        writer
            .write(Durability::Sync, store_row(100))
            .await
            .expect("a small row fits");
        assert_eq!(writer.failure(), None);
        let full = writer.write(Durability::Sync, store_row(1 << 20)).await;
        assert!(full.is_err(), "the disk is full");
        let failure = writer.failure().expect("unhealthy");
        assert!(failure.contains("full"), "{failure}");
        // a write that fails on its own (not the disk's fault) does not change health
        let own = writer
            .write(Durability::Sync, |c| {
                c.execute("INSERT INTO nope VALUES (1)", [])?;
                Ok(())
            })
            .await;
        assert!(own.is_err());
        assert!(writer.failure().is_some(), "still the disk's last word");
        // nor does one that changes nothing (an empty claim commits even on a full disk)
        writer
            .write(Durability::Relaxed, |c| {
                c.execute("UPDATE t SET b = b WHERE 0", [])?;
                Ok(())
            })
            .await
            .expect("no-op");
        assert!(writer.failure().is_some(), "nothing was written yet");
        writer
            .write(Durability::Sync, |c| {
                c.execute_batch("PRAGMA max_page_count = 100000")?;
                store_row(1 << 20)(c)
            })
            .await
            .expect("room again");
        assert_eq!(writer.failure(), None, "healthy once a batch commits");
        writer.close().await;
        assert!(
            writer.failure().is_some(),
            "a stopped writer takes no writes"
        );
    }

    /// When SQLite rolls a whole batch back (a full disk), the writes after the one that
    /// failed are not committed on their own, and none is answered "done".
    #[tokio::test]
    async fn a_batch_rolled_back_by_sqlite_commits_nothing() {
        let (_dir, writer) = small_disk();
        // hold the writer thread so the next two writes share one batch
        let busy = writer.write(Durability::Sync, |_| {
            std::thread::sleep(std::time::Duration::from_millis(200));
            Ok(())
        });
        let (first, (full, after)) = tokio::join!(busy, async {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            tokio::join!(
                writer.write(Durability::Sync, store_row(1 << 20)),
                writer.write(Durability::Sync, store_row(10)),
            )
        });
        first.expect("the first batch commits");
        assert!(full.is_err());
        assert!(after.is_err(), "the batch was rolled back: not done");
        let rows = writer
            .write(Durability::Relaxed, |c| {
                Ok(c.query_row("SELECT COUNT(*) FROM t", [], |r| r.get::<_, i64>(0))?)
            })
            .await
            .expect("count");
        assert_eq!(rows, 0, "nothing of the rolled-back batch was kept");
    }
}
