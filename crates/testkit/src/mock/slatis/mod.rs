//! A stateful mock of the Slatis public API v1 (webhooks and bookings) that also delivers
//! webhooks as Slatis does: for driving `slatis-sync webhooks …` and backfill end to end.
//! Facts are from the Slatis docs (v1, <https://docs.slatis.com/>); where they are silent
//! the choice is marked *inferred*.
//!
//! It runs on the mock chassis ([`Mock`]: server, request log, fault queue). The parts:
//! [`model`] (keys, webhooks, bookings, the delivery log), [`routes`] (the endpoints),
//! [`refusal`] (each refusal with its doc: [`SlatisRefusal`], and the URL rule),
//! [`deliver`] (signed deliveries, retries, auto-disable).
//!
//! What it models:
//! - **Auth**: `Authorization: Bearer <key>`, `Slatis-Api-Key` or `X-API-Key` (first
//!   present wins), a key of [`SlatisOptions::keys`]; otherwise 401 `unauthorized`. Each
//!   route needs a scope (`webhooks:read` — or `webhooks:manage`, which includes it — for
//!   reads, `webhooks:manage` for writes, `bookings:read` for bookings): 403 `forbidden`
//!   naming it.
//! - **Rate limits** per key per rolling minute: `sk_live_` 1000, `sk_test_` 100 (or
//!   [`SlatisOptions::rate_per_minute`]); 429 `rate_limited` with `Retry-After`.
//!   Authenticated answers carry `X-RateLimit-Limit`, `-Remaining`, `-Reset` (Unix time);
//!   every answer carries `X-Request-Id` (the request's, echoed, or a new one).
//! - **Webhooks**: create (201; URL must be public HTTPS, events among the seven), list,
//!   get, `PATCH` (`is_active`, `url`, `events`, `description`; the URL rule again),
//!   delete, test (a `BOOKING_CREATED` test event, one attempt, not counted towards
//!   auto-disable), rotate-secret (the old secret stops at once: no grace period is
//!   documented), delivery history. The secret is in the create and rotate answers only.
//! - **Bookings**, changed by the test through this handle ([`Mock::create_booking`],
//!   cancel, reschedule, complete): each change is delivered to every active webhook
//!   subscribed to its event; `GET /v1/bookings` pages with an opaque cursor.
//! - **Deliveries**: signed with the webhook's secret at each attempt, 5 s per attempt,
//!   retried after each of [`SlatisOptions::retry_delays`]; 10 consecutive failed
//!   attempts disable the webhook (`is_active: false`, `failure_reason`).
//!
//! Invariants: a refused request changes nothing; every request is recorded
//! ([`Mock::requests`]) with its status and refusal; every attempt is in
//! [`Mock::deliveries`].

mod deliver;
mod model;
mod refusal;
mod routes;

pub use model::{SlatisAttempt, SlatisDelivery, SlatisWebhook};
pub use refusal::SlatisRefusal;
pub use routes::EVENTS;

use super::chassis::auth::AccessTokens;
use super::chassis::ids::Ids;
use super::chassis::limits::RollingWindow;
use super::chassis::log::Request;
use super::chassis::reply::{Headers, Reply};
use super::chassis::{Call, Gate, Mock, Vendor, Verdict};
use chrono::{DateTime, Utc};
use deliver::{Deliverer, Network};
use model::{Bk, Job, Org};
use refusal::error;
use routes::{Fail, Route};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// The key [`SlatisOptions::default`] knows, with every scope.
pub const SLATIS_TEST_KEY: &str = "sk_test_mock";

/// The scopes the mock checks.
pub const SCOPES: [&str; 3] = ["webhooks:read", "webhooks:manage", "bookings:read"];

/// How the mock is set up.
#[derive(Debug, Clone)]
pub struct SlatisOptions {
    /// API keys and their scopes (default: [`SLATIS_TEST_KEY`] with [`SCOPES`]).
    pub keys: Vec<(String, Vec<String>)>,
    /// Host names the deliveries connect to at these addresses (the URL's port is the
    /// one used), e.g. `hooks.example.test` → `127.0.0.1:0`.
    pub resolve: Vec<(String, SocketAddr)>,
    /// CA certificates (PEM) the deliveries trust, beside the system's.
    pub trust: Vec<String>,
    /// The waits before each retry of a failed delivery (default the documented 1, 5, 25,
    /// 125, 625 s).
    pub retry_delays: Vec<Duration>,
    /// How long an attempt may take (default 5 s).
    pub attempt_timeout: Duration,
    /// Consecutive failed attempts that disable a webhook (default 10).
    pub disable_after: u32,
    /// Calls per key per rolling minute (`None`: 1000 for `sk_live_`, 100 otherwise).
    pub rate_per_minute: Option<usize>,
}

