//! A stateful mock of Pipedrive's API v2 (persons, organizations, deals and activities,
//! plus the OAuth token endpoint), as strict as the real one, for driving the Pipedrive
//! connector end to end. One server is the company domain, the OAuth host and the
//! `api_domain` a token answer names: all of them are [`MockPipedrive::url`].
//!
//! The parts: [`schema`] and [`values`] (what a write body may hold — one schema, checked
//! on every create and update), [`refusal`] (each refusal a 400 that says why, with its
//! doc: [`PipedriveRefusal`]), [`store`] (records and what Pipedrive derives), [`routes`]
//! (the endpoints, lists and search), [`limits`] (burst windows and the daily token
//! budget), [`auth`] (credentials and the OAuth token endpoint), [`answers`] (the
//! envelopes).
//!
//! What it models, with Pipedrive's documented bodies:
//! - **Auth.** Every `/api/v1/…` and `/api/v2/…` call needs `x-api-token: <token>` (a
//!   token of [`PipedriveOptions::api_tokens`]) or `Authorization: Bearer <token>` (an
//!   OAuth access token issued and not expired). The legacy `?api_token=` query parameter
//!   is accepted too, but every request records whether its URL carried one
//!   ([`PipedriveRequest::token_in_url`]). The first present of the header, the bearer
//!   token and the query parameter is the one checked. Otherwise 401 `unauthorized
//!   access`.
//! - **OAuth.** `POST /oauth/token` with `Authorization: Basic base64(id:secret)` and the
//!   form `grant_type=refresh_token&refresh_token=…` grants a fresh access token for the
//!   app of [`PipedriveOptions::oauth`] (the refresh token stays the same). A missing or
//!   wrong Basic credential is 401 `invalid_client`, a wrong refresh token 400
//!   `invalid_grant`, another grant type 400 `unsupported_grant_type`.
//! - **Rate limits**, checked after auth and before anything else: per token a rolling
//!   burst window ([`PipedriveOptions::burst`], [`PipedriveOptions::search_burst`]), and
//!   per company the daily token budget ([`PipedriveOptions::daily_budget`]); both answer
//!   429 `Request over limit`, the headers tell which (see [`limits`]).
//! - **A closed account** ([`PipedriveOptions::account_open`] false): every authenticated
//!   call that passed the rate limits is 402 `Company account is not open`.
//! - **Records**: create (`POST`, 200), read, `PATCH` (fields not sent are kept,
//!   `custom_fields` merged), `DELETE`, a list that reads the primary store (no lag), and
//!   search for persons, organizations and deals, which does not see a record created or
//!   changed less than [`PipedriveOptions::search_lag`] ago.
//! - **Forbidden writes** ([`MockPipedrive::forbid`]): every create, update and delete of
//!   that object type is 403.
//! - **Faults** ([`Fault`]), queued with [`MockPipedrive::fail_next`] and taken by
//!   authenticated API calls in arrival order once auth, the rate limits and the account
//!   check passed (never by `/oauth/token`). `Status` answers without applying the call
//!   (Pipedrive's `Internal server error` envelope when its body is empty); `Slow` applies
//!   the call, then waits before answering; `Drop` applies it, sends the status line,
//!   headers and half the body, then drops the connection (the answer is lost).
//!   `Headers` answers like an empty-bodied `Status`, with each header sent exactly as
//!   given (over the mock's own); `Endless` and `Drip` apply the call, then send a body
//!   that never ends, or one byte at a time.
//!
//! Invariants:
//! - Answers use Pipedrive's envelopes (see [`answers`]); a refused body is v2's 400.
//! - Records are kept in v2 shape: every standard field present (`null`, `[]` or its
//!   default when unset), `add_time` / `update_time` as RFC 3339 in whole seconds with
//!   `Z`, and (but on activities) `custom_fields` holding every defined key of the type
//!   (`null` when unset). Emails are not unique: any number of persons may share one.
//! - A request that fails (4xx, or a [`Fault::Status`]) changes nothing.
//! - A deleted record is gone at once, everywhere (reads, lists, search, links made
//!   afterwards).
//! - Every request is recorded ([`MockPipedrive::requests`]), the token endpoint, 401s and
//!   429s included, with the status it was answered (0 while unanswered, or when the
//!   answer did not complete: dropped, endless or dripped) and, for a refused body, why.
//!
//! Where it knowingly differs from Pipedrive: no users, pipelines, stages, labels, notes,
//! leads, projects or products (any positive `owner_id`, `pipeline_id`, `stage_id`,
//! `project_id` and label id is accepted; `notes` never match), no Contact Sync fields on
//! persons (`job_title`, `birthday`, … are unknown fields here; Pipedrive answers 403
//! without Contact Sync), links are not cleared when the linked record is deleted, search
//! scores are all 1.0 and matching is plain substring or equality (no tokenising, no
//! phone normalisation), the daily budget resets only when a test says so
//! ([`MockPipedrive::reset_daily_budget`]), and the burst limits are per token rather
//! than per user.

