//! A stateful mock of HubSpot's CRM v3 objects API, the v4 association calls, the
//! properties API, the date-versioned OAuth token endpoint and the daily-usage endpoint,
//! for driving the HubSpot connector end to end. It is at least as strict as HubSpot:
//! every request is checked against one schema ([`schema`]) and refused in HubSpot's own
//! shape.
//!
//! Modules: [`schema`] (what HubSpot accepts), [`model`] (records, associations),
//! [`search`], [`routes`] (the endpoints), [`oauth`] (who may call), [`errors`] (the
//! refusal envelopes). This one holds the chassis: options, auth and rate limits before
//! every call, faults, the request log, the server.
//!
//! What it models:
//! - **Auth.** Every `/crm/*` and `/account-info/*` call needs `Authorization: Bearer
//!   <token>`: a static private-app token from [`HubSpotOptions::tokens`], or an access
//!   token issued by `POST /oauth/2026-03/token` that has not expired. Otherwise 401
//!   (`INVALID_AUTHENTICATION` or `EXPIRED_AUTHENTICATION`). The retired `/oauth/v1/token`
//!   is gone (404), as it will be after 2027-02-16.
//! - **Rate limits**, checked after auth and before anything else: a rolling window over
//!   every authenticated call (429s included), an extra per-second limit on search calls
//!   and an optional daily limit, each answered with HubSpot's 429 body (no `Retry-After`:
//!   HubSpot sends none). Every authenticated answer carries the
//!   `X-HubSpot-RateLimit-*` headers.
//! - **Objects** of the standard types (contacts, companies, deals, meetings) and custom
//!   ones (such as `p_bookings`, once they have a property): create (with `associations`),
//!   read (by id or a unique `idProperty`), list, update, delete, batch upsert (by a unique
//!   `idProperty` only: "Unable to perform update/upsert by non-unique …" otherwise), batch
//!   read, search; properties defined through `POST /crm/v3/properties/{type}` (unique
//!   values refused on activities such as meetings); associations made (v4, default or
//!   labelled, type ids checked for the pair) and read (v4, from either end).
//! - **Asynchronous search indexing.** Search sees each record as it was `search_lag`
//!   ago: a record created less than that ago is not found, and an update shows in search
//!   only `search_lag` after it was made. Everything else (GET, PATCH, upsert, batch read,
//!   association reads, the uniqueness check) sees the current state. A deleted record is
//!   gone at once, everywhere.
//! - **Read shapes.** Create, PATCH and upsert answer every set property; GET, list, batch
//!   read and search answer the asked-for `properties` (`null` when unset) or HubSpot's
//!   defaults for the type, plus `hs_object_id` and the type's create / modification dates
//!   (`createdate`/`lastmodifieddate` for contacts, `createdate`/`hs_lastmodifieddate`
//!   for deals and companies, `hs_createdate`/`hs_lastmodifieddate` otherwise).
//! - **Faults** ([`Fault`]), queued with [`MockHubSpot::fail_next`] and taken by
//!   authenticated API calls in arrival order once auth and rate limits passed (never by
//!   the token endpoint). `Status` answers without applying the call (HubSpot's
//!   `INTERNAL_ERROR` envelope when its body is empty); `Slow` applies the call, then waits
//!   before answering, so a client that gives up leaves the change made; `Drop` applies
//!   it, sends the status line, headers and half the body (a body-less answer as a 200),
//!   then drops the connection.
//!   `Headers` answers like an empty-bodied `Status`, with each header sent exactly as
//!   given (over the mock's own); `Endless` and `Drip` apply the call, then send a body
//!   that never ends, or one byte at a time.
//!
//! Invariants:
//! - a request that fails (4xx, or a [`Fault::Status`]) changes nothing; a batch is
//!   applied whole or not at all (see [`model`] for the records' own);
//! - every request is recorded ([`MockHubSpot::requests`]), 401s and 429s included, with
//!   the status it was answered (0 while unanswered, or when the answer did not complete:
//!   dropped, endless or dripped).

