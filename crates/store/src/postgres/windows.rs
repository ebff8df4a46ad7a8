//! [`SharedWindows`] on PostgreSQL: connector rate windows every replica counts in.
//!
//! Invariants:
//! - a window's slots are taken under a transaction-level advisory lock of its key (keys
//!   sorted, so two calls never wait on each other in a cycle), read and written in one
//!   transaction, on the database's clock (`clock_timestamp()`), so replicas with skewed
//!   clocks still count one window;
//! - the slot rule is core's ([`RateLimit::earliest`]), the same as in process, on a
//!   window widened by [`HANDOFF_JITTER`];
//! - slots older than the window are deleted as new ones are taken, so the table holds
//!   about one window of sends per connector instance.

use super::{Pool, describe, get};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use slatis_core::DeliveryError;
use slatis_core::connector::{RateLimit, SharedWindows};
use std::time::Duration;

const WHAT: &str = "the shared rate window";

/// How much wider a shared window is kept than the CRM's: a slot is reserved on the
/// database's clock and waited for on the replica's, after a round trip, so sends land
/// with more jitter than in one process (where the rule's own margin covers it).
const HANDOFF_JITTER: Duration = Duration::from_millis(250);

fn unavailable(e: &impl std::fmt::Display) -> DeliveryError {
    DeliveryError::retryable(format!("{WHAT} is unavailable (PostgreSQL): {e}"))
}

#[allow(clippy::needless_pass_by_value)] // used as `map_err(pg)`
fn pg(e: tokio_postgres::Error) -> DeliveryError {
    unavailable(&describe(&e))
}

/// Rate windows in the `rate_slots` table.
pub(super) struct PgWindows {
    pub(super) pool: Pool,
}

#[async_trait]
impl SharedWindows for PgWindows {
    async fn reserve(&self, windows: &[(String, RateLimit)]) -> Result<Duration, DeliveryError> {
        let mut client = get(&self.pool).await.map_err(|e| unavailable(&e))?;
        let tx = client.transaction().await.map_err(pg)?;
        let mut keys: Vec<&str> = windows.iter().map(|(k, _)| k.as_str()).collect();
        keys.sort_unstable();
        for key in keys {
            tx.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended('slatis-sync rate ' || current_schema() || ' ' || $1, 0))",
                &[&key],
            )
            .await
            .map_err(pg)?;
        }
        let now: DateTime<Utc> = tx
            .query_one("SELECT clock_timestamp()", &[])
            .await
            .map_err(pg)?
            .get(0);
        let mut at = now;
        for (key, limit) in windows {
            let back = i64::try_from(limit.depth() - 1).unwrap_or(i64::MAX);
            let row = tx
                .query_one(
                    "SELECT (SELECT max(at) FROM rate_slots WHERE key = $1), \
                     (SELECT at FROM rate_slots WHERE key = $1 ORDER BY at DESC OFFSET $2 LIMIT 1)",
                    &[key, &back],
                )
                .await
                .map_err(pg)?;
            let (last, nth_back): (Option<DateTime<Utc>>, Option<DateTime<Utc>>) =
                (row.get(0), row.get(1));
            let widened = RateLimit::new(limit.requests, limit.per + HANDOFF_JITTER);
            at = at.max(widened.earliest(now, last, nth_back));
        }
        for (key, limit) in windows {
            tx.execute(
                "INSERT INTO rate_slots (key, at) VALUES ($1, $2)",
                &[key, &at],
            )
            .await
            .map_err(pg)?;
            // Slots no window reaches any more: older than twice the window.
            let horizon = now - (limit.per * 2 + Duration::from_secs(1));
            tx.execute(
                "DELETE FROM rate_slots WHERE key = $1 AND at < $2",
                &[key, &horizon],
            )
            .await
            .map_err(pg)?;
        }
        tx.commit().await.map_err(pg)?;
        Ok((at - now).to_std().unwrap_or_default())
    }
}
