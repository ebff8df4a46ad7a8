//! Leasing due jobs across replicas, and recording how an attempt ended.
//!
//! Invariants:
//! - a claim is one transaction: it locks the jobs it picks with `FOR UPDATE SKIP LOCKED`
//!   (a job another replica is claiming right now is skipped, not waited for), then
//!   leases them; two replicas never lease one job;
//! - a job is picked only if no earlier job of its order key (tenant, connector, booking)
//!   is pending or running; an earlier job locked by another replica's claim is still
//!   pending in this claim's view, so the later one waits: order holds across replicas;
//! - lanes share a claim as on SQLite: every lane's first job before any lane's second,
//!   each lane capped by its room;
//! - an attempt's end is one statement: the job moves on only if this worker still holds
//!   its lease, and the attempt is logged in the same statement.

use super::small;
use crate::{ClaimRequest, ClaimedJob, Finish, JobId, Result};
use chrono::Duration as Delta;
use deadpool_postgres::GenericClient;

/// The order check: no earlier job of `j`'s order key is unfinished.
macro_rules! in_order {
    () => {
        "NOT EXISTS (SELECT 1 FROM jobs p WHERE p.order_key = j.order_key AND p.id < j.id \
         AND p.status IN ('pending', 'running'))"
    };
}

/// The first due jobs of each named lane (`$1` lanes, `$2` how many of each), locked.
const NAMED_LANES: &str = concat!(
    "SELECT l.lane, j.id FROM unnest($1::text[], $2::bigint[]) WITH ORDINALITY AS l (lane, take, n) \
     CROSS JOIN LATERAL ( \
       SELECT j.id FROM jobs j WHERE j.lane = l.lane AND j.status = 'pending' AND j.run_at <= $3 AND ",
    in_order!(),
    " ORDER BY j.id LIMIT l.take FOR UPDATE SKIP LOCKED) j \
     ORDER BY l.n, j.id"
);

/// Due jobs of lanes not named (`$2`), up to `$3` per lane, `$4` in all (not locked yet).
const OTHER_LANES: &str = concat!(
    "SELECT id, lane FROM ( \
       SELECT j.id, j.lane, ROW_NUMBER() OVER (PARTITION BY j.lane ORDER BY j.id) AS rn FROM jobs j \
       WHERE j.status = 'pending' AND j.run_at <= $1 AND j.lane <> ALL($2::text[]) AND ",
    in_order!(),
    ") AS due WHERE rn <= $3 ORDER BY lane, rn LIMIT $4"
);

/// Locks the jobs of [`OTHER_LANES`] that are still free and due.
const LOCK: &str = concat!(
    "SELECT j.id FROM jobs j WHERE j.id = ANY($1) AND j.status = 'pending' AND j.run_at <= $2 AND ",
    in_order!(),
    " FOR UPDATE SKIP LOCKED"
);

/// Leases the chosen jobs and returns what they need to run.
const LEASE: &str = "WITH u AS ( \
       UPDATE jobs SET status = 'running', attempts = attempts + 1, lease_owner = $1, lease_until = $2, updated_at = $3 \
       WHERE id = ANY($4) \
       RETURNING id, event_id, tenant, connector, attempts, rate_limited, steps_done, step_results) \
     SELECT u.id, u.event_id, u.tenant, u.connector, e.event_type, e.body, e.received_at, u.attempts, \
            u.rate_limited, u.steps_done, u.step_results \
     FROM u JOIN events e ON e.id = u.event_id ORDER BY u.id";

/// Leases up to `req.limit` due jobs (see the module's invariants).
pub(super) async fn claim(
    client: &mut deadpool_postgres::Client,
    req: &ClaimRequest,
) -> Result<Vec<ClaimedJob>> {
    let tx = client.transaction().await?;
    let mut per_lane: Vec<Vec<JobId>> = Vec::new();
    let (lanes, takes): (Vec<&str>, Vec<i64>) = req
        .room
        .iter()
        .filter(|(_, room)| **room > 0)
        .map(|(lane, room)| {
            (
                lane.as_str(),
                i64::try_from((*room).min(req.limit)).unwrap_or(i64::MAX),
            )
        })
        .unzip();
    if !lanes.is_empty() {
        let stmt = tx.prepare_cached(NAMED_LANES).await?;
        let rows = tx.query(&stmt, &[&lanes, &takes, &req.now]).await?;
        group(&mut per_lane, rows.iter().map(|r| (r.get(0), r.get(1))));
    }
    if req.default_room > 0 {
        per_lane.extend(other_lanes(&tx, req).await?);
    }
    let chosen = crate::fair_share(&per_lane, req.limit);
    if chosen.is_empty() {
        tx.commit().await?;
        return Ok(Vec::new());
    }
    let lease = Delta::from_std(req.lease).unwrap_or(Delta::MAX);
    let until = req.now.checked_add_signed(lease).unwrap_or(req.now);
    let stmt = tx.prepare_cached(LEASE).await?;
    let rows = tx
        .query(&stmt, &[&req.worker, &until, &req.now, &chosen])
        .await?;
    tx.commit().await?;
    Ok(rows
        .iter()
        .map(|r| ClaimedJob {
            id: r.get(0),
            event_id: r.get(1),
            tenant: r.get(2),
            connector: r.get(3),
            event_type: r.get(4),
            body: r.get(5),
            received_at: r.get(6),
            attempts: u32::try_from(r.get::<_, i32>(7)).unwrap_or_default(),
            rate_limited: u32::try_from(r.get::<_, i32>(8)).unwrap_or_default(),
            progress: crate::Progress {
                steps_done: usize::try_from(r.get::<_, i32>(9)).unwrap_or_default(),
                step_results: r.get(10),
            },
        })
        .collect())
}

