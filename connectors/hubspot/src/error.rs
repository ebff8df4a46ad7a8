//! HubSpot's answers, read into what the connector acts on and then classed for the queue.
//!
//! HubSpot's error envelope is `{status, message, correlationId, category, policyName?}`.
//! Invariant: every message kept for a dead letter carries HubSpot's own `category` and
//! `message`, never a token.

use chrono::Utc;
use serde_json::Value;
use slatis_core::connector::Reply;
use slatis_core::{DeliveryError, time};

/// A failed HubSpot call.
#[derive(Debug, thiserror::Error)]
pub enum HubSpotError {
    /// The request did not get an answer, or was classed already (timeouts, resets).
    #[error(transparent)]
    Delivery(#[from] DeliveryError),
    /// 404: no such record.
    #[error("HTTP 404: {message}")]
    NotFound {
        /// HubSpot's message.
        message: String,
    },
    /// 409: a unique value is taken; HubSpot names the record that holds it.
    #[error("HTTP 409 CONFLICT: {message}")]
    Conflict {
        /// HubSpot's message.
        message: String,
        /// The id in "Existing ID: N", if the message has one.
        existing_id: Option<String>,
    },
    /// 429, with the policy that was hit.
    #[error("HTTP 429 {policy}: {message}")]
    RateLimited {
        /// `TEN_SECONDLY_ROLLING`, `SECONDLY`, `DAILY`, …
        policy: String,
        /// HubSpot's message.
        message: String,
        /// The window length HubSpot reports, in milliseconds.
        interval_ms: Option<i64>,
    },
    /// Any other non-2xx answer.
    #[error("HTTP {status}{}: {message}", category.as_deref().map(|c| format!(" {c}")).unwrap_or_default())]
    Api {
        /// The status.
        status: u16,
        /// HubSpot's `category` (`VALIDATION_ERROR`, `INVALID_AUTHENTICATION`, …).
        category: Option<String>,
        /// HubSpot's message.
        message: String,
        /// A `Retry-After`, if sent.
        retry_after: Option<chrono::DateTime<Utc>>,
    },
}

impl HubSpotError {
    /// Reads a non-2xx reply.
    pub fn from_reply(reply: &Reply) -> Self {
        let body = reply.json();
        let text = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_owned);
        let message = text("message").unwrap_or_else(|| reply.excerpt(300));
        match reply.status.as_u16() {
            404 => Self::NotFound { message },
            409 => Self::Conflict {
                existing_id: existing_id(&message),
                message,
            },
            429 => Self::RateLimited {
                policy: text("policyName").unwrap_or_else(|| "RATE_LIMIT".to_owned()),
                message,
                interval_ms: reply
                    .headers
                    .get("x-hubspot-ratelimit-interval-milliseconds")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok()),
            },
            status => Self::Api {
                status,
                category: text("category"),
                message,
                retry_after: reply.retry_after(),
            },
        }
    }

    /// Whether this is a 429 of the `DAILY` policy (HubSpot says when it resets).
    pub fn is_daily(&self) -> bool {
        matches!(self, Self::RateLimited { policy, .. } if policy == "DAILY")
    }

    /// The queue's class of this error: 5xx and 408 retryable; 429 rate-limited until
    /// its window passes (a `DAILY` limit is resolved by the caller, which can ask
    /// HubSpot when it resets); everything else permanent.
    pub fn into_delivery(self) -> DeliveryError {
        let text = self.to_string();
        match self {
            Self::Delivery(e) => e,
            Self::RateLimited {
                policy,
                interval_ms,
                ..
            } => {
                let wait_ms = match policy.as_str() {
                    "SECONDLY" => 1_000,
                    "DAILY" => 3_600_000,
                    _ => interval_ms.unwrap_or(10_000).clamp(1_000, 60_000),
                };
                DeliveryError::rate_limited(
                    text,
                    time::from_now(std::time::Duration::from_millis(wait_ms.unsigned_abs())),
                )
            }
            Self::Api {
                status,
                retry_after,
                ..
            } if status == 408 || status >= 500 => DeliveryError::retry_after(text, retry_after),
            Self::NotFound { .. } | Self::Conflict { .. } | Self::Api { .. } => {
                DeliveryError::permanent(text)
            }
        }
    }
}

impl From<HubSpotError> for DeliveryError {
    fn from(e: HubSpotError) -> Self {
        e.into_delivery()
    }
}

/// The id in HubSpot's "… Existing ID: 37765128953".
pub fn existing_id(message: &str) -> Option<String> {
    let (_, rest) = message.split_once("Existing ID: ")?;
    let id: String = rest.chars().take_while(char::is_ascii_digit).collect();
    (!id.is_empty()).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_existing_id() {
        assert_eq!(
            existing_id("Contact already exists. Existing ID: 37765128953").as_deref(),
            Some("37765128953")
        );
        assert_eq!(existing_id("Conflict"), None);
    }

    #[test]
    fn classes() {
        let api = |status| HubSpotError::Api {
            status,
            category: Some("X".into()),
            message: "m".into(),
            retry_after: None,
        };
        assert_eq!(api(400).into_delivery().class(), "permanent");
        assert_eq!(api(401).into_delivery().class(), "permanent");
        assert_eq!(api(502).into_delivery().class(), "retryable");
        let limited = HubSpotError::RateLimited {
            policy: "TEN_SECONDLY_ROLLING".into(),
            message: "m".into(),
            interval_ms: Some(10_000),
        };
        match limited.into_delivery() {
            DeliveryError::RateLimited { until, message } => {
                assert!(until > Utc::now() + chrono::TimeDelta::seconds(9));
                assert_eq!(message, "HTTP 429 TEN_SECONDLY_ROLLING: m");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(api(400).to_string(), "HTTP 400 X: m");
    }
}