mod answers;
mod auth;
mod limits;
mod refusal;
mod routes;
mod schema;
mod store;
mod values;

pub use refusal::PipedriveRefusal;

use super::Fault;
use super::reply::{After, Reply, bind, spawn};
use super::wire::parse_pairs;
use answers::{account_closed, over_limit, unknown_method};
use auth::{Credentials, OAuthTokens};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use limits::{Cost, Limits};
use routes::{Fail, Route, Writes, route};
use schema::{Kind, is_field_key};
use serde_json::{Map, Value};
use std::collections::{BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};
use store::{Rec, Store};

/// How the mock is set up.
#[derive(Debug, Clone)]
pub struct PipedriveOptions {
    /// API tokens that are valid, for `x-api-token` or `?api_token=` (default
    /// `["pd-test-token"]`).
    pub api_tokens: Vec<String>,
    /// An OAuth app: `(client_id, client_secret, refresh_token)`. With it,
    /// `POST /oauth/token` grants access tokens for that refresh token.
    pub oauth: Option<(String, String, String)>,
    /// How long an OAuth access token lives (default 3599 s).
    pub access_token_ttl: Duration,
    /// What token answers say in `expires_in` in place of the lifetime's seconds, as a
    /// broken or hostile endpoint might (huge, negative, text); the tokens still live
    /// `access_token_ttl`. `None` (default): the lifetime.
    pub token_expires_in: Option<Value>,
    /// How many calls a token may make per rolling [`Self::burst_window`] (default 20).
    pub burst: usize,
    /// The rolling window of both burst limits (default 2 s).
    pub burst_window: Duration,
    /// How many search calls a token may make per rolling window (default 10).
    pub search_burst: usize,
    /// How long a created or changed person, organization or deal stays invisible to
    /// search (default 2 s).
    pub search_lag: Duration,
    /// Whether the company account is open (default true); if not, every authenticated
    /// call is 402.
    pub account_open: bool,
    /// The company's daily token budget (`None`: unlimited). The default, 30,000, is the
    /// smallest a company has (the Lite / Essential plan, one seat:
    /// <https://support.pipedrive.com/en/article/usage-limits-in-pipedrive>).
    pub daily_budget: Option<u64>,
}

impl Default for PipedriveOptions {
    fn default() -> Self {
        Self {
            api_tokens: vec!["pd-test-token".to_owned()],
            oauth: None,
            access_token_ttl: Duration::from_secs(3599),
            token_expires_in: None,
            burst: 20,
            burst_window: Duration::from_secs(2),
            search_burst: 10,
            search_lag: Duration::from_secs(2),
            account_open: true,
            daily_budget: Some(30_000),
        }
    }
}

/// A request the mock got.
#[derive(Debug, Clone)]
pub struct PipedriveRequest {
    /// The method.
    pub method: String,
    /// The path, with the query.
    pub path: String,
    /// The value of the `x-api-token` header, if any.
    pub api_token: Option<String>,
    /// The bearer token of the `Authorization` header, if any.
    pub bearer: Option<String>,
    /// Whether the URL carried an `api_token` query parameter (used or not).
    pub token_in_url: bool,
    /// The body.
    pub body: Vec<u8>,
    /// The status it was answered with (0: not answered, or the answer did not complete:
    /// dropped, endless or dripped).
    pub status: u16,
    /// When it arrived.
    pub at: Instant,
    /// Why the schema refused it (a 400), if it did.
    pub refusal: Option<PipedriveRefusal>,
}

impl PipedriveRequest {
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

    /// A field of a form-urlencoded body (the token endpoint's), decoded.
    pub fn form_field(&self, name: &str) -> Option<String> {
        parse_pairs(&String::from_utf8_lossy(&self.body))
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }
}

/// A record as the mock holds it now.
#[derive(Debug, Clone, PartialEq)]
pub struct PipedriveRecord {
    /// Its object type: `persons`, `organizations`, `deals` or `activities`.
    pub object: String,
    /// Its id.
    pub id: i64,
    /// The record as `GET /api/v2/{object}/{id}` answers it (`id`, every standard field,
    /// `add_time`, `update_time`, `is_deleted`, `custom_fields`).
    pub data: Map<String, Value>,
}

impl PipedriveRecord {
    /// A standard field's value, unless unset (`null`).
    pub fn field(&self, name: &str) -> Option<&Value> {
        self.data.get(name).filter(|v| !v.is_null())
    }

