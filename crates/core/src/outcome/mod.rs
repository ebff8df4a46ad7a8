//! What an attempt's end means for its job: the one place that turns a delivery's result
//! (a failure, or a job that must not run again) into the job's next state. The store
//! records an [`Outcome`] as it is; the worker only schedules by it; logs and metrics
//! name it by [`Outcome::class`].
//!
//! Invariants:
//! - no wait a CRM names (`Retry-After`, a rate-limit reset, a daily reset, a date in
//!   2037) puts a job, or its lane, further out than `delivery.retry.max_backoff` from now;
//! - a retryable failure uses up an attempt (`max_attempts`), a rate-limited one a slot of
//!   its own budget (`max_rate_limited`); a spent budget dead-letters the job, and the
//!   reason says which budget;
//! - a job claimed with its attempts already past `max_attempts` (each earlier attempt
//!   died with its process) is dead-lettered without running.

mod backoff;

use backoff::next_run;

use crate::DeliveryError;
use crate::config::RetryConfig;
use crate::time;
use chrono::{DateTime, Utc};

/// How an attempt ended: the job's next state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every step succeeded.
    Done,
    /// A retryable failure: run again at this time.
    Retry(DateTime<Utc>),
    /// The CRM's rate limit: run again at this time; the attempt counts towards the job's
    /// rate-limited answers instead of its attempts.
    RateLimited(DateTime<Utc>),
    /// Dead-lettered.
    Dead,
}

impl Outcome {
    /// Its name in logs, metrics and the store: `done`, `retry`, `rate_limited`, `dead`.
    pub fn class(&self) -> &'static str {
        match self {
            Self::Done => "done",
            Self::Retry(_) => "retry",
            Self::RateLimited(_) => "rate_limited",
            Self::Dead => "dead",
        }
    }
}

/// What a job has used up of its budgets, counting the attempt that just ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tries {
    /// Attempts (`delivery.retry.max_attempts`).
    pub attempts: u32,
    /// Rate-limited answers before this attempt (`delivery.retry.max_rate_limited`).
    pub rate_limited: u32,
}

/// A job's next state after an attempt.
#[derive(Debug, PartialEq, Eq)]
pub struct Verdict {
    /// What the store records.
    pub outcome: Outcome,
    /// Give the job's lane no job until then (a rate limit).
    pub pause: Option<DateTime<Utc>>,
    /// Why it failed, as kept with the attempt (and the dead letter).
    pub error: Option<String>,
}

/// Why a claimed job must not run at all: its attempts already exceed `max_attempts`. As
/// every attempt that ends records its outcome, that happens when the process stopped
/// during each of the last ones (a crash, a kill), or when `max_attempts` was lowered.
pub fn poisoned(retry: &RetryConfig, job: Tries) -> Option<DeliveryError> {
    (job.attempts > retry.max_attempts).then(|| {
        DeliveryError::permanent(format!(
            "not run again: this would be attempt {}, past max_attempts ({}); attempts that \
             never finished count too (the process stopped during each: a crash or a kill)",
            job.attempts, retry.max_attempts
        ))
    })
}

