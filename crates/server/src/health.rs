//! What readiness knows beyond "storage answers": the background tasks that died.
//!
//! Invariants:
//! - a supervised task that ends before shutdown was asked for (it returned early or
//!   panicked) is logged at error level and recorded here, never silently gone;
//! - a recorded failure stays until the process restarts: `/readyz` answers 503 with its
//!   reason from then on.

use std::any::Any;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Mutex, PoisonError};
use tokio_util::sync::CancellationToken;

/// The background tasks that stopped, by name.
#[derive(Debug, Default)]
pub struct Health {
    failed: Mutex<BTreeMap<&'static str, String>>,
}

impl Health {
    /// Records that the background task `name` stopped, and why (short: it goes into
    /// `/readyz` answers).
    pub fn fail(&self, name: &'static str, why: impl Into<String>) {
        self.failed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name, why.into());
    }

    /// Each stopped task's reason, by task name.
    pub fn failures(&self) -> Vec<String> {
        self.failed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(name, why)| format!("{name} {why}"))
            .collect()
    }
}

/// Runs `task` as the background task `name` until it ends. If it ends before `cancel`
/// (it returned early, or panicked), logs that at error level and records it in `health`;
/// returns whether it failed so.
pub async fn supervise<F>(
    health: &Health,
    name: &'static str,
    cancel: &CancellationToken,
    task: F,
) -> bool
where
    F: Future<Output = ()> + Send + 'static,
{
    let (why, panic) = match tokio::spawn(task).await {
        Ok(()) if cancel.is_cancelled() => return false,
        Ok(()) => ("stopped unexpectedly", String::new()),
        Err(e) if e.is_panic() => ("panicked", panic_text(&*e.into_panic())),
        Err(_) => ("was cancelled", String::new()),
    };
    tracing::error!(task = name, panic = %panic, "a background task {why}; not ready until a restart");
    health.fail(name, why);
    true
}

/// The message a panic carried (`panic!("…")`), or `""`.
pub(crate) fn panic_text(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_task_that_dies_is_recorded_and_one_asked_to_stop_is_not() {
        let health = Health::default();
        let cancel = CancellationToken::new();
        assert!(supervise(&health, "early", &cancel, async {}).await);
        assert!(
            supervise(&health, "boom", &cancel, async {
                panic!("housekeeping arithmetic overflowed");
            })
            .await
        );
        assert_eq!(
            health.failures(),
            vec!["boom panicked", "early stopped unexpectedly"]
        );
        let healthy = Health::default();
        let token = cancel.clone();
        let stopping = supervise(&healthy, "worker", &cancel, async move {
            token.cancelled().await;
        });
        cancel.cancel();
        assert!(!stopping.await, "asked to stop");
        assert!(healthy.failures().is_empty());
    }
}
