//! The listings and counts: job and event pages, one job in detail, a booking's attempts,
//! per-tenant counts, per-minute activity, queue stats.
//!
//! Invariants: reads only, on a read connection; the same order and answers as
//! PostgreSQL's (`postgres/read.rs`); filters are the [`crate::query`] clauses.

use super::{json_column, ms, time};
use crate::query::{self, Arg, Clause};
use crate::{
    AttemptRecord, EventQuery, EventSummary, JobDetail, JobId, JobQuery, JobStatus, JobSummary,
    MinuteCounts, QueueStats, Result, StoreError, TenantCounts,
};
use chrono::{DateTime, Utc};
use rusqlite::types::Value as Sql;
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};
use serde_json::Value;
use std::collections::BTreeMap;

use crate::query::job_columns;

pub(super) fn args(c: &Clause) -> impl Iterator<Item = Sql> + '_ {
    c.args.iter().map(|a| match a {
        Arg::Text(t) => Sql::Text(t.clone()),
        Arg::Int(i) => Sql::Integer(*i),
        Arg::Time(t) => Sql::Integer(ms(*t)),
    })
}

fn job_summary(r: &Row<'_>) -> rusqlite::Result<Result<JobSummary>> {
    let status: String = r.get("status")?;
    let Some(status) = JobStatus::parse(&status) else {
        return Ok(Err(StoreError::Corrupt(format!("job status {status:?}"))));
    };
    Ok(Ok(JobSummary {
        id: r.get("id")?,
        event_id: r.get("event_id")?,
        tenant: r.get("tenant")?,
        connector: r.get("connector")?,
        event_type: r.get("event_type")?,
        booking_id: r.get("booking_id")?,
        attendee_email: r.get("attendee_email")?,
        status,
        attempts: u32::try_from(r.get::<_, i64>("attempts")?).unwrap_or_default(),
        run_at: time(r.get("run_at")?),
        last_error: r.get("last_error")?,
        created_at: time(r.get("created_at")?),
        updated_at: time(r.get("updated_at")?),
    }))
}

fn attempt(r: &Row<'_>) -> rusqlite::Result<AttemptRecord> {
    Ok(AttemptRecord {
        job_id: r.get("job_id")?,
        attempt: u32::try_from(r.get::<_, i64>("attempt")?).unwrap_or_default(),
        started_at: time(r.get("started_at")?),
        finished_at: time(r.get("finished_at")?),
        outcome: r.get("outcome")?,
        step: r
            .get::<_, Option<i64>>("step")?
            .and_then(|s| usize::try_from(s).ok()),
        error: r.get("error")?,
        retry_at: r.get::<_, Option<i64>>("retry_at")?.map(time),
    })
}

/// A page of jobs.
pub(super) fn jobs(c: &Connection, q: &JobQuery) -> Result<Vec<JobSummary>> {
    let clause = query::job_page(q, false);
    let mut stmt = c.prepare_cached(&clause.text)?;
    let rows = stmt.query_map(params_from_iter(args(&clause)), job_summary)?;
    rows.map(|r| r.map_err(StoreError::from).and_then(|r| r))
        .collect()
}

/// One job with its event, attempts and dry-run record.
pub(super) fn job(c: &Connection, id: JobId) -> Result<Option<JobDetail>> {
    let found = c
        .prepare_cached(concat!(
            "SELECT j.steps_done, j.step_results, j.dry_run, e.body, ",
            job_columns!(),
            " FROM jobs j JOIN events e ON e.id = j.event_id WHERE j.id = ?1"
        ))?
        .query_row([id], |r| {
            Ok((
                job_summary(r)?,
                r.get::<_, i64>("steps_done")?,
                r.get::<_, String>("step_results")?,
                r.get::<_, Option<String>>("dry_run")?,
                r.get::<_, Vec<u8>>("body")?,
            ))
        })
        .optional()?;
    let Some((summary, steps_done, step_results, dry_run, body)) = found else {
        return Ok(None);
    };
    let attempts = c
        .prepare_cached(
            "SELECT job_id, attempt, started_at, finished_at, outcome, step, error, retry_at \
             FROM attempts WHERE job_id = ?1 ORDER BY id",
        )?
        .query_map([id], attempt)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Some(JobDetail {
        job: summary?,
        steps_done: usize::try_from(steps_done).unwrap_or_default(),
        step_results: json_column(&step_results)?,
        event: serde_json::from_slice(&body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned())),
        attempts_log: attempts,
        dry_run: dry_run.as_deref().map(json_column).transpose()?,
    }))
}