    /// A standard field's value, if it is a string.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.data.get(name).and_then(Value::as_str)
    }

    /// A custom field's value, unless unset.
    pub fn custom(&self, key: &str) -> Option<&Value> {
        self.data
            .get("custom_fields")
            .and_then(|c| c.get(key))
            .filter(|v| !v.is_null())
    }

    /// The values of a person's emails, in order.
    pub fn emails(&self) -> Vec<&str> {
        self.data
            .get("emails")
            .and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    .filter_map(|e| e.get("value").and_then(Value::as_str))
                    .collect()
            })
            .unwrap_or_default()
    }
}
struct Inner {
    options: PipedriveOptions,
    base_url: String,
    account_open: bool,
    oauth: OAuthTokens,
    limits: Limits,
    requests: Vec<PipedriveRequest>,
    rate_limited: usize,
    faults: VecDeque<Fault>,
    forbidden: BTreeSet<Kind>,
    store: Store,
}

/// What a route costs of the daily budget.
fn cost(route: &Route) -> Cost {
    match route {
        Route::Search(_) => Cost::Search,
        Route::List(_) => Cost::List,
        Route::Create(_) | Route::Patch(..) => Cost::Write,
        Route::Delete(..) => Cost::Delete,
        _ => Cost::Get,
    }
}

impl Inner {
    fn new(options: PipedriveOptions, base_url: String) -> Self {
        Self {
            account_open: options.account_open,
            limits: Limits::new(
                options.burst,
                options.search_burst,
                options.burst_window,
                options.daily_budget,
            ),
            options,
            base_url,
            oauth: OAuthTokens::default(),
            requests: Vec::new(),
            rate_limited: 0,
            faults: VecDeque::new(),
            forbidden: BTreeSet::new(),
            store: Store::default(),
        }
    }

    /// Answers a request: the answer, how to deliver it, and why the schema refused it.
    fn process(
        &mut self,
        method: &Method,
        uri: &Uri,
        credentials: &Credentials,
        body: &[u8],
    ) -> (Reply, After, Option<PipedriveRefusal>) {
        let route = route(method, uri.path());
        match route {
            Route::Token => {
                let reply = self
                    .oauth
                    .grant(&self.options, &self.base_url, credentials, body);
                return (reply, After::Answer, None);
            }
            Route::NotFound { api: false } => return (unknown_method(), After::Answer, None),
            _ => {}
        }
        let token = match self.oauth.authenticate(&self.options, credentials) {
            Ok(token) => token,
            Err(reply) => return (reply, After::Answer, None),
        };
        let (over, headers) = self.limits.count(&token, cost(&route));
        let mut refusal = None;
        let (mut reply, after) = if over.is_some() {
            self.rate_limited += 1;
            (over_limit(), After::Answer)
        } else if !self.account_open {
            (account_closed(), After::Answer)
        } else {
            let query = parse_pairs(uri.query().unwrap_or_default());
            let writes = Writes {
                lag: self.options.search_lag,
                forbidden: &self.forbidden,
            };
            let store = &mut self.store;
            Fault::answer(
                self.faults.pop_front(),
                routes::fault_answer,
                || match routes::apply(store, route, &query, body, &writes) {
                    Ok(reply) | Err(Fail::Answer(reply)) => reply,
                    Err(Fail::Refused(refused)) => {
                        refusal = Some(refused.why);
                        refused.reply()
                    }
                },
            )
        };
        reply.add_headers(headers);
        (reply, after, refusal)
    }
}

type Shared = Arc<Mutex<Inner>>;

fn lock(state: &Shared) -> MutexGuard<'_, Inner> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The object type a test names.
///
/// # Panics
/// If it is none the mock knows.
fn kind_named(object: &str) -> Kind {
    Kind::named(object).unwrap_or_else(|| {
        panic!("no such Pipedrive object {object:?}: persons, organizations, deals or activities")
    })
}

/// The running mock.
pub struct MockPipedrive {
    addr: SocketAddr,
    state: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for MockPipedrive {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl MockPipedrive {
    /// Starts the mock on `127.0.0.1:0`.
    ///
    /// # Panics
    /// If no port can be bound.
    pub async fn start(options: PipedriveOptions) -> Self {
        let (listener, addr) = bind("Pipedrive").await;
        let state = Arc::new(Mutex::new(Inner::new(options, format!("http://{addr}"))));
        let app = Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&state));
        let task = spawn(listener, app);
        Self { addr, state, task }
    }

    /// The base URL, e.g. `http://127.0.0.1:41234`: the company domain (`/api/v2/…` goes
    /// after it), the OAuth host (`/oauth/token`) and the `api_domain` of token answers.
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
    pub fn requests(&self) -> Vec<PipedriveRequest> {
        self.lock().requests.clone()
    }

    /// How many calls were answered 429.
    pub fn rate_limited(&self) -> usize {
        self.lock().rate_limited
    }

