//! The configuration: one YAML file (DESIGN §3), loaded by [`load_file`] / [`load_str`].
//!
//! Loading runs in this order, and every stage collects all the errors it finds rather
//! than stopping at the first:
//! 1. parse the YAML (serde-saphyr) into a tree that keeps line numbers;
//! 2. substitute `${VAR}` into string values only ([`env`]), learning which values are
//!    secrets;
//! 3. read each section into typed structs that deny unknown keys;
//! 4. build each connector instance through its registered factory;
//! 5. compile every step and template ([`steps`]).
//!
//! Invariants: a [`Config`] that exists is valid (all templates compile, every connector
//! type is compiled in, every step names an instance of its tenant, no tenant that sends
//! for real has a placeholder signing secret); every error names its YAML path and,
//! where the parser knows it, its line, and holds no secret or variable value
//! ([`secrets`]).

pub mod duration;
mod env;
pub mod lenient;
mod secrets;
mod server;
mod steps;
mod yaml;

pub use env::{Lookup, substitute};
pub use server::ServerConfig;
pub use yaml::join;

use crate::connector::{self, BuildContext, Connector, RateLimit, Transport};
use crate::redact::{MASK, Redactor, mask_url};
use crate::step::Step;
use crate::template::Templates;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The seven event types Slatis sends (`slatis.md` §1).
pub const EVENT_TYPES: [&str; 7] = [
    "BOOKING_CREATED",
    "BOOKING_UPDATED",
    "BOOKING_CANCELLED",
    "BOOKING_RESCHEDULED",
    "BOOKING_COMPLETED",
    "BOOKING_NO_SHOW",
    "ASSIGNMENT_CHANGED",
];

/// An hour: the bound of leases, grace periods and the shortest retention.
const HOUR: Duration = Duration::from_secs(3600);

/// A week: the bound of backoffs and rate-limit windows.
const WEEK: Duration = Duration::from_secs(7 * 86_400);
/// A year: the bound of `storage.retention` (dedupe keys and finished events).
const YEAR: Duration = Duration::from_secs(365 * 86_400);

/// One problem found at load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    /// The YAML path, e.g. `tenants.acme.routes.BOOKING_CREATED[0].properties.firstname`.
    pub path: String,
    /// The line in the file, where known.
    pub line: Option<u64>,
    /// What is wrong.
    pub message: String,
}

impl ConfigIssue {
    /// An issue at `path` (its line is filled in by the loader).
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            line: None,
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Everything wrong with a config file.
#[derive(Debug, Clone, thiserror::Error)]
pub struct ConfigError {
    /// The file, if the config came from one.
    pub file: Option<PathBuf>,
    /// The problems, in file order.
    pub issues: Vec<ConfigIssue>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.issues.len();
        let name = self
            .file
            .as_ref()
            .map_or_else(|| "config".to_owned(), |p| p.display().to_string());
        write!(f, "{name}: {n} error{}", if n == 1 { "" } else { "s" })?;
        for issue in &self.issues {
            write!(f, "\n  - {issue}")?;
        }
        Ok(())
    }
}

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
}

/// The shortest `admin.token` accepted.
pub const ADMIN_TOKEN_MIN: usize = 32;

/// The longest `admin.session_ttl` accepted.
const SESSION_TTL_MAX: Duration = Duration::from_secs(30 * 86_400);

impl fmt::Debug for StorageConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StorageConfig")
            .field("url", &mask_url(&self.url))
            .field("retention", &self.retention)
            .field("record_map_retention", &self.record_map_retention)
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

/// The generic keys of a connector instance; the rest goes to the connector's factory.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InstanceKeys {
    /// The connector type (`http`, `hubspot`, …).
    #[serde(rename = "type")]
    kind: String,
    /// Render and record, send nothing.
    #[serde(default, deserialize_with = "lenient::boolean")]
    dry_run: bool,
    /// Requests per rolling window; defaults to the CRM's documented limit.
    #[serde(default)]
    rate_limit: Option<RateLimit>,
    /// Per-request timeout.
    #[serde(default = "default_timeout", with = "duration")]
    timeout: Duration,
    /// Deliveries in flight to this instance at most (default 8): a slow or throttled
    /// CRM never takes every worker.
    #[serde(
        default = "default_instance_concurrency",
        deserialize_with = "lenient::int"
    )]
    concurrency: usize,
}

const INSTANCE_KEYS: [&str; 5] = ["type", "dry_run", "rate_limit", "timeout", "concurrency"];

