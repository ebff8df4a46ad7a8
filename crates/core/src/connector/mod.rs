//! The connector plug-in API.
//!
//! A connector crate implements [`Connector`] and registers a [`ConnectorFactory`] with
//! `inventory::submit!`. The binary links each connector crate behind a cargo feature
//! (`src/connectors.rs`); [`registered`] lists what is compiled in.
//!
//! Invariants:
//! - connectors talk to their CRM only through [`Outbound`] (rate limit, timeout,
//!   dry run and error classes are applied there, the same for every connector);
//! - every failure is a classed [`DeliveryError`];
//! - connectors see storage only through [`RecordMap`] and [`KeyLocks`].

pub mod answer;
mod limit;
mod locks;
mod records;
pub mod token;
mod transport;

pub use limit::{Limiter, RateLimit, SharedWindows};
pub use locks::{KeyGuard, KeyLocks, MemoryKeyLocks, ScopedKeyLocks};
pub use records::{MemoryRecordMap, RecordMap};
pub use transport::{DryRunRecord, DryRunReply, Outbound, Recorder, Reply, Transport};

use crate::config::ConfigIssue;
use crate::delivery::DeliveryError;
use crate::step::{RenderedStep, Step};
use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// One configured connector instance (e.g. `tenants.acme.connectors.hubspot`), built once
/// per config load and shared by every delivery to it.
#[async_trait]
pub trait Connector: Send + Sync + 'static {
    /// Checks a step that names this instance, at config load: the action is supported,
    /// the keys the action needs are present. Returns `(key, message)` pairs, where `key`
    /// is the step's key at fault (`action`, `object`, `path`, …).
    fn check_step(&self, step: &Step) -> Vec<(String, String)>;

    /// Runs one rendered step against the CRM.
    ///
    /// # Errors
    /// A [`DeliveryError`] classed retryable, rate-limited or permanent.
    async fn execute(
        &self,
        step: &RenderedStep,
        cx: &StepContext<'_>,
    ) -> Result<StepOutput, DeliveryError>;
}

/// What a connector crate registers: how to build an instance of `type: <kind>`.
pub struct ConnectorFactory {
    /// The `type:` value, which is also the cargo feature that enables the crate.
    pub kind: &'static str,
    /// Step keys this connector adds to the generic ones (e.g. the http connector's
    /// `method`, `path`, `headers`, `json`, `body`, `content_type`). Their string
    /// leaves are templates.
    pub step_keys: &'static [&'static str],
    /// Those of `step_keys` that are URL paths: text whose every `{{…}}` renders as one
    /// percent-encoded path segment, never `.`, `..` or empty (see
    /// [`crate::template::Templates::compile_path`]).
    pub path_keys: &'static [&'static str],
    /// The rate limit an instance gets when its config sets none (the CRM's documented
    /// limit), or `None` for no limit.
    pub default_rate_limit: Option<RateLimit>,
    /// The limit an instance's search calls ([`Outbound::send_search`]) also wait for
    /// when its config sets no `search_rate_limit`, or `None` when the CRM has no separate
    /// search limit (the key is then refused).
    pub default_search_rate_limit: Option<RateLimit>,
    /// Builds an instance from its config block (generic keys already removed).
    pub build: BuildFn,
}

/// A connector factory's constructor: an instance from its config, or every problem in it.
pub type BuildFn = fn(&BuildContext<'_>) -> Result<Box<dyn Connector>, Vec<ConfigIssue>>;

inventory::collect!(ConnectorFactory);

/// What a factory gets to build an instance.
pub struct BuildContext<'a> {
    /// The tenant's name.
    pub tenant: &'a str,
    /// The instance's name.
    pub instance: &'a str,
    /// The YAML path of the instance (`tenants.acme.connectors.hubspot`).
    pub place: &'a str,
    /// The instance's own keys (the generic ones — `type`, `dry_run`, `rate_limit`,
    /// `search_rate_limit`, `timeout`, `concurrency` — removed),
    /// with `${VAR}` already substituted.
    pub config: &'a Value,
}