    /// How many access tokens `POST /oauth/token` granted.
    pub fn tokens_issued(&self) -> usize {
        self.lock().oauth.issued
    }

    /// Makes every OAuth access token issued so far expired (API tokens stay valid).
    pub fn expire_tokens_now(&self) {
        let now = Instant::now();
        for expires in self.lock().oauth.tokens.values_mut() {
            *expires = (*expires).min(now);
        }
    }

    /// Opens or closes the company account (closed: every authenticated call is 402).
    pub fn set_account_open(&self, open: bool) {
        self.lock().account_open = open;
    }

    /// The tokens left of the day's budget (`None`: no budget).
    pub fn daily_tokens_left(&self) -> Option<u64> {
        self.lock().limits.left()
    }

    /// Starts a new day: the whole daily budget is there again.
    pub fn reset_daily_budget(&self) {
        self.lock().limits.reset_day();
    }

    /// Defines a custom field of an object type (or renames it): `key` is Pipedrive's
    /// 40-character lowercase hex key, which bodies use under `custom_fields`.
    ///
    /// # Panics
    /// If the object type is unknown or the key is not 40 lowercase hex digits.
    pub fn define_field(&self, object: &str, key: &str, name: &str) {
        let kind = kind_named(object);
        assert!(
            is_field_key(key),
            "define_field {object}: {key:?} is not 40 lowercase hex digits"
        );
        self.lock()
            .store
            .custom_fields
            .entry(kind)
            .or_default()
            .insert(key.to_owned(), name.to_owned());
    }

    /// Makes every create, update and delete of an object type answer 403.
    ///
    /// # Panics
    /// If the object type is unknown.
    pub fn forbid(&self, object: &str) {
        let kind = kind_named(object);
        self.lock().forbidden.insert(kind);
    }

    /// Undoes [`Self::forbid`].
    ///
    /// # Panics
    /// If the object type is unknown.
    pub fn allow(&self, object: &str) {
        let kind = kind_named(object);
        self.lock().forbidden.remove(&kind);
    }

    /// Creates a record directly, as `POST /api/v2/{object}` would (every check applies;
    /// no rate limit, fault or [`Self::forbid`]), visible to search at once; returns its id.
    ///
    /// # Panics
    /// If the object type is unknown, `value` is not an object, or the API would refuse it.
    pub fn seed(&self, object: &str, value: Value) -> i64 {
        let kind = kind_named(object);
        let Value::Object(body) = value else {
            panic!("seed {object}: the record must be a JSON object");
        };
        match self.lock().store.create(kind, &body, Duration::ZERO) {
            Ok(id) => id,
            Err(refused) => panic!("seed {object}: {}", refused.message),
        }
    }

    /// The records of an object type, by id (none for an unknown type).
    pub fn records(&self, object: &str) -> Vec<PipedriveRecord> {
        let Some(kind) = Kind::named(object) else {
            return Vec::new();
        };
        let s = self.lock();
        s.store
            .records(kind)
            .map(|(id, rec)| public_record(&s.store, kind, id, rec))
            .collect()
    }

    /// One record, if it exists.
    pub fn record(&self, object: &str, id: i64) -> Option<PipedriveRecord> {
        let kind = Kind::named(object)?;
        let s = self.lock();
        s.store
            .get(kind, id)
            .map(|rec| public_record(&s.store, kind, id, rec))
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

fn public_record(store: &Store, kind: Kind, id: i64, rec: &Rec) -> PipedriveRecord {
    PipedriveRecord {
        object: kind.plural().to_owned(),
        id,
        data: store.record_json(kind, id, rec),
    }
}

async fn handle(
    State(state): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let credentials = Credentials::of(&headers, &uri);
    // Recorded on arrival with status 0 ("not answered"); the status is set when the
    // answer goes out, so a request whose client gave up stays unanswered.
    let (reply, after, index) = {
        let mut s = lock(&state);
        s.requests.push(PipedriveRequest {
            method: method.to_string(),
            path: uri
                .path_and_query()
                .map_or_else(|| uri.path().to_owned(), ToString::to_string),
            api_token: credentials.api_token.clone(),
            bearer: credentials.bearer.clone(),
            token_in_url: credentials.url_token.is_some(),
            body: body.to_vec(),
            status: 0,
            at: Instant::now(),
            refusal: None,
        });
        let index = s.requests.len() - 1;
        let (reply, after, refusal) = s.process(&method, &uri, &credentials, &body);
        if let Some(r) = s.requests.get_mut(index) {
            r.refusal = refusal;
        }
        (reply, after, index)
    };
    let set_status = |status: u16| {
        if let Some(r) = lock(&state).requests.get_mut(index) {
            r.status = status;
        }
    };
    after.deliver(reply, set_status).await
}
