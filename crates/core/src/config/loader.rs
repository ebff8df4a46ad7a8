//! The loader: reads each section of the parsed, substituted config into typed values,
//! builds each connector instance through its factory and compiles every step, collecting
//! every problem (with its path) rather than stopping at the first.
//!
//! Invariants: a section that fails to parse is reported and the rest still checked; every
//! bound of every key is checked here, where the error names the key; a [`Config`] comes
//! out only when no issue was found.

use super::sections::{POOL_SIZE_MAX, SESSION_TTL_MAX};
use super::{
    ADMIN_TOKEN_MIN, AdminConfig, Config, ConfigIssue, DeliveryConfig, EVENT_TYPES, Fingerprint,
    Instance, ServerConfig, StorageConfig, Tenant, duration, join, lenient, parse_value, secrets,
    server, steps,
};
use crate::connector::{self, BuildContext, RateLimit, Transport};
use crate::redact::Redactor;
use crate::template::Templates;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

/// An hour: the bound of leases, grace periods and the shortest retention.
const HOUR: Duration = Duration::from_secs(3600);

/// A week: the bound of backoffs and rate-limit windows.
const WEEK: Duration = Duration::from_secs(7 * 86_400);
/// A year: the bound of `storage.retention` (dedupe keys and finished events).
const YEAR: Duration = Duration::from_secs(365 * 86_400);

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
    /// Search calls per rolling window, for CRMs with a lower search limit; defaults to
    /// the CRM's documented one.
    #[serde(default)]
    search_rate_limit: Option<RateLimit>,
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

const INSTANCE_KEYS: [&str; 6] = [
    "type",
    "dry_run",
    "rate_limit",
    "search_rate_limit",
    "timeout",
    "concurrency",
];

fn default_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_instance_concurrency() -> usize {
    8
}

pub(super) struct Loader {
    pub(super) issues: Vec<ConfigIssue>,
    pub(super) templates: Templates,
    pub(super) warnings: Vec<String>,
    /// The variables each path's value came from.
    pub(super) variables: HashMap<String, Vec<String>>,
}

impl Loader {
    pub(super) fn issue(&mut self, path: impl Into<String>, message: impl Into<String>) {
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

    /// The config `root` describes, with the `kept` tenants of the previous generation
    /// beside the tenants it builds.
    pub(super) fn root(
        &mut self,
        root: Value,
        redactor: Redactor,
        kept: BTreeMap<String, Arc<Tenant>>,
    ) -> Option<Config> {
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
            if s.pool_size == 0 || s.pool_size > POOL_SIZE_MAX {
                self.issue(
                    "storage.pool_size",
                    format!("must be between 1 and {POOL_SIZE_MAX}"),
                );
            }
            self.within(
                "storage.statement_timeout",
                s.statement_timeout,
                Duration::from_millis(100),
                HOUR,
            );
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
        let mut tenants = self.tenants(root.remove("tenants"), &redactor);
        tenants.extend(kept);
        for key in root.keys() {
            self.issues.push(ConfigIssue::new(
                key.clone(),
                format!("unknown key `{key}` (expected server, storage, admin, delivery, tenants, tenants_dir)"),
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
            origin: super::Origin::default(),
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

    fn tenants(
        &mut self,
        value: Option<Value>,
        redactor: &Redactor,
    ) -> BTreeMap<String, Arc<Tenant>> {
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
                out.insert(name, Arc::new(t));
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
        let mut broken = BTreeSet::new();
        for (iname, ivalue) in raw.connectors {
            let iplace = join(&join(place, "connectors"), &iname);
            match self.instance(name, &iname, &iplace, ivalue, redactor) {
                Some(instance) => {
                    connectors.insert(iname, instance);
                }
                None => {
                    broken.insert(iname);
                }
            }
        }
        let all_dry_run = connectors.values().all(|c| c.dry_run);
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
            let instances = steps::Instances {
                valid: &connectors,
                broken: &broken,
            };
            let compiled = steps::compile_route(self, &rplace, steps, &instances);
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
    ) -> Option<Box<Instance>> {
        let block = Fingerprint::of(&value);
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
        for (key, limit) in [
            ("rate_limit", keys.rate_limit),
            ("search_rate_limit", keys.search_rate_limit),
        ] {
            let Some(l) = limit else { continue };
            if l.requests == 0 || l.per.is_zero() {
                self.issue(join(place, key), "requests and per must both be above zero");
            }
            self.within(
                &join(place, &format!("{key}.per")),
                l.per,
                Duration::ZERO,
                WEEK,
            );
        }
        if keys.search_rate_limit.is_some() && factory.default_search_rate_limit.is_none() {
            self.issue(
                join(place, "search_rate_limit"),
                format!(
                    "type {} has no separate search limit; use rate_limit",
                    keys.kind
                ),
            );
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
            Ok(connector) => Some(Box::new(Instance {
                name: name.to_owned(),
                kind: keys.kind,
                dry_run: keys.dry_run,
                concurrency: keys.concurrency.max(1),
                connector: connector.into(),
                block,
                transport: Transport::new(
                    (
                        keys.rate_limit.or(factory.default_rate_limit),
                        keys.search_rate_limit.or(factory.default_search_rate_limit),
                    ),
                    keys.timeout,
                    keys.dry_run,
                    redactor.clone(),
                ),
            })),
            Err(issues) => {
                self.issues.extend(issues);
                None
            }
        }
    }
}
