//! The values that cross the [`crate::Store`] API.

use chrono::{DateTime, Utc};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// A job's id (also its arrival order).
pub type JobId = i64;

/// An event to store with its jobs.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// `evt_…`.
    pub id: String,
    /// The tenant it was posted to.
    pub tenant: String,
    /// `event` of the envelope.
    pub event_type: String,
    /// `data.id`, if any.
    pub booking_id: Option<String>,
    /// `data.attendee.email`, trimmed and lower-cased, if any (searchable).
    pub attendee_email: Option<String>,
    /// The raw body, exactly as signed.
    pub body: Vec<u8>,
    /// SHA-256 of the body: the same body again is a duplicate.
    pub dedupe_key: Vec<u8>,
    /// When it arrived.
    pub received_at: DateTime<Utc>,
    /// One job per connector instance the route names, in route order.
    pub connectors: Vec<String>,
}

/// What [`crate::Store::ingest`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ingested {
    /// Stored, with this many jobs.
    New {
        /// The event's id.
        event_id: String,
        /// Jobs made.
        jobs: usize,
    },
    /// The same body was stored before.
    Duplicate {
        /// The first delivery's event id.
        event_id: String,
    },
}

/// A request to lease due jobs.
#[derive(Debug, Clone)]
pub struct ClaimRequest {
    /// Who leases them.
    pub worker: String,
    /// At most this many.
    pub limit: usize,
    /// For how long.
    pub lease: Duration,
    /// "Now" (due means `run_at <= now`).
    pub now: DateTime<Utc>,
    /// Room per lane (`tenant/connector`): how many more jobs it may run now. A lane with
    /// 0 room is skipped (paused or full).
    pub room: HashMap<String, usize>,
    /// Room of each lane not in `room` (0: leave them). Finding those lanes looks at the
    /// whole backlog, so callers ask for them only now and then.
    pub default_room: usize,
}

/// A leased job, with what it needs to run.
#[derive(Debug, Clone)]
pub struct ClaimedJob {
    /// The job.
    pub id: JobId,
    /// Its event.
    pub event_id: String,
    /// The tenant.
    pub tenant: String,
    /// The connector instance.
    pub connector: String,
    /// The event type.
    pub event_type: String,
    /// The raw body.
    pub body: Vec<u8>,
    /// When the event arrived.
    pub received_at: DateTime<Utc>,
    /// Attempts so far, this one included (rate-limited ones not counted).
    pub attempts: u32,
    /// Rate-limited answers so far (the budget `delivery.retry.max_rate_limited` counts).
    pub rate_limited: u32,
    /// Where earlier attempts left it: steps done and their results.
    pub progress: Progress,
}

impl ClaimedJob {
    /// `tenant/connector`.
    pub fn lane(&self) -> String {
        lane(&self.tenant, &self.connector)
    }
}

/// The lane of a tenant's connector instance.
pub fn lane(tenant: &str, connector: &str) -> String {
    format!("{tenant}/{connector}")
}

/// How an attempt ended: decided by core, recorded here as it is.
pub use slatis_core::outcome::Outcome;

/// Where a job's attempts got to: core's, kept here as it is.
pub use slatis_core::job::Progress;

/// The end of one attempt.
#[derive(Debug, Clone)]
pub struct Finish {
    /// The job.
    pub job: JobId,
    /// Who held the lease.
    pub worker: String,
    /// How it ended.
    pub outcome: Outcome,
    /// Steps done so far and their results (a retry resumes after them).
    pub progress: Progress,
    /// The index of the step that failed.
    pub failed_step: Option<usize>,
    /// Why it failed.
    pub error: Option<String>,
    /// Requests recorded in dry run.
    pub dry_run: Option<Value>,
    /// When the attempt started.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub finished_at: DateTime<Utc>,
}

/// The job's row after an attempt, the same on every backend.
pub(crate) struct NextState {
    /// The job's status: `done`, `pending` (runs again) or `dead`.
    pub status: &'static str,
    /// When it runs next (or when it finished).
    pub run_at: DateTime<Utc>,
    /// 1 when the attempt moves from the job's `attempts` to its `rate_limited` count.
    pub rate_limited: i32,
    /// When it runs next, for the attempt's row (retries only).
    pub retry_at: Option<DateTime<Utc>>,
}

impl Finish {
    /// What the job's row becomes ([`Outcome::class`] names the attempt's row).
    pub(crate) fn next_state(&self) -> NextState {
        let (status, run_at, rate_limited, retry_at) = match &self.outcome {
            Outcome::Done => ("done", self.finished_at, 0, None),
            Outcome::Retry(at) => ("pending", *at, 0, Some(*at)),
            Outcome::RateLimited(at) => ("pending", *at, 1, Some(*at)),
            Outcome::Dead => ("dead", self.finished_at, 0, None),
        };
        NextState {
            status,
            run_at,
            rate_limited,
            retry_at,
        }
    }
}

