//! Operations on what is stored: list events, jobs and dead letters, show a job, replay
//! dead letters (by id or by filter), count per tenant and per minute, and a booking's
//! timeline. The admin API and the `dlq` commands both call [`Operations`]; neither
//! talks to the store for these itself.
//!
//! Invariants: answers are the [`model`] types, never store rows; lists are newest first,
//! paged by an opaque cursor ([`params`]) and at most [`params::MAX_LIMIT`] long; a
//! replay that put something back wakes the local worker (when there is one: the CLI
//! leaves it to the running server, which polls and, on PostgreSQL, is notified).

pub mod model;
pub mod params;

use chrono::{Duration as Delta, DurationRound, Utc};
use model::{
    Activity, Attempt, Counts, DeadLetter, EntryKind, Event, Job, JobDetail, Minute, Page, Queue,
    Replayed, Stats, TenantStats, Timeline, TimelineEntry,
};
use params::{Filters, Paging};
use slatis_core::Config;
use slatis_store::{
    EventKey, EventQuery, Filter, JobId, JobQuery, JobStatus, Replay, Store, StoreError,
};
use std::collections::{BTreeMap, HashMap};
use tokio::sync::Notify;

/// Why an operation gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    /// A filter, cursor or limit is wrong (the message says which and why).
    #[error("{0}")]
    Invalid(String),
    /// No job has this id.
    #[error("no job {0}")]
    NoJob(JobId),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How many events, jobs and attempts a timeline shows at most (the oldest first).
const TIMELINE_LIMIT: u32 = 1000;

/// The operations, over a store.
pub struct Operations<'a> {
    store: &'a dyn Store,
    wake: Option<&'a Notify>,
}

/// A page of `items` of at most `limit`, its cursor made from the last one's key.
fn page<T>(items: Vec<T>, limit: u32, cursor: impl Fn(&T) -> String) -> Page<T> {
    let full = items.len() >= usize::try_from(limit).unwrap_or(usize::MAX);
    let next_cursor = if full { items.last().map(cursor) } else { None };
    Page { items, next_cursor }
}

impl<'a> Operations<'a> {
    /// Operations on `store`; `wake` is the local worker's, if it runs in this process.
    pub fn new(store: &'a dyn Store, wake: Option<&'a Notify>) -> Self {
        Self { store, wake }
    }

    /// A page of events.
    ///
    /// # Errors
    /// [`OpsError::Invalid`] for a wrong filter or cursor; the store's failure.
    pub async fn events(
        &self,
        filters: &Filters,
        paging: &Paging,
    ) -> Result<Page<Event>, OpsError> {
        let query = EventQuery {
            filter: filters.to_filter()?,
            before: paging.event_cursor()?,
            limit: paging.limit()?,
        };
        let items = self.store.events(&query).await?;
        Ok(page(
            items.into_iter().map(Event::from).collect(),
            query.limit,
            |e| {
                params::event_cursor(&EventKey {
                    received_at: e.received_at,
                    id: e.id.clone(),
                })
            },
        ))
    }

    async fn job_page(
        &self,
        filter: Filter,
        paging: &Paging,
    ) -> Result<(Vec<slatis_store::JobSummary>, u32), OpsError> {
        let query = JobQuery {
            filter,
            before: paging.job_cursor()?,
            limit: paging.limit()?,
        };
        Ok((self.store.jobs(&query).await?, query.limit))
    }

    /// A page of jobs.
    ///
    /// # Errors
    /// As [`Operations::events`].
    pub async fn jobs(&self, filters: &Filters, paging: &Paging) -> Result<Page<Job>, OpsError> {
        let (items, limit) = self.job_page(filters.to_filter()?, paging).await?;
        Ok(page(
            items.into_iter().map(Job::from).collect(),
            limit,
            |j| params::job_cursor(j.id),
        ))
    }

