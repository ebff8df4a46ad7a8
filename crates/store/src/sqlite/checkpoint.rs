//! WAL checkpoints off the writer's path.
//!
//! SQLite's default copies the write-ahead log back into the database file from inside a
//! commit, once the log passes 1,000 pages: the writer thread — and every webhook waiting
//! on its batch — then waits for that copy and its fsync. An owning store raises that
//! threshold on the writer's connection to [`BACKSTOP_PAGES`] and runs passive checkpoints
//! here instead, on a connection and a thread of their own, every [`EVERY`]: the copy runs
//! beside the writer, and a hot page written by many commits is copied once per
//! checkpoint.
//!
//! Invariants:
//! - a checkpoint here is passive: it never waits for, nor blocks, the writer or a reader;
//! - the log stays bounded: when these checkpoints fall behind (a slow disk, a long read)
//!   and the log reaches [`BACKSTOP_PAGES`], the writer's own automatic checkpoint copies
//!   it from inside a commit again, which slows the writes down to what the disk takes;
//! - the thread stops when the store closes (the [`Checkpointer`] is dropped).

use rusqlite::Connection;
use std::sync::mpsc;
use std::time::Duration;

/// How often the log is copied back.
const EVERY: Duration = Duration::from_millis(100);

/// The writer's own automatic checkpoint threshold (pages of log, 4 KiB each: 40 MiB).
pub(super) const BACKSTOP_PAGES: u32 = 10_000;

/// The checkpoint thread; stops when dropped.
pub(super) struct Checkpointer {
    _stop: mpsc::Sender<()>,
}

impl Checkpointer {
    /// Starts checkpointing the database `conn` is open on.
    pub(super) fn start(conn: Connection) -> std::io::Result<Self> {
        let (stop, stopped) = mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("slatis-sqlite-checkpoint".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(EVERY) {
                    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                    {
                        tracing::warn!(error = %e, "store: WAL checkpoint failed");
                    }
                }
            })?;
        Ok(Self { _stop: stop })
    }
}