impl Default for SlatisOptions {
    fn default() -> Self {
        Self {
            keys: vec![(
                SLATIS_TEST_KEY.to_owned(),
                SCOPES.iter().map(|s| (*s).to_owned()).collect(),
            )],
            resolve: Vec::new(),
            trust: Vec::new(),
            retry_delays: [1, 5, 25, 125, 625].map(Duration::from_secs).to_vec(),
            attempt_timeout: Duration::from_secs(5),
            disable_after: 10,
            rate_per_minute: None,
        }
    }
}

/// A request the mock got; one its schema refused carries why.
pub type SlatisRequest = Request<SlatisRefusal>;

/// The running mock.
pub type MockSlatis = Mock<Slatis>;

/// The mock's organisation, its delivery loop and its rate windows.
pub struct Slatis {
    org: Arc<Mutex<Org>>,
    jobs: mpsc::UnboundedSender<Job>,
    deliverer: Arc<Deliverer>,
    windows: HashMap<String, RollingWindow>,
    rate_per_minute: Option<usize>,
}

impl Drop for Slatis {
    fn drop(&mut self) {
        self.deliverer.stopped.store(true, Ordering::Relaxed);
    }
}

impl Slatis {
    fn org(&self) -> MutexGuard<'_, Org> {
        self.org.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn send(&self, jobs: Vec<Job>) {
        for job in jobs {
            // the loop ends only with the mock
            let _ = self.jobs.send(job);
        }
    }
}

/// The error code of a status, for a fault's answer.
fn code_of(status: u16) -> &'static str {
    match status {
        400 => "validation_error",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        429 => "rate_limited",
        _ => "internal_error",
    }
}

impl Vendor for Slatis {
    type Options = SlatisOptions;
    type Route = Route;
    type Refusal = SlatisRefusal;
    const NAME: &'static str = "Slatis";

    fn new(options: SlatisOptions, _url: &str) -> Self {
        let org = Arc::new(Mutex::new(Org {
            keys: options.keys.iter().cloned().collect(),
            hooks: BTreeMap::new(),
            bookings: BTreeMap::new(),
            deliveries: Vec::new(),
            ids: Ids::starting_at(1),
            disable_after: options.disable_after,
        }));
        let network = Network {
            resolve: &options.resolve,
            trust: &options.trust,
            timeout: options.attempt_timeout,
        };
        let (deliverer, jobs) = Deliverer::start(Arc::clone(&org), &network, options.retry_delays);
        Self {
            org,
            jobs,
            deliverer,
            windows: HashMap::new(),
            rate_per_minute: options.rate_per_minute,
        }
    }

    fn route(&self, call: &Call<'_>) -> Gate<Route> {
        routes::route(call.method, call.uri.path()).map_or_else(
            || Gate::Answer(error(404, "not_found", "Resource not found")),
            Gate::Api,
        )
    }

    fn grant(&mut self, _tokens: &mut AccessTokens, _call: &Call<'_>) -> Reply {
        error(404, "not_found", "Resource not found")
    }

    fn authenticate(&self, _tokens: &AccessTokens, call: &Call<'_>) -> Result<String, Reply> {
        let c = call.credentials;
        let Some(key) = c.bearer.as_ref().or(c.api_key.as_ref()) else {
            return Err(error(401, "unauthorized", "Missing API key"));
        };
        if self.org().keys.contains_key(key) {
            Ok(key.clone())
        } else {
            Err(error(401, "unauthorized", "Invalid API key"))
        }
    }

    fn admit(&mut self, caller: &str, route: &Route) -> (Verdict, Headers) {
        let limit = self
            .rate_per_minute
            .unwrap_or(if caller.starts_with("sk_live_") {
                1000
            } else {
                100
            });
        let now = Instant::now();
        let window = self
            .windows
            .entry(caller.to_owned())
            .or_insert_with(|| RollingWindow::new(Duration::from_secs(60)));
        let used = window.count(now);
        let reset = window.reset_secs(now);
        let reset_at = Utc::now().timestamp().saturating_add_unsigned(reset);
        let limited = used >= limit;
        if !limited {
            window.record(now);
        }
        let mut headers: Headers = vec![
            ("x-ratelimit-limit", limit.to_string()),
            (
                "x-ratelimit-remaining",
                limit
                    .saturating_sub(used + usize::from(!limited))
                    .to_string(),
            ),
            ("x-ratelimit-reset", reset_at.to_string()),
        ];
        if limited {
            headers.push(("retry-after", reset.to_string()));
            let reply = error(429, "rate_limited", "Rate limit exceeded");
            return (Verdict::Limited(reply), headers);
        }
        let scopes = route.scopes();
        let allowed = scopes.is_empty()
            || self.org().keys[caller]
                .iter()
                .any(|s| scopes.contains(&s.as_str()));
        if !allowed {
            let message = format!(
                "API key lacks the required scope: {}",
                scopes[scopes.len() - 1]
            );
            return (Verdict::Refused(error(403, "forbidden", &message)), headers);
        }
        (Verdict::Pass, headers)
    }

