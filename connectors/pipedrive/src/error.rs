//! Pipedrive's answers, read and classed.
//!
//! Pipedrive's error envelope is `{success: false, error, error_info, data, additional_data}`
//! (v2's validation errors: `{success: false, error, code: "ERR_BAD_REQUEST"}`).
//!
//! A 429 is one of two limits (<https://pipedrive.readme.io/docs/core-api-concepts-rate-limiting>):
//! a burst window (seconds: `Retry-After`, `x-ratelimit-reset`), or the company's daily
//! token budget, spent until it "resets at the start of the next day" — then the answer
//! says `x-daily-ratelimit-token-remaining: 0`, and the instance pauses until the next
//! midnight of the budget's time zone ([`Budget::zone`]), not for seconds. (The older
//! per-user POST/PUT fair-use limit, `x-daily-requests-left: 0`, resets at midnight UTC:
//! <https://developers.pipedrive.com/changelog/post/daily-api-limit-for-postput-endpoints>.)
//!
//! Invariant: every message kept for a dead letter carries Pipedrive's `error` (and
//! `error_info` when it says more than where the docs are), never a token.

use chrono::{DateTime, Days, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde_json::Value;
use slatis_core::connector::Reply;
use slatis_core::{DeliveryError, time};

/// Where the company's daily token budget resets.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// The time zone whose midnight starts Pipedrive's next day (its server's; UTC by
    /// default).
    pub zone: Tz,
}

impl Budget {
    /// The next midnight in `zone` after `now` (in a zone whose clocks skip midnight, the
    /// first moment of that day).
    pub fn next_reset(zone: Tz, now: DateTime<Utc>) -> DateTime<Utc> {
        let Some(tomorrow) = now
            .with_timezone(&zone)
            .date_naive()
            .checked_add_days(Days::new(1))
        else {
            return DateTime::<Utc>::MAX_UTC;
        };
        (0..24)
            .filter_map(|h| NaiveTime::from_hms_opt(h, 0, 0))
            .find_map(|t| zone.from_local_datetime(&tomorrow.and_time(t)).earliest())
            .map_or(DateTime::<Utc>::MAX_UTC, |t| t.with_timezone(&Utc))
    }
}

/// When a 429 is a spent daily limit: the moment it resets. The budget's headers may be
/// missing for a while after a quiet spell (Pipedrive's developer community), so a 429
/// without `Retry-After` whose burst window still has room (`x-ratelimit-remaining` above
/// 0) is read as the daily budget too: it is not the burst limit. (Misread, a burst 429
/// would pause the instance for `max_backoff`; a daily one misread as a burst would be
/// retried every few seconds into the dead letters.)
fn daily_reset(reply: &Reply, budget: Budget) -> Option<DateTime<Utc>> {
    let left = |name: &str| {
        reply
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<i64>().ok())
    };
    let spent = |name: &str| left(name).is_some_and(|left| left <= 0);
    let now = Utc::now();
    let unexplained = reply.headers.get("retry-after").is_none()
        && left("x-ratelimit-remaining").is_some_and(|room| room > 0);
    if spent("x-daily-ratelimit-token-remaining") || unexplained {
        Some(Budget::next_reset(budget.zone, now))
    } else if spent("x-daily-requests-left") {
        Some(Budget::next_reset(Tz::UTC, now))
    } else {
        None
    }
}