/// The job's next state after an attempt that ended at `now` with `failure` (`None`: every
/// step done).
pub fn judge(
    retry: &RetryConfig,
    job: Tries,
    failure: Option<&DeliveryError>,
    now: DateTime<Utc>,
) -> Verdict {
    let Some(e) = failure else {
        return Verdict {
            outcome: Outcome::Done,
            pause: None,
            error: None,
        };
    };
    let latest = time::add(now, retry.max_backoff);
    let dead = |why: String| Verdict {
        outcome: Outcome::Dead,
        pause: None,
        error: Some(why),
    };
    match e {
        DeliveryError::Permanent { message } => dead(message.clone()),
        DeliveryError::RateLimited { message, .. }
            if job.rate_limited.saturating_add(1) >= retry.max_rate_limited =>
        {
            dead(format!(
                "{message} (rate-limited {} times: delivery.retry.max_rate_limited is spent)",
                job.rate_limited.saturating_add(1)
            ))
        }
        DeliveryError::RateLimited { message, until } => {
            // Not before the reset (nor sooner than a first backoff, should the CRM name
            // a time already past), not after max_backoff.
            let soonest = time::add(now, retry.initial_backoff).min(latest);
            let at = (*until).clamp(soonest, latest);
            Verdict {
                outcome: Outcome::RateLimited(at),
                pause: Some(at),
                error: Some(message.clone()),
            }
        }
        DeliveryError::Retryable { message, .. } if job.attempts >= retry.max_attempts => dead(
            format!("{message} (gave up after {} attempts)", job.attempts),
        ),
        DeliveryError::Retryable {
            message,
            not_before,
        } => Verdict {
            outcome: Outcome::Retry(next_run(
                retry,
                job.attempts,
                now,
                not_before.map(|t| t.min(latest)),
            )),
            pause: None,
            error: Some(message.clone()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn retry() -> RetryConfig {
        RetryConfig {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(60),
            max_rate_limited: 5,
        }
    }

    fn job(attempts: u32, rate_limited: u32) -> Tries {
        Tries {
            attempts,
            rate_limited,
        }
    }

    fn at(v: &Verdict) -> DateTime<Utc> {
        match v.outcome {
            Outcome::Retry(t) | Outcome::RateLimited(t) => t,
            ref other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_crm_wait_is_capped_at_max_backoff() {
        let r = retry();
        let now = Utc::now();
        let latest = time::add(now, r.max_backoff);
        let far = [
            DateTime::<Utc>::MAX_UTC,
            time::add(now, Duration::from_secs(99_999_999_999_999_999)),
            "2037-10-21T07:28:00Z".parse().expect("date"),
        ];
        for until in far {
            let limited = judge(
                &r,
                job(1, 0),
                Some(&DeliveryError::rate_limited("429", until)),
                now,
            );
            assert_eq!((at(&limited), limited.pause), (latest, Some(latest)));
            let busy = DeliveryError::retry_after("503", Some(until));
            let retried = judge(&r, job(1, 0), Some(&busy), now);
            assert_eq!((at(&retried), retried.pause), (latest, None));
        }
        // a reset already past waits a first backoff, not nothing
        let past = judge(
            &r,
            job(1, 0),
            Some(&DeliveryError::rate_limited(
                "429",
                DateTime::<Utc>::MIN_UTC,
            )),
            now,
        );
        assert_eq!(at(&past), time::add(now, r.initial_backoff));
        // and a reset within bounds is kept exactly
        let soon = time::add(now, Duration::from_secs(10));
        let kept = judge(
            &r,
            job(1, 0),
            Some(&DeliveryError::rate_limited("429", soon)),
            now,
        );
        assert_eq!(at(&kept), soon);
    }

    #[test]
    fn each_budget_dead_letters_with_its_reason() {
        let r = retry();
        let now = Utc::now();
        let limited = DeliveryError::rate_limited("HTTP 429: slow down", now);
        assert_eq!(
            judge(&r, job(1, 3), Some(&limited), now).outcome.class(),
            "rate_limited"
        );
        let spent = judge(&r, job(1, 4), Some(&limited), now);
        assert_eq!(spent.outcome, Outcome::Dead);
        assert_eq!(
            spent.error.as_deref(),
            Some(
                "HTTP 429: slow down (rate-limited 5 times: delivery.retry.max_rate_limited is spent)"
            )
        );
        let busy = DeliveryError::retryable("HTTP 503");
        assert_eq!(
            judge(&r, job(2, 0), Some(&busy), now).outcome.class(),
            "retry"
        );
        let spent = judge(&r, job(3, 0), Some(&busy), now);
        assert_eq!(
            (spent.outcome, spent.error.as_deref()),
            (Outcome::Dead, Some("HTTP 503 (gave up after 3 attempts)"))
        );
        // u32::MAX attempts: no overflow anywhere
        assert_eq!(
            judge(&r, job(u32::MAX, u32::MAX), Some(&limited), now)
                .outcome
                .class(),
            "dead"
        );
        assert_eq!(
            judge(&r, job(u32::MAX, 0), Some(&busy), now)
                .outcome
                .class(),
            "dead"
        );
        let gone = DeliveryError::permanent("HTTP 400: bad");
        assert_eq!(
            judge(&r, job(1, 0), Some(&gone), now).error.as_deref(),
            Some("HTTP 400: bad")
        );
        assert_eq!(judge(&r, job(1, 0), None, now).outcome, Outcome::Done);
    }

    #[test]
    fn a_job_whose_attempts_all_died_is_not_run_again() {
        let r = retry();
        assert!(poisoned(&r, job(3, 0)).is_none(), "the last attempt runs");
        let e = poisoned(&r, job(4, 0)).expect("poisoned");
        assert_eq!(e.class(), "permanent");
        assert!(
            e.message()
                .contains("this would be attempt 4, past max_attempts (3)"),
            "{e}"
        );
    }
}
