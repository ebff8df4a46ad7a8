//! `slatis-sync backfill --tenant T --since DATE [--until DATE] [--dry-run]` (DESIGN §5):
//! pages through Slatis's bookings in `[since, until)` (`GET /v1/bookings`, the tenant's
//! `slatis_api_key`) and feeds each booking through T's routes as the event its status
//! implies ([`plan`]), stored with its jobs exactly as the ingress stores a webhook
//! ([`slatis_server::ingress::new_event`]); the running service delivers them.
//!
//! Invariants:
//! - nothing is fed twice: a booking whose event of that type T already has (from a
//!   webhook or an earlier backfill) is skipped ([`Store::has_event`]), and a backfilled
//!   event's dedupe key depends only on its booking and type, so even two runs at once
//!   store it once; an event type T does not route is not stored (a route added later can
//!   still be backfilled);
//! - resumable: after each page fed, a [`checkpoint`] names the next page; the same
//!   command re-run resumes there, and the checkpoint is removed when the range is done;
//! - a 429 waits its `Retry-After` (at most a minute, a few times) and goes on; any other
//!   failure stops with what to do, the checkpoint kept;
//! - stdout carries only the `--dry-run` plan (one line per booking); progress, one line
//!   per page, and the summary go to stderr; `--dry-run` stores nothing;
//! - the store is opened shared ([`Access::Shared`]), so it runs beside `serve`.

mod checkpoint;
mod plan;

use super::webhooks::{Api, tenant_api};
use anyhow::{Context as _, bail};
use checkpoint::{Checkpoint, Slot};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use slatis_api::{Booking, BookingQuery, Page};
use slatis_core::Envelope;
use slatis_core::config::Tenant;
use slatis_store::{Access, Ingested, Store};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

/// The longest wait a `Retry-After` gets.
const MAX_WAIT: Duration = Duration::from_secs(60);
/// The wait of a 429 without a readable `Retry-After`.
const DEFAULT_WAIT: Duration = Duration::from_secs(5);
/// 429s in a row before giving up.
const MAX_RATE_LIMITED: u32 = 10;

/// `backfill`'s arguments.
#[derive(clap::Args)]
pub struct BackfillArgs {
    /// The tenant whose routes the bookings go through.
    #[arg(long)]
    tenant: String,
    /// The range's start: YYYY-MM-DD (UTC) or an RFC 3339 time.
    #[arg(long)]
    since: String,
    /// The range's end, excluded [default: now].
    #[arg(long)]
    until: Option<String>,
    /// Print what would be fed (booking, status -> event, new or skipped); store nothing.
    #[arg(long)]
    dry_run: bool,
    /// The Slatis API base URL.
    #[arg(long, default_value = slatis_api::DEFAULT_BASE_URL)]
    slatis_url: String,
    /// Bookings per page.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=100))]
    page_size: u32,
}

/// What a backfill did so far.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Bookings read.
    pub bookings: u64,
    /// Events stored with their jobs (or, in a dry run, that would be).
    pub fed: u64,
    /// Bookings whose event the tenant already had.
    pub received: u64,
    /// Bookings whose event type the tenant does not route.
    pub unrouted: u64,
    /// Bookings in a status that implies no event (`DRAFT`, unknown).
    pub skipped: u64,
}

/// What became of one booking.
enum Verdict {
    Fed,
    Received,
    Unrouted,
    Skipped,
}

