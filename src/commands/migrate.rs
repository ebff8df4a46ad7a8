//! `slatis-sync migrate`: brings the schema of `storage.url` up to date, or with `--check`
//! lists what is pending (exit 1 if anything is), for operators who migrate before
//! rolling out new replicas. `serve` applies pending migrations at start too.

use super::load;
use std::path::Path;
use std::process::ExitCode;

/// Applies (or with `check` lists) the pending migrations of the configured store.
pub async fn run(config_path: &Path, check: bool) -> anyhow::Result<ExitCode> {
    let config = load(config_path)?;
    let shown = config.redactor.url(&config.storage.url);
    let names = slatis_store::migrate(&config.storage, check).await?;
    Ok(match (check, names.is_empty()) {
        (_, true) => {
            println!("{shown}: the schema is up to date");
            ExitCode::SUCCESS
        }
        (true, false) => {
            println!("{shown}: {} migration(s) pending:", names.len());
            for name in &names {
                println!("  {name}");
            }
            ExitCode::FAILURE
        }
        (false, false) => {
            println!("{shown}: applied {} migration(s):", names.len());
            for name in &names {
                println!("  {name}");
            }
            ExitCode::SUCCESS
        }
    })
}
