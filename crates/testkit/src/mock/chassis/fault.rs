//! How a mock misbehaves on request: the [`Fault`]s shared by every mock destination, the
//! queue each mock keeps of them ([`FaultQueue`]), and the one way a fault becomes the
//! answer ([`FaultQueue::answer`]).
//!
//! Invariants: each request that reaches the point where the mock would answer takes the
//! next queued fault, in arrival order (in chaos mode, when none is queued, maybe a random
//! one); a fault that answers a status ([`Fault::Status`], [`Fault::Headers`]) leaves the
//! call unapplied; every other fault applies the call first, so its change is made even
//! when the answer is late, lost ([`Fault::Drop`]: "apply, then lose the answer") or never
//! ends.

use super::reply::{After, Reply};
use std::collections::VecDeque;
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
}

/// The faults a mock will answer with, and, in chaos mode, the ones it picks at random.
#[derive(Debug, Default)]
pub struct FaultQueue {
    queued: VecDeque<Fault>,
    /// Chaos mode: the share of requests that misbehave, and how.
    chaos: Option<(f64, Vec<Fault>)>,
}

impl FaultQueue {
    /// Queues `fault` for the next `n` requests (after any already queued).
    pub fn push(&mut self, n: usize, fault: &Fault) {
        self.queued.extend(std::iter::repeat_n(fault, n).cloned());
    }

    /// Chaos mode: each request that has no queued fault misbehaves with probability
    /// `rate` (clamped to 0 to 1), with one of `faults` picked at random.
    pub fn chaos(&mut self, rate: f64, faults: Vec<Fault>) {
        self.chaos = Some((rate.clamp(0.0, 1.0), faults));
    }

    /// The fault for the next request: the queued one, else maybe a random one.
    fn next(&mut self) -> Option<Fault> {
        self.queued.pop_front().or_else(|| {
            let (rate, faults) = self.chaos.as_ref()?;
            if faults.is_empty() || !rand::random_bool(*rate) {
                return None;
            }
            faults.get(rand::random_range(0..faults.len())).cloned()
        })
    }

    /// The answer to a call that reached the point where the mock answers, and how to
    /// deliver it: takes the next fault; `error(status)` is the mock's own error answer
    /// for a status; `apply` makes the call and answers it, with what the mock learnt
    /// doing so (`T::default()` when the call is not applied).
    pub fn answer<T: Default>(
        &mut self,
        error: impl FnOnce(u16) -> Reply,
        apply: impl FnOnce() -> (Reply, T),
    ) -> (Reply, After, T) {
        let after = match self.next() {
            Some(Fault::Status {
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
                return (reply, After::Answer, T::default());
            }
            Some(Fault::Headers { status, headers }) => {
                let mut reply = error(status);
                reply
                    .headers
                    .retain(|(n, _)| !headers.iter().any(|(h, _)| h == n));
                reply.headers.extend(headers);
                return (reply, After::Answer, T::default());
            }
            Some(Fault::Slow(d)) => After::Slow(d),
            Some(Fault::Drop) => After::Drop,
            Some(Fault::Endless) => After::Endless,
            Some(Fault::Drip(every)) => After::Drip(every),
            None => After::Answer,
        };
        let (reply, learnt) = apply();
        (reply, after, learnt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Answers one call with the next fault: (status, delivery, whether it was applied).
    fn answer(queue: &mut FaultQueue) -> (u16, After, bool) {
        let (reply, after, applied) = queue.answer(Reply::empty, || (Reply::empty(200), true));
        (reply.status, after, applied)
    }

    #[test]
    fn a_status_skips_the_call_and_anything_else_applies_it() {
        let mut queue = FaultQueue::default();
        queue.push(
            1,
            &Fault::Status {
                status: 503,
                retry_after: Some(7),
                body: String::new(),
            },
        );
        queue.push(2, &Fault::Drop);
        queue.push(1, &Fault::header(429, "retry-after", "soon"));
        let (reply, after, applied) = queue.answer(Reply::empty, || (Reply::empty(200), true));
        assert_eq!(reply.status, 503);
        assert_eq!(reply.headers, vec![("retry-after", "7".to_owned())]);
        assert!(matches!(after, After::Answer) && !applied);
        for _ in 0..2 {
            let (status, after, applied) = answer(&mut queue);
            assert!(status == 200 && matches!(after, After::Drop) && applied);
        }
        let (reply, _, applied) = queue.answer(
            |status| {
                let mut own = Reply::empty(status);
                own.headers.push(("retry-after", "1".to_owned()));
                own
            },
            || (Reply::empty(200), true),
        );
        assert_eq!(reply.headers, vec![("retry-after", "soon".to_owned())]);
        assert!(!applied);
        let (status, after, applied) = answer(&mut queue);
        assert!(status == 200 && matches!(after, After::Answer) && applied);
    }

    #[test]
    fn chaos_picks_a_fault_only_when_none_is_queued() {
        let mut queue = FaultQueue::default();
        queue.chaos(7.0, vec![Fault::Slow(Duration::from_millis(1))]);
        queue.push(1, &Fault::Drop);
        assert!(matches!(answer(&mut queue).1, After::Drop));
        assert!(
            matches!(answer(&mut queue).1, After::Slow(_)),
            "rate clamped to 1"
        );
        queue.chaos(0.0, vec![Fault::Drop]);
        assert!(matches!(answer(&mut queue).1, After::Answer));
    }
}