fn default_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_instance_concurrency() -> usize {
    8
}

/// A connector instance, built and ready.
pub struct Instance {
    /// Its name in the tenant's `connectors`.
    pub name: String,
    /// Its type.
    pub kind: String,
    /// Whether it only records.
    pub dry_run: bool,
    /// Deliveries in flight to it at most.
    pub concurrency: usize,
    /// The connector.
    pub connector: Box<dyn Connector>,
    /// Its way out.
    pub transport: Transport,
}

/// A tenant: `POST /webhooks/{name}`.
pub struct Tenant {
    /// The tenant's name (its URL segment).
    pub name: String,
    /// Each is tried when verifying a webhook.
    pub signing_secrets: Vec<String>,
    /// For `slatis-sync webhooks …`.
    pub slatis_api_key: Option<String>,
    /// Named connector instances.
    pub connectors: BTreeMap<String, Instance>,
    /// Event type (or `*`) → steps.
    pub routes: BTreeMap<String, Vec<Step>>,
}

impl Tenant {
    /// The steps one job runs: those of `event`'s route, then those of `*`, that name
    /// `connector`, in config order.
    pub fn steps<'a>(
        &'a self,
        event: &str,
        connector: &'a str,
    ) -> impl Iterator<Item = &'a Step> + 'a {
        let exact = self.routes.get(event).into_iter().flatten();
        let any = self.routes.get("*").into_iter().flatten();
        exact.chain(any).filter(move |s| s.connector == connector)
    }

    /// The connector instances an event of type `event` makes jobs for, in the order
    /// their steps first appear.
    pub fn route(&self, event: &str) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        let exact = self.routes.get(event).into_iter().flatten();
        for step in exact.chain(self.routes.get("*").into_iter().flatten()) {
            if !out.contains(&step.connector.as_str()) {
                out.push(&step.connector);
            }
        }
        out
    }
}

/// A loaded, valid configuration.
pub struct Config {
    /// `server:`.
    pub server: ServerConfig,
    /// `storage:`.
    pub storage: StorageConfig,
    /// `admin:`, if present.
    pub admin: Option<AdminConfig>,
    /// `delivery:`.
    pub delivery: DeliveryConfig,
    /// Tenants by name.
    pub tenants: BTreeMap<String, Tenant>,
    /// Every template of this config.
    pub templates: Templates,
    /// Masks the secrets this config holds.
    pub redactor: Redactor,
    /// The most signing secrets any tenant has (at least 1): every signature check does
    /// this many HMACs, so timing tells nothing about tenants.
    pub max_signing_secrets: usize,
    /// Things that are allowed but probably wrong (an unknown event type).
    pub warnings: Vec<String>,
}

/// Loads `path`, taking `${VAR}`s from the process environment.
///
/// # Errors
/// Every problem found, each with its path and line.
pub fn load_file(path: &Path) -> Result<Config, ConfigError> {
    let src = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: Some(path.to_owned()),
        issues: vec![ConfigIssue::new("", format!("cannot read the file: {e}"))],
    })?;
    load_str(&src, &|name| std::env::var(name).ok()).map_err(|mut e| {
        e.file = Some(path.to_owned());
        e
    })
}

/// Loads a config from text, taking `${VAR}`s from `env`.
///
/// # Errors
/// Every problem found, each with its path and line.
pub fn load_str(src: &str, env: Lookup<'_>) -> Result<Config, ConfigError> {
    let root = yaml::parse(src).map_err(|e| ConfigError {
        file: None,
        issues: vec![ConfigIssue {
            path: String::new(),
            line: e.line,
            message: format!(
                "not valid YAML: {}",
                secrets::clean(&e.message, &Redactor::default())
            ),
        }],
    })?;
    let mut lines = yaml::Lines::default();
    let mut root = root.into_json("", &mut lines);
    let mut issues = Vec::new();
    let mut found = env::Found::default();
    env::interpolate(&mut root, "", env, &mut issues, &mut found);
    let redactor = Redactor::new(found.secrets.iter().cloned());
    let mut loader = Loader {
        issues,
        templates: Templates::default(),
        warnings: Vec::new(),
        variables: found.variables,
    };
    let config = loader.root(root, redactor);
    let mut issues = loader.issues;
    if issues.is_empty()
        && let Some(config) = config
    {
        return Ok(config);
    }
    // Errors mask every variable value too: a misplaced `${SECRET}` is still a secret.
    let shown = Redactor::new(found.secrets.into_iter().chain(found.values));
    for issue in &mut issues {
        issue.message = secrets::clean(&issue.message, &shown);
        if issue.line.is_none() {
            issue.line = lines.of(&issue.path);
        }
    }
    issues.sort_by_key(|i| i.line.unwrap_or(u64::MAX));
    Err(ConfigError { file: None, issues })
}

