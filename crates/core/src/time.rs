//! Time arithmetic on waits that come from outside: a CRM's `Retry-After` or rate-limit
//! reset, an OAuth `expires_in`, a configured duration.
//!
//! Invariant: nothing here panics or wraps, whatever the wait. A time that would leave the
//! representable range saturates at its end; how long a job may really wait is the
//! queue's decision (it caps every CRM-given wait at `delivery.retry.max_backoff`).

use chrono::{DateTime, TimeDelta, Utc};
use std::time::Duration;

/// `t + wait`, or the latest representable time.
pub fn add(t: DateTime<Utc>, wait: Duration) -> DateTime<Utc> {
    TimeDelta::from_std(wait)
        .ok()
        .and_then(|d| t.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// `t - span`, or the earliest representable time.
pub fn sub(t: DateTime<Utc>, span: Duration) -> DateTime<Utc> {
    TimeDelta::from_std(span)
        .ok()
        .and_then(|d| t.checked_sub_signed(d))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// Now plus `wait`, or the latest representable time.
pub fn from_now(wait: Duration) -> DateTime<Utc> {
    add(Utc::now(), wait)
}

/// Now plus `secs` seconds (as a `Retry-After` or a rate-limit reset names them), or the
/// latest representable time.
pub fn in_seconds(secs: u64) -> DateTime<Utc> {
    from_now(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_waits_saturate_instead_of_panicking() {
        let now = Utc::now();
        assert_eq!(add(now, Duration::MAX), DateTime::<Utc>::MAX_UTC);
        assert_eq!(
            add(now, Duration::from_secs(99_999_999_999_999_999)),
            DateTime::<Utc>::MAX_UTC
        );
        assert_eq!(sub(now, Duration::MAX), DateTime::<Utc>::MIN_UTC);
        assert_eq!(in_seconds(u64::MAX), DateTime::<Utc>::MAX_UTC);
        assert_eq!(
            add(DateTime::<Utc>::MAX_UTC, Duration::from_secs(1)),
            DateTime::<Utc>::MAX_UTC
        );
    }

    #[test]
    fn ordinary_waits_are_exact() {
        let now = Utc::now();
        assert_eq!(
            add(now, Duration::from_secs(90)) - now,
            TimeDelta::seconds(90)
        );
        assert_eq!(
            now - sub(now, Duration::from_millis(1500)),
            TimeDelta::milliseconds(1500)
        );
        let later = in_seconds(7);
        assert!(later - Utc::now() <= TimeDelta::seconds(7) && later > now);
    }
}