/// A failed Pipedrive call.
#[derive(Debug, thiserror::Error)]
pub enum PipedriveError {
    /// No answer, or classed already.
    #[error(transparent)]
    Delivery(#[from] DeliveryError),
    /// 404: no such record.
    #[error("HTTP 404: {0}")]
    NotFound(String),
    /// Any other failure.
    #[error("HTTP {status}: {message}")]
    Api {
        /// The status.
        status: u16,
        /// `error`, with `error_info` when it is specific.
        message: String,
        /// For 429: when the window frees a slot (`Retry-After`, `x-ratelimit-reset`), or
        /// when a spent daily limit resets.
        retry_at: Option<DateTime<Utc>>,
    },
}

impl PipedriveError {
    /// Reads a failed reply; `budget` places a daily limit's reset.
    pub fn from_reply(reply: &Reply, budget: Budget) -> Self {
        let body = reply.json();
        let text = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_owned);
        let mut message = text("error").unwrap_or_else(|| reply.excerpt(300));
        if let Some(info) = text("error_info").filter(|i| !i.contains("developers.pipedrive.com")) {
            message = format!("{message} ({info})");
        }
        let status = reply.status.as_u16();
        if status == 404 {
            return Self::NotFound(message);
        }
        if status == 429
            && let Some(at) = daily_reset(reply, budget)
        {
            return Self::Api {
                status,
                message: format!(
                    "{message} (the daily API token budget is spent; it resets at {})",
                    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                ),
                retry_at: Some(at),
            };
        }
        let reset = reply
            .headers
            .get("x-ratelimit-reset")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| reset_seconds(v.trim()))
            .map(time::in_seconds);
        Self::Api {
            status,
            message,
            retry_at: reply.retry_after().or(reset),
        }
    }

    /// The queue's class: 429 rate-limited until the window frees a slot (or the daily
    /// budget resets); 408 and 5xx
    /// retryable; 400, 401 (after a refresh), 402, 403 and the rest permanent.
    pub fn into_delivery(self) -> DeliveryError {
        let text = self.to_string();
        match self {
            Self::Delivery(e) => e,
            Self::Api {
                status: 429,
                retry_at,
                ..
            } => DeliveryError::rate_limited(text, retry_at.unwrap_or_else(|| time::in_seconds(2))),
            Self::Api {
                status, retry_at, ..
            } if status == 408 || status >= 500 => DeliveryError::retry_after(text, retry_at),
            Self::NotFound(_) | Self::Api { .. } => DeliveryError::permanent(text),
        }
    }
}

/// The seconds an `x-ratelimit-reset` names, at least 1: any whole number (a negative one
/// is 1, one too large for any clock is `u64::MAX`, which the queue caps); `None` for text
/// that is not a whole number.
fn reset_seconds(v: &str) -> Option<u64> {
    let digits = v.strip_prefix('-').unwrap_or(v);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(if v.starts_with('-') {
        1
    } else {
        v.parse::<u64>().unwrap_or(u64::MAX).max(1)
    })
}