/// Runs `backfill`.
pub async fn run(config_path: &Path, args: BackfillArgs) -> anyhow::Result<ExitCode> {
    let since = plan::parse_date("since", &args.since)?;
    let until_given = args
        .until
        .as_deref()
        .map(|u| plan::parse_date("until", u))
        .transpose()?;
    if let Some(until) = until_given {
        plan::range(since, until)?;
    }
    let config = super::load(config_path)?;
    let (tenant, api) = tenant_api(
        &config,
        config_path,
        &args.tenant,
        &args.slatis_url,
        "the bookings:read scope",
    )?;
    let slot = Slot::new(
        config_path,
        &args.tenant,
        &args.since,
        args.until.as_deref(),
    );
    let kept = slot.load()?;
    // a dry run neither resumes nor moves the checkpoint of a real run
    let resumed = if args.dry_run {
        if let Some(c) = &kept {
            eprintln!(
                "note: an interrupted run of this range stopped after page {} (checkpoint {}); the dry run reads every page and leaves the checkpoint as it is",
                c.pages,
                slot.path().display()
            );
        }
        None
    } else {
        kept
    };
    let until = match &resumed {
        Some(c) => plan::parse_date("until", &c.until)
            .with_context(|| format!("checkpoint {}", slot.path().display()))?,
        None => until_given.unwrap_or_else(Utc::now),
    };
    plan::range(since, until)?;
    let store = slatis_store::open(&config.storage, Access::Shared).await?;
    let run = Run {
        api: &api,
        tenant,
        store: &*store,
        slot: &slot,
        since,
        until,
        args: &args,
    };
    let result = run.walk(resumed).await;
    store.close().await;
    result
}

/// One backfill under way.
struct Run<'a> {
    api: &'a Api,
    tenant: &'a Tenant,
    store: &'a dyn Store,
    slot: &'a Slot,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    args: &'a BackfillArgs,
}