impl BuildContext<'_> {
    /// Deserializes the instance's config into `T` (which should deny unknown fields),
    /// with errors that name the YAML path of the offending key.
    ///
    /// # Errors
    /// One [`ConfigIssue`] naming the path of the first offending key.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, Vec<ConfigIssue>> {
        crate::config::parse_value(self.config, self.place).map_err(|i| vec![i])
    }

    /// An issue at `key` of this instance.
    pub fn issue(&self, key: &str, message: impl Into<String>) -> ConfigIssue {
        ConfigIssue::new(crate::config::join(self.place, key), message)
    }

    /// An issue at `key` unless `url` is an http(s) URL. The message never quotes the
    /// URL (it may carry a credential).
    pub fn url_issue(&self, key: &str, url: &str) -> Option<ConfigIssue> {
        match reqwest::Url::parse(url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => None,
            Ok(u) => Some(self.issue(key, format!("must be an http(s) URL, not {}:", u.scheme()))),
            Err(e) => Some(self.issue(
                key,
                format!("is not an http(s) URL ({e}); write e.g. https://api.example.com"),
            )),
        }
    }
}

/// What a step gets at run time.
pub struct StepContext<'a> {
    /// The tenant.
    pub tenant: &'a str,
    /// The connector instance's name.
    pub instance: &'a str,
    /// The Slatis event being delivered.
    pub event_id: &'a str,
    /// When the event arrived (a lower bound for records its earlier attempts wrote).
    pub received_at: chrono::DateTime<chrono::Utc>,
    /// Which attempt of the job this is (1 = the first): a later attempt may follow one
    /// whose answer was lost after the CRM acted on it.
    pub attempt: u32,
    /// The way out to the CRM.
    pub http: Outbound<'a>,
    /// The record map of this tenant and instance.
    pub records: &'a dyn RecordMap,
    /// The per-key locks of this tenant and instance, shared by all its deliveries.
    pub locks: &'a dyn KeyLocks,
}

/// What a successful step produced, readable by later steps as `{{steps.<id>.id}}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StepOutput {
    /// The CRM record's id, where the step touched one.
    pub id: Option<String>,
    /// Whether the step created the record (as opposed to finding or updating it).
    pub created: bool,
}

/// `value` as one URL path segment (see [`crate::url_path`]): percent-encoded so it can
/// never add a path level, a query or a fragment.
///
/// # Errors
/// Permanent, for a value no URL can carry as a segment: empty, `.` or `..`.
pub fn path_segment(value: &str) -> Result<String, DeliveryError> {
    crate::url_path::segment(value).map_err(DeliveryError::permanent)
}

/// The factory for `kind`, if it is compiled in.
pub fn factory(kind: &str) -> Option<&'static ConnectorFactory> {
    inventory::iter::<ConnectorFactory>
        .into_iter()
        .find(|f| f.kind == kind)
}

/// The connector types compiled into this binary, sorted.
pub fn registered() -> Vec<&'static str> {
    let mut kinds: Vec<_> = inventory::iter::<ConnectorFactory>
        .into_iter()
        .map(|f| f.kind)
        .collect();
    kinds.sort_unstable();
    kinds
}

#[cfg(test)]
mod tests {
    #[test]
    fn path_segments_are_escaped_or_refused() {
        assert_eq!(
            super::path_segment("ada+1@example.com"),
            Ok("ada%2B1@example.com".to_owned())
        );
        assert_eq!(
            super::path_segment("a/b c?d"),
            Ok("a%2Fb%20c%3Fd".to_owned())
        );
        for bad in ["", ".", ".."] {
            let err = super::path_segment(bad).expect_err(bad);
            assert_eq!(err.class(), "permanent", "{bad:?}");
        }
    }
}