/// Appends `(lane, id)` rows, which come grouped by lane, as one list per lane.
fn group<'a>(per_lane: &mut Vec<Vec<JobId>>, rows: impl Iterator<Item = (&'a str, JobId)>) {
    let mut last: Option<&str> = None;
    for (lane, id) in rows {
        match per_lane.last_mut() {
            Some(ids) if last == Some(lane) => ids.push(id),
            _ => per_lane.push(vec![id]),
        }
        last = Some(lane);
    }
}

/// Due jobs of lanes not in `req.room`, up to `default_room` each, locked (a job another
/// replica locked meanwhile is left out).
async fn other_lanes(
    tx: &deadpool_postgres::Transaction<'_>,
    req: &ClaimRequest,
) -> Result<Vec<Vec<JobId>>> {
    let known: Vec<&str> = req.room.keys().map(String::as_str).collect();
    let stmt = tx.prepare_cached(OTHER_LANES).await?;
    let rows = tx
        .query(
            &stmt,
            &[
                &req.now,
                &known,
                &i64::try_from(req.default_room.min(req.limit)).unwrap_or(i64::MAX),
                &i64::try_from(req.limit.saturating_mul(4)).unwrap_or(i64::MAX),
            ],
        )
        .await?;
    let candidates: Vec<(JobId, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<JobId> = candidates.iter().map(|(id, _)| *id).collect();
    let stmt = tx.prepare_cached(LOCK).await?;
    let locked: std::collections::HashSet<JobId> = tx
        .query(&stmt, &[&ids, &req.now])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut per_lane = Vec::new();
    group(
        &mut per_lane,
        candidates
            .iter()
            .filter(|(id, _)| locked.contains(id))
            .map(|(id, lane)| (lane.as_str(), *id)),
    );
    Ok(per_lane)
}

/// Records how an attempt ended; `false` when `f.worker` no longer held the lease.
pub(super) async fn finish(client: &impl GenericClient, f: &Finish) -> Result<bool> {
    // A rate-limited attempt moves from `attempts` to the job's `rate_limited` count.
    let crate::model::NextState {
        status,
        run_at,
        rate_limited: limited,
        retry_at,
    } = f.next_state();
    let outcome = f.outcome.class();
    let stmt = client
        .prepare_cached(
            "WITH u AS ( \
               UPDATE jobs SET status = $1, run_at = $2, attempts = attempts - $3, rate_limited = rate_limited + $3, \
               lease_owner = NULL, lease_until = NULL, steps_done = $4, step_results = $5, \
               dry_run = COALESCE($6, dry_run), last_error = $7, updated_at = $8 \
               WHERE id = $9 AND status = 'running' AND lease_owner = $10 RETURNING attempts + $3 AS attempt) \
             INSERT INTO attempts (job_id, attempt, started_at, finished_at, outcome, step, error, retry_at) \
             SELECT $9, attempt, $11, $8, $12, $13, $7, $14 FROM u",
        )
        .await?;
    let step = f.failed_step.map(small);
    let n = client
        .execute(
            &stmt,
            &[
                &status,
                &run_at,
                &limited,
                &small(f.progress.steps_done),
                &f.progress.step_results,
                &f.dry_run,
                &f.error,
                &f.finished_at,
                &f.job,
                &f.worker,
                &f.started_at,
                &outcome,
                &step,
                &retry_at,
            ],
        )
        .await?;
    Ok(n == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_grouped_per_lane_in_their_order() {
        let mut per_lane = vec![vec![1]];
        group(
            &mut per_lane,
            [("a", 2), ("a", 3), ("b", 4), ("c", 5), ("c", 6)].into_iter(),
        );
        assert_eq!(per_lane, vec![vec![1], vec![2, 3], vec![4], vec![5, 6]]);
    }
}
