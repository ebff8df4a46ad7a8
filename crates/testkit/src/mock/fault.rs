//! How a mock misbehaves on request: the [`Fault`]s shared by every mock destination.
//!
//! A mock keeps a queue of faults (`fail_next`); each request that reaches the point
//! where the mock would answer takes the next one, in arrival order.

use std::time::Duration;

/// A way to misbehave.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer this status, with an optional `Retry-After` (seconds) and body.
    Status {
        /// The status.
        status: u16,
        /// `Retry-After` in seconds.
        retry_after: Option<u64>,
        /// The body.
        body: String,
    },
    /// Answer normally, after this long.
    Slow(Duration),
    /// Start a 200 answer, then drop the connection before the body ends.
    Drop,
}