impl Run<'_> {
    /// Every page from the checkpoint (or the first) to the last.
    async fn walk(&self, resumed: Option<Checkpoint>) -> anyhow::Result<ExitCode> {
        let range = format!(
            "[{}, {})",
            plan::rfc3339(self.since),
            plan::rfc3339(self.until)
        );
        let (mut pages, mut counts, mut cursor) = match resumed {
            Some(c) => {
                eprintln!(
                    "resuming after page {} (checkpoint {}); tenant {}, bookings {range}",
                    c.pages,
                    self.slot.path().display(),
                    self.tenant.name
                );
                (c.pages, c.counts, Some(c.cursor))
            }
            None => {
                eprintln!(
                    "backfill{}: tenant {}, bookings {range}",
                    if self.args.dry_run { " (dry run)" } else { "" },
                    self.tenant.name
                );
                (0, Counts::default(), None)
            }
        };
        let mut checkpoint_warned = false;
        loop {
            let page = self.page(cursor.clone(), pages).await?;
            pages += 1;
            for booking in &page.items {
                let verdict = self.feed(booking).await.with_context(|| {
                    format!(
                        "booking {} could not be stored{}",
                        booking.id,
                        self.resume_hint(pages - 1)
                    )
                })?;
                counts.bookings += 1;
                match verdict {
                    Verdict::Fed => counts.fed += 1,
                    Verdict::Received => counts.received += 1,
                    Verdict::Unrouted => counts.unrouted += 1,
                    Verdict::Skipped => counts.skipped += 1,
                }
            }
            eprintln!(
                "page {pages}: {} bookings, {} {}, {} already received",
                counts.bookings,
                counts.fed,
                if self.args.dry_run { "to feed" } else { "fed" },
                counts.received
            );
            let Some(next) = page.next_cursor else { break };
            cursor = Some(next.clone());
            if !self.args.dry_run {
                let kept = Checkpoint {
                    until: plan::rfc3339(self.until),
                    pages,
                    cursor: next,
                    counts: counts.clone(),
                };
                if let Err(e) = self.slot.save(&kept)
                    && !checkpoint_warned
                {
                    checkpoint_warned = true;
                    eprintln!(
                        "warning: cannot keep a checkpoint at {} ({e}): an interrupted run would read every page again (nothing is fed twice)",
                        self.slot.path().display()
                    );
                }
            }
        }
        if !self.args.dry_run
            && let Err(e) = self.slot.clear()
        {
            eprintln!(
                "warning: cannot remove the finished checkpoint {} ({e}): remove it, or a re-run of this range resumes at its end",
                self.slot.path().display()
            );
        }
        self.summary(pages, &counts);
        Ok(ExitCode::SUCCESS)
    }

    /// The last lines on stderr.
    fn summary(&self, pages: u32, c: &Counts) {
        eprintln!(
            "{}: {} bookings in {pages} page(s): {} {}, {} already received, {} of event types tenant {} does not route, {} in a status with no event (DRAFT or unknown)",
            if self.args.dry_run {
                "dry run done, nothing stored"
            } else {
                "backfill done"
            },
            c.bookings,
            c.fed,
            if self.args.dry_run {
                "would be fed"
            } else {
                "fed"
            },
            c.received,
            c.unrouted,
            self.tenant.name,
            c.skipped
        );
        if !self.args.dry_run && c.fed > 0 {
            eprintln!(
                "a running `slatis-sync serve` delivers them within a second; otherwise the next `serve` does"
            );
        }
    }

    /// `; the checkpoint is kept: …` once a page was done (and not in a dry run).
    fn resume_hint(&self, pages_done: u32) -> String {
        if self.args.dry_run || pages_done == 0 {
            String::new()
        } else {
            format!(
                "; pages 1-{pages_done} are done (checkpoint {}): run the same command again to resume after page {pages_done}",
                self.slot.path().display()
            )
        }
    }

    /// The page at `cursor`; a 429 waits and asks again.
    async fn page(&self, cursor: Option<String>, done: u32) -> anyhow::Result<Page<Booking>> {
        let query = BookingQuery {
            start_date: Some(plan::rfc3339(self.since)),
            end_date: Some(plan::rfc3339(self.until)),
            limit: Some(self.args.page_size),
            cursor,
            status: None,
        };
        let mut limited = 0;
        loop {
            let e = match self.api.client.list_bookings(&query).await {
                Ok(page) => return Ok(page),
                Err(e) => e,
            };
            let hint = self.resume_hint(done);
            if let slatis_api::Error::RateLimited { retry_after } = e {
                limited += 1;
                if limited > MAX_RATE_LIMITED {
                    bail!(
                        "Slatis kept answering 429 (rate limited) for page {}: wait a few minutes (another client may share tenant {}'s key){hint}",
                        done + 1,
                        self.tenant.name
                    );
                }
                let wait = retry_after.unwrap_or(DEFAULT_WAIT).min(MAX_WAIT);
                eprintln!(
                    "Slatis rate limit reached: waiting {} s before page {}",
                    wait.as_secs(),
                    done + 1
                );
                tokio::time::sleep(wait).await;
                continue;
            }
            let why = match &e {
                slatis_api::Error::Transport(_) => format!(
                    "{e}: check --slatis-url ({}) and the network",
                    self.args.slatis_url
                ),
                slatis_api::Error::Api { status: 400, .. } => {
                    format!("{e}: check --since and --until")
                }
                _ => self.api.explain(e, "bookings:read").to_string(),
            };
            bail!("reading page {} of bookings failed: {why}{hint}", done + 1);
        }
    }

    /// Feeds one booking (or, in a dry run, says what would become of it).
    async fn feed(&self, booking: &Booking) -> anyhow::Result<Verdict> {
        let Some(event) = plan::event_for(&booking.status) else {
            self.plan_line(booking, "-", "skip (no event for this status)");
            return Ok(Verdict::Skipped);
        };
        if self.tenant.route(event).is_empty() {
            self.plan_line(booking, event, "skip (not routed)");
            return Ok(Verdict::Unrouted);
        }
        let name = &self.tenant.name;
        if self.store.has_event(name, &booking.id, event).await? {
            self.plan_line(booking, event, "skip (already received)");
            return Ok(Verdict::Received);
        }
        if self.args.dry_run {
            self.plan_line(booking, event, "new");
            return Ok(Verdict::Fed);
        }
        let raw = plan::payload(event, booking, Utc::now());
        let envelope = Envelope::parse(&raw)?;
        let new = slatis_server::ingress::new_event(
            self.tenant,
            &envelope,
            raw,
            plan::dedupe_key(event, booking),
        );
        Ok(match self.store.ingest(new).await? {
            Ingested::New { .. } => Verdict::Fed,
            Ingested::Duplicate { .. } => Verdict::Received,
        })
    }

    /// A line of the dry run's plan on stdout.
    fn plan_line(&self, booking: &Booking, event: &str, verdict: &str) {
        if self.args.dry_run {
            println!("{}  {} -> {event}  {verdict}", booking.id, booking.status);
        }
    }
}
