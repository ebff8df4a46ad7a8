//! Wake-ups between replicas: `LISTEN`/`NOTIFY` on a channel of the schema.
//!
//! Writes that make jobs due (an ingest with jobs, a replay, a reclaim, a release) send
//! `pg_notify(channel)` inside their transaction, so PostgreSQL delivers it at commit and
//! only if it commits. One dedicated connection per process listens and turns every
//! notification into a [`Notify`] permit that [`crate::Store::changed`] waits on.
//!
//! Invariants: the listener reconnects by itself (with a growing pause, at most
//! [`MAX_PAUSE`]) and wakes the worker after every (re)connection, since notifications
//! sent while it was away are lost; the worker's polling stays the fallback, so a lost
//! notification only delays a job by one poll.

use futures_util::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_postgres::{AsyncMessage, NoTls};

/// The longest pause between reconnection attempts.
const MAX_PAUSE: Duration = Duration::from_secs(10);

/// The channel of a schema (one per schema: tests and deployments sharing a database
/// do not wake each other).
pub(super) fn channel(schema: &str) -> String {
    let mut name = format!("slatis_sync_{schema}");
    // PostgreSQL truncates identifiers to 63 bytes; truncate the same way on both sides.
    while name.len() > 63 {
        name.pop();
    }
    name
}

/// `name` as a quoted SQL identifier.
pub(super) fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The listening task; dropping it stops listening.
pub(super) struct Listener {
    task: JoinHandle<()>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Listener {
    /// Listens on `channel` through a connection of its own, waking `wake` on each
    /// notification.
    pub(super) fn start(
        config: tokio_postgres::Config,
        channel: String,
        wake: Arc<Notify>,
    ) -> Self {
        let task = tokio::spawn(async move {
            let mut pause = Duration::from_millis(250);
            loop {
                match listen(&config, &channel, &wake).await {
                    Ok(()) => pause = Duration::from_millis(250),
                    Err(e) => {
                        tracing::warn!(error = %super::describe(&e), "store: cannot listen for wake-ups; polling meanwhile");
                    }
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(MAX_PAUSE);
            }
        });
        Self { task }
    }
}

/// Listens until the connection ends.
async fn listen(
    config: &tokio_postgres::Config,
    channel: &str,
    wake: &Notify,
) -> Result<(), tokio_postgres::Error> {
    let (client, mut conn) = config.connect(NoTls).await?;
    let mut messages = futures_util::stream::poll_fn(move |cx| conn.poll_message(cx));
    let statement = format!("LISTEN {}", quote(channel));
    let listening = client.batch_execute(&statement);
    tokio::pin!(listening);
    // Drive the connection while LISTEN runs, then until it ends.
    let mut ready = false;
    loop {
        tokio::select! {
            r = &mut listening, if !ready => {
                r?;
                ready = true;
                wake.notify_one();
            }
            message = messages.next() => match message {
                Some(Ok(AsyncMessage::Notification(_))) => wake.notify_one(),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e),
                None => return Ok(()),
            },
        }
    }
}