mod errors;
mod model;
mod oauth;
mod routes;
mod schema;
mod search;

use super::Fault;
use super::reply::{After, Reply, bind, spawn};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use chrono::{DateTime, NaiveTime, TimeDelta, Utc};
use errors::{correlation_id, error, not_found};
use model::{Association, Objects, Rec};
use routes::{Route, route};
use schema::{Schema, canonical_type};
use serde_json::{Map, Value, json};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// How the mock is set up.
#[derive(Debug, Clone)]
pub struct HubSpotOptions {
    /// Static private-app tokens that are valid (default `["pat-test-token"]`).
    pub tokens: Vec<String>,
    /// An OAuth app: `(client_id, client_secret, refresh_token)`. With it,
    /// `POST /oauth/2026-03/token` grants access tokens for that refresh token.
    pub oauth: Option<(String, String, String)>,
    /// How long an OAuth access token lives (default 1800 s).
    pub access_token_ttl: Duration,
    /// What token answers say in `expires_in` in place of the lifetime's seconds, as a
    /// broken or hostile endpoint might (huge, negative, text); the tokens still live
    /// `access_token_ttl`. `None` (default): the lifetime.
    pub token_expires_in: Option<Value>,
    /// The rolling window of the per-window limit (default 10 s).
    pub window: Duration,
    /// How many authenticated calls the rolling window allows (default 100).
    pub max_per_window: usize,
    /// How many search calls a rolling second allows (default 5).
    pub search_per_second: usize,
    /// How many authenticated calls a day allows (default `None`: no limit).
    pub daily_limit: Option<usize>,
    /// When the daily count resets (default the next midnight UTC); then every day after.
    pub daily_resets_at: DateTime<Utc>,
    /// How long a change takes to show in search (default 2 s).
    pub search_lag: Duration,
}

impl Default for HubSpotOptions {
    fn default() -> Self {
        let today = Utc::now().date_naive();
        Self {
            tokens: vec!["pat-test-token".to_owned()],
            oauth: None,
            access_token_ttl: Duration::from_secs(1800),
            token_expires_in: None,
            window: Duration::from_secs(10),
            max_per_window: 100,
            search_per_second: 5,
            daily_limit: None,
            daily_resets_at: today
                .succ_opt()
                .unwrap_or(today)
                .and_time(NaiveTime::MIN)
                .and_utc(),
            search_lag: Duration::from_secs(2),
        }
    }
}

/// A request the mock got.
#[derive(Debug, Clone)]
pub struct HubSpotRequest {
    /// The method.
    pub method: String,
    /// The path, with the query.
    pub path: String,
    /// The bearer token it carried, if any.
    pub token: Option<String>,
    /// The body.
    pub body: Vec<u8>,
    /// The status it was answered with (0: not answered, or the answer did not complete:
    /// dropped, endless or dripped).
    pub status: u16,
    /// When it arrived.
    pub at: Instant,
}

