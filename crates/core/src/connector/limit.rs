//! Rate limits: [`RateLimit`] (`rate_limit: {requests, per}`) and the rolling-window
//! [`Limiter`] every request of a connector instance waits for.
//!
//! Invariants: no rolling window of length `per` ever holds more than `requests` sends
//! (with a margin for the jitter between our send and the CRM's count); slots are handed
//! out in order, so a wait never lets a later request overtake an earlier one; several
//! limiters are taken at one instant ([`Limiter::acquire_all`]). Windows shared by
//! replicas ([`SharedWindows`]) follow the same rule ([`RateLimit::earliest`]).

use crate::delivery::DeliveryError;
use async_trait::async_trait;
use serde::Deserialize;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// At most `requests` per rolling `per` window (`rate_limit: {requests: 100, per: 10s}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// How many requests a window allows.
    #[serde(deserialize_with = "crate::config::lenient::int")]
    pub requests: u32,
    /// The window's length.
    #[serde(with = "crate::config::duration")]
    pub per: Duration,
}

impl RateLimit {
    /// `requests` per `per`.
    pub const fn new(requests: u32, per: Duration) -> Self {
        Self { requests, per }
    }

    /// How many past sends decide the next slot (the last `requests`).
    pub fn depth(self) -> usize {
        self.requests.max(1) as usize
    }

    /// The earliest send slot at or after `now`, given the latest slot already taken
    /// (`last`) and the one `requests` slots back (`nth_back`, once that many were
    /// taken): slots stay in order (a slot is never handed out before one already
    /// promised), and no window of `per` ever holds more than `requests` sends. The one
    /// rule for every limiter, in process ([`Limiter`]) or shared ([`SharedWindows`]).
    pub fn earliest<T>(self, now: T, last: Option<T>, nth_back: Option<T>) -> T
    where
        T: Ord + Copy + std::ops::Add<Duration, Output = T>,
    {
        // A margin so that the jitter between our send and the CRM's count (scheduling, a
        // new connection) never tips a window over: 2% of the window, at least 100 ms.
        let window = self.per + (self.per / 50).max(Duration::from_millis(100));
        let at = last.map_or(now, |last| now.max(last));
        nth_back.map_or(at, |first| at.max(first + window))
    }
}

/// Rate windows kept where every replica sees them (the shared database), so that all the
/// replicas' sends to one CRM instance count against one budget. Windows are named by
/// key (tenant, instance, which limit).
#[async_trait]
pub trait SharedWindows: Send + Sync {
    /// Takes one send slot in every window of `windows` at the earliest instant they all
    /// allow ([`RateLimit::earliest`]), and returns how long from now that instant is.
    ///
    /// # Errors
    /// A retryable error when the windows' storage is unavailable.
    async fn reserve(&self, windows: &[(String, RateLimit)]) -> Result<Duration, DeliveryError>;
}

/// A rolling-window limiter: no window of length `per` ever holds more than `requests`
/// sends. Unlike a token bucket (GCRA), it never lets a burst plus the refill exceed what
/// a CRM's rolling window counts, and still sustains the full rate.
#[derive(Debug)]
pub struct Limiter {
    limit: RateLimit,
    /// The last `requests` reserved send times, oldest first.
    slots: Mutex<VecDeque<Instant>>,
}

impl Limiter {
    /// A limiter for `limit`.
    pub fn new(limit: RateLimit) -> Self {
        // The slots grow with use: a large allowance (Salesforce's 100,000 a day) costs
        // memory only as it is spent.
        Self {
            limit,
            slots: Mutex::new(VecDeque::new()),
        }
    }

    /// The limit it keeps.
    pub fn limit(&self) -> RateLimit {
        self.limit
    }

    /// The limiter a reloaded instance with `limit` uses in place of `old`: `old` itself
    /// when the limit is the same (old and new jobs share one window), else a new one
    /// whose window already holds the sends `old` reserved.
    pub fn carry_over(old: &Arc<Self>, limit: RateLimit) -> Arc<Self> {
        if old.limit == limit {
            return Arc::clone(old);
        }
        let mut slots = old
            .slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        while slots.len() > limit.depth() {
            slots.pop_front();
        }
        Arc::new(Self {
            limit,
            slots: Mutex::new(slots),
        })
    }