/// A record-map key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RecordKey {
    /// The tenant.
    pub tenant: String,
    /// The connector instance.
    pub connector: String,
    /// The CRM object.
    pub object: String,
    /// The matched property.
    pub property: String,
    /// The matched value.
    pub value: String,
}

/// A job's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStatus {
    /// Waiting to run (maybe for a retry time).
    Pending,
    /// Leased by a worker.
    Running,
    /// Delivered.
    Done,
    /// Dead-lettered.
    Dead,
}

impl JobStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Done => "done",
            Self::Dead => "dead",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => Self::Pending,
            "running" => Self::Running,
            "done" => Self::Done,
            "dead" => Self::Dead,
            _ => return None,
        })
    }
}

/// Which events or jobs a list, a count or a replay takes: every field given must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Only this tenant.
    pub tenant: Option<String>,
    /// Jobs in this state (events: with at least one job in it).
    pub status: Option<JobStatus>,
    /// Only this event type.
    pub event_type: Option<String>,
    /// Only this booking (`data.id`).
    pub booking_id: Option<String>,
    /// Only this attendee email (compared lower-cased).
    pub attendee_email: Option<String>,
    /// Only this event (jobs: of it).
    pub event_id: Option<String>,
    /// Received at or after this.
    pub since: Option<DateTime<Utc>>,
    /// Received before this.
    pub until: Option<DateTime<Utc>>,
}

/// A page of jobs: newest first (by id), those older than `before`.
#[derive(Debug, Clone)]
pub struct JobQuery {
    /// Which jobs.
    pub filter: Filter,
    /// Only jobs with a smaller id (the last of the previous page).
    pub before: Option<JobId>,
    /// At most this many.
    pub limit: u32,
}

impl Default for JobQuery {
    fn default() -> Self {
        Self {
            filter: Filter::default(),
            before: None,
            limit: 100,
        }
    }
}

/// Where an event sits in the order of event lists: newest first by arrival, then id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventKey {
    /// When it arrived (as stored).
    pub received_at: DateTime<Utc>,
    /// Its id.
    pub id: String,
}

/// A page of events: newest first, those after `before` in that order.
#[derive(Debug, Clone)]
pub struct EventQuery {
    /// Which events.
    pub filter: Filter,
    /// Only events past this one (the last of the previous page).
    pub before: Option<EventKey>,
    /// At most this many.
    pub limit: u32,
}

impl Default for EventQuery {
    fn default() -> Self {
        Self {
            filter: Filter::default(),
            before: None,
            limit: 100,
        }
    }
}

/// A job in a list.
#[derive(Debug, Clone)]
pub struct JobSummary {
    /// The job.
    pub id: JobId,
    /// Its event.
    pub event_id: String,
    /// The tenant.
    pub tenant: String,
    /// The connector instance.
    pub connector: String,
    /// The event type.
    pub event_type: String,
    /// The booking.
    pub booking_id: Option<String>,
    /// The attendee's email.
    pub attendee_email: Option<String>,
    /// Its state.
    pub status: JobStatus,
    /// Attempts so far.
    pub attempts: u32,
    /// When it runs next (pending) or ran last.
    pub run_at: DateTime<Utc>,
    /// The last failure.
    pub last_error: Option<String>,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// One attempt of a job.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    /// The job.
    pub job_id: JobId,
    /// Its number (1 = first).
    pub attempt: u32,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub finished_at: DateTime<Utc>,
    /// `done`, `retry`, `rate_limited`, `dead` or `released`.
    pub outcome: String,
    /// The step that failed.
    pub step: Option<usize>,
    /// Why.
    pub error: Option<String>,
    /// When it was to run again.
    pub retry_at: Option<DateTime<Utc>>,
}

/// A job with everything about it.
#[derive(Debug, Clone)]
pub struct JobDetail {
    /// The job.
    pub job: JobSummary,
    /// Steps done.
    pub steps_done: usize,
    /// Their results.
    pub step_results: Value,
    /// The event's body (JSON, or text if it is not JSON).
    pub event: Value,
    /// Every attempt, oldest first.
    pub attempts_log: Vec<AttemptRecord>,
    /// Requests a dry run recorded.
    pub dry_run: Option<Value>,
}

/// An event in a list.
#[derive(Debug, Clone)]
pub struct EventSummary {
    /// `evt_…`.
    pub id: String,
    /// The tenant.
    pub tenant: String,
    /// The event type.
    pub event_type: String,
    /// The booking.
    pub booking_id: Option<String>,
    /// The attendee's email.
    pub attendee_email: Option<String>,
    /// When it arrived.
    pub received_at: DateTime<Utc>,
    /// Jobs it made.
    pub jobs: u32,
}

