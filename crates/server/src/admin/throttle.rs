//! Throttling of admin token guesses: failed sign-ins and failed bearer tokens.
//!
//! Invariants:
//! - a client (an IPv4 address, or an IPv6 /64) may fail [`PER_CLIENT`] times per
//!   [`WINDOW`], and all clients together [`GLOBAL`] times; past either, every token
//!   check is refused (429 with `Retry-After`) until the window ends, right or wrong, so
//!   a guess teaches nothing. Live sessions are not affected;
//! - a window starts at its first failure and lasts [`WINDOW`] (fixed, not sliding);
//! - memory is bounded: at most [`MAX_CLIENTS`] clients are tracked (past that, the
//!   global budget still counts every failure).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a window lasts.
pub const WINDOW: Duration = Duration::from_secs(600);
/// Failures one client may make per window.
pub const PER_CLIENT: u32 = 10;
/// Failures all clients together may make per window.
pub const GLOBAL: u32 = 100;
/// Clients tracked at most.
const MAX_CLIENTS: usize = 10_000;

#[derive(Clone, Copy)]
struct Window {
    start: Instant,
    failures: u32,
}

impl Window {
    fn new(now: Instant) -> Self {
        Self {
            start: now,
            failures: 0,
        }
    }

    fn over(&self, now: Instant) -> bool {
        now.duration_since(self.start) >= WINDOW
    }

    /// How long until it reopens, if `limit` failures used it up.
    fn closed_for(&self, now: Instant, limit: u32) -> Option<Duration> {
        (self.failures >= limit && !self.over(now))
            .then(|| WINDOW.saturating_sub(now.duration_since(self.start)))
    }

    fn fail(&mut self, now: Instant) {
        if self.failures == 0 || self.over(now) {
            *self = Self::new(now);
        }
        self.failures = self.failures.saturating_add(1);
    }
}

/// Who a failure is counted against: an IPv4 address or an IPv6 /64 (one host's share),
/// or `None` when the listener does not know the peer.
fn client(ip: Option<IpAddr>) -> Option<IpAddr> {
    ip.map(|ip| match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let mut o = v6.octets();
            o[8..].fill(0);
            IpAddr::from(o)
        }
        v4 => v4,
    })
}

struct State {
    clients: HashMap<Option<IpAddr>, Window>,
    global: Window,
}

/// The failed-attempt counters of one admin listener.
pub struct Throttle {
    state: Mutex<State>,
}

impl Default for Throttle {
    fn default() -> Self {
        Self {
            state: Mutex::new(State {
                clients: HashMap::new(),
                global: Window::new(Instant::now()),
            }),
        }
    }
}

impl Throttle {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `Err(wait)` when `ip` (or everyone) may not try a token now.
    pub fn check(&self, ip: Option<IpAddr>) -> Result<(), Duration> {
        let now = Instant::now();
        let state = self.state();
        let mine = state
            .clients
            .get(&client(ip))
            .and_then(|w| w.closed_for(now, PER_CLIENT));
        match mine.or_else(|| state.global.closed_for(now, GLOBAL)) {
            Some(wait) => Err(wait),
            None => Ok(()),
        }
    }

    /// Counts a wrong token from `ip`.
    pub fn failed(&self, ip: Option<IpAddr>) {
        let now = Instant::now();
        let mut state = self.state();
        state.global.fail(now);
        let key = client(ip);
        if !state.clients.contains_key(&key) && state.clients.len() >= MAX_CLIENTS {
            state.clients.retain(|_, w| !w.over(now));
        }
        if state.clients.contains_key(&key) || state.clients.len() < MAX_CLIENTS {
            state
                .clients
                .entry(key)
                .or_insert_with(|| Window::new(now))
                .fail(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().expect("ip"))
    }

    #[test]
    fn a_client_is_stopped_after_its_failures_and_others_are_not() {
        let t = Throttle::default();
        for _ in 0..PER_CLIENT {
            assert!(t.check(ip("192.0.2.1")).is_ok());
            t.failed(ip("192.0.2.1"));
        }
        let wait = t.check(ip("192.0.2.1")).expect_err("throttled");
        assert!(
            wait > WINDOW - Duration::from_secs(5) && wait <= WINDOW,
            "{wait:?}"
        );
        assert!(t.check(ip("192.0.2.2")).is_ok(), "another client");
        assert!(
            t.check(ip("::ffff:192.0.2.1")).is_err(),
            "the same client written as IPv6"
        );
    }

    #[test]
    fn an_ipv6_64_is_one_client() {
        let t = Throttle::default();
        for i in 0..PER_CLIENT {
            t.failed(ip(&format!("2001:db8::{i:x}")));
        }
        assert!(t.check(ip("2001:db8::ffff")).is_err());
        assert!(t.check(ip("2001:db8:0:1::1")).is_ok());
    }

    #[test]
    fn all_clients_share_a_global_budget() {
        let t = Throttle::default();
        for i in 0..GLOBAL {
            t.failed(ip(&format!("198.51.100.{}", i % 200)));
        }
        assert!(t.check(ip("203.0.113.9")).is_err(), "everyone waits");
        assert!(t.check(None).is_err());
    }
}