impl HubSpotRequest {
    /// The body as JSON.
    ///
    /// # Panics
    /// If the body is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// A record as the mock holds it now.
#[derive(Debug, Clone, PartialEq)]
pub struct HubSpotRecord {
    /// Its object type (`contacts`, `meetings`, `p_bookings`…).
    pub object_type: String,
    /// Its id.
    pub id: String,
    /// The properties that are set, as strings (the read-only `hs_object_id`, create and
    /// modification dates are not in it).
    pub properties: Map<String, Value>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was last changed.
    pub updated_at: DateTime<Utc>,
}

impl HubSpotRecord {
    /// A property's value, if set.
    pub fn prop(&self, name: &str) -> Option<&str> {
        self.properties.get(name).and_then(Value::as_str)
    }
}

struct Inner {
    options: HubSpotOptions,
    /// OAuth access token → when it expires.
    access_tokens: HashMap<String, Instant>,
    tokens_issued: usize,
    window_calls: VecDeque<Instant>,
    search_calls: VecDeque<Instant>,
    daily_used: usize,
    daily_resets_at: DateTime<Utc>,
    requests: Vec<HubSpotRequest>,
    rate_limited: usize,
    faults: VecDeque<Fault>,
    schema: Schema,
    objects: Objects,
    associations: Vec<Association>,
}

fn prune(calls: &mut VecDeque<Instant>, now: Instant, window: Duration) {
    while calls.front().is_some_and(|at| *at + window <= now) {
        calls.pop_front();
    }
}

impl Inner {
    fn new(options: HubSpotOptions) -> Self {
        Self {
            daily_resets_at: options.daily_resets_at,
            options,
            access_tokens: HashMap::new(),
            tokens_issued: 0,
            window_calls: VecDeque::new(),
            search_calls: VecDeque::new(),
            daily_used: 0,
            requests: Vec::new(),
            rate_limited: 0,
            faults: VecDeque::new(),
            schema: Schema::standard(),
            objects: Objects::default(),
            associations: Vec::new(),
        }
    }

    /// Answers a request; the second part says how to deliver the answer.
    fn process(
        &mut self,
        method: &Method,
        uri: &Uri,
        token: Option<&str>,
        body: &[u8],
    ) -> (Reply, After) {
        let route = route(method, uri.path());
        match route {
            // Parameters in the body only: the query is not read.
            Route::Token => return (self.grant(body), After::Answer),
            Route::NotFound { api: false } => return (not_found(), After::Answer),
            _ => {}
        }
        if let Err(reply) = self.authenticate(token) {
            return (reply, After::Answer);
        }
        // The usage endpoint reports the limits; it is how a client learns when the daily
        // limit resets, so it is not itself limited.
        let (limited, headers) = if matches!(route, Route::Usage) {
            (None, Vec::new())
        } else {
            self.count_call(route.is_search())
        };
        let (mut reply, after) = if let Some(reply) = limited {
            self.rate_limited += 1;
            (reply, After::Answer)
        } else {
            Fault::answer(
                self.faults.pop_front(),
                |status| error(status, "internal error", Some("INTERNAL_ERROR")),
                || self.apply(route, uri, body),
            )
        };
        reply.add_headers(headers);
        (reply, after)
    }