    /// Waits until a send is allowed, and takes that slot.
    pub async fn acquire(&self) {
        Self::acquire_all(&[self]).await;
    }

    /// Waits until a send is allowed by every limiter at once, and takes that one slot in
    /// each (e.g. HubSpot's search limit and its general limit). Taking them one after the
    /// other would not do: a wait at the second would bunch sends the first had spread.
    pub async fn acquire_all(limiters: &[&Self]) {
        let at = Self::reserve(limiters, Instant::now());
        tokio::time::sleep_until(at).await;
    }

    fn reserve(limiters: &[&Self], now: Instant) -> Instant {
        let mut guards: Vec<_> = limiters
            .iter()
            .map(|l| {
                l.slots
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
            })
            .collect();
        let at = limiters
            .iter()
            .zip(&guards)
            .map(|(l, slots)| l.earliest(slots, now))
            .max()
            .unwrap_or(now);
        for (l, slots) in limiters.iter().zip(guards.iter_mut()) {
            slots.push_back(at);
            while slots.len() > l.limit.depth() {
                slots.pop_front();
            }
        }
        at
    }

    fn earliest(&self, slots: &VecDeque<Instant>, now: Instant) -> Instant {
        let n = self.limit.depth();
        let nth_back = (slots.len() >= n).then(|| slots[slots.len() - n]);
        self.limit.earliest(now, slots.back().copied(), nth_back)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_earliest_slot_keeps_order_and_the_window() {
        let limit = RateLimit::new(3, Duration::from_secs(10));
        let base = Instant::now();
        // Nothing taken: now.
        assert_eq!(limit.earliest(base, None, None), base);
        // A slot promised later than now: after it.
        let later = base + Duration::from_secs(2);
        assert_eq!(limit.earliest(base, Some(later), None), later);
        // The window full: the oldest of the last three plus the window and its margin.
        assert_eq!(
            limit.earliest(base, Some(later), Some(base)),
            base + Duration::from_secs(10) + Duration::from_millis(200)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn two_limits_taken_together_never_bunch() {
        let general = Limiter::new(RateLimit::new(10, Duration::from_secs(1)));
        let search = Limiter::new(RateLimit::new(3, Duration::from_secs(1)));
        let start = Instant::now();
        let mut searches = Vec::new();
        let mut all = Vec::new();
        for i in 0..40 {
            if i % 2 == 0 {
                Limiter::acquire_all(&[&general, &search]).await;
                searches.push(Instant::now() - start);
            } else {
                general.acquire().await;
            }
            all.push(Instant::now() - start);
        }
        for (sent, n) in [(&searches, 3), (&all, 10)] {
            let (in_window, t) = busiest_second(sent);
            assert!(
                in_window <= n,
                "{in_window} sends in the window starting at {t:?} (limit {n})"
            );
        }
    }

    /// The most sends in any one-second window of `sent` (times in order), and where it starts.
    fn busiest_second(sent: &[Duration]) -> (usize, Duration) {
        sent.iter()
            .enumerate()
            .map(|(i, t)| {
                let n = sent[i..]
                    .iter()
                    .filter(|u| **u < *t + Duration::from_secs(1))
                    .count();
                (n, *t)
            })
            .max_by_key(|(n, _)| *n)
            .unwrap_or_default()
    }

    #[tokio::test(start_paused = true)]
    async fn no_rolling_window_holds_more_than_the_limit() {
        let limiter = Limiter::new(RateLimit::new(5, Duration::from_secs(1)));
        let start = Instant::now();
        let mut sent = Vec::new();
        for _ in 0..23 {
            limiter.acquire().await;
            sent.push(Instant::now() - start);
        }
        let (in_window, t) = busiest_second(&sent);
        assert!(
            in_window <= 5,
            "{in_window} sends in the window starting at {t:?}"
        );
        // and it does not go much slower than the limit: 23 sends need 4 full windows (each
        // 1 s plus the 100 ms margin).
        assert!(sent[22] <= Duration::from_millis(4400), "{:?}", sent[22]);
    }
}
