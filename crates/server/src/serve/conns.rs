//! The connections a listener serves, and which of them may be closed to make room.
//!
//! Invariants:
//! - at most `cap` connections are admitted (not counting ones already told to close);
//! - only a connection that is not inside a request (waiting for complete headers, or
//!   kept alive between requests) is ever closed to make room, the one idle the longest
//!   first; a request that has begun is never cut off by an eviction;
//! - "inside a request" lasts from the call of the service (headers in) until its answer
//!   body has been written and dropped, so an answer is never cut off either.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Every connection a listener holds.
pub(super) struct Conns {
    cap: usize,
    live: Mutex<Live>,
}

#[derive(Default)]
struct Live {
    next_id: u64,
    by_id: HashMap<u64, Arc<ConnState>>,
}

impl Conns {
    /// Room for `cap` connections (at least one).
    pub(super) fn new(cap: usize) -> Arc<Self> {
        Arc::new(Self {
            cap: cap.max(1),
            live: Mutex::new(Live::default()),
        })
    }

    /// A slot for a new connection: at the cap, the connection idle the longest is told
    /// to close to make room. `None` when every connection is inside a request.
    pub(super) fn admit(self: &Arc<Self>) -> Option<Slot> {
        let mut live = lock(&self.live);
        while live.by_id.len() >= self.cap {
            let (_, id) = live
                .by_id
                .iter()
                .filter_map(|(id, c)| c.idle_since().map(|since| (since, *id)))
                .min()?;
            // It may have begun a request since it was looked at: then it stays, and
            // the loop looks again (it is not idle any more).
            if live.by_id.get(&id).is_some_and(|c| c.close_if_idle()) {
                live.by_id.remove(&id);
            }
        }
        let id = live.next_id;
        live.next_id += 1;
        let state = Arc::new(ConnState::new());
        live.by_id.insert(id, Arc::clone(&state));
        Some(Slot {
            id,
            state,
            conns: Arc::clone(self),
        })
    }

    /// How many connections are admitted now.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        lock(&self.live).by_id.len()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One admitted connection; dropping it gives its room back.
pub(super) struct Slot {
    id: u64,
    state: Arc<ConnState>,
    conns: Arc<Conns>,
}

impl Slot {
    /// The connection's state, shared with its requests.
    pub(super) fn state(&self) -> &Arc<ConnState> {
        &self.state
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        lock(&self.conns.live).by_id.remove(&self.id);
    }
}

/// Whether a connection is inside a request, and whether it was told to close.
pub(super) struct ConnState {
    phase: Mutex<Phase>,
    closed: CancellationToken,
}

struct Phase {
    requests: u32,
    closing: bool,
    idle_since: Instant,
}

impl ConnState {
    fn new() -> Self {
        Self {
            phase: Mutex::new(Phase {
                requests: 0,
                closing: false,
                idle_since: Instant::now(),
            }),
            closed: CancellationToken::new(),
        }
    }

    /// When it became idle; `None` while inside a request or closing.
    fn idle_since(&self) -> Option<Instant> {
        let p = lock(&self.phase);
        (p.requests == 0 && !p.closing).then_some(p.idle_since)
    }

    /// How long it has been idle; `None` while inside a request or closing.
    pub(super) fn idle_for(&self) -> Option<Duration> {
        self.idle_since().map(|t| t.elapsed())
    }

    /// Marks it closing if it is idle; returns whether it did (its task then drops it).
    pub(super) fn close_if_idle(&self) -> bool {
        let mut p = lock(&self.phase);
        if p.requests > 0 || p.closing {
            return false;
        }
        p.closing = true;
        self.closed.cancel();
        true
    }

    /// Resolves once it was told to close while idle.
    pub(super) async fn closed(&self) {
        self.closed.cancelled().await;
    }

    /// A request begins (its headers are in); `None` if the connection is closing, and the
    /// request must be answered at once.
    pub(super) fn begin(self: &Arc<Self>) -> Option<InRequest> {
        let mut p = lock(&self.phase);
        if p.closing {
            return None;
        }
        p.requests += 1;
        Some(InRequest(Arc::clone(self)))
    }
}

/// Held from a request's start until its answer is written; the connection is idle again
/// when the last one is dropped.
pub(super) struct InRequest(Arc<ConnState>);

impl Drop for InRequest {
    fn drop(&mut self) {
        let mut p = lock(&self.0.phase);
        p.requests = p.requests.saturating_sub(1);
        if p.requests == 0 {
            p.idle_since = Instant::now();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_the_cap_the_longest_idle_connection_makes_room() {
        let conns = Conns::new(2);
        let first = conns.admit().expect("room");
        std::thread::sleep(Duration::from_millis(2));
        let second = conns.admit().expect("room");
        let third = conns.admit().expect("the first one was idle");
        assert!(
            first.state().closed.is_cancelled(),
            "the oldest idle one goes"
        );
        assert!(!second.state().closed.is_cancelled());
        assert!(
            first.state().begin().is_none(),
            "a closed one takes no request"
        );
        drop(first);
        assert_eq!(conns.len(), 2);
        drop((second, third));
        assert_eq!(conns.len(), 0);
    }

    #[test]
    fn a_connection_inside_a_request_is_never_evicted() {
        let conns = Conns::new(1);
        let busy = conns.admit().expect("room");
        let request = busy.state().begin().expect("open");
        assert!(conns.admit().is_none(), "full, and nothing idle");
        assert!(!busy.state().closed.is_cancelled());
        drop(request);
        assert!(
            conns.admit().is_some(),
            "idle again once its answer is done"
        );
        assert!(busy.state().closed.is_cancelled());
    }

    #[test]
    fn a_kept_alive_connection_is_idle_from_its_last_answer() {
        let conns = Conns::new(2);
        let a = conns.admit().expect("room");
        let b = conns.admit().expect("room");
        // `a` is older, but it served a request after `b` went idle
        std::thread::sleep(Duration::from_millis(2));
        drop(a.state().begin());
        let _c = conns.admit().expect("b was idle the longest");
        assert!(b.state().closed.is_cancelled());
        assert!(!a.state().closed.is_cancelled());
    }
}
