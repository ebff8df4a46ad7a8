//! The chassis every mock destination is built on: a server on `127.0.0.1:0`
//! ([`server`]), the request log ([`log`]), the fault queue ([`fault`]), credentials and
//! access tokens ([`auth`]), rate windows and daily budgets ([`limits`]), record ids
//! ([`ids`]), shared value checks ([`values`]), the answer type and its deliveries
//! ([`reply`]) and reading the wire ([`wire`]).
//!
//! A mock is a [`Vendor`]: its state, and the steps the chassis runs for every request in
//! one order ([`Mock`]'s pipeline):
//! 1. the request is recorded on arrival ([`Request`], status 0);
//! 2. [`Vendor::route`]: a token endpoint call goes to [`Vendor::grant`], a path outside
//!    the API is answered at once, an API call goes on;
//! 3. [`Vendor::authenticate`]: refused (401) or the caller's key;
//! 4. [`Vendor::admit`]: the vendor's rate and usage limits (a [`Verdict::Limited`] is
//!    counted in [`Mock::rate_limited`]) and any other gate (an account that is closed);
//!    the headers it gives go on every answer from here;
//! 5. the next [`Fault`] is taken ([`FaultQueue::answer`]): an answered status skips the
//!    call, anything else applies it ([`Vendor::apply`]) and then delivers the answer
//!    late, broken off, endless or dripping;
//! 6. [`Vendor::finish`] adds what every answer carries; the answer's status, and why the
//!    schema refused the call, are recorded.
//!
//! Invariants: a request that is refused before step 5 changes nothing and takes no fault;
//! every request is recorded in arrival order; the server stops when the mock is dropped.

pub mod auth;
pub mod fault;
pub mod ids;
pub mod limits;
pub mod log;
pub mod reply;
pub mod server;
pub mod values;
pub mod wire;

use auth::{AccessTokens, Credentials};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use fault::{Fault, FaultQueue};
use log::{Request, RequestLog};
use reply::{After, Headers, Reply};
use server::{Bound, Server};
use std::fmt::Debug;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// A request as a mock's steps see it.
pub struct Call<'a> {
    /// The method.
    pub method: &'a Method,
    /// The URI.
    pub uri: &'a Uri,
    /// The decoded query pairs.
    pub query: Vec<(String, String)>,
    /// The headers (for what a vendor echoes, e.g. a request id).
    pub headers: &'a HeaderMap,
    /// The credentials it carries.
    pub credentials: &'a Credentials,
    /// The body.
    pub body: &'a [u8],
}

/// Where a request goes once routed.
pub enum Gate<R> {
    /// To the token endpoint ([`Vendor::grant`]): no auth, no limit, no fault.
    Token,
    /// Nowhere: answered at once, as a path outside the API.
    Answer(Reply),
    /// Into the API, as this route.
    Api(R),
}

/// What a vendor's limits say of an authenticated call.
pub enum Verdict {
    /// It goes on.
    Pass,
    /// A rate or usage limit refuses it with this answer.
    Limited(Reply),
    /// Another gate (a closed account) refuses it with this answer.
    Refused(Reply),
}