/// Deserializes `value` into `T`, naming the path under `place` on error.
///
/// # Errors
/// The first offending key, with its path.
pub fn parse_value<T: DeserializeOwned>(value: &Value, place: &str) -> Result<T, ConfigIssue> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let inner = e.path().to_string();
        let path = match inner.as_str() {
            "." | "" => place.to_owned(),
            p if p.starts_with('[') => format!("{place}{p}"),
            p => join(place, p),
        };
        ConfigIssue::new(
            path,
            secrets::clean(&e.into_inner().to_string(), &Redactor::default()),
        )
    })
}

struct Loader {
    issues: Vec<ConfigIssue>,
    templates: Templates,
    warnings: Vec<String>,
    /// The variables each path's value came from.
    variables: HashMap<String, Vec<String>>,
}

impl Loader {
    fn issue(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.issues.push(ConfigIssue::new(path, message));
    }

    fn section<T: DeserializeOwned + Default>(
        &mut self,
        root: &mut Map<String, Value>,
        key: &str,
    ) -> Option<T> {
        match root.remove(key) {
            None | Some(Value::Null) => Some(T::default()),
            Some(v) => parse_value(&v, key).map_err(|i| self.issues.push(i)).ok(),
        }
    }

    fn root(&mut self, root: Value, redactor: Redactor) -> Option<Config> {
        let mut root = match root {
            Value::Object(m) => m,
            Value::Null => Map::new(),
            _ => {
                self.issue("", "the config must be a mapping with server, storage, admin, delivery and tenants");
                return None;
            }
        };
        let server: Option<ServerConfig> = match root.remove("server") {
            None | Some(Value::Null) => parse_value(&Value::Object(Map::new()), "server").ok(),
            Some(v) => parse_value(&v, "server")
                .map_err(|i| self.issues.push(i))
                .ok(),
        };
        if let Some(s) = &server {
            self.check_server(s);
        }
        let storage: Option<StorageConfig> = match root.remove("storage") {
            None | Some(Value::Null) => parse_value(&Value::Object(Map::new()), "storage").ok(),
            Some(v) => parse_value(&v, "storage")
                .map_err(|i| self.issues.push(i))
                .ok(),
        };
        if let Some(s) = &storage
            && !(s.url.starts_with("sqlite:")
                || s.url.starts_with("postgres://")
                || s.url.starts_with("postgresql://"))
        {
            self.issue("storage.url", "must start with sqlite:// or postgres://");
        }
        if let Some(s) = &storage {
            // Under an hour, dedupe keys would lapse inside Slatis's own retry schedule.
            self.within("storage.retention", s.retention, HOUR, YEAR);
            self.check_record_map_retention(s);
        }
        let admin: Option<Option<AdminConfig>> = match root.remove("admin") {
            None | Some(Value::Null) => Some(None),
            Some(v) => parse_value(&v, "admin")
                .map(Some)
                .map_err(|i| self.issues.push(i))
                .ok(),
        };
        let delivery: Option<DeliveryConfig> = self.section(&mut root, "delivery");
        if let Some(d) = &delivery {
            self.check_delivery(d);
        }
        let tenants = self.tenants(root.remove("tenants"), &redactor);
        for key in root.keys() {
            self.issues.push(ConfigIssue::new(
                key.clone(),
                format!("unknown key `{key}` (expected server, storage, admin, delivery, tenants)"),
            ));
        }
        let (server, storage, admin, delivery) = (server?, storage?, admin?, delivery?);
        let admin = admin.map(|mut a| {
            a.token = a.token.filter(|t| !t.is_empty());
            a
        });
        if let Some(a) = &admin {
            self.check_admin(a);
        }
        let max_signing_secrets = tenants
            .values()
            .map(|t| t.signing_secrets.len())
            .max()
            .unwrap_or(0)
            .max(1);
        Some(Config {
            server,
            storage,
            admin,
            delivery,
            tenants,
            max_signing_secrets,
            templates: std::mem::take(&mut self.templates),
            redactor,
            warnings: std::mem::take(&mut self.warnings),
        })
    }