    /// A page of dead letters (a `status` filter other than `dead` is refused).
    ///
    /// # Errors
    /// As [`Operations::events`].
    pub async fn dead_letters(
        &self,
        filters: &Filters,
        paging: &Paging,
    ) -> Result<Page<DeadLetter>, OpsError> {
        let filter = dead(filters)?;
        let (items, limit) = self.job_page(filter, paging).await?;
        Ok(page(
            items.into_iter().map(DeadLetter::from).collect(),
            limit,
            |d| params::job_cursor(d.job.id),
        ))
    }

    /// One job with its event, attempts and dry-run record.
    ///
    /// # Errors
    /// [`OpsError::NoJob`]; the store's failure.
    pub async fn job(&self, id: JobId) -> Result<JobDetail, OpsError> {
        match self.store.job(id).await? {
            Some(j) => Ok(j.into()),
            None => Err(OpsError::NoJob(id)),
        }
    }

    async fn replay(&self, which: Replay) -> Result<Replayed, OpsError> {
        let ids = self.store.replay(which).await?;
        if !ids.is_empty()
            && let Some(wake) = self.wake
        {
            wake.notify_one();
        }
        Ok(Replayed {
            count: ids.len(),
            replayed: ids,
        })
    }

    /// Puts these dead letters back in the queue; ids that are not dead are left alone
    /// (and not in the answer).
    ///
    /// # Errors
    /// The store's failure.
    pub async fn replay_ids(&self, ids: Vec<JobId>) -> Result<Replayed, OpsError> {
        self.replay(Replay::Ids(ids)).await
    }

    /// Puts every dead letter the filters take back in the queue (no filter: all).
    ///
    /// # Errors
    /// [`OpsError::Invalid`] for a wrong filter; the store's failure.
    pub async fn replay_matching(&self, filters: &Filters) -> Result<Replayed, OpsError> {
        self.replay(Replay::Matching(dead(filters)?)).await
    }

    /// The queue, each tenant of `config` with its counts, and the last hour.
    ///
    /// # Errors
    /// The store's failure.
    pub async fn stats(&self, config: &Config) -> Result<Stats, OpsError> {
        let q = self.store.stats().await?;
        let mut counts: HashMap<String, Counts> = self
            .store
            .tenant_counts()
            .await?
            .into_iter()
            .map(|c| (c.tenant.clone(), c.into()))
            .collect();
        let tenants = config
            .tenants
            .values()
            .map(|t| TenantStats {
                name: t.name.clone(),
                connectors: t
                    .connectors
                    .values()
                    .map(|c| model::ConnectorInfo {
                        name: c.name.clone(),
                        kind: c.kind.clone(),
                        dry_run: c.dry_run,
                    })
                    .collect(),
                routes: t.routes.keys().cloned().collect(),
                counts: counts.remove(&t.name).unwrap_or_default(),
            })
            .collect();
        let mut other_tenants: Vec<String> = counts.into_keys().collect();
        other_tenants.sort();
        Ok(Stats {
            queue: Queue {
                pending: q.pending,
                running: q.running,
                done: q.done,
                dead: q.dead,
                oldest_due_seconds: q.oldest_due_seconds,
            },
            tenants,
            other_tenants,
            last_hour: self.last_hour(None).await?.minutes,
        })
    }

    /// The last hour of `tenant` (or of all), per minute: 60 entries, the current
    /// minute last, minutes with nothing as zeros.
    ///
    /// # Errors
    /// The store's failure.
    pub async fn last_hour(&self, tenant: Option<&str>) -> Result<Activity, OpsError> {
        let now = Utc::now();
        let this_minute = now.duration_trunc(Delta::minutes(1)).unwrap_or(now);
        let first = this_minute - Delta::minutes(59);
        let found: BTreeMap<i64, slatis_store::MinuteCounts> = self
            .store
            .activity(tenant, first)
            .await?
            .into_iter()
            .map(|m| (m.minute, m))
            .collect();
        let minutes = (0..60)
            .map(|i| {
                let at = first + Delta::minutes(i);
                let m = found
                    .get(&at.timestamp().div_euclid(60))
                    .copied()
                    .unwrap_or_default();
                Minute {
                    at,
                    received: m.received,
                    delivered: m.delivered,
                    failed: m.failed,
                }
            })
            .collect();
        Ok(Activity {
            tenant: tenant.map(str::to_owned),
            minutes,
        })
    }

