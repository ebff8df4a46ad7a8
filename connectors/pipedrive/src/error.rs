//! Pipedrive's answers, read and classed.
//!
//! Pipedrive's error envelope is `{success: false, error, error_info, data, additional_data}`.
//! Invariant: every message kept for a dead letter carries Pipedrive's `error` (and
//! `error_info` when it says more than where the docs are), never a token.

use chrono::Utc;
use serde_json::Value;
use slatis_core::connector::Reply;
use slatis_core::{DeliveryError, time};

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
        /// For 429: when the window frees a slot (`Retry-After`, `x-ratelimit-reset`).
        retry_at: Option<chrono::DateTime<Utc>>,
    },
}

impl PipedriveError {
    /// Reads a failed reply.
    pub fn from_reply(reply: &Reply) -> Self {
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

    /// The queue's class: 429 rate-limited until the window frees a slot; 408 and 5xx
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
    use chrono::DateTime;

    fn limited(headers: &[(&'static str, &str)]) -> DeliveryError {
        let mut map = reqwest::header::HeaderMap::new();
        for (name, value) in headers {
            map.insert(*name, value.parse().expect("header value"));
        }
        let reply = Reply {
            status: reqwest::StatusCode::TOO_MANY_REQUESTS,
            headers: map,
            body: br#"{"success":false,"error":"Request over limit"}"#.to_vec().into(),
        };
        PipedriveError::from_reply(&reply).into_delivery()
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
