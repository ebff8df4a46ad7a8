//! A stateful mock HTTP destination for the generic http connector, on the mock chassis.
//!
//! It records every request it gets, answers 201 `{"id": "<n>"}` to POST and 200
//! `{"id": …}` to anything else, and can be told to misbehave for the next requests
//! ([`Fault`]): answer a status (with `Retry-After`, or any headers), answer slowly, drop
//! the connection mid-answer, or send a body that never ends or drips in — or, in chaos
//! mode ([`MockHttp::chaos`]), misbehave at random.
//!
//! Invariants: every request is an API call (no auth, no limits), so every request takes
//! the next fault; ids count the calls applied, from 1.

use super::Fault;
use super::chassis::auth::AccessTokens;
use super::chassis::ids::Ids;
use super::chassis::log::Request;
use super::chassis::reply::{Headers, Reply};
use super::chassis::{Call, Gate, Mock, Vendor, Verdict};
use axum::http::Method;
use std::convert::Infallible;
use std::time::Duration;

/// A request the mock got (it refuses none).
pub type Received = Request<Infallible>;

/// The http destination's state: the ids it answers.
pub struct Http {
    ids: Ids,
}

impl Vendor for Http {
    type Options = ();
    /// Whether the call creates (a POST).
    type Route = bool;
    type Refusal = Infallible;
    const NAME: &'static str = "HTTP";

    fn new((): (), _url: &str) -> Self {
        Self {
            ids: Ids::starting_at(1),
        }
    }

    fn route(&self, call: &Call<'_>) -> Gate<bool> {
        Gate::Api(call.method == Method::POST)
    }

    fn grant(&mut self, _tokens: &mut AccessTokens, _call: &Call<'_>) -> Reply {
        Reply::empty(404)
    }

    fn authenticate(&self, _tokens: &AccessTokens, _call: &Call<'_>) -> Result<String, Reply> {
        Ok(String::new())
    }

    fn admit(&mut self, _caller: &str, _route: &bool) -> (Verdict, Headers) {
        (Verdict::Pass, Headers::new())
    }

    fn fault_answer(status: u16) -> Reply {
        Reply::empty(status)
    }

    fn apply(&mut self, creates: bool, _call: &Call<'_>) -> (Reply, Option<Infallible>) {
        let status = if creates { 201 } else { 200 };
        let id = self.ids.take().to_string();
        (Reply::json(status, serde_json::json!({ "id": id })), None)
    }
}

/// The running mock.
pub struct MockHttp(Mock<Http>);

impl MockHttp {
    /// Starts the mock on `127.0.0.1:0`.
    ///
    /// # Panics
    /// If no port can be bound.
    pub async fn start() -> Self {
        Self(Mock::start(()).await)
    }

    /// The base URL, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> String {
        self.0.url()
    }

    /// Makes the next `n` requests misbehave with `fault` (after any already queued).
    pub fn fail_next(&self, n: usize, fault: Fault) {
        self.0.fail_next(n, fault);
    }

    /// Chaos mode: from now on, each request that has no queued fault misbehaves with
    /// probability `rate` (0 to 1), with one of `faults` picked at random.
    pub fn chaos(&self, rate: f64, faults: Vec<Fault>) {
        self.0.chaos(rate, faults);
    }

    /// Every request so far, in arrival order.
    pub fn received(&self) -> Vec<Received> {
        self.0.requests()
    }

    /// The requests answered 2xx, in arrival order.
    pub fn delivered(&self) -> Vec<Received> {
        self.0.delivered()
    }

    /// Waits until `n` requests were answered 2xx (or `timeout` passes), and returns them.
    pub async fn wait_delivered(&self, n: usize, timeout: Duration) -> Vec<Received> {
        self.0
            .wait_until(|m| m.delivered().len() >= n, timeout)
            .await;
        self.delivered()
    }
}
