//! `slatis-sync render`: what an event would make each connector send, with nothing sent.

use super::{load, read};
use anyhow::{Context as _, bail};
use slatis_core::Config;
use slatis_core::Envelope;
use slatis_core::connector::{MemoryKeyLocks, MemoryRecordMap};
use slatis_core::job::{self, JobEvent, Progress, RunResult};
use std::path::Path;
use std::process::ExitCode;

/// Runs each job `envelope` makes for `tenant` once, recording every request instead of
/// sending it (a first attempt, an empty record map): what `render` prints and `test`
/// compares. Returns each job's connector instance and result, in route order.
pub async fn dry_run<'c>(
    config: &'c Config,
    tenant: &str,
    envelope: &Envelope,
) -> Vec<(&'c str, RunResult)> {
    let Some(t) = config.tenants.get(tenant) else {
        return Vec::new();
    };
    let event = JobEvent::of(envelope, "evt_render", chrono::Utc::now());
    let records = MemoryRecordMap::default();
    let locks = MemoryKeyLocks::default();
    let mut runs = Vec::new();
    for name in t.route(&envelope.event) {
        let job = job::Job {
            config,
            tenant,
            instance: name,
            event: &event,
            attempt: 1,
            record_only: true,
        };
        runs.push((
            name,
            job::run(&job, Progress::default(), &records, &locks).await,
        ));
    }
    runs
}

/// Renders the event in `event_file` for `tenant`.
pub async fn run(
    config_path: &Path,
    tenant: &str,
    event_file: &Path,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let config = load(config_path)?;
    let Some(t) = config.tenants.get(tenant) else {
        bail!(
            "no tenant `{tenant}` in {} (it has: {})",
            config_path.display(),
            config
                .tenants
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        );
    };
    let raw = read(event_file)?;
    let envelope = Envelope::parse(&raw)
        .with_context(|| format!("{} is not a Slatis event", event_file.display()))?;
    let runs = dry_run(&config, tenant, &envelope).await;
    let mut failed = false;
    let mut out = Vec::new();
    if !json {
        println!(
            "{} for tenant {tenant}: {} job(s)",
            envelope.event,
            runs.len()
        );
    }
    for (name, run) in runs {
        let instance = &t.connectors[name];
        let error = run
            .failure
            .as_ref()
            .map(|(_, e)| config.redactor.redact(&e.to_string()).into_owned());
        failed |= error.is_some();
        if json {
            out.push(serde_json::json!({ "connector": name, "type": instance.kind, "steps": run.trace, "error": error }));
            continue;
        }
        println!("\n── {name} ({}) ──", instance.kind);
        for step in &run.trace {
            let status = if step.skipped {
                "skipped (when is false)"
            } else {
                ""
            };
            println!(
                "step {}  {}  {}  {status}",
                step.step + 1,
                step.action,
                step.place
            );
            for r in &step.requests {
                println!("  {} {}", r.method, r.url);
                for (k, v) in &r.headers {
                    println!("  {k}: {v}");
                }
                if let Some(body) = &r.body {
                    let text = serde_json::to_string_pretty(body).unwrap_or_default();
                    for line in text.lines() {
                        println!("  {line}");
                    }
                }
            }
        }
        if let Some(e) = error {
            println!("  FAILED: {e}");
        }
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
