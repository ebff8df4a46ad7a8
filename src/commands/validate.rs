//! `slatis-sync validate`: the same load as `serve`, with a readable report.

use std::path::Path;
use std::process::ExitCode;

/// Validates `path`; exit 1 on any error.
pub fn run(path: &Path) -> anyhow::Result<ExitCode> {
    match slatis_core::config::load_file(path) {
        Ok(config) => {
            // the certificate files are read at start-up: check them here too
            let tls = [
                ("server.tls", config.server.tls.as_ref()),
                (
                    "admin.tls",
                    config.admin.as_ref().and_then(|a| a.tls.as_ref()),
                ),
            ];
            let bad: Vec<String> = tls
                .iter()
                .filter_map(|(key, files)| {
                    let e = slatis_server::serve::tls::check((*files)?).err()?;
                    Some(format!("  - {key}: {e}"))
                })
                .collect();
            if !bad.is_empty() {
                eprintln!(
                    "{}: {} error(s)\n{}",
                    path.display(),
                    bad.len(),
                    bad.join("\n")
                );
                return Ok(ExitCode::FAILURE);
            }
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