/// Which dead jobs to replay.
#[derive(Debug, Clone)]
pub enum Replay {
    /// These ids.
    Ids(Vec<JobId>),
    /// Every dead job the filter takes (its `status` is ignored: only dead jobs are
    /// replayed).
    Matching(Filter),
}

/// What [`crate::Store::purge`] removes: what is older than these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PurgeBefore {
    /// Finished events (with their jobs and attempts) received before this, and dedupe
    /// keys made before it (`storage.retention`).
    pub events: DateTime<Utc>,
    /// Record map entries last written before this (`storage.record_map_retention`).
    pub records: DateTime<Utc>,
}

impl PurgeBefore {
    /// The cutoffs `retention` and `record_map_retention` before `now` (a span too long to
    /// subtract keeps everything).
    pub fn ago(now: DateTime<Utc>, retention: Duration, record_map_retention: Duration) -> Self {
        let ago = |d: Duration| {
            chrono::TimeDelta::from_std(d)
                .ok()
                .and_then(|d| now.checked_sub_signed(d))
                .unwrap_or(DateTime::<Utc>::MIN_UTC)
        };
        Self {
            events: ago(retention),
            records: ago(record_map_retention),
        }
    }
}

/// What a purge removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    /// Events (with their jobs and attempts).
    pub events: u64,
    /// Dedupe keys.
    pub dedupe_keys: u64,
    /// Record map entries.
    pub records: u64,
}

/// Queue counts.
#[derive(Debug, Clone, Default)]
pub struct QueueStats {
    /// Jobs waiting.
    pub pending: u64,
    /// Jobs leased.
    pub running: u64,
    /// Jobs delivered (not yet purged).
    pub done: u64,
    /// Dead letters.
    pub dead: u64,
    /// Age in seconds of the oldest pending job that is due.
    pub oldest_due_seconds: f64,
}

impl QueueStats {
    /// Sets the count of `status`.
    pub(crate) fn set(&mut self, status: Option<JobStatus>, n: u64) {
        match status {
            Some(JobStatus::Pending) => self.pending = n,
            Some(JobStatus::Running) => self.running = n,
            Some(JobStatus::Done) => self.done = n,
            Some(JobStatus::Dead) => self.dead = n,
            None => {}
        }
    }
}

/// One tenant's jobs and events as stored (not yet purged).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TenantCounts {
    /// The tenant.
    pub tenant: String,
    /// Events received.
    pub received: u64,
    /// Jobs waiting for their first attempt.
    pub queued: u64,
    /// Jobs leased by a worker now.
    pub running: u64,
    /// Jobs waiting to run again after a failed or rate-limited attempt.
    pub retrying: u64,
    /// Jobs delivered.
    pub delivered: u64,
    /// Dead letters.
    pub dead: u64,
}

impl TenantCounts {
    /// `tenant`'s entry in `by`, made empty if missing.
    pub(crate) fn of(by: &mut BTreeMap<String, Self>, tenant: String) -> &mut Self {
        by.entry(tenant.clone()).or_insert_with(|| Self {
            tenant,
            ..Self::default()
        })
    }

    /// Counts `n` jobs in `status` (`tried`: with an attempt or a rate-limited answer
    /// behind them).
    pub(crate) fn add_jobs(&mut self, status: Option<JobStatus>, tried: bool, n: u64) {
        let slot = match status {
            Some(JobStatus::Pending) if tried => &mut self.retrying,
            Some(JobStatus::Pending) => &mut self.queued,
            Some(JobStatus::Running) => &mut self.running,
            Some(JobStatus::Done) => &mut self.delivered,
            Some(JobStatus::Dead) => &mut self.dead,
            None => return,
        };
        *slot += n;
    }
}

/// What happened in one minute.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MinuteCounts {
    /// The minute (Unix time / 60).
    pub minute: i64,
    /// Events received.
    pub received: u64,
    /// Attempts that delivered.
    pub delivered: u64,
    /// Attempts that failed (retried or dead-lettered; rate limits and releases are not
    /// failures).
    pub failed: u64,
}

impl MinuteCounts {
    /// Minute `m`'s entry in `by`, made empty if missing.
    pub(crate) fn of(by: &mut BTreeMap<i64, Self>, minute: i64) -> &mut Self {
        by.entry(minute).or_insert_with(|| Self {
            minute,
            ..Self::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purge_cutoffs_never_overflow() {
        let now = Utc::now();
        let p = PurgeBefore::ago(now, Duration::from_secs(60), Duration::from_secs(3600));
        assert_eq!(p.events, now - chrono::TimeDelta::seconds(60));
        assert_eq!(p.records, now - chrono::TimeDelta::seconds(3600));
        let p = PurgeBefore::ago(now, Duration::MAX, Duration::from_secs(u64::MAX / 2));
        assert_eq!(p.events, DateTime::<Utc>::MIN_UTC, "keeps everything");
        assert_eq!(p.records, DateTime::<Utc>::MIN_UTC);
    }
}
