//! The typed sections of the config: `storage:`, `admin:` and `delivery:` (`server:` is in
//! its own module), with their defaults.
//!
//! Invariants: every section denies unknown keys; `Debug` never shows a secret (the
//! storage URL's password, the admin token); bounds are checked by the loader, where an
//! error can name the key's line.

use super::{duration, lenient};
use crate::redact::{MASK, mask_url};
use serde::Deserialize;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

/// `storage:` — where events and jobs live. (`Debug` hides the URL's password.)
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// `sqlite://FILE` (the embedded default) or `postgres://…`.
    #[serde(default = "default_storage_url")]
    pub url: String,
    /// Finished events, their attempts and dedupe keys are purged after this.
    #[serde(default = "default_retention", with = "duration")]
    pub retention: Duration,
    /// A record map entry (the CRM record a `match` resolved to) is purged when it was
    /// last written longer ago than this. Bookings are made weeks or months ahead and
    /// cancelled or rescheduled later, so this outlives `retention` by far.
    #[serde(default = "default_record_map_retention", with = "duration")]
    pub record_map_retention: Duration,
    /// PostgreSQL only: the most connections this process opens (one more is kept for
    /// `LISTEN`). Between 1 and [`POOL_SIZE_MAX`].
    #[serde(default = "default_pool_size")]
    pub pool_size: usize,
    /// PostgreSQL only: a statement running longer than this is cancelled (the write
    /// fails and is retried), so a stuck database never holds a webhook forever.
    #[serde(default = "default_statement_timeout", with = "duration")]
    pub statement_timeout: Duration,
}

/// The largest `storage.pool_size` accepted.
pub const POOL_SIZE_MAX: usize = 200;

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            url: default_storage_url(),
            retention: default_retention(),
            record_map_retention: default_record_map_retention(),
            pool_size: default_pool_size(),
            statement_timeout: default_statement_timeout(),
        }
    }
}

/// `admin:` — the admin API, dashboard and metrics listener. (`Debug` masks the token.)
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Where `/admin`, `/admin/api/…`, `/metrics`, `/healthz` and `/readyz` are served.
    pub listen: SocketAddr,
    /// Bearer token for `/admin*`; empty or absent turns the admin API off (metrics and
    /// health stay on). At least [`ADMIN_TOKEN_MIN`] characters.
    #[serde(default)]
    pub token: Option<String>,
    /// How long a dashboard sign-in lasts, counted from the sign-in (absolute, not
    /// renewed by use).
    #[serde(default = "default_session_ttl", with = "duration")]
    pub session_ttl: Duration,
    /// Mark the sign-in cookie `Secure` (browsers send it over HTTPS only): set it when
    /// browsers reach the admin listener over HTTPS, e.g. through a TLS-terminating proxy.
    #[serde(default, deserialize_with = "lenient::boolean")]
    pub secure_cookie: bool,
    /// Serve the admin listener over HTTPS with this certificate.
    #[serde(default)]
    pub tls: Option<super::server::TlsFiles>,
}

/// The shortest `admin.token` accepted.
pub const ADMIN_TOKEN_MIN: usize = 32;

/// The longest `admin.session_ttl` accepted.
pub(super) const SESSION_TTL_MAX: Duration = Duration::from_secs(30 * 86_400);

impl fmt::Debug for StorageConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StorageConfig")
            .field("url", &mask_url(&self.url))
            .field("retention", &self.retention)
            .field("record_map_retention", &self.record_map_retention)
            .field("pool_size", &self.pool_size)
            .field("statement_timeout", &self.statement_timeout)
            .finish()
    }
}

impl fmt::Debug for AdminConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminConfig")
            .field("listen", &self.listen)
            .field("token", &self.token.as_ref().map(|_| MASK))
            .field("session_ttl", &self.session_ttl)
            .field("secure_cookie", &self.secure_cookie)
            .field("tls", &self.tls)
            .finish()
    }
}

/// `delivery.retry:` — how failed deliveries are retried.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    /// After this many attempts a job is dead-lettered.
    #[serde(default = "default_max_attempts", deserialize_with = "lenient::int")]
    pub max_attempts: u32,
    /// The first backoff; each retry doubles it (full jitter).
    #[serde(default = "default_initial_backoff", with = "duration")]
    pub initial_backoff: Duration,
    /// The backoff never grows past this, and no wait a CRM names (`Retry-After`, a
    /// rate-limit reset) puts a job or its connector instance further out than this.
    #[serde(default = "default_max_backoff", with = "duration")]
    pub max_backoff: Duration,
    /// After this many rate-limited answers a job is dead-lettered (they do not use up
    /// `max_attempts`, so a CRM that always answers 429 would keep a job forever).
    #[serde(
        default = "default_max_rate_limited",
        deserialize_with = "lenient::int"
    )]
    pub max_rate_limited: u32,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            max_attempts: default_max_attempts(),
            initial_backoff: default_initial_backoff(),
            max_backoff: default_max_backoff(),
            max_rate_limited: default_max_rate_limited(),
        }
    }
}

/// `delivery:` — the worker runtime.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryConfig {
    /// Deliveries in flight across all tenants.
    #[serde(default = "default_concurrency", deserialize_with = "lenient::int")]
    pub concurrency: usize,
    /// Retry policy.
    #[serde(default)]
    pub retry: RetryConfig,
    /// How long a claimed job is leased; a worker renews it while it runs, and a job whose
    /// lease lapsed (its process died) is claimed again.
    #[serde(default = "default_lease", with = "duration")]
    pub lease: Duration,
    /// On SIGTERM, how long in-flight deliveries may take before their leases are
    /// released.
    #[serde(default = "default_shutdown_grace", with = "duration")]
    pub shutdown_grace: Duration,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            concurrency: default_concurrency(),
            retry: RetryConfig::default(),
            lease: default_lease(),
            shutdown_grace: default_shutdown_grace(),
        }
    }
}

fn default_storage_url() -> String {
    "sqlite://slatis-sync.db".to_owned()
}
fn default_retention() -> Duration {
    Duration::from_secs(7 * 86_400)
}
fn default_record_map_retention() -> Duration {
    Duration::from_secs(400 * 86_400)
}
fn default_pool_size() -> usize {
    10
}
fn default_statement_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_session_ttl() -> Duration {
    Duration::from_secs(12 * 3600)
}
fn default_max_attempts() -> u32 {
    20
}
fn default_initial_backoff() -> Duration {
    Duration::from_secs(1)
}
fn default_max_backoff() -> Duration {
    Duration::from_secs(3600)
}
fn default_max_rate_limited() -> u32 {
    100
}
fn default_concurrency() -> usize {
    32
}
fn default_lease() -> Duration {
    Duration::from_secs(60)
}
fn default_shutdown_grace() -> Duration {
    Duration::from_secs(25)
}
