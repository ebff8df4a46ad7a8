//! Salesforce's answers, read into what the connector acts on and then classed.
//!
//! Salesforce's error body is a JSON array of `{message, errorCode, fields}`.
//! Invariant: every message kept for a dead letter carries Salesforce's `errorCode` and
//! `message`, never a token.

use chrono::Utc;
use serde_json::Value;
use slatis_core::connector::Reply;
use slatis_core::{DeliveryError, time};

/// A failed Salesforce call.
#[derive(Debug, thiserror::Error)]
pub enum SalesforceError {
    /// No answer, or classed already (timeouts, resets, token endpoint failures).
    #[error(transparent)]
    Delivery(#[from] DeliveryError),
    /// 404: no such record (or it was deleted).
    #[error("HTTP 404 {code}: {message}")]
    NotFound {
        /// `NOT_FOUND` or `ENTITY_IS_DELETED`.
        code: String,
        /// Salesforce's message.
        message: String,
    },
    /// 300: an external id matched several records.
    #[error("HTTP 300: several records have this external id ({0})")]
    Several(String),
    /// Any other failure, with Salesforce's first error.
    #[error("HTTP {status} {code}: {message}")]
    Api {
        /// The status.
        status: u16,
        /// `errorCode` (`REQUIRED_FIELD_MISSING`, `INVALID_FIELD`, …).
        code: String,
        /// `message`, with the `fields` it names.
        message: String,
        /// For `DUPLICATES_DETECTED`: the record Salesforce says already exists.
        duplicate_of: Option<String>,
        /// A `Retry-After`, if sent.
        retry_after: Option<chrono::DateTime<Utc>>,
    },
}

impl SalesforceError {
    /// Reads a failed reply.
    pub fn from_reply(reply: &Reply) -> Self {
        let body = reply.json();
        let status = reply.status.as_u16();
        if status == 300 {
            let urls: Vec<String> = body
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect();
            return Self::Several(urls.join(", "));
        }
        let first = body.as_array().and_then(|a| a.first()).unwrap_or(&body);
        let text = |k: &str| first.get(k).and_then(Value::as_str).map(str::to_owned);
        let code = text("errorCode")
            .or_else(|| text("error"))
            .unwrap_or_else(|| "UNKNOWN".to_owned());
        let mut message = text("message")
            .or_else(|| text("error_description"))
            .unwrap_or_else(|| reply.excerpt(300));
        if let Some(fields) = first
            .get("fields")
            .and_then(Value::as_array)
            .filter(|f| !f.is_empty())
        {
            let names: Vec<&str> = fields.iter().filter_map(Value::as_str).collect();
            if !names.iter().all(|n| message.contains(n)) {
                message = format!("{message} (fields: {})", names.join(", "));
            }
        }
        if status == 404 {
            return Self::NotFound { code, message };
        }
        let duplicate_of = first
            .pointer("/duplicateResult/matchResults/0/matchRecords/0/record/Id")
            .and_then(Value::as_str)
            .map(str::to_owned);
        Self::Api {
            status,
            code,
            message,
            duplicate_of,
            retry_after: reply.retry_after(),
        }
    }

    /// Whether this is Salesforce saying the session is no longer valid.
    pub fn invalid_session(&self) -> bool {
        matches!(self, Self::Api { status: 401, .. })
    }

    /// The queue's class: `UNABLE_TO_LOCK_ROW`, 408 and 5xx retryable;
    /// `REQUEST_LIMIT_EXCEEDED` rate-limited for an hour (the org's allocation is a rolling
    /// 24 hours: hammering it only spends what frees up); everything else permanent.
    pub fn into_delivery(self) -> DeliveryError {
        let text = self.to_string();
        match self {
            Self::Delivery(e) => e,
            Self::Api { code, .. } if code == "REQUEST_LIMIT_EXCEEDED" => {
                DeliveryError::rate_limited(
                    format!("{text} (paused for an hour)"),
                    time::in_seconds(3600),
                )
            }
            Self::Api {
                code, retry_after, ..
            } if code == "UNABLE_TO_LOCK_ROW" => DeliveryError::retry_after(text, retry_after),
            Self::Api {
                status,
                retry_after,
                ..
            } if status == 408 || status >= 500 => DeliveryError::retry_after(text, retry_after),
            Self::NotFound { .. } | Self::Several(_) | Self::Api { .. } => {
                DeliveryError::permanent(text)
            }
        }
    }
}

impl From<SalesforceError> for DeliveryError {
    fn from(e: SalesforceError) -> Self {
        e.into_delivery()
    }
}
