//! A stateful mock HTTP destination for the generic http connector.
//!
//! It records every request it gets, answers 201 `{"id": "<n>"}` to POST and 200
//! `{"id": …}` to anything else, and can be told to misbehave for the next requests
//! ([`Fault`]): answer a status (with `Retry-After`, or any headers), answer slowly, drop
//! the connection mid-answer, or send a body that never ends or drips in — or, in chaos
//! mode ([`MockHttp::chaos`]), misbehave at random.

use super::Fault;
use super::reply::{Reply, bind, spawn};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A request the mock got.
#[derive(Debug, Clone)]
pub struct Received {
    /// The method.
    pub method: String,
    /// The path (with query).
    pub path: String,
    /// The headers (lower-case names).
    pub headers: HashMap<String, String>,
    /// The body.
    pub body: Vec<u8>,
    /// When it arrived.
    pub at: Instant,
    /// The status it was answered with (0: not answered, or the answer did not complete:
    /// dropped, endless or dripped).
    pub status: u16,
}

impl Received {
    /// The body as JSON.
    ///
    /// # Panics
    /// If the body is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

#[derive(Default)]
struct MockState {
    received: Vec<Received>,
    faults: VecDeque<Fault>,
    /// Chaos mode: the share of requests that misbehave, and how.
    chaos: Option<(f64, Vec<Fault>)>,
    next_id: u64,
}

impl MockState {
    /// The fault for the next request: the queued one, else maybe a random one.
    fn next_fault(&mut self) -> Option<Fault> {
        self.faults.pop_front().or_else(|| {
            let (rate, faults) = self.chaos.as_ref()?;
            if faults.is_empty() || !rand::random_bool(*rate) {
                return None;
            }
            faults.get(rand::random_range(0..faults.len())).cloned()
        })
    }
}

/// The running mock.
pub struct MockHttp {
    addr: SocketAddr,
    state: Arc<Mutex<MockState>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for MockHttp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl MockHttp {
    /// Starts the mock on `127.0.0.1:0`.
    ///
    /// # Panics
    /// If no port can be bound.
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(MockState::default()));
        let app = Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&state));
        let (listener, addr) = bind("HTTP").await;
        let task = spawn(listener, app);
        Self { addr, state, task }
    }

    /// The base URL, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MockState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Makes the next `n` requests misbehave with `fault` (after any already queued).
    pub fn fail_next(&self, n: usize, fault: Fault) {
        let mut s = self.lock();
        for _ in 0..n {
            s.faults.push_back(fault.clone());
        }
    }

    /// Chaos mode: from now on, each request that has no queued fault misbehaves with
    /// probability `rate` (0 to 1), with one of `faults` picked at random.
    pub fn chaos(&self, rate: f64, faults: Vec<Fault>) {
        self.lock().chaos = Some((rate.clamp(0.0, 1.0), faults));
    }

    /// Every request so far, in arrival order.
    pub fn received(&self) -> Vec<Received> {
        self.lock().received.clone()
    }

    /// The requests answered 2xx, in arrival order.
    pub fn delivered(&self) -> Vec<Received> {
        self.lock()
            .received
            .iter()
            .filter(|r| (200..300).contains(&r.status))
            .cloned()
            .collect()
    }

    /// Waits until `n` requests were answered 2xx (or `timeout` passes), and returns them.
    pub async fn wait_delivered(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.delivered();
            if got.len() >= n || Instant::now() >= deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn handle(
    State(state): State<Arc<Mutex<MockState>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let lock = || {
        state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    };
    // Recorded on arrival with status 0 ("not answered"); the status is set when the
    // answer is produced, so a request whose client gave up stays unanswered.
    let (fault, id, index) = {
        let mut s = lock();
        s.next_id += 1;
        s.received.push(Received {
            method: method.to_string(),
            path: uri
                .path_and_query()
                .map_or_else(|| uri.path().to_owned(), ToString::to_string),
            headers: headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_owned(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body: body.to_vec(),
            at: Instant::now(),
            status: 0,
        });
        (s.next_fault(), s.next_id, s.received.len() - 1)
    };
    let created = if method == Method::POST { 201 } else { 200 };
    let (reply, after) = Fault::answer(fault, Reply::empty, || {
        Reply::json(created, serde_json::json!({ "id": id.to_string() }))
    });
    let set_status = |status: u16| {
        if let Some(r) = lock().received.get_mut(index) {
            r.status = status;
        }
    };
    after.deliver(reply, set_status).await
}