    /// Every event of `booking_id` (of `tenant`, if given) and every attempt of their
    /// jobs, in time order.
    ///
    /// # Errors
    /// The store's failure.
    pub async fn timeline(
        &self,
        booking_id: &str,
        tenant: Option<&str>,
    ) -> Result<Timeline, OpsError> {
        let filter = Filter {
            tenant: tenant.map(str::to_owned),
            booking_id: Some(booking_id.to_owned()),
            ..Filter::default()
        };
        let mut events = self
            .store
            .events(&EventQuery {
                filter: filter.clone(),
                before: None,
                limit: TIMELINE_LIMIT,
            })
            .await?;
        let mut jobs = self
            .store
            .jobs(&JobQuery {
                filter,
                before: None,
                limit: TIMELINE_LIMIT,
            })
            .await?;
        let attempts = self
            .store
            .booking_attempts(tenant, booking_id, TIMELINE_LIMIT)
            .await?;
        let limit = usize::try_from(TIMELINE_LIMIT).unwrap_or(usize::MAX);
        let truncated = events.len() >= limit || jobs.len() >= limit || attempts.len() >= limit;
        events.reverse();
        jobs.reverse();
        let events: Vec<Event> = events.into_iter().map(Event::from).collect();
        let jobs: Vec<Job> = jobs.into_iter().map(Job::from).collect();
        let by_id: HashMap<JobId, &Job> = jobs.iter().map(|j| (j.id, j)).collect();
        let mut entries: Vec<TimelineEntry> = events
            .iter()
            .map(|e| TimelineEntry {
                at: e.received_at,
                kind: EntryKind::Received,
                tenant: e.tenant.clone(),
                event_id: e.id.clone(),
                event_type: e.event_type.clone(),
                job_id: None,
                connector: None,
                attempt: None,
            })
            .collect();
        entries.extend(attempts.into_iter().filter_map(|a| {
            let job = by_id.get(&a.job_id)?;
            Some(TimelineEntry {
                at: a.finished_at,
                kind: EntryKind::Attempt,
                tenant: job.tenant.clone(),
                event_id: job.event_id.clone(),
                event_type: job.event_type.clone(),
                job_id: Some(job.id),
                connector: Some(job.connector.clone()),
                attempt: Some(Attempt::from(a)),
            })
        }));
        // stable: an event's arrival stays before attempts at the same instant
        entries.sort_by_key(|e| e.at);
        Ok(Timeline {
            booking_id: booking_id.to_owned(),
            tenant: tenant.map(str::to_owned),
            events,
            jobs,
            entries,
            truncated,
        })
    }
}

/// The filter of dead letters: `status` absent or `dead`.
fn dead(filters: &Filters) -> Result<Filter, OpsError> {
    let mut filter = filters.to_filter()?;
    match filter.status {
        None | Some(JobStatus::Dead) => {
            filter.status = Some(JobStatus::Dead);
            Ok(filter)
        }
        Some(other) => Err(OpsError::Invalid(format!(
            "dead letters are dead: status {} is not one of them",
            other.as_str()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_has_a_cursor_only_when_full() {
        let full = page(vec![1, 2, 3], 3, |n| format!("after {n}"));
        assert_eq!(full.next_cursor.as_deref(), Some("after 3"));
        let last = page(vec![1, 2], 3, |n| format!("after {n}"));
        assert_eq!(last.next_cursor, None);
    }

    #[test]
    fn dead_letters_refuse_another_status() {
        let f = |s: &str| Filters {
            status: Some(s.into()),
            ..Filters::default()
        };
        assert_eq!(
            dead(&f("dead")).expect("dead").status,
            Some(JobStatus::Dead)
        );
        assert!(matches!(dead(&f("done")), Err(OpsError::Invalid(_))));
        assert_eq!(
            dead(&Filters::default()).expect("none").status,
            Some(JobStatus::Dead)
        );
    }
}