/// A page of events.
pub(super) fn events(c: &Connection, q: &EventQuery) -> Result<Vec<EventSummary>> {
    let clause = query::event_page(q, false);
    let mut stmt = c.prepare_cached(&clause.text)?;
    let rows = stmt.query_map(params_from_iter(args(&clause)), |r| {
        Ok(EventSummary {
            id: r.get("id")?,
            tenant: r.get("tenant")?,
            event_type: r.get("event_type")?,
            booking_id: r.get("booking_id")?,
            attendee_email: r.get("attendee_email")?,
            received_at: time(r.get("received_at")?),
            jobs: u32::try_from(r.get::<_, i64>("jobs")?).unwrap_or_default(),
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// Every attempt on a booking's jobs, oldest first.
pub(super) fn booking_attempts(
    c: &Connection,
    tenant: Option<&str>,
    booking_id: &str,
    limit: u32,
) -> Result<Vec<AttemptRecord>> {
    let mut stmt = c.prepare_cached(
        "SELECT a.job_id, a.attempt, a.started_at, a.finished_at, a.outcome, a.step, a.error, a.retry_at \
         FROM events e JOIN jobs j ON j.event_id = e.id JOIN attempts a ON a.job_id = j.id \
         WHERE e.booking_id = ?1 AND (?2 IS NULL OR e.tenant = ?2) \
         ORDER BY a.finished_at, a.id LIMIT ?3",
    )?;
    let rows = stmt.query_map(params![booking_id, tenant, limit], attempt)?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// Whether `[tenant, booking, event type]` has an event.
pub(super) fn has_event(c: &Connection, key: &[String; 3]) -> Result<bool> {
    Ok(c.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM events INDEXED BY events_booking \
         WHERE booking_id = ?2 AND tenant = ?1 AND event_type = ?3)",
    )?
    .query_row(params![key[0], key[1], key[2]], |r| r.get(0))?)
}

/// Events and jobs by state, per tenant.
pub(super) fn tenant_counts(c: &Connection) -> Result<Vec<TenantCounts>> {
    let mut by: BTreeMap<String, TenantCounts> = BTreeMap::new();
    let mut events = c.prepare_cached("SELECT tenant, COUNT(*) FROM events GROUP BY tenant")?;
    for row in events.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))? {
        let (tenant, n) = row?;
        TenantCounts::of(&mut by, tenant).received = u64::try_from(n).unwrap_or_default();
    }
    let mut jobs = c.prepare_cached(
        "SELECT tenant, status, attempts + rate_limited > 0 AS tried, COUNT(*) FROM jobs \
         GROUP BY tenant, status, tried",
    )?;
    let rows = jobs.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, bool>(2)?,
            r.get::<_, i64>(3)?,
        ))
    })?;
    for row in rows {
        let (tenant, status, tried, n) = row?;
        TenantCounts::of(&mut by, tenant).add_jobs(
            JobStatus::parse(&status),
            tried,
            u64::try_from(n).unwrap_or_default(),
        );
    }
    Ok(by.into_values().collect())
}

/// Per minute since `since`: received, delivered, failed.
pub(super) fn activity(
    c: &Connection,
    tenant: Option<&str>,
    since: DateTime<Utc>,
) -> Result<Vec<MinuteCounts>> {
    let mut by: BTreeMap<i64, MinuteCounts> = BTreeMap::new();
    let mut received = c.prepare_cached(
        "SELECT received_at / 60000 AS m, COUNT(*) FROM events \
         WHERE received_at >= ?1 AND (?2 IS NULL OR tenant = ?2) GROUP BY m",
    )?;
    for row in received.query_map(params![ms(since), tenant], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
    })? {
        let (m, n) = row?;
        MinuteCounts::of(&mut by, m).received = u64::try_from(n).unwrap_or_default();
    }
    let mut attempts = c.prepare_cached(
        "SELECT a.finished_at / 60000 AS m, SUM(a.outcome = 'done'), SUM(a.outcome IN ('retry', 'dead')) \
         FROM attempts a INDEXED BY attempts_finished JOIN jobs j ON j.id = a.job_id \
         WHERE a.finished_at >= ?1 AND (?2 IS NULL OR j.tenant = ?2) GROUP BY m",
    )?;
    for row in attempts.query_map(params![ms(since), tenant], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
        ))
    })? {
        let (m, done, failed) = row?;
        let slot = MinuteCounts::of(&mut by, m);
        slot.delivered = u64::try_from(done).unwrap_or_default();
        slot.failed = u64::try_from(failed).unwrap_or_default();
    }
    Ok(by.into_values().collect())
}

/// Counts for metrics and the dashboard.
pub(super) fn stats(c: &Connection) -> Result<QueueStats> {
    let mut stats = QueueStats::default();
    let mut stmt = c.prepare_cached("SELECT status, COUNT(*) FROM jobs GROUP BY status")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
    for row in rows {
        let (status, n) = row?;
        stats.set(
            JobStatus::parse(&status),
            u64::try_from(n).unwrap_or_default(),
        );
    }
    let now = ms(Utc::now());
    let oldest: Option<i64> = c
        .prepare_cached("SELECT MIN(run_at) FROM jobs WHERE status = 'pending' AND run_at <= ?1")?
        .query_row([now], |r| r.get(0))?;
    #[allow(clippy::cast_precision_loss)]
    if let Some(t) = oldest {
        stats.oldest_due_seconds = (now - t).max(0) as f64 / 1000.0;
    }
    Ok(stats)
}
