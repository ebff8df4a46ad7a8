//! The admin API's own models: what it answers, never the store's rows. The OpenAPI
//! document is generated from these types.
//!
//! Invariants: every type here is built from a store value by a `From` in this file (so a
//! change of the storage schema stops here); field names of answers that existed before
//! these models are kept (`attempts` is a count, `attempts_log` the attempts).

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use slatis_store as store;
use utoipa::ToSchema;

/// One page of a list, newest first (answered under the list's own key: [`Events`],
/// [`Jobs`], [`DeadLetters`]).
#[derive(Debug)]
pub struct Page<T> {
    /// This page's items.
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// A page of events: `{"events": […], "next_cursor"}` (the key the API always had).
#[derive(Debug, Serialize, ToSchema)]
pub struct Events {
    /// Newest first.
    pub events: Vec<Event>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// A page of jobs: `{"jobs": […], "next_cursor"}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Jobs {
    /// Newest first.
    pub jobs: Vec<Job>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// A page of dead letters: `{"jobs": […], "next_cursor"}` (dead letters are jobs; the
/// key the API always had).
#[derive(Debug, Serialize, ToSchema)]
pub struct DeadLetters {
    /// Newest first.
    pub jobs: Vec<DeadLetter>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

impl From<Page<Event>> for Events {
    fn from(p: Page<Event>) -> Self {
        Self {
            events: p.items,
            next_cursor: p.next_cursor,
        }
    }
}

impl From<Page<Job>> for Jobs {
    fn from(p: Page<Job>) -> Self {
        Self {
            jobs: p.items,
            next_cursor: p.next_cursor,
        }
    }
}

impl From<Page<DeadLetter>> for DeadLetters {
    fn from(p: Page<DeadLetter>) -> Self {
        Self {
            jobs: p.items,
            next_cursor: p.next_cursor,
        }
    }
}

/// An error answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiError {
    /// What went wrong, for a person.
    pub error: String,
}

/// A job's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Waiting to run (maybe for a retry time).
    Pending,
    /// Leased by a worker.
    Running,
    /// Delivered.
    Done,
    /// Dead-lettered.
    Dead,
}

impl Status {
    /// Its name, as answered.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Done => "done",
            Self::Dead => "dead",
        }
    }
}

impl From<store::JobStatus> for Status {
    fn from(s: store::JobStatus) -> Self {
        match s {
            store::JobStatus::Pending => Self::Pending,
            store::JobStatus::Running => Self::Running,
            store::JobStatus::Done => Self::Done,
            store::JobStatus::Dead => Self::Dead,
        }
    }
}

/// A received webhook delivery.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Event {
    /// `evt_…`.
    pub id: String,
    /// The tenant it was posted to.
    pub tenant: String,
    /// The event type, e.g. `BOOKING_CREATED`.
    pub event_type: String,
    /// The booking (`data.id`).
    pub booking_id: Option<String>,
    /// The attendee's email, lower-cased.
    pub attendee_email: Option<String>,
    /// When it arrived.
    pub received_at: DateTime<Utc>,
    /// Jobs it made (0: no route takes it).
    pub jobs: u32,
}

impl From<store::EventSummary> for Event {
    fn from(e: store::EventSummary) -> Self {
        Self {
            id: e.id,
            tenant: e.tenant,
            event_type: e.event_type,
            booking_id: e.booking_id,
            attendee_email: e.attendee_email,
            received_at: e.received_at,
            jobs: e.jobs,
        }
    }
}

/// One event's delivery to one connector instance.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Job {
    /// The job's id (also its arrival order).
    pub id: i64,
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
    /// The attendee's email, lower-cased.
    pub attendee_email: Option<String>,
    /// Its state.
    pub status: Status,
    /// Attempts so far (rate-limited answers not counted).
    pub attempts: u32,
    /// When it runs next (pending) or ran last.
    pub run_at: DateTime<Utc>,
    /// The last failure (credentials masked).
    pub last_error: Option<String>,
    /// When it was made (its event's arrival).
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

impl From<store::JobSummary> for Job {
    fn from(j: store::JobSummary) -> Self {
        Self {
            id: j.id,
            event_id: j.event_id,
            tenant: j.tenant,
            connector: j.connector,
            event_type: j.event_type,
            booking_id: j.booking_id,
            attendee_email: j.attendee_email,
            status: j.status.into(),
            attempts: j.attempts,
            run_at: j.run_at,
            last_error: j.last_error,
            created_at: j.created_at,
            updated_at: j.updated_at,
        }
    }
}

/// A dead letter: a job that will not run again unless replayed.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeadLetter {
    /// The job.
    #[serde(flatten)]
    pub job: Job,
    /// When it died.
    pub dead_since: DateTime<Utc>,
}

impl From<store::JobSummary> for DeadLetter {
    fn from(j: store::JobSummary) -> Self {
        let dead_since = j.updated_at;
        Self {
            job: j.into(),
            dead_since,
        }
    }
}

/// One attempt of a job.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Attempt {
    /// The job.
    pub job_id: i64,
    /// Its number (1 = first).
    pub attempt: u32,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub finished_at: DateTime<Utc>,
    /// `done`, `retry`, `rate_limited`, `dead` or `released`.
    pub outcome: String,
    /// The step that failed (0 = first).
    pub step: Option<usize>,
    /// Why (credentials masked).
    pub error: Option<String>,
    /// When it was to run again.
    pub retry_at: Option<DateTime<Utc>>,
}

