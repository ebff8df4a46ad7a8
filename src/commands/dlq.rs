//! `slatis-sync dlq list | show ID | replay ID… | replay --all [--tenant T]`.
//!
//! Works beside a running server: it opens the store as a shared reader/writer, and goes
//! through the operations service the admin API uses ([`slatis_server::ops`]).

use super::load;
use clap::Subcommand;
use slatis_server::ops::params::{Filters, Paging};
use slatis_server::ops::{Operations, OpsError};
use slatis_store::{Access, JobId};
use std::path::Path;
use std::process::ExitCode;

/// The `dlq` subcommands.
#[derive(Subcommand)]
pub enum DlqCommand {
    /// List dead letters, newest first.
    List {
        /// Only this tenant.
        #[arg(long)]
        tenant: Option<String>,
        /// At most this many (up to 500).
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Show one job: its event, every attempt, and what a dry run recorded.
    Show {
        /// The job id.
        id: JobId,
    },
    /// Put dead letters back in the queue.
    Replay {
        /// Job ids.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        ids: Vec<JobId>,
        /// Every dead letter (of --tenant, if given).
        #[arg(long)]
        all: bool,
        /// With --all: only this tenant.
        #[arg(long, requires = "all")]
        tenant: Option<String>,
    },
}

fn cut(s: &str, n: usize) -> String {
    let s = s.replace('\n', " ");
    match s.char_indices().nth(n) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s,
    }
}

/// Runs a `dlq` subcommand against the store the config names.
pub async fn run(config_path: &Path, command: DlqCommand) -> anyhow::Result<ExitCode> {
    let config = load(config_path)?;
    let store = slatis_store::open(&config.storage, Access::Shared).await?;
    let result = run_on(&Operations::new(&*store, None), command).await;
    store.close().await;
    result
}

async fn run_on(ops: &Operations<'_>, command: DlqCommand) -> anyhow::Result<ExitCode> {
    Ok(match command {
        DlqCommand::List { tenant, limit } => {
            let filters = Filters {
                tenant,
                ..Filters::default()
            };
            let paging = Paging {
                cursor: None,
                limit: Some(limit.to_string()),
            };
            let jobs: Vec<_> = ops
                .dead_letters(&filters, &paging)
                .await?
                .items
                .into_iter()
                .map(|d| d.job)
                .collect();
            if jobs.is_empty() {
                println!("no dead letters");
            } else {
                println!(
                    "{:>6}  {:<12} {:<12} {:<20} {:<16} {:>8}  {:<20}  ERROR",
                    "JOB", "TENANT", "CONNECTOR", "EVENT", "BOOKING", "ATTEMPTS", "DEAD SINCE"
                );
                for j in &jobs {
                    println!(
                        "{:>6}  {:<12} {:<12} {:<20} {:<16} {:>8}  {:<20}  {}",
                        j.id,
                        cut(&j.tenant, 12),
                        cut(&j.connector, 12),
                        cut(&j.event_type, 20),
                        cut(j.booking_id.as_deref().unwrap_or("-"), 16),
                        j.attempts,
                        j.updated_at.format("%Y-%m-%d %H:%M:%S"),
                        j.last_error.as_deref().unwrap_or("").replace('\n', " ")
                    );
                }
                println!(
                    "{} dead letter(s); `slatis-sync dlq show ID` for one, `dlq replay ID…` to retry",
                    jobs.len()
                );
            }
            ExitCode::SUCCESS
        }
        DlqCommand::Show { id } => match ops.job(id).await {
            Err(OpsError::NoJob(_)) => {
                eprintln!("no job {id}");
                ExitCode::FAILURE
            }
            Err(e) => return Err(e.into()),
            Ok(j) => {
                println!(
                    "job {}  {}  tenant {}  connector {}",
                    j.job.id,
                    j.job.status.as_str(),
                    j.job.tenant,
                    j.job.connector
                );
                println!(
                    "event {}  {}  booking {}",
                    j.job.event_id,
                    j.job.event_type,
                    j.job.booking_id.as_deref().unwrap_or("-")
                );
                println!(
                    "attempts {}  steps done {}  created {}",
                    j.job.attempts,
                    j.steps_done,
                    j.job.created_at.to_rfc3339()
                );
                if let Some(e) = &j.job.last_error {
                    println!("last error: {e}");
                }
                println!("\nattempts:");
                for a in &j.attempts_log {
                    println!(
                        "  #{:<3} {}  {:<12} {}{}",
                        a.attempt,
                        a.started_at.format("%Y-%m-%d %H:%M:%S%.3f"),
                        a.outcome,
                        a.step
                            .map(|s| format!("step {}: ", s + 1))
                            .unwrap_or_default(),
                        a.error.as_deref().unwrap_or("")
                    );
                }
                if j.step_results.as_object().is_some_and(|o| !o.is_empty()) {
                    println!("\nstep results: {}", j.step_results);
                }
                if let Some(d) = &j.dry_run {
                    println!(
                        "\ndry run, requests it would send:\n{}",
                        serde_json::to_string_pretty(d)?
                    );
                }
                println!("\nevent:\n{}", serde_json::to_string_pretty(&j.event)?);
                ExitCode::SUCCESS
            }
        },
        DlqCommand::Replay { ids, all, tenant } => {
            let replayed = if all {
                let filters = Filters {
                    tenant,
                    ..Filters::default()
                };
                ops.replay_matching(&filters).await?
            } else {
                ops.replay_ids(ids.clone()).await?
            }
            .replayed;
            let list: Vec<String> = replayed.iter().map(ToString::to_string).collect();
            println!(
                "replayed {} job(s){}{}",
                replayed.len(),
                if list.is_empty() { "" } else { ": " },
                list.join(", ")
            );
            let missed: Vec<String> = ids
                .iter()
                .filter(|i| !replayed.contains(i))
                .map(ToString::to_string)
                .collect();
            if !missed.is_empty() {
                eprintln!("not dead letters (left alone): {}", missed.join(", "));
            }
            if !replayed.is_empty() {
                println!(
                    "a running server picks them up within a second; otherwise at the next `serve`"
                );
            }
            if missed.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
    })
}
