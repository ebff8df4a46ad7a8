//! How long an OAuth access token is used: read from the token answer's `expires_in` the
//! same way by every connector.
//!
//! Invariants: whatever `expires_in` holds (huge, negative, fractional, text, missing),
//! the token is used for at most [`MAX_TOKEN_LIFETIME`], and the time it stops being used
//! is computed without overflow; a token is refreshed [`REFRESH_EARLY`] before it lapses
//! (at most half its life early), so no call carries a token about to expire.

use serde_json::Value;
use std::time::Duration;
use std::time::Instant;

/// No token is used longer than this, whatever its answer says: a day-long token refreshed
/// early costs one call, a token kept for years would outlive its revocation.
pub const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// A token is refreshed this long before it expires.
pub const REFRESH_EARLY: Duration = Duration::from_secs(300);

/// The lifetime a token answer names in `expires_in` (seconds, as a number or numeric
/// text), within `0 ..= MAX_TOKEN_LIFETIME`; `default` when it names none (missing, or
/// not a number). A negative lifetime is 0: the token serves the call that minted it.
pub fn lifetime(answer: &Value, default: Duration) -> Duration {
    let secs = match answer.get("expires_in") {
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
    .filter(|s| !s.is_nan());
    let max = MAX_TOKEN_LIFETIME.as_secs_f64();
    secs.map_or(default.min(MAX_TOKEN_LIFETIME), |s| {
        Duration::from_secs_f64(s.clamp(0.0, max))
    })
}

/// When a token minted now, living `lifetime`, stops being used: [`REFRESH_EARLY`] (at most
/// half its life) before it expires.
pub fn use_until(lifetime: Duration) -> Instant {
    let used = lifetime.saturating_sub(REFRESH_EARLY.min(lifetime / 2));
    let now = Instant::now();
    now.checked_add(used).unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const DEFAULT: Duration = Duration::from_secs(1800);

    #[test]
    fn hostile_expires_in_is_bounded() {
        let of = |v: Value| lifetime(&json!({ "expires_in": v }), DEFAULT);
        assert_eq!(of(json!(3599)), Duration::from_secs(3599));
        assert_eq!(of(json!("3600")), Duration::from_secs(3600));
        assert_eq!(of(json!(1.5)), Duration::from_millis(1500));
        for huge in [
            json!(u64::MAX),
            json!(99_999_999_999_999_999_u64),
            json!(1e300),
            json!("1e400"),
        ] {
            assert_eq!(of(huge.clone()), MAX_TOKEN_LIFETIME, "{huge}");
        }
        assert_eq!(of(json!(-5)), Duration::ZERO);
        assert_eq!(of(json!(i64::MIN)), Duration::ZERO);
        for garbage in [
            json!("soon"),
            json!(null),
            json!([1]),
            json!({"s": 1}),
            json!("NaN"),
        ] {
            assert_eq!(of(garbage.clone()), DEFAULT, "{garbage}");
        }
        assert_eq!(lifetime(&json!({}), DEFAULT), DEFAULT);
        assert_eq!(lifetime(&json!({}), Duration::MAX), MAX_TOKEN_LIFETIME);
    }

    #[test]
    fn tokens_are_refreshed_early_and_never_overflow() {
        let now = Instant::now();
        let until = use_until(Duration::from_secs(3600));
        assert!(
            until >= now + Duration::from_secs(3300) && until <= now + Duration::from_secs(3301)
        );
        // a short-lived token is used for half its life
        let until = use_until(Duration::from_secs(60));
        assert!(until <= Instant::now() + Duration::from_secs(30));
        assert!(use_until(Duration::ZERO) <= Instant::now());
        assert!(use_until(Duration::MAX) >= now);
    }
}