impl From<PipedriveError> for DeliveryError {
    fn from(e: PipedriveError) -> Self {
        e.into_delivery()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UTC: Budget = Budget { zone: Tz::UTC };

    fn limited(headers: &[(&'static str, &str)]) -> DeliveryError {
        limited_in(headers, UTC)
    }

    pub(super) fn limited_in(headers: &[(&'static str, &str)], budget: Budget) -> DeliveryError {
        let mut map = reqwest::header::HeaderMap::new();
        for (name, value) in headers {
            map.insert(*name, value.parse().expect("header value"));
        }
        let reply = Reply {
            status: reqwest::StatusCode::TOO_MANY_REQUESTS,
            headers: map,
            body: br#"{"success":false,"error":"Request over limit"}"#.to_vec().into(),
        };
        PipedriveError::from_reply(&reply, budget).into_delivery()
    }

    fn until(e: &DeliveryError) -> DateTime<Utc> {
        match e {
            DeliveryError::RateLimited { until, .. } => *until,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn any_rate_limit_reset_is_read_without_panicking() {
        let huge = until(&limited(&[("x-ratelimit-reset", "99999999999999999")]));
        assert!(
            huge > Utc::now() + chrono::TimeDelta::days(365 * 1000),
            "{huge}"
        );
        let beyond = until(&limited(&[(
            "x-ratelimit-reset",
            "999999999999999999999999",
        )]));
        assert_eq!(beyond, DateTime::<Utc>::MAX_UTC);
        let negative = until(&limited(&[("x-ratelimit-reset", "-30")]));
        assert!(negative <= Utc::now() + chrono::TimeDelta::seconds(1));
        let three = until(&limited(&[("x-ratelimit-reset", " 3 ")]));
        let left = three - Utc::now();
        assert!(left > chrono::TimeDelta::seconds(2) && left <= chrono::TimeDelta::seconds(3));
        // garbage is ignored: the default wait of two seconds
        let garbage = until(&limited(&[("x-ratelimit-reset", "soon")]));
        assert!(garbage - Utc::now() <= chrono::TimeDelta::seconds(2));
        // Retry-After wins over the reset
        let both = until(&limited(&[
            ("retry-after", "1"),
            ("x-ratelimit-reset", "99999999999999999"),
        ]));
        assert!(both - Utc::now() <= chrono::TimeDelta::seconds(1));
    }
}

#[cfg(test)]
mod daily {
    use super::*;
    use chrono::TimeDelta;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    fn limited(headers: &[(&'static str, &str)], zone: Tz) -> DeliveryError {
        tests::limited_in(headers, Budget { zone })
    }

    #[test]
    fn the_budget_resets_at_the_next_midnight_of_its_zone() {
        let now = at("2026-03-10T22:30:00Z");
        assert_eq!(Budget::next_reset(Tz::UTC, now), at("2026-03-11T00:00:00Z"));
        // Berlin is an hour ahead in March: 23:30 there, midnight comes at 23:00 UTC
        assert_eq!(
            Budget::next_reset(Tz::Europe__Berlin, now),
            at("2026-03-10T23:00:00Z")
        );
        assert_eq!(
            Budget::next_reset(Tz::America__New_York, now),
            at("2026-03-11T04:00:00Z")
        );
        // Santiago skips midnight when summer time starts (2026-09-06): the day starts at 01:00
        let before = at("2026-09-05T12:00:00Z");
        assert_eq!(
            Budget::next_reset(Tz::America__Santiago, before),
            at("2026-09-06T04:00:00Z")
        );
        assert_eq!(
            Budget::next_reset(Tz::UTC, DateTime::<Utc>::MAX_UTC),
            DateTime::<Utc>::MAX_UTC
        );
    }

    #[test]
    fn a_spent_daily_budget_pauses_until_it_resets_not_for_seconds() {
        let e = limited(
            &[
                ("x-daily-ratelimit-token-remaining", "0"),
                ("x-ratelimit-reset", "2"),
                ("retry-after", "2"),
            ],
            Tz::UTC,
        );
        let DeliveryError::RateLimited { until, message } = &e else {
            panic!("{e:?}");
        };
        assert_eq!(until.time(), NaiveTime::MIN, "midnight UTC");
        assert!(*until > Utc::now() && *until - Utc::now() <= TimeDelta::days(1));
        assert!(
            message.contains("daily API token budget is spent"),
            "{message}"
        );
        let fair_use = limited(&[("x-daily-requests-left", "0")], Tz::Asia__Tokyo);
        let DeliveryError::RateLimited { until, .. } = fair_use else {
            panic!("{fair_use:?}");
        };
        assert_eq!(
            until.time(),
            NaiveTime::MIN,
            "the POST/PUT limit resets at midnight UTC"
        );
    }

    #[test]
    fn a_burst_429_with_budget_left_waits_for_its_window() {
        let e = limited(
            &[
                ("x-daily-ratelimit-token-remaining", "1200"),
                ("x-ratelimit-remaining", "0"),
                ("x-ratelimit-reset", "2"),
            ],
            Tz::UTC,
        );
        let DeliveryError::RateLimited { until, .. } = e else {
            panic!("{e:?}");
        };
        assert!(until - Utc::now() <= TimeDelta::seconds(2));
        let unsaid = limited(&[("x-ratelimit-remaining", "17")], Tz::UTC);
        let DeliveryError::RateLimited { until, .. } = unsaid else {
            panic!("{unsaid:?}");
        };
        assert_eq!(
            until.time(),
            NaiveTime::MIN,
            "room in the burst window: the daily budget, though its headers are missing"
        );
        let explained = limited(
            &[("x-ratelimit-remaining", "17"), ("retry-after", "1")],
            Tz::UTC,
        );
        let DeliveryError::RateLimited { until, .. } = explained else {
            panic!("{explained:?}");
        };
        assert!(
            until - Utc::now() <= TimeDelta::seconds(1),
            "a Retry-After is a window"
        );
        let garbage = limited(&[("x-daily-ratelimit-token-remaining", "lots")], Tz::UTC);
        let DeliveryError::RateLimited { until, .. } = garbage else {
            panic!("{garbage:?}");
        };
        assert!(
            until - Utc::now() <= TimeDelta::seconds(2),
            "not a daily limit"
        );
    }
}
