//! The configuration: one YAML file (DESIGN §3), loaded by [`load_file`] / [`load_str`].
//!
//! Loading runs in this order, and every stage collects all the errors it finds rather
//! than stopping at the first:
//! 1. parse the YAML (serde-saphyr) into a tree that keeps line numbers;
//! 2. substitute `${VAR}` into string values only ([`env`]), learning which values are
//!    secrets;
//! 3. read each section into typed structs that deny unknown keys ([`sections`], [`loader`]);
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
mod loader;
mod secrets;
mod sections;
mod server;
mod steps;
mod tenants_dir;
mod yaml;

pub use env::{Lookup, substitute};
pub use sections::{
    ADMIN_TOKEN_MIN, AdminConfig, DeliveryConfig, POOL_SIZE_MAX, RetryConfig, StorageConfig,
};
pub use server::{ServerConfig, TlsFiles};
pub use yaml::join;

use crate::connector::{Connector, Transport};
use crate::redact::Redactor;
use crate::step::Step;
use crate::template::Templates;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

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

/// One problem found at load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    /// The YAML path, e.g. `tenants.acme.routes.BOOKING_CREATED[0].properties.firstname`.
    pub path: String,
    /// The line in the file, where known.
    pub line: Option<u64>,
    /// What is wrong.
    pub message: String,
    /// The file it is in, when not the config file itself (a `tenants_dir` file).
    pub file: Option<PathBuf>,
}

impl ConfigIssue {
    /// An issue at `path` (its line is filled in by the loader).
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            line: None,
            message: message.into(),
            file: None,
        }
    }
}

impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{} ", file.display())?;
        }
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

/// A connector instance, built and ready.
///
/// What it holds at run time (the connector with its token cache, the transport's rate
/// limiter) outlives a config reload where its block is unchanged: see
/// [`Config::carry_over`].
pub struct Instance {
    /// Its name in the tenant's `connectors`.
    pub name: String,
    /// Its type.
    pub kind: String,
    /// Whether it only records.
    pub dry_run: bool,
    /// Deliveries in flight to it at most.
    pub concurrency: usize,
    /// The connector (shared with the next config generation when its block is
    /// unchanged; retired when the last job holding it is done).
    pub connector: Arc<dyn Connector>,
    /// Its way out.
    pub transport: Transport,
    /// The instance's block as loaded (`${VAR}` substituted), as a digest: what a reload
    /// compares.
    pub(crate) block: Fingerprint,
}

impl Instance {
    /// Takes over `old`'s running state where this instance is the same CRM instance:
    /// - the whole block unchanged: `old`'s connector (its OAuth tokens, its own limiters)
    ///   and `old`'s rate limiter, so a reload mints no token and starts no second budget;
    /// - the block changed but the type and the effective rate limit did not: `old`'s rate
    ///   limiter only (new credentials or settings, the same CRM account's budget);
    /// - the rate limit changed: a new limiter that counts the sends of `old`'s window.
    ///
    /// Returns whether the connector was kept.
    pub fn carry_over(&mut self, old: &Self) -> bool {
        if self.kind != old.kind {
            return false;
        }
        self.transport.inherit_limits(&old.transport);
        if self.block == old.block {
            self.connector = Arc::clone(&old.connector);
            return true;
        }
        false
    }
}

/// The SHA-256 of a value's JSON text: two blocks with the same fingerprint are the same
/// block (keys in the same order), without keeping the block itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fingerprint([u8; 32]);

impl Fingerprint {
    pub(crate) fn of(value: &Value) -> Self {
        use sha2::Digest as _;
        Self(sha2::Sha256::digest(value.to_string().as_bytes()).into())
    }

    /// A config file's text and the directory its relative paths start from.
    fn of_source(src: &str, base: Option<&Path>) -> Self {
        use sha2::Digest as _;
        let mut h = sha2::Sha256::new();
        h.update(
            base.map(|b| b.to_string_lossy())
                .unwrap_or_default()
                .as_bytes(),
        );
        h.update([0]);
        h.update(src.as_bytes());
        Self(h.finalize().into())
    }
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
    /// (Boxed: a map node holds eleven slots, most of them empty for one or two instances.)
    pub connectors: BTreeMap<String, Box<Instance>>,
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

/// What [`Config::carry_over`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CarriedOver {
    /// Instances whose running state (connector, tokens, limiter) was kept.
    pub kept: usize,
    /// Instances started anew (new, or their block changed).
    pub started: usize,
    /// Tenants kept whole: their file was unchanged (not read again).
    pub tenants_kept: usize,
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
    /// Tenants by name (shared with the next generation when a reload finds a tenant's
    /// file unchanged: see [`load_file_after`]).
    pub tenants: BTreeMap<String, Arc<Tenant>>,
    /// Every template of this config.
    pub templates: Templates,
    /// Masks the secrets this config holds.
    pub redactor: Redactor,
    /// The most signing secrets any tenant has (at least 1): every signature check does
    /// this many HMACs, so timing tells nothing about tenants.
    pub max_signing_secrets: usize,
    /// Things that are allowed but probably wrong (an unknown event type).
    pub warnings: Vec<String>,
    /// What it was loaded from, for the next reload.
    pub(crate) origin: Origin,
}

/// What a config was loaded from: a reload that finds the main file unchanged reads only
/// the tenant files whose stamp changed, and keeps the tenants of the others as they run.
#[derive(Default)]
pub(crate) struct Origin {
    /// The main file's text and directory, as a digest.
    main: Option<Fingerprint>,
    /// The file and stamp of each tenant from `tenants_dir`, by tenant.
    files: BTreeMap<String, (PathBuf, Option<tenants_dir::Stamp>)>,
}