    fn check_record_map_retention(&mut self, s: &StorageConfig) {
        if s.record_map_retention < s.retention {
            self.issue(
                "storage.record_map_retention",
                "must not be shorter than storage.retention (a booking's later events must find its CRM records)",
            );
        }
    }

    fn check_admin(&mut self, a: &AdminConfig) {
        if a.token
            .as_ref()
            .is_some_and(|t| t.chars().count() < ADMIN_TOKEN_MIN)
        {
            self.issue(
                "admin.token",
                format!("must be at least {ADMIN_TOKEN_MIN} characters; generate one with `openssl rand -hex 32` and set it through a variable such as ${{SLATIS_SYNC_ADMIN_TOKEN}}"),
            );
        }
        if a.session_ttl < Duration::from_secs(1) || a.session_ttl > SESSION_TTL_MAX {
            self.issue("admin.session_ttl", "must be between 1s and 30d");
        }
    }

    fn check_server(&mut self, s: &ServerConfig) {
        for (key, d) in [
            ("header_timeout", s.header_timeout),
            ("body_timeout", s.body_timeout),
            ("request_timeout", s.request_timeout),
            ("shutdown_timeout", s.shutdown_timeout),
        ] {
            let path = format!("server.{key}");
            self.within(&path, d, Duration::from_millis(1), server::MAX_TIMEOUT);
        }
        if s.body_timeout > s.request_timeout {
            self.issue(
                "server.body_timeout",
                "must not be longer than server.request_timeout",
            );
        }
        if !(1..=server::MAX_CONNECTIONS).contains(&s.max_connections) {
            self.issue(
                "server.max_connections",
                format!("must be between 1 and {}", server::MAX_CONNECTIONS),
            );
        }
    }

    fn check_delivery(&mut self, d: &DeliveryConfig) {
        if d.concurrency == 0 {
            self.issue("delivery.concurrency", "must be at least 1");
        }
        let r = &d.retry;
        if !(1..=10_000).contains(&r.max_attempts) {
            self.issue("delivery.retry.max_attempts", "must be between 1 and 10000");
        }
        if !(1..=100_000).contains(&r.max_rate_limited) {
            self.issue(
                "delivery.retry.max_rate_limited",
                "must be between 1 and 100000",
            );
        }
        self.within(
            "delivery.retry.initial_backoff",
            r.initial_backoff,
            Duration::from_millis(1),
            WEEK,
        );
        self.within(
            "delivery.retry.max_backoff",
            r.max_backoff,
            Duration::ZERO,
            WEEK,
        );
        if r.max_backoff < r.initial_backoff {
            self.issue(
                "delivery.retry.max_backoff",
                "must not be shorter than initial_backoff",
            );
        }
        // A lease is renewed every third of itself; a long one keeps a dead process's jobs
        // waiting that long.
        self.within("delivery.lease", d.lease, Duration::from_secs(5), HOUR);
        self.within(
            "delivery.shutdown_grace",
            d.shutdown_grace,
            Duration::ZERO,
            HOUR,
        );
    }

    /// An issue at `path` unless `d` is within `min ..= max`.
    fn within(&mut self, path: &str, d: Duration, min: Duration, max: Duration) {
        if d < min || d > max {
            self.issue(
                path,
                format!(
                    "must be between {} and {} (is {})",
                    duration::show(min),
                    duration::show(max),
                    duration::show(d)
                ),
            );
        }
    }

    fn tenants(&mut self, value: Option<Value>, redactor: &Redactor) -> BTreeMap<String, Tenant> {
        let mut out = BTreeMap::new();
        let map = match value {
            Some(Value::Object(m)) => m,
            None | Some(Value::Null) => {
                self.warnings.push(
                    "no tenants are configured: every webhook will be answered 401".to_owned(),
                );
                return out;
            }
            Some(_) => {
                self.issue("tenants", "must be a mapping of tenant name to tenant");
                return out;
            }
        };
        for (name, value) in map {
            let place = join("tenants", &name);
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            {
                self.issue(&place, "a tenant name may hold only letters, digits, `-`, `_` and `.` (it is a URL segment)");
            }
            if let Some(t) = self.tenant(&name, &place, value, redactor) {
                out.insert(name, t);
            }
        }
        out
    }

