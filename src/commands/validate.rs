//! `slatis-sync validate`: the same load as `serve`, with a readable report.

use std::path::Path;
use std::process::ExitCode;

/// Validates `path`; exit 1 on any error.
pub fn run(path: &Path) -> anyhow::Result<ExitCode> {
    match slatis_core::config::load_file(path) {
        Ok(config) => {
            let instances: usize = config.tenants.values().map(|t| t.connectors.len()).sum();
            let steps: usize = config
                .tenants
                .values()
                .flat_map(|t| t.routes.values())
                .map(Vec::len)
                .sum();
            println!(
                "ok: {} is valid — {} tenant(s), {} connector instance(s), {} step(s)",
                path.display(),
                config.tenants.len(),
                instances,
                steps
            );
            for t in config.tenants.values() {
                let conns = super::instances(t);
                println!(
                    "  {}: {}; routes {}",
                    t.name,
                    conns.join(", "),
                    t.routes.keys().cloned().collect::<Vec<_>>().join(", ")
                );
            }
            for w in &config.warnings {
                println!("warning: {w}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("{e}");
            Ok(ExitCode::FAILURE)
        }
    }
}
