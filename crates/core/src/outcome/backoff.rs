//! When a failed job runs again: exponential backoff with full jitter, never sooner than
//! the CRM said.
//!
//! Invariant: no attempt number and no time makes this overflow or panic.

use crate::config::RetryConfig;
use chrono::{DateTime, Utc};
use rand::Rng;
use std::time::Duration;

/// The cap of attempt `attempt`'s delay: `initial × 2^(attempt-1)`, at most `max_backoff`.
pub fn cap(retry: &RetryConfig, attempt: u32) -> Duration {
    let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(30));
    retry
        .initial_backoff
        .saturating_mul(factor)
        .min(retry.max_backoff)
}

/// When attempt `attempt` (1 = the first) runs again after failing at `now`: a uniformly
/// random delay up to [`cap`] (full jitter, so retries of many jobs spread out), but never
/// before `not_before`.
pub fn next_run(
    retry: &RetryConfig,
    attempt: u32,
    now: DateTime<Utc>,
    not_before: Option<DateTime<Utc>>,
) -> DateTime<Utc> {
    let cap_ms = u64::try_from(cap(retry, attempt).as_millis()).unwrap_or(u64::MAX);
    let delay = Duration::from_millis(rand::rng().random_range(0..=cap_ms));
    let at = crate::time::add(now, delay);
    not_before.map_or(at, |nb| at.max(nb))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retry() -> RetryConfig {
        RetryConfig {
            max_attempts: 20,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            max_rate_limited: 100,
        }
    }

    #[test]
    fn caps_double_up_to_the_maximum() {
        let r = retry();
        let caps: Vec<u64> = (1..=8).map(|a| cap(&r, a).as_secs()).collect();
        assert_eq!(caps, vec![1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(cap(&r, 200).as_secs(), 60);
    }

    #[test]
    fn delays_stay_within_the_cap_and_after_retry_after() {
        let r = retry();
        let now = Utc::now();
        for attempt in 1..10 {
            let at = next_run(&r, attempt, now, None);
            assert!(
                at >= now
                    && at <= now + chrono::Duration::from_std(cap(&r, attempt)).expect("delta")
            );
        }
        let later = now + chrono::Duration::seconds(600);
        assert!(next_run(&r, 1, now, Some(later)) >= later);
    }

    #[test]
    fn any_attempt_number_and_time_is_safe() {
        let r = retry();
        assert_eq!(cap(&r, u32::MAX), r.max_backoff);
        assert_eq!(cap(&r, 0), r.initial_backoff);
        let now = Utc::now();
        let at = next_run(&r, u32::MAX, now, None);
        assert!(at >= now && at <= now + chrono::Duration::seconds(60));
        let end = DateTime::<Utc>::MAX_UTC;
        assert_eq!(next_run(&r, u32::MAX, end, None), end);
        let huge = RetryConfig {
            initial_backoff: Duration::MAX,
            max_backoff: Duration::MAX,
            ..retry()
        };
        assert!(next_run(&huge, u32::MAX, now, None) >= now);
    }
}