    /// Counts an authenticated call against the limits: the 429 if over one, and the
    /// rate-limit headers.
    fn count_call(&mut self, search: bool) -> (Option<Reply>, Vec<(&'static str, String)>) {
        let now = Instant::now();
        prune(&mut self.window_calls, now, self.options.window);
        self.window_calls.push_back(now);
        let in_window = self.window_calls.len();
        let wall = Utc::now();
        while wall >= self.daily_resets_at {
            self.daily_used = 0;
            match self.daily_resets_at.checked_add_signed(TimeDelta::days(1)) {
                Some(next) => self.daily_resets_at = next,
                None => break,
            }
        }
        self.daily_used += 1;
        let searches = if search {
            prune(&mut self.search_calls, now, Duration::from_secs(1));
            self.search_calls.push_back(now);
            self.search_calls.len()
        } else {
            0
        };
        let limited = if self
            .options
            .daily_limit
            .is_some_and(|l| self.daily_used > l)
        {
            Some((
                "daily",
                "DAILY",
                "publicapi:private_app-api-calls-daily:1:1",
            ))
        } else if in_window > self.options.max_per_window {
            Some((
                "ten_secondly_rolling",
                "TEN_SECONDLY_ROLLING",
                "publicapi:private_app-api-calls-ten-secondly:1:1",
            ))
        } else if search && searches > self.options.search_per_second {
            Some(("secondly", "SECONDLY", "publicapi:crm-search-secondly:1:1"))
        } else {
            None
        };
        let reply = limited.map(|(limit, policy, group)| {
            Reply::json(
                429,
                json!({
                    "status": "error",
                    "message": format!("You have reached your {limit} limit."),
                    "errorType": "RATE_LIMIT",
                    "correlationId": correlation_id(),
                    "policyName": policy,
                    "groupName": group,
                }),
            )
        });
        let mut headers = vec![
            (
                "x-hubspot-ratelimit-interval-milliseconds",
                self.options.window.as_millis().to_string(),
            ),
            (
                "x-hubspot-ratelimit-max",
                self.options.max_per_window.to_string(),
            ),
            (
                "x-hubspot-ratelimit-remaining",
                self.options
                    .max_per_window
                    .saturating_sub(in_window)
                    .to_string(),
            ),
        ];
        if let Some(limit) = self.options.daily_limit {
            headers.push(("x-hubspot-ratelimit-daily", limit.to_string()));
            headers.push((
                "x-hubspot-ratelimit-daily-remaining",
                limit.saturating_sub(self.daily_used).to_string(),
            ));
        }
        (reply, headers)
    }
}

type Shared = Arc<Mutex<Inner>>;

fn lock(state: &Shared) -> MutexGuard<'_, Inner> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The running mock.
pub struct MockHubSpot {
    addr: SocketAddr,
    state: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for MockHubSpot {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl MockHubSpot {
    /// Starts the mock on `127.0.0.1:0`.
    ///
    /// # Panics
    /// If no port can be bound.
    pub async fn start(options: HubSpotOptions) -> Self {
        let state = Arc::new(Mutex::new(Inner::new(options)));
        let app = Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&state));
        let (listener, addr) = bind("HubSpot").await;
        let task = spawn(listener, app);
        Self { addr, state, task }
    }

    /// The base URL, e.g. `http://127.0.0.1:41234` (the API paths go after it).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        lock(&self.state)
    }