impl Config {
    /// Makes this (newly loaded) config take over the running state of `old`'s connector
    /// instances, matched by tenant and instance name (see [`Instance::carry_over`]).
    /// Jobs still running on `old` keep its instances until they finish; the instances
    /// dropped here are retired then.
    pub fn carry_over(&mut self, old: &Self) -> CarriedOver {
        let mut done = CarriedOver::default();
        for (name, tenant) in &mut self.tenants {
            // A tenant kept from `old` (its file unchanged) runs as it ran
            let Some(tenant) = Arc::get_mut(tenant) else {
                done.kept += tenant.connectors.len();
                done.tenants_kept += 1;
                continue;
            };
            for (iname, instance) in &mut tenant.connectors {
                let kept = old
                    .tenants
                    .get(name)
                    .and_then(|t| t.connectors.get(iname))
                    .is_some_and(|o| instance.carry_over(o));
                if kept {
                    done.kept += 1;
                } else {
                    done.started += 1;
                }
            }
        }
        done
    }

    /// Counts every connector instance's sends in `windows` (shared by the replicas of
    /// one database), each under `tenant/instance`.
    pub fn share_windows(&mut self, windows: &Arc<dyn crate::connector::SharedWindows>) {
        for (name, tenant) in &mut self.tenants {
            // a tenant kept from the last generation counts there already
            let Some(tenant) = Arc::get_mut(tenant) else {
                continue;
            };
            for (iname, instance) in &mut tenant.connectors {
                instance
                    .transport
                    .share_windows(Arc::clone(windows), format!("{name}/{iname}"));
            }
        }
    }
}

/// Loads `path`, taking `${VAR}`s from the process environment.
///
/// # Errors
/// Every problem found, each with its path and line.
pub fn load_file(path: &Path) -> Result<Config, ConfigError> {
    load_file_with(path, None)
}

/// Loads `path` again while `previous` (loaded from it) runs: when the main file is
/// unchanged, a tenant from `tenants_dir` whose file is unchanged (size, modification
/// time, inode) is not read again, and its built tenant — connectors, tokens, limiters,
/// compiled steps — is shared with the new config. The process environment does not
/// change while it runs, so nothing else a tenant is built from can have changed.
///
/// # Errors
/// Every problem found, each with its path and line.
pub fn load_file_after(path: &Path, previous: &Config) -> Result<Config, ConfigError> {
    load_file_with(path, Some(previous))
}

fn load_file_with(path: &Path, previous: Option<&Config>) -> Result<Config, ConfigError> {
    let src = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: Some(path.to_owned()),
        issues: vec![ConfigIssue::new("", format!("cannot read the file: {e}"))],
    })?;
    let base = path.parent().unwrap_or_else(|| Path::new("."));
    load(&src, Some(base), &|name| std::env::var(name).ok(), previous).map_err(|mut e| {
        e.file = Some(path.to_owned());
        e
    })
}

/// Loads a config from text, taking `${VAR}`s from `env`.
///
/// # Errors
/// Every problem found, each with its path and line.
pub fn load_str(src: &str, env: Lookup<'_>) -> Result<Config, ConfigError> {
    load(src, None, env, None)
}

/// Loads a config from text; a `tenants_dir` is relative to `base`; tenants of unchanged
/// files are taken from `previous` when it was loaded from the same text.
fn load(
    src: &str,
    base: Option<&Path>,
    env: Lookup<'_>,
    previous: Option<&Config>,
) -> Result<Config, ConfigError> {
    let main = Fingerprint::of_source(src, base);
    let previous = previous.filter(|p| p.origin.main == Some(main));
    let root = yaml::parse(src).map_err(|e| ConfigError {
        file: None,
        issues: vec![ConfigIssue {
            path: String::new(),
            line: e.line,
            message: format!(
                "not valid YAML: {}",
                secrets::clean(&e.message, &Redactor::default())
            ),
            file: None,
        }],
    })?;
    let mut root = root.into_json();
    let mut issues = Vec::new();
    let mut from_files = tenants_dir::take(&mut root, base, &mut issues, previous);
    let mut found = env::Found::default();
    env::interpolate(&mut root, "", env, &mut issues, &mut found);
    // The kept tenants' secrets are masked too (and a changed tenant's old ones: harmless)
    let kept_secrets = previous
        .map(|p| p.redactor.secrets().to_vec())
        .unwrap_or_default();
    let redactor = Redactor::new(found.secrets.iter().cloned().chain(kept_secrets));
    let mut loader = loader::Loader {
        issues,
        // Kept tenants' steps name templates by their source: the registry carries over
        templates: previous.map(|p| p.templates.clone()).unwrap_or_default(),
        warnings: Vec::new(),
        variables: found.variables,
    };
    let config = loader.root(root, redactor, std::mem::take(&mut from_files.kept));
    let mut issues = loader.issues;
    if issues.is_empty()
        && let Some(mut config) = config
    {
        config.origin = Origin {
            main: Some(main),
            files: from_files.into_stamps(),
        };
        return Ok(config);
    }
    // Errors mask every variable value too: a misplaced `${SECRET}` is still a secret.
    let shown = Redactor::new(found.secrets.into_iter().chain(found.values));
    let lines = yaml::Lines::of_source(src, "");
    for issue in &mut issues {
        issue.message = secrets::clean(&issue.message, &shown);
        if issue.file.is_none() {
            from_files.place(issue);
        }
        if issue.line.is_none() && issue.file.is_none() {
            issue.line = lines.of(&issue.path);
        }
    }
    issues.sort_by(|a, b| {
        (a.file.is_some(), &a.file, a.line.unwrap_or(u64::MAX)).cmp(&(
            b.file.is_some(),
            &b.file,
            b.line.unwrap_or(u64::MAX),
        ))
    });
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

#[cfg(test)]
mod tests;
