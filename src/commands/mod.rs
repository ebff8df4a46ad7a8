//! One module per CLI command.

pub mod backfill;
pub mod dlq;
pub mod migrate;
pub mod render;
pub mod send;
pub mod serve;
pub mod test;
pub mod validate;
pub mod webhooks;

use anyhow::Context as _;
use slatis_core::Config;
use std::path::{Path, PathBuf};

/// Loads the config, or prints every error and says so.
pub fn load(path: &Path) -> anyhow::Result<Config> {
    match slatis_core::config::load_file(path) {
        Ok(config) => Ok(config),
        Err(e) => {
            eprintln!("{e}");
            anyhow::bail!("{} is not valid; nothing was started", path.display())
        }
    }
}

/// Reads a file, naming it on error.
pub fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

/// One line per connector instance of `tenant`: `name (type[, dry run])`.
pub fn instances(tenant: &slatis_core::config::Tenant) -> Vec<String> {
    tenant
        .connectors
        .values()
        .map(|c| {
            format!(
                "{} ({}{})",
                c.name,
                c.kind,
                if c.dry_run { ", dry run" } else { "" }
            )
        })
        .collect()
}

/// `<config stem>.<suffix>` in the config's directory (`slatis-sync.yaml` →
/// `slatis-sync.tests`): where state kept with a config lives.
pub fn beside(config: &Path, suffix: &str) -> PathBuf {
    let stem = config.file_stem().map_or_else(
        || "slatis-sync".into(),
        |s| s.to_string_lossy().into_owned(),
    );
    config
        .parent()
        .unwrap_or_else(|| Path::new("."))
        .join(format!("{stem}.{suffix}"))
}
