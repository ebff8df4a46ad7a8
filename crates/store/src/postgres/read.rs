//! The listings and counts: job and event pages, one job in detail, a booking's attempts,
//! per-tenant counts, per-minute activity, queue stats.
//!
//! Invariants: reads only (autocommit, no lock taken), the same order and answers as
//! SQLite's; filters are the [`crate::query`] clauses.

use super::count;
use crate::query::{self, Arg, Clause};
use crate::{
    AttemptRecord, EventQuery, EventSummary, JobDetail, JobId, JobQuery, JobStatus, JobSummary,
    MinuteCounts, QueueStats, Result, StoreError, TenantCounts,
};
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use serde_json::Value;
use std::collections::BTreeMap;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use crate::query::job_columns;

/// The bound values of `c`, as the driver takes them.
pub(super) fn args(c: &Clause) -> Vec<&(dyn ToSql + Sync)> {
    c.args
        .iter()
        .map(|a| -> &(dyn ToSql + Sync) {
            match a {
                Arg::Text(t) => t,
                Arg::Int(i) => i,
                Arg::Time(t) => t,
            }
        })
        .collect()
}

fn attempt(r: &Row) -> Result<AttemptRecord> {
    Ok(AttemptRecord {
        job_id: r.try_get("job_id")?,
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
        attendee_email: r.try_get("attendee_email")?,
        status,
        attempts: u32::try_from(r.try_get::<_, i32>("attempts")?).unwrap_or_default(),
        run_at: r.try_get("run_at")?,
        last_error: r.try_get("last_error")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

/// A page of jobs.
pub(super) async fn jobs(c: &impl GenericClient, q: &JobQuery) -> Result<Vec<JobSummary>> {
    let clause = query::job_page(q, true);
    let rows = c.query(&clause.text, &args(&clause)).await?;
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
            "SELECT job_id, attempt, started_at, finished_at, outcome, step, error, retry_at \
             FROM attempts WHERE job_id = $1 ORDER BY id",
            &[&id],
        )
        .await?
        .iter()
        .map(attempt)
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

/// A page of events.
pub(super) async fn events(c: &impl GenericClient, q: &EventQuery) -> Result<Vec<EventSummary>> {
    let clause = query::event_page(q, true);
    let rows = c.query(&clause.text, &args(&clause)).await?;
    rows.iter()
        .map(|r| {
            Ok(EventSummary {
                id: r.try_get("id")?,
                tenant: r.try_get("tenant")?,
                event_type: r.try_get("event_type")?,
                booking_id: r.try_get("booking_id")?,
                attendee_email: r.try_get("attendee_email")?,
                received_at: r.try_get("received_at")?,
                jobs: u32::try_from(r.try_get::<_, i32>("jobs")?).unwrap_or_default(),
            })
        })
        .collect()
}

/// Every attempt on a booking's jobs, oldest first.
pub(super) async fn booking_attempts(
    c: &impl GenericClient,
    tenant: Option<&str>,
    booking_id: &str,
    limit: u32,
) -> Result<Vec<AttemptRecord>> {
    c.query(
        "SELECT a.job_id, a.attempt, a.started_at, a.finished_at, a.outcome, a.step, a.error, a.retry_at \
         FROM events e JOIN jobs j ON j.event_id = e.id JOIN attempts a ON a.job_id = j.id \
         WHERE e.booking_id = $1 AND ($2::text IS NULL OR e.tenant = $2) \
         ORDER BY a.finished_at, a.id LIMIT $3",
        &[&booking_id, &tenant, &i64::from(limit)],
    )
    .await?
    .iter()
    .map(attempt)
    .collect()
}

/// Whether `tenant` has an event of `event_type` for `booking_id`.
pub(super) async fn has_event(
    c: &impl GenericClient,
    tenant: &str,
    booking_id: &str,
    event_type: &str,
) -> Result<bool> {
    Ok(c.query_one(
        "SELECT EXISTS (SELECT 1 FROM events WHERE booking_id = $2 AND tenant = $1 AND event_type = $3)",
        &[&tenant, &booking_id, &event_type],
    )
    .await?
    .try_get(0)?)
}

/// Events and jobs by state, per tenant.
pub(super) async fn tenant_counts(c: &impl GenericClient) -> Result<Vec<TenantCounts>> {
    let mut by: BTreeMap<String, TenantCounts> = BTreeMap::new();
    for r in c
        .query("SELECT tenant, count(*) FROM events GROUP BY tenant", &[])
        .await?
    {
        TenantCounts::of(&mut by, r.try_get(0)?).received = count(r.try_get(1)?);
    }
    for r in c
        .query(
            "SELECT tenant, status, attempts + rate_limited > 0 AS tried, count(*) FROM jobs \
             GROUP BY tenant, status, tried",
            &[],
        )
        .await?
    {
        TenantCounts::of(&mut by, r.try_get(0)?).add_jobs(
            JobStatus::parse(r.try_get(1)?),
            r.try_get(2)?,
            count(r.try_get(3)?),
        );
    }
    Ok(by.into_values().collect())
}

/// Per minute since `since`: received, delivered, failed.
pub(super) async fn activity(
    c: &impl GenericClient,
    tenant: Option<&str>,
    since: DateTime<Utc>,
) -> Result<Vec<MinuteCounts>> {
    let mut by: BTreeMap<i64, MinuteCounts> = BTreeMap::new();
    for r in c
        .query(
            "SELECT floor(extract(epoch FROM received_at) / 60)::bigint AS m, count(*) FROM events \
             WHERE received_at >= $1 AND ($2::text IS NULL OR tenant = $2) GROUP BY m",
            &[&since, &tenant],
        )
        .await?
    {
        MinuteCounts::of(&mut by, r.try_get(0)?).received = count(r.try_get(1)?);
    }
    for r in c
        .query(
            "SELECT floor(extract(epoch FROM a.finished_at) / 60)::bigint AS m, \
             count(*) FILTER (WHERE a.outcome = 'done'), count(*) FILTER (WHERE a.outcome IN ('retry', 'dead')) \
             FROM attempts a JOIN jobs j ON j.id = a.job_id \
             WHERE a.finished_at >= $1 AND ($2::text IS NULL OR j.tenant = $2) GROUP BY m",
            &[&since, &tenant],
        )
        .await?
    {
        let slot = MinuteCounts::of(&mut by, r.try_get(0)?);
        slot.delivered = count(r.try_get(1)?);
        slot.failed = count(r.try_get(2)?);
    }
    Ok(by.into_values().collect())
}

/// Counts for metrics and the dashboard.
pub(super) async fn stats(c: &impl GenericClient) -> Result<QueueStats> {
    let mut stats = QueueStats::default();
    for r in c
        .query("SELECT status, count(*) FROM jobs GROUP BY status", &[])
        .await?
    {
        stats.set(JobStatus::parse(r.try_get(0)?), count(r.try_get(1)?));
    }
    let now = Utc::now();
    let oldest: Option<DateTime<Utc>> = c
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