    fn tenant(
        &mut self,
        name: &str,
        place: &str,
        value: Value,
        redactor: &Redactor,
    ) -> Option<Tenant> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct RawTenant {
            signing_secrets: Vec<String>,
            #[serde(default)]
            slatis_api_key: Option<String>,
            #[serde(default)]
            connectors: Map<String, Value>,
            #[serde(default)]
            routes: Map<String, Value>,
        }
        let raw: RawTenant = parse_value(&value, place)
            .map_err(|i| self.issues.push(i))
            .ok()?;
        if raw.signing_secrets.is_empty() {
            self.issue(
                join(place, "signing_secrets"),
                "at least one signing secret is needed",
            );
        }
        let mut connectors = BTreeMap::new();
        for (iname, ivalue) in raw.connectors {
            let iplace = join(&join(place, "connectors"), &iname);
            if let Some(instance) = self.instance(name, &iname, &iplace, ivalue, redactor) {
                connectors.insert(iname, instance);
            }
        }
        let all_dry_run = connectors.values().all(|c: &Instance| c.dry_run);
        self.issues.extend(secrets::signing_secret_issues(
            place,
            &raw.signing_secrets,
            all_dry_run,
            &self.variables,
        ));
        let mut routes = BTreeMap::new();
        for (event, steps) in raw.routes {
            let rplace = join(&join(place, "routes"), &event);
            let valid_name = event == "*"
                || (event.starts_with(|c: char| c.is_ascii_uppercase())
                    && event
                        .chars()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'));
            if !valid_name {
                self.issue(&rplace, format!("`{event}` is not an event type (UPPER_SNAKE_CASE, e.g. BOOKING_CREATED, or \"*\")"));
                continue;
            }
            if event != "*" && !EVENT_TYPES.contains(&event.as_str()) {
                self.warnings.push(format!(
                    "{rplace}: Slatis does not document the event type {event}; check the spelling"
                ));
            }
            let compiled = steps::compile_route(self, &rplace, steps, &connectors);
            routes.insert(event, compiled);
        }
        Some(Tenant {
            name: name.to_owned(),
            signing_secrets: raw.signing_secrets,
            slatis_api_key: raw.slatis_api_key.filter(|k| !k.is_empty()),
            connectors,
            routes,
        })
    }

    fn instance(
        &mut self,
        tenant: &str,
        name: &str,
        place: &str,
        value: Value,
        redactor: &Redactor,
    ) -> Option<Instance> {
        let Value::Object(mut map) = value else {
            self.issue(
                place,
                "a connector instance must be a mapping with a `type`",
            );
            return None;
        };
        let generic: Map<String, Value> = INSTANCE_KEYS
            .iter()
            .filter_map(|k| map.remove(*k).map(|v| ((*k).to_owned(), v)))
            .collect();
        let keys: InstanceKeys = parse_value(&Value::Object(generic), place)
            .map_err(|i| self.issues.push(i))
            .ok()?;
        let Some(factory) = connector::factory(&keys.kind) else {
            let compiled = connector::registered();
            self.issue(
                join(place, "type"),
                format!(
                    "connector type `{}` is not compiled into this binary (compiled in: {}); rebuild with `--features {}`",
                    keys.kind,
                    if compiled.is_empty() { "none".to_owned() } else { compiled.join(", ") },
                    keys.kind
                ),
            );
            return None;
        };
        if keys.concurrency == 0 {
            self.issue(join(place, "concurrency"), "must be at least 1");
        }
        if let Some(l) = keys.rate_limit
            && (l.requests == 0 || l.per.is_zero())
        {
            self.issue(
                join(place, "rate_limit"),
                "requests and per must both be above zero",
            );
        }
        if let Some(l) = keys.rate_limit {
            self.within(&join(place, "rate_limit.per"), l.per, Duration::ZERO, WEEK);
        }
        self.within(
            &join(place, "timeout"),
            keys.timeout,
            Duration::from_millis(1),
            Duration::from_secs(600),
        );
        let config = Value::Object(map);
        let cx = BuildContext {
            tenant,
            instance: name,
            place,
            config: &config,
        };
        match (factory.build)(&cx) {
            Ok(connector) => Some(Instance {
                name: name.to_owned(),
                kind: keys.kind,
                dry_run: keys.dry_run,
                concurrency: keys.concurrency.max(1),
                connector,
                transport: Transport::new(
                    keys.rate_limit.or(factory.default_rate_limit),
                    keys.timeout,
                    keys.dry_run,
                    redactor.clone(),
                ),
            }),
            Err(issues) => {
                self.issues.extend(issues);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests;
