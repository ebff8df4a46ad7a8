//! `slatis-sync serve`: the ingress, the workers and the admin listener, until SIGTERM.

use super::load;
use slatis_server::{Options, Shared};
use slatis_store::Access;
use std::path::Path;
use std::process::ExitCode;
use tokio::signal::unix::{SignalKind, signal};

/// Runs the service with the config at `path`.
pub async fn run(path: &Path) -> anyhow::Result<ExitCode> {
    let config = load(path)?;
    for w in &config.warnings {
        tracing::warn!("{w}");
    }
    let url = config.storage.url.clone();
    let shown_url = config.redactor.url(&url);
    let store = slatis_store::open(&config.storage, Access::Owner).await?;
    let tenants: Vec<(String, Vec<String>)> = config
        .tenants
        .values()
        .map(|t| (t.name.clone(), super::instances(t)))
        .collect();
    let scheme = |tls: bool| if tls { "https" } else { "http" };
    let ingress_scheme = scheme(config.server.tls.is_some());
    let admin_scheme = scheme(config.admin.as_ref().is_some_and(|a| a.tls.is_some()));
    let shared = Shared::new(config, store, Some(path.to_owned()));
    let options = Options {
        reclaim_all_on_start: url.starts_with("sqlite:"),
    };
    let running = slatis_server::start(shared, options).await?;
    println!(
        "slatis-sync {} — config {}, storage {}",
        env!("CARGO_PKG_VERSION"),
        path.display(),
        shown_url
    );
    // The admin line first: the ingress line says every listener is up.
    if let Some(admin) = running.admin {
        println!(
            "admin listening on {admin_scheme}://{admin} (dashboard /admin, metrics /metrics)"
        );
    }
    println!(
        "ingress listening on {ingress_scheme}://{}",
        running.ingress
    );
    // Every tenant's line up to a screenful; an operator with thousands reads the count.
    const LISTED: usize = 20;
    for (name, conns) in tenants.iter().take(LISTED) {
        println!(
            "  POST {ingress_scheme}://{}/webhooks/{name} → {}",
            running.ingress,
            if conns.is_empty() {
                "no connectors".to_owned()
            } else {
                conns.join(", ")
            }
        );
    }
    if tenants.len() > LISTED {
        println!("  … and {} more tenants", tenants.len() - LISTED);
    }
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                match running.shared().reload() {
                    Ok(notes) => notes.iter().for_each(|n| tracing::warn!("{n}")),
                    Err(e) => tracing::error!("config not reloaded, keeping the running one: {e}"),
                }
                if let Err(e) = running.reload_tls() {
                    tracing::error!(error = %e, "TLS certificate not reloaded; serving the previous one");
                }
            }
        }
    }
    tracing::info!("shutting down: no new webhooks; finishing deliveries in flight");
    running.shutdown().await;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}