/// A mock destination: its state and the vendor-specific steps of the chassis' pipeline.
pub trait Vendor: Sized + Send + 'static {
    /// How the mock is set up.
    type Options: Send;
    /// What an API request is for.
    type Route;
    /// Why the mock's schema refused a request, as the request log keeps it.
    type Refusal: Clone + Debug + Send + 'static;
    /// The vendor's name, for panic messages.
    const NAME: &'static str;

    /// The state of a mock set up with `options`, served at `url`.
    fn new(options: Self::Options, url: &str) -> Self;

    /// Where a request goes.
    fn route(&self, call: &Call<'_>) -> Gate<Self::Route>;

    /// Answers the token endpoint, issuing any access token into `tokens`.
    fn grant(&mut self, tokens: &mut AccessTokens, call: &Call<'_>) -> Reply;

    /// The key of the caller of an API request (whose limits it counts against).
    ///
    /// # Errors
    /// The vendor's 401.
    fn authenticate(&self, tokens: &AccessTokens, call: &Call<'_>) -> Result<String, Reply>;

    /// Counts an authenticated call against the limits: whether it goes on, and the
    /// headers its answer carries.
    fn admit(&mut self, caller: &str, route: &Self::Route) -> (Verdict, Headers);

    /// The vendor's own answer for a fault's status.
    fn fault_answer(status: u16) -> Reply;

    /// Applies an API call: the answer, and why the schema refused it, if it did.
    fn apply(&mut self, route: Self::Route, call: &Call<'_>) -> (Reply, Option<Self::Refusal>);

    /// The API version a path names, when the vendor's paths carry one.
    fn api_version(_path: &str) -> Option<String> {
        None
    }

    /// Adds what every answer of the vendor carries, whatever answered it (a request id
    /// echoed); nothing by default.
    fn finish(_call: &Call<'_>, _reply: &mut Reply) {}
}

/// A mock's state: the vendor's, and the chassis' around it.
pub struct Inner<V: Vendor> {
    /// The vendor's state.
    pub vendor: V,
    /// The access tokens its token endpoint issued.
    tokens: AccessTokens,
    log: RequestLog<V::Refusal>,
    faults: FaultQueue,
    rate_limited: usize,
}

impl<V: Vendor> Inner<V> {
    /// Answers a request (steps 2 to 5): the answer, how to deliver it, and why the schema
    /// refused it.
    fn process(&mut self, call: &Call<'_>) -> (Reply, After, Option<V::Refusal>) {
        let route = match self.vendor.route(call) {
            Gate::Token => {
                return (
                    self.vendor.grant(&mut self.tokens, call),
                    After::Answer,
                    None,
                );
            }
            Gate::Answer(reply) => return (reply, After::Answer, None),
            Gate::Api(route) => route,
        };
        let caller = match self.vendor.authenticate(&self.tokens, call) {
            Ok(caller) => caller,
            Err(reply) => return (reply, After::Answer, None),
        };
        let (verdict, headers) = self.vendor.admit(&caller, &route);
        let (mut reply, after, refusal) = match verdict {
            Verdict::Limited(reply) => {
                self.rate_limited += 1;
                (reply, After::Answer, None)
            }
            Verdict::Refused(reply) => (reply, After::Answer, None),
            Verdict::Pass => {
                let vendor = &mut self.vendor;
                self.faults
                    .answer(V::fault_answer, || vendor.apply(route, call))
            }
        };
        reply.add_headers(headers);
        (reply, after, refusal)
    }
}

type Shared<V> = Arc<Mutex<Inner<V>>>;

fn lock<V: Vendor>(state: &Shared<V>) -> MutexGuard<'_, Inner<V>> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A running mock destination (see the vendor's type alias, e.g. `MockHubSpot`).
pub struct Mock<V: Vendor> {
    state: Shared<V>,
    server: Server,
}

impl<V: Vendor> Mock<V> {
    /// Starts the mock on `127.0.0.1:0`, set up with `options`.
    ///
    /// # Panics
    /// If no port can be bound.
    pub async fn start(options: V::Options) -> Self {
        let bound = Bound::new(V::NAME).await;
        let state = Arc::new(Mutex::new(Inner {
            vendor: V::new(options, &bound.url()),
            tokens: AccessTokens::default(),
            log: RequestLog::default(),
            faults: FaultQueue::default(),
            rate_limited: 0,
        }));
        let app = Router::new()
            .fallback(handle::<V>)
            .with_state(Arc::clone(&state));
        let server = bound.serve(app);
        Self { state, server }
    }

    /// The base URL, e.g. `http://127.0.0.1:41234` (the API paths go after it).
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// The mock's state, locked.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner<V>> {
        lock(&self.state)
    }

    /// Makes the next `n` API calls that pass auth and the limits misbehave with `fault`
    /// (after any already queued); the token endpoint takes none.
    pub fn fail_next(&self, n: usize, fault: Fault) {
        self.lock().faults.push(n, &fault);
    }

    /// Chaos mode: from now on, each API call that has no queued fault misbehaves with
    /// probability `rate` (0 to 1), with one of `faults` picked at random.
    pub fn chaos(&self, rate: f64, faults: Vec<Fault>) {
        self.lock().faults.chaos(rate, faults);
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Request<V::Refusal>> {
        self.lock().log.all()
    }

    /// The requests so far that were answered 2xx, in arrival order.
    pub fn delivered(&self) -> Vec<Request<V::Refusal>> {
        self.lock().log.matching(|r| (200..300).contains(&r.status))
    }

    /// How many calls a rate or usage limit refused.
    pub fn rate_limited(&self) -> usize {
        self.lock().rate_limited
    }

    /// How many access tokens the token endpoint granted, all grant types together.
    pub fn tokens_issued(&self) -> usize {
        self.lock().tokens.issued()
    }

    /// How many access tokens were granted for one `grant_type` (`refresh_token`,
    /// `client_credentials`, …).
    pub fn tokens_issued_by(&self, grant_type: &str) -> usize {
        self.lock().tokens.issued_by(grant_type)
    }

    /// Makes every access token issued so far expired (static tokens stay valid).
    pub fn expire_tokens_now(&self) {
        self.lock().tokens.expire_all();
    }

    /// Waits until `cond` holds (checked every 10 ms) or `timeout` passes; whether it held.
    pub async fn wait_until(&self, cond: impl Fn(&Self) -> bool, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if cond(self) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Every request: recorded on arrival with status 0 ("not answered"); the status is set
/// when the answer goes out, so a request whose client gave up stays unanswered.
async fn handle<V: Vendor>(
    State(state): State<Shared<V>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let credentials = Credentials::of(&headers, &uri);
    let (reply, after, index) = {
        let mut s = lock(&state);
        let index = s.log.push(Request::arrived(
            (&method, &uri, &headers),
            &credentials,
            V::api_version(uri.path()),
            &body,
        ));
        let call = Call {
            method: &method,
            uri: &uri,
            query: wire::parse_pairs(uri.query().unwrap_or_default()),
            headers: &headers,
            credentials: &credentials,
            body: &body,
        };
        let (mut reply, after, refusal) = s.process(&call);
        V::finish(&call, &mut reply);
        s.log.refused(index, refusal);
        (reply, after, index)
    };
    after
        .deliver(reply, |status| lock(&state).log.answered(index, status))
        .await
}