impl From<store::AttemptRecord> for Attempt {
    fn from(a: store::AttemptRecord) -> Self {
        Self {
            job_id: a.job_id,
            attempt: a.attempt,
            started_at: a.started_at,
            finished_at: a.finished_at,
            outcome: a.outcome,
            step: a.step,
            error: a.error,
            retry_at: a.retry_at,
        }
    }
}

/// A job with its event, every attempt and what a dry run recorded.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JobDetail {
    /// The job.
    #[serde(flatten)]
    pub job: Job,
    /// Steps done.
    pub steps_done: usize,
    /// Their results: step id → `{id, created}`.
    pub step_results: Value,
    /// The event's body (JSON, or text if it is not JSON).
    pub event: Value,
    /// Every attempt, oldest first.
    pub attempts_log: Vec<Attempt>,
    /// The requests a dry run would have sent (credentials masked).
    pub dry_run: Option<Value>,
}

impl From<store::JobDetail> for JobDetail {
    fn from(d: store::JobDetail) -> Self {
        Self {
            job: d.job.into(),
            steps_done: d.steps_done,
            step_results: d.step_results,
            event: d.event,
            attempts_log: d.attempts_log.into_iter().map(Into::into).collect(),
            dry_run: d.dry_run,
        }
    }
}

/// What a replay put back in the queue.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Replayed {
    /// How many jobs.
    pub count: usize,
    /// Their ids, ascending.
    pub replayed: Vec<i64>,
}

/// The whole queue's counts.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Queue {
    /// Jobs waiting.
    pub pending: u64,
    /// Jobs leased.
    pub running: u64,
    /// Jobs delivered (not yet purged).
    pub done: u64,
    /// Dead letters.
    pub dead: u64,
    /// Age in seconds of the oldest due pending job.
    pub oldest_due_seconds: f64,
}

/// A tenant's stored events and jobs by state (what is not purged yet).
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct Counts {
    /// Events received.
    pub received: u64,
    /// Jobs waiting for their first attempt.
    pub queued: u64,
    /// Jobs running now.
    pub running: u64,
    /// Jobs waiting to run again after a failed or rate-limited attempt.
    pub retrying: u64,
    /// Jobs delivered.
    pub delivered: u64,
    /// Dead letters.
    pub dead: u64,
}

impl From<store::TenantCounts> for Counts {
    fn from(c: store::TenantCounts) -> Self {
        Self {
            received: c.received,
            queued: c.queued,
            running: c.running,
            retrying: c.retrying,
            delivered: c.delivered,
            dead: c.dead,
        }
    }
}

/// A connector instance of a tenant.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ConnectorInfo {
    /// Its name in the config.
    pub name: String,
    /// Its type (`hubspot`, `http`, …).
    #[serde(rename = "type")]
    pub kind: String,
    /// Whether it only records what it would send.
    pub dry_run: bool,
}

/// A tenant: its config in short and its counts.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TenantStats {
    /// The tenant.
    pub name: String,
    /// Its connector instances.
    pub connectors: Vec<ConnectorInfo>,
    /// The event types it routes.
    pub routes: Vec<String>,
    /// Its events and jobs.
    pub counts: Counts,
}

/// The queue, each tenant of the running config, and the last hour.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Stats {
    /// The whole queue.
    pub queue: Queue,
    /// Each tenant, by name.
    pub tenants: Vec<TenantStats>,
    /// Tenants that have stored events or jobs but are no longer in the config.
    pub other_tenants: Vec<String>,
    /// Every tenant's last hour, per minute.
    pub last_hour: Vec<Minute>,
}

/// One minute of activity.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Minute {
    /// The minute's start.
    pub at: DateTime<Utc>,
    /// Events received.
    pub received: u64,
    /// Attempts that delivered.
    pub delivered: u64,
    /// Attempts that failed (retried or dead-lettered; rate limits are not failures).
    pub failed: u64,
}

/// The last hour of one tenant (or of all), one entry per minute, oldest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Activity {
    /// The tenant, if one was asked for.
    pub tenant: Option<String>,
    /// Sixty minutes, the current one last.
    pub minutes: Vec<Minute>,
}

/// What a timeline entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// An event arrived.
    Received,
    /// A job's attempt ended.
    Attempt,
}

/// One thing that happened to a booking.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TimelineEntry {
    /// When.
    pub at: DateTime<Utc>,
    /// What.
    pub kind: EntryKind,
    /// The tenant.
    pub tenant: String,
    /// The event.
    pub event_id: String,
    /// Its type.
    pub event_type: String,
    /// The job (attempts).
    pub job_id: Option<i64>,
    /// The connector instance (attempts).
    pub connector: Option<String>,
    /// The attempt (attempts).
    pub attempt: Option<Attempt>,
}

/// Everything about one booking: its events, their jobs, and every event and attempt in
/// time order.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Timeline {
    /// The booking.
    pub booking_id: String,
    /// The tenant, if one was asked for.
    pub tenant: Option<String>,
    /// Its events, oldest first.
    pub events: Vec<Event>,
    /// Their jobs, oldest first, in their current state.
    pub jobs: Vec<Job>,
    /// Arrivals and attempts, oldest first.
    pub entries: Vec<TimelineEntry>,
    /// Whether a limit cut it short (the oldest are shown).
    pub truncated: bool,
}

/// What a reload did.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Reloaded {
    /// Whether the new config runs now.
    pub reloaded: bool,
    /// What changed (when reloaded).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notes: Option<Vec<String>>,
    /// Why not (when refused: the running config stays).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<String>>,
}
