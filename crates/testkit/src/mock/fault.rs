//! How a mock misbehaves on request: the [`Fault`]s shared by every mock destination, and
//! the one way each mock turns the next fault into its answer ([`Fault::answer`]).
//!
//! A mock keeps a queue of faults (`fail_next`); each request that reaches the point
//! where the mock would answer takes the next one, in arrival order.

use super::reply::{After, Reply};
use std::time::Duration;

/// A way to misbehave.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer this status, with an optional `Retry-After` (seconds) and body (the mock's
    /// own error body for the status when empty), without applying the call.
    Status {
        /// The status.
        status: u16,
        /// `Retry-After` in seconds.
        retry_after: Option<u64>,
        /// The body.
        body: String,
    },
    /// Answer this status with these headers, each value sent exactly as given (a huge,
    /// past or garbage `Retry-After`, a huge `x-ratelimit-reset`, a `Location` on another
    /// host) in place of the mock's own header of that name, and the mock's own error body
    /// for the status, without applying the call.
    Headers {
        /// The status.
        status: u16,
        /// `(name, value)` pairs; names in lower case.
        headers: Vec<(&'static str, String)>,
    },
    /// Answer normally, after this long.
    Slow(Duration),
    /// Start a 200 answer, then drop the connection before the body ends (a reset
    /// mid-answer).
    Drop,
    /// Apply the call, then answer with a body that never ends.
    Endless,
    /// Apply the call, then send the answer's body one byte at a time, a byte every this
    /// long (a slow drip).
    Drip(Duration),
}

impl Fault {
    /// Answer `status` with one header set to `value` exactly as given.
    pub fn header(status: u16, name: &'static str, value: impl Into<String>) -> Self {
        Self::Headers {
            status,
            headers: vec![(name, value.into())],
        }
    }

    /// A `302 Found` to `location`.
    pub fn redirect(location: impl Into<String>) -> Self {
        Self::header(302, "location", location)
    }

    /// The answer a mock gives a call that took `fault` (`None`: no fault queued), and how
    /// to deliver it: `error(status)` is the mock's own error answer for a status, `apply`
    /// makes the call and answers it.
    pub(super) fn answer(
        fault: Option<Self>,
        error: impl FnOnce(u16) -> Reply,
        apply: impl FnOnce() -> Reply,
    ) -> (Reply, After) {
        match fault {
            Some(Self::Status {
                status,
                retry_after,
                body,
            }) => {
                let mut reply = if body.is_empty() {
                    error(status)
                } else {
                    Reply::raw(status, body)
                };
                if let Some(seconds) = retry_after {
                    reply.headers.push(("retry-after", seconds.to_string()));
                }
                (reply, After::Answer)
            }
            Some(Self::Headers { status, headers }) => {
                let mut reply = error(status);
                reply
                    .headers
                    .retain(|(n, _)| !headers.iter().any(|(h, _)| h == n));
                reply.headers.extend(headers);
                (reply, After::Answer)
            }
            Some(Self::Slow(d)) => (apply(), After::Slow(d)),
            Some(Self::Drop) => (apply(), After::Drop),
            Some(Self::Endless) => (apply(), After::Endless),
            Some(Self::Drip(every)) => (apply(), After::Drip(every)),
            None => (apply(), After::Answer),
        }
    }
}