    /// Makes the next `n` authenticated API calls misbehave with `fault` (after any
    /// already queued).
    pub fn fail_next(&self, n: usize, fault: Fault) {
        let mut s = self.lock();
        for _ in 0..n {
            s.faults.push_back(fault.clone());
        }
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<HubSpotRequest> {
        self.lock().requests.clone()
    }

    /// How many calls were answered 429.
    pub fn rate_limited(&self) -> usize {
        self.lock().rate_limited
    }

    /// How many access tokens `POST /oauth/2026-03/token` granted.
    pub fn tokens_issued(&self) -> usize {
        self.lock().tokens_issued
    }

    /// Makes every OAuth access token issued so far expired (static tokens stay valid).
    pub fn expire_tokens_now(&self) {
        let now = Instant::now();
        for expires in self.lock().access_tokens.values_mut() {
            *expires = (*expires).min(now);
        }
    }

    /// Defines a single-line text property of an object type, as `POST
    /// /crm/v3/properties/{object_type}` would (`unique`: "require unique values", which
    /// HubSpot refuses on activities such as meetings). A custom object type (e.g.
    /// `p_bookings`) comes to exist with its first property.
    ///
    /// # Errors
    /// HubSpot's refusal, as `status: message`.
    pub fn define_property(
        &self,
        object_type: &str,
        name: &str,
        unique: bool,
    ) -> Result<(), String> {
        self.define(
            object_type,
            &json!({"name": name, "label": name, "type": "string", "fieldType": "text",
                    "groupName": "slatis", "hasUniqueValue": unique}),
        )
    }

    /// Defines a property from a properties-API body (`{name, label, type, fieldType,
    /// hasUniqueValue?, options?}`), as [`Self::define_property`] does.
    ///
    /// # Errors
    /// HubSpot's refusal, as `status: message`.
    pub fn define(&self, object_type: &str, definition: &Value) -> Result<(), String> {
        let object_type = canonical_type(object_type);
        self.lock()
            .schema
            .define(&object_type, definition, true)
            .map(drop)
            .map_err(|reply| {
                let message = match &reply.body {
                    super::reply::Payload::Json(body) => {
                        body["message"].as_str().unwrap_or_default().to_owned()
                    }
                    _ => String::new(),
                };
                format!("{}: {message}", reply.status)
            })
    }

    /// Defines a USER_DEFINED association label (a type id) from one type to another.
    pub fn define_label(&self, from_type: &str, to_type: &str, type_id: u32) {
        self.lock().schema.define_label(
            &canonical_type(from_type),
            &canonical_type(to_type),
            type_id,
        );
    }

    /// Creates a record directly, already visible to search, as `POST
    /// /crm/v3/objects/{object_type}` would (validation, uniqueness); returns its id.
    ///
    /// # Panics
    /// If the type is unknown, `properties` is not an object, or the API would refuse it.
    pub fn seed(&self, object_type: &str, properties: Value) -> String {
        let object_type = canonical_type(object_type);
        let Value::Object(props) = properties else {
            panic!("seed {object_type}: properties must be a JSON object");
        };
        let mut s = self.lock();
        let s = &mut *s;
        if let Err(reply) = s.schema.known_type(&object_type) {
            panic!("seed {object_type}: {:?}", reply.body);
        }
        match s
            .objects
            .create(&s.schema, &object_type, &props, Duration::ZERO)
        {
            Ok(id) => id.to_string(),
            Err(reply) => panic!("seed {object_type}: {:?}", reply.body),
        }
    }

    /// The records of a type, by id.
    pub fn records(&self, object_type: &str) -> Vec<HubSpotRecord> {
        let object_type = canonical_type(object_type);
        self.lock()
            .objects
            .records(&object_type)
            .map(|(id, rec)| public_record(&object_type, id, rec))
            .collect()
    }

    /// One record, if it exists.
    pub fn record(&self, object_type: &str, id: &str) -> Option<HubSpotRecord> {
        let object_type = canonical_type(object_type);
        let id = id.parse().ok()?;
        self.lock()
            .objects
            .get(&object_type, id)
            .map(|rec| public_record(&object_type, id, rec))
    }

    /// Every association, in the order made: (from type, from id, to type, to id,
    /// association type id).
    pub fn associations(&self) -> Vec<(String, String, String, String, u32)> {
        self.lock()
            .associations
            .iter()
            .map(|a| {
                (
                    a.from_type.clone(),
                    a.from_id.to_string(),
                    a.to_type.clone(),
                    a.to_id.to_string(),
                    a.type_id,
                )
            })
            .collect()
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

fn public_record(object_type: &str, id: u64, rec: &Rec) -> HubSpotRecord {
    HubSpotRecord {
        object_type: object_type.to_owned(),
        id: id.to_string(),
        properties: rec
            .props
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
        created_at: rec.created_at,
        updated_at: rec.updated_at,
    }
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get("authorization")?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
        .filter(|t| !t.is_empty())
}

async fn handle(
    State(state): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let token = bearer(&headers);
    // Recorded on arrival with status 0 ("not answered"); the status is set when the
    // answer goes out, so a request whose client gave up stays unanswered.
    let (reply, after, index) = {
        let mut s = lock(&state);
        s.requests.push(HubSpotRequest {
            method: method.to_string(),
            path: uri
                .path_and_query()
                .map_or_else(|| uri.path().to_owned(), ToString::to_string),
            token: token.clone(),
            body: body.to_vec(),
            status: 0,
            at: Instant::now(),
        });
        let index = s.requests.len() - 1;
        let (reply, after) = s.process(&method, &uri, token.as_deref(), &body);
        (reply, after, index)
    };
    let set_status = |status: u16| {
        if let Some(r) = lock(&state).requests.get_mut(index) {
            r.status = status;
        }
    };
    after.deliver(reply, set_status).await
}
