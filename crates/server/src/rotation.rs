//! A signing-secret rotation with no failed delivery. Slatis switches to the new secret
//! the moment `rotate-secret` answers (no grace period is documented), so the service
//! helps from outside the config, per tenant:
//! - a **rotation window** (at most [`MAX_WINDOW`]): a delivery whose signature matches
//!   none of the tenant's secrets is held (at most [`HOLD`], under Slatis's 5 s
//!   timeout) instead of answered 401, and verified again whenever a secret is added;
//! - **runtime secrets**: added over the admin API, tried after the config's, in memory
//!   only, kept across reloads until the config names them ([`Rotations::prune`]) and
//!   gone at a restart.
//!
//! Invariants: a secret's value is never logged; adding a secret closes the tenant's
//! window and wakes every held delivery; a held delivery is answered within [`HOLD`].

use slatis_core::Config;
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// The longest window one call opens.
pub const MAX_WINDOW: Duration = Duration::from_secs(60);

/// The longest a delivery is held.
pub const HOLD: Duration = Duration::from_secs(3);

#[derive(Default)]
struct Tenant {
    window_until: Option<Instant>,
    secrets: Vec<String>,
}

/// Every tenant's window and runtime secrets.
#[derive(Default)]
pub struct Rotations {
    tenants: Mutex<HashMap<String, Tenant>>,
    added: Notify,
}

impl Rotations {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Tenant>> {
        self.tenants.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Opens (or extends) `tenant`'s window for `length` (at most [`MAX_WINDOW`]); the
    /// length it got.
    pub fn open(&self, tenant: &str, length: Duration) -> Duration {
        let length = length.min(MAX_WINDOW);
        self.lock()
            .entry(tenant.to_owned())
            .or_default()
            .window_until = Some(Instant::now() + length);
        tracing::info!(
            tenant,
            seconds = length.as_secs(),
            "signing-secret rotation window opened"
        );
        length
    }

    /// Adds a runtime secret for `tenant` (whether it was new), closes its window and
    /// wakes the deliveries held for it.
    pub fn add(&self, tenant: &str, secret: &str) -> bool {
        let new = {
            let mut tenants = self.lock();
            let t = tenants.entry(tenant.to_owned()).or_default();
            t.window_until = None;
            let new = !t.secrets.iter().any(|s| s == secret);
            if new {
                t.secrets.push(secret.to_owned());
            }
            new
        };
        self.added.notify_waiters();
        tracing::warn!(
            tenant,
            "a signing secret was added at runtime: it is kept in memory until the config names it, and lost at a restart; put it in tenants.{tenant}.signing_secrets and reload"
        );
        new
    }

    /// The runtime secrets of `tenant`.
    fn secrets(&self, tenant: &str) -> Vec<String> {
        self.lock()
            .get(tenant)
            .map(|t| t.secrets.clone())
            .unwrap_or_default()
    }

    /// Drops the runtime secrets `config` now names (and those of tenants it no longer
    /// has), once a reload made it current.
    pub fn prune(&self, config: &Config) {
        self.lock().retain(|name, t| {
            let Some(tenant) = config.tenants.get(name) else {
                return false;
            };
            let before = t.secrets.len();
            t.secrets.retain(|s| !tenant.signing_secrets.contains(s));
            if t.secrets.len() < before {
                tracing::info!(tenant = %name, "a runtime signing secret is now in the config");
            }
            !t.secrets.is_empty() || t.window_until.is_some()
        });
    }

    /// Whether a delivery for `tenant` that none of its configured secrets verified is
    /// verified by `check` against its runtime secrets: at once, or (while its window is
    /// open) once a secret is added, within [`HOLD`].
    pub async fn verify(&self, tenant: &str, check: impl Fn(&[String]) -> bool) -> bool {
        let held_until = Instant::now() + HOLD;
        loop {
            let added = self.added.notified();
            tokio::pin!(added);
            added.as_mut().enable();
            if check(&self.secrets(tenant)) {
                return true;
            }
            let window = self.lock().get(tenant).and_then(|t| t.window_until);
            let Some(until) = window.map(|w| w.min(held_until)) else {
                return false;
            };
            if Instant::now() >= until || tokio::time::timeout_at(until, added).await.is_err() {
                return check(&self.secrets(tenant));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn matches(wanted: &'static str) -> impl Fn(&[String]) -> bool {
        move |secrets| secrets.iter().any(|s| s == wanted)
    }

    #[tokio::test]
    async fn without_a_window_nothing_is_held() {
        let r = Rotations::default();
        let started = Instant::now();
        assert!(!r.verify("acme", matches("new")).await);
        assert!(started.elapsed() < Duration::from_millis(100));
        assert!(r.add("acme", "new"));
        assert!(!r.add("acme", "new"), "added once");
        assert!(r.verify("acme", matches("new")).await);
        assert!(!r.verify("other", matches("new")).await);
    }

    #[tokio::test(start_paused = true)]
    async fn a_held_delivery_passes_when_its_secret_is_added_and_gives_up_after_hold() {
        let r = Arc::new(Rotations::default());
        assert_eq!(r.open("acme", Duration::from_secs(600)), MAX_WINDOW);
        let held = tokio::spawn({
            let r = Arc::clone(&r);
            async move { r.verify("acme", matches("new")).await }
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
        r.add("acme", "new");
        assert!(held.await.expect("join"));
        r.open("acme", Duration::from_secs(30));
        let started = Instant::now();
        assert!(!r.verify("acme", matches("forged")).await);
        assert_eq!(started.elapsed(), HOLD);
    }

    #[test]
    fn a_reload_naming_the_secret_drops_the_runtime_copy() {
        let r = Rotations::default();
        r.add("acme", "new");
        let config = slatis_core::config::load_str(
            "tenants:\n  acme:\n    signing_secrets: [old]\n",
            &|_| None,
        )
        .expect("config");
        r.prune(&config);
        assert_eq!(r.secrets("acme"), ["new"]);
        let config = slatis_core::config::load_str(
            "tenants:\n  acme:\n    signing_secrets: [new]\n",
            &|_| None,
        )
        .expect("config");
        r.prune(&config);
        assert!(r.secrets("acme").is_empty());
    }
}
