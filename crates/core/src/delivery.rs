//! How a delivery failed, in the three classes the queue acts on.
//!
//! Invariant: every failure of a step is exactly one of [`DeliveryError::Retryable`],
//! [`DeliveryError::RateLimited`] or [`DeliveryError::Permanent`], and its message is
//! safe to store and show (it never holds a secret: callers build it from status codes,
//! CRM error texts and config paths, never from request headers).

use chrono::{DateTime, Utc};
use std::fmt;

/// A failed step, classed for the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryError {
    /// A transient failure (timeout, connection error, 408, 5xx, lock contention):
    /// retried with backoff, never before `not_before` when the CRM named a time.
    Retryable {
        /// What went wrong, for the attempt log and the dead letter.
        message: String,
        /// The earliest time a retry may run (a `Retry-After`), if the CRM gave one; the
        /// queue caps it at `delivery.retry.max_backoff` from now.
        not_before: Option<DateTime<Utc>>,
    },
    /// The CRM's rate limit was hit: the job (and its connector instance) waits until
    /// `until` (at most `delivery.retry.max_backoff`). Counts towards
    /// `delivery.retry.max_rate_limited`, not `max_attempts`.
    RateLimited {
        /// What the CRM said.
        message: String,
        /// When the limit resets.
        until: DateTime<Utc>,
    },
    /// Retrying cannot help (validation error, bad template, 4xx): dead-lettered at once.
    Permanent {
        /// What went wrong, with the CRM's own message where it gave one.
        message: String,
    },
}

impl DeliveryError {
    /// A transient failure with no time constraint.
    pub fn retryable(message: impl Into<String>) -> Self {
        Self::Retryable {
            message: message.into(),
            not_before: None,
        }
    }

    /// A transient failure that must not be retried before `not_before`.
    pub fn retry_after(message: impl Into<String>, not_before: Option<DateTime<Utc>>) -> Self {
        Self::Retryable {
            message: message.into(),
            not_before,
        }
    }

    /// A rate-limit failure that resets at `until`.
    pub fn rate_limited(message: impl Into<String>, until: DateTime<Utc>) -> Self {
        Self::RateLimited {
            message: message.into(),
            until,
        }
    }

    /// A failure that no retry can fix.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self::Permanent {
            message: message.into(),
        }
    }

    /// The human-readable message.
    pub fn message(&self) -> &str {
        match self {
            Self::Retryable { message, .. }
            | Self::RateLimited { message, .. }
            | Self::Permanent { message } => message,
        }
    }

    /// The class name used in logs, metrics and the attempt log: `retryable`,
    /// `rate_limited` or `permanent`.
    pub fn class(&self) -> &'static str {
        match self {
            Self::Retryable { .. } => "retryable",
            Self::RateLimited { .. } => "rate_limited",
            Self::Permanent { .. } => "permanent",
        }
    }

    /// The same error with `context: ` put before its message (e.g. the step's place).
    #[must_use]
    pub fn context(self, context: impl fmt::Display) -> Self {
        match self {
            Self::Retryable {
                message,
                not_before,
            } => Self::Retryable {
                message: format!("{context}: {message}"),
                not_before,
            },
            Self::RateLimited { message, until } => Self::RateLimited {
                message: format!("{context}: {message}"),
                until,
            },
            Self::Permanent { message } => Self::Permanent {
                message: format!("{context}: {message}"),
            },
        }
    }
}

impl fmt::Display for DeliveryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message(), self.class())
    }
}

impl std::error::Error for DeliveryError {}
