//! The listings and counts: jobs, one job in detail, events, queue stats.
//!
//! Invariants: reads only (autocommit, no lock taken), newest first, as on SQLite.

use super::count;
use crate::{
    AttemptRecord, EventSummary, JobDetail, JobFilter, JobId, JobStatus, JobSummary, QueueStats,
    Result, StoreError,
};
use chrono::Utc;
use deadpool_postgres::GenericClient;
use serde_json::Value;
use tokio_postgres::Row;

/// The columns [`job_summary`] reads (`j` = jobs, `e` = events).
macro_rules! job_columns {
    () => {
        "j.id, j.event_id, j.tenant, j.connector, e.event_type, e.booking_id, j.status, j.attempts, \
         j.run_at, j.last_error, j.created_at, j.updated_at"
    };
}

fn job_summary(r: &Row) -> Result<JobSummary> {
    let status: String = r.try_get("status")?;
    let status = JobStatus::parse(&status)
        .ok_or_else(|| StoreError::Corrupt(format!("job status {status:?}")))?;
    Ok(JobSummary {
        id: r.try_get("id")?,
        event_id: r.try_get("event_id")?,
        tenant: r.try_get("tenant")?,
        connector: r.try_get("connector")?,
        event_type: r.try_get("event_type")?,
        booking_id: r.try_get("booking_id")?,
        status,
        attempts: u32::try_from(r.try_get::<_, i32>("attempts")?).unwrap_or_default(),
        run_at: r.try_get("run_at")?,
        last_error: r.try_get("last_error")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

/// Jobs, newest first, filtered.
pub(super) async fn jobs(c: &impl GenericClient, filter: &JobFilter) -> Result<Vec<JobSummary>> {
    let rows = c
        .query(
            concat!(
                "SELECT ",
                job_columns!(),
                " FROM jobs j JOIN events e ON e.id = j.event_id \
                 WHERE ($1::text IS NULL OR j.status = $1) AND ($2::text IS NULL OR j.tenant = $2) \
                 AND ($3::text IS NULL OR j.event_id = $3) ORDER BY j.id DESC LIMIT $4"
            ),
            &[
                &filter.status.map(JobStatus::as_str),
                &filter.tenant,
                &filter.event_id,
                &i64::from(filter.limit.unwrap_or(100)),
            ],
        )
        .await?;
    rows.iter().map(job_summary).collect()
}

/// One job with its event, attempts and dry-run record.
pub(super) async fn job(c: &impl GenericClient, id: JobId) -> Result<Option<JobDetail>> {
    let Some(row) = c
        .query_opt(
            concat!(
                "SELECT j.steps_done, j.step_results, j.dry_run, e.body, ",
                job_columns!(),
                " FROM jobs j JOIN events e ON e.id = j.event_id WHERE j.id = $1"
            ),
            &[&id],
        )
        .await?
    else {
        return Ok(None);
    };
    let attempts = c
        .query(
            "SELECT attempt, started_at, finished_at, outcome, step, error, retry_at FROM attempts \
             WHERE job_id = $1 ORDER BY id",
            &[&id],
        )
        .await?
        .iter()
        .map(|r| {
            Ok(AttemptRecord {
                attempt: u32::try_from(r.try_get::<_, i32>("attempt")?).unwrap_or_default(),
                started_at: r.try_get("started_at")?,
                finished_at: r.try_get("finished_at")?,
                outcome: r.try_get("outcome")?,
                step: r
                    .try_get::<_, Option<i32>>("step")?
                    .and_then(|s| usize::try_from(s).ok()),
                error: r.try_get("error")?,
                retry_at: r.try_get("retry_at")?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let body: Vec<u8> = row.try_get("body")?;
    Ok(Some(JobDetail {
        job: job_summary(&row)?,
        steps_done: usize::try_from(row.try_get::<_, i32>("steps_done")?).unwrap_or_default(),
        step_results: row.try_get("step_results")?,
        event: serde_json::from_slice(&body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned())),
        attempts_log: attempts,
        dry_run: row.try_get("dry_run")?,
    }))
}

/// Events, newest first.
pub(super) async fn events(
    c: &impl GenericClient,
    tenant: Option<&str>,
    limit: u32,
) -> Result<Vec<EventSummary>> {
    let rows = c
        .query(
            "SELECT id, tenant, event_type, booking_id, received_at, jobs FROM events \
             WHERE ($1::text IS NULL OR tenant = $1) ORDER BY received_at DESC, id DESC LIMIT $2",
            &[&tenant, &i64::from(limit)],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(EventSummary {
                id: r.try_get("id")?,
                tenant: r.try_get("tenant")?,
                event_type: r.try_get("event_type")?,
                booking_id: r.try_get("booking_id")?,
                received_at: r.try_get("received_at")?,
                jobs: u32::try_from(r.try_get::<_, i32>("jobs")?).unwrap_or_default(),
            })
        })
        .collect()
}

/// Counts for metrics and the dashboard.
pub(super) async fn stats(c: &impl GenericClient) -> Result<QueueStats> {
    let mut stats = QueueStats::default();
    for r in c
        .query("SELECT status, count(*) FROM jobs GROUP BY status", &[])
        .await?
    {
        let n = count(r.try_get(1)?);
        match JobStatus::parse(r.try_get(0)?) {
            Some(JobStatus::Pending) => stats.pending = n,
            Some(JobStatus::Running) => stats.running = n,
            Some(JobStatus::Done) => stats.done = n,
            Some(JobStatus::Dead) => stats.dead = n,
            None => {}
        }
    }
    let now = Utc::now();
    let oldest: Option<chrono::DateTime<Utc>> = c
        .query_one(
            "SELECT MIN(run_at) FROM jobs WHERE status = 'pending' AND run_at <= $1",
            &[&now],
        )
        .await?
        .try_get(0)?;
    #[allow(clippy::cast_precision_loss)]
    if let Some(t) = oldest {
        stats.oldest_due_seconds = (now - t).num_milliseconds().max(0) as f64 / 1000.0;
    }
    Ok(stats)
}
