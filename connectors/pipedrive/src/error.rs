//! Pipedrive's answers, read and classed.
//!
//! Pipedrive's error envelope is `{success: false, error, error_info, data, additional_data}`.
//! Invariant: every message kept for a dead letter carries Pipedrive's `error` (and
//! `error_info` when it says more than where the docs are), never a token.

use chrono::{Duration, Utc};
use serde_json::Value;
use slatis_core::DeliveryError;
use slatis_core::connector::Reply;

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
            .and_then(|v| v.trim().parse::<i64>().ok())
            .map(|secs| Utc::now() + Duration::seconds(secs.max(1)));
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
            } => DeliveryError::rate_limited(
                text,
                retry_at.unwrap_or_else(|| Utc::now() + Duration::seconds(2)),
            ),
            Self::Api {
                status, retry_at, ..
            } if status == 408 || status >= 500 => DeliveryError::retry_after(text, retry_at),
            Self::NotFound(_) | Self::Api { .. } => DeliveryError::permanent(text),
        }
    }
}

impl From<PipedriveError> for DeliveryError {
    fn from(e: PipedriveError) -> Self {
        e.into_delivery()
    }
}
