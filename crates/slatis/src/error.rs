//! What can go wrong talking to Slatis, classed so a caller can act on it: Slatis's own
//! refusal (HTTP status + its `error.code` and `error.message`), a rate limit with its
//! `Retry-After`, no answer, or an answer that is not what the API documents.
//!
//! Invariant: no variant ever holds the API key (it travels only in a request header,
//! never in a URL or a message).

use std::time::Duration;

/// A failed Slatis API call.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Slatis refused the call: `{"success":false,"error":{"code","message"}}`
    /// (reference §9: 400 `validation_error`, 401 `unauthorized`, 403 `forbidden`,
    /// 404 `not_found`, 413 for a body over 256 KB).
    #[error("Slatis answered {status} {code}: {message}")]
    Api {
        /// The HTTP status.
        status: u16,
        /// Slatis's `error.code` (`""` when the answer had none).
        code: String,
        /// Slatis's `error.message` (or the start of the body when it was not the
        /// documented envelope).
        message: String,
        /// The `X-Request-Id` Slatis echoed, for a support ticket.
        request_id: Option<String>,
    },
    /// 429 `rate_limited`: the key's per-minute budget is spent.
    #[error("Slatis rate limit reached{}", .retry_after.map(|d| format!("; retry after {} s", d.as_secs())).unwrap_or_default())]
    RateLimited {
        /// The `Retry-After` of the answer, when it had a readable one.
        retry_after: Option<Duration>,
    },
    /// No answer: connection refused, TLS failure, timeout.
    #[error("cannot reach Slatis: {0}")]
    Transport(String),
    /// A 2xx whose body is not the documented shape.
    #[error("Slatis answered {status} with a body this client does not understand: {reason}")]
    Decode {
        /// The HTTP status.
        status: u16,
        /// What was wrong with it.
        reason: String,
    },
    /// The base URL cannot carry API paths.
    #[error("{0:?} is not a usable Slatis base URL (expected e.g. https://api.slatis.com)")]
    BaseUrl(String),
}

impl Error {
    /// The HTTP status Slatis answered, for a refusal or a rate limit.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api { status, .. } | Self::Decode { status, .. } => Some(*status),
            Self::RateLimited { .. } => Some(429),
            Self::Transport(_) | Self::BaseUrl(_) => None,
        }
    }

    /// Slatis's `error.code`, for a refusal.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Api { code, .. } => Some(code),
            Self::RateLimited { .. } => Some("rate_limited"),
            _ => None,
        }
    }
}

/// `reqwest`'s error as text: its URL never holds the key, but it is dropped anyway so a
/// base URL with credentials in it (`https://user:pw@…`) cannot leak.
pub(crate) fn transport(e: reqwest::Error) -> Error {
    Error::Transport(e.without_url().to_string())
}