    fn fault_answer(status: u16) -> Reply {
        error(status, code_of(status), "Internal server error")
    }

    fn apply(&mut self, route: Route, call: &Call<'_>) -> (Reply, Option<SlatisRefusal>) {
        let applied = routes::apply(&mut self.org(), route, &call.query, call.body);
        match applied {
            Ok((reply, job)) => {
                self.send(job.into_iter().collect());
                (reply, None)
            }
            Err(Fail::Answer(reply)) => (reply, None),
            Err(Fail::Refused(refused)) => (refused.reply(), Some(refused.why)),
        }
    }

    fn finish(call: &Call<'_>, reply: &mut Reply) {
        let id = call
            .headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map_or_else(
                || format!("req_{}", uuid::Uuid::now_v7().simple()),
                str::to_owned,
            );
        reply.add_headers(vec![("x-request-id", id)]);
    }
}

impl Mock<Slatis> {
    /// Adds (or replaces) an API key with these scopes.
    pub fn add_key(&self, key: &str, scopes: &[&str]) {
        let scopes = scopes.iter().map(|s| (*s).to_owned()).collect();
        self.lock().vendor.org().keys.insert(key.to_owned(), scopes);
    }

    /// Changes the organisation and delivers the event the change raises.
    fn change(&self, f: impl FnOnce(&mut Org) -> (&'static str, Value)) {
        let s = self.lock();
        let jobs = {
            let mut org = s.vendor.org();
            let (event, data) = f(&mut org);
            org.raise(event, &data)
        };
        s.vendor.send(jobs);
    }

    /// A booking made now, `SCHEDULED` at `start` for 30 minutes; delivers
    /// `BOOKING_CREATED`. Its id.
    pub fn create_booking(&self, name: &str, email: &str, start: DateTime<Utc>) -> String {
        let mut id = String::new();
        self.change(|org| {
            id = org.id("bkg");
            let b = Bk {
                id: id.clone(),
                status: "SCHEDULED",
                start,
                minutes: 30,
                name: name.to_owned(),
                email: email.to_owned(),
            };
            let data = b.json();
            org.bookings.insert(b.id.clone(), b);
            ("BOOKING_CREATED", data)
        });
        id
    }

    /// Sets a booking's status and delivers `event`.
    ///
    /// # Panics
    /// If there is no such booking.
    fn transition(&self, id: &str, status: &'static str, event: &'static str) {
        self.change(|org| {
            let b = org
                .bookings
                .get_mut(id)
                .unwrap_or_else(|| panic!("Slatis mock: no booking {id}"));
            b.status = status;
            (event, b.json())
        });
    }

    /// Cancels a booking; delivers `BOOKING_CANCELLED`.
    ///
    /// # Panics
    /// If there is no such booking.
    pub fn cancel_booking(&self, id: &str) {
        self.transition(id, "CANCELLED", "BOOKING_CANCELLED");
    }

    /// Marks a booking completed; delivers `BOOKING_COMPLETED`.
    ///
    /// # Panics
    /// If there is no such booking.
    pub fn complete_booking(&self, id: &str) {
        self.transition(id, "COMPLETED", "BOOKING_COMPLETED");
    }

    /// Moves a booking to `start` as v1 describes: the original becomes `CANCELLED`, a new
    /// booking is `RESCHEDULED` (active) at the new time; delivers one
    /// `BOOKING_RESCHEDULED` carrying the new booking (which id it carries, and whether a
    /// `BOOKING_CANCELLED` also goes out for the original, is not documented: inferred).
    /// The new booking's id.
    ///
    /// # Panics
    /// If there is no such booking.
    pub fn reschedule_booking(&self, id: &str, start: DateTime<Utc>) -> String {
        let mut new_id = String::new();
        self.change(|org| {
            let next = org.id("bkg");
            let old = org
                .bookings
                .get_mut(id)
                .unwrap_or_else(|| panic!("Slatis mock: no booking {id}"));
            old.status = "CANCELLED";
            let b = Bk {
                id: next.clone(),
                status: "RESCHEDULED",
                start,
                ..old.clone()
            };
            new_id = next;
            let data = b.json();
            org.bookings.insert(b.id.clone(), b);
            ("BOOKING_RESCHEDULED", data)
        });
        new_id
    }

    /// Every webhook, with its secret, in creation order.
    pub fn webhooks(&self) -> Vec<SlatisWebhook> {
        let s = self.lock();
        let org = s.vendor.org();
        org.hooks.values().map(Org::public).collect()
    }

    /// Every delivery so far, in the order the events were raised.
    pub fn deliveries(&self) -> Vec<SlatisDelivery> {
        self.lock().vendor.org().deliveries.clone()
    }
}
