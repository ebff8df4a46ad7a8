//! A stateful mock of Pipedrive's API v2 (persons, organizations, deals and activities,
//! plus the OAuth token endpoint), as strict as the real one, for driving the Pipedrive
//! connector end to end. One server is the company domain, the OAuth host and the
//! `api_domain` a token answer names: all of them are [`Mock::url`].
//!
//! It runs on the mock chassis ([`Mock`]: server, request log, fault queue, access
//! tokens, rate windows). The parts: [`schema`] and [`values`] (what a write body may hold
//! — one schema, checked on every create and update), [`refusal`] (each refusal a 400 that
//! says why, with its doc: [`PipedriveRefusal`]), [`model`] (records and what Pipedrive
//! derives), [`routes`] (the endpoints), [`search`] (lists and search), [`limits`] (burst
//! windows and the daily token budget), [`auth`] (who may call, the OAuth token endpoint),
//! [`answers`] (the envelopes).
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
//! - **Forbidden writes** ([`Mock::forbid`]): every create, update and delete of that
//!   object type is 403.
//! - **Faults** ([`Fault`](super::Fault)), queued with [`Mock::fail_next`] and taken by
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
//! - A request that fails (4xx, or a [`Fault::Status`](super::Fault::Status)) changes
//!   nothing.
//! - A deleted record is gone at once, everywhere (reads, lists, search, links made
//!   afterwards).
//! - Every request is recorded ([`Mock::requests`]), the token endpoint, 401s and 429s
//!   included, with the status it was answered (0 while unanswered, or when the answer
//!   did not complete: dropped, endless or dripped) and, for a refused body, why.
//!
//! Where it knowingly differs from Pipedrive: no users, pipelines, stages, labels, notes,
//! leads, projects or products (any positive `owner_id`, `pipeline_id`, `stage_id`,
//! `project_id` and label id is accepted; `notes` never match), no Contact Sync fields on
//! persons (`job_title`, `birthday`, … are unknown fields here; Pipedrive answers 403
//! without Contact Sync), links are not cleared when the linked record is deleted, search
//! scores are all 1.0 and matching is plain substring or equality (no tokenising, no
//! phone normalisation), the daily budget resets only when a test says so
//! ([`Mock::reset_daily_budget`]), and the burst limits are per token rather than per
//! user.

mod answers;
mod auth;
mod limits;
mod model;
mod refusal;
mod routes;
mod schema;
mod search;
mod values;

pub use refusal::PipedriveRefusal;

use super::chassis::auth::AccessTokens;
use super::chassis::log::Request;
use super::chassis::reply::{Headers, Reply};
use super::chassis::{Call, Gate, Mock, Vendor, Verdict};
use answers::account_closed;
use limits::{Cost, Limits};
use model::{Rec, Store};
use routes::{Fail, Route, Writes, route};
use schema::{Kind, is_field_key};
use serde_json::{Map, Value};
use std::collections::BTreeSet;
use std::time::Duration;

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

/// A request the mock got; one its schema refused carries why.
pub type PipedriveRequest = Request<PipedriveRefusal>;

/// The running mock.
pub type MockPipedrive = Mock<Pipedrive>;

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

/// The mock's Pipedrive company: its options, limits, account state, forbidden writes and
/// records.
pub struct Pipedrive {
    options: PipedriveOptions,
    /// The company domain, OAuth host and `api_domain`: the mock's URL.
    base_url: String,
    account_open: bool,
    limits: Limits,
    forbidden: BTreeSet<Kind>,
    store: Store,
}

impl Vendor for Pipedrive {
    type Options = PipedriveOptions;
    type Route = Route;
    type Refusal = PipedriveRefusal;
    const NAME: &'static str = "Pipedrive";

    fn new(options: PipedriveOptions, url: &str) -> Self {
        Self {
            account_open: options.account_open,
            limits: Limits::new(
                options.burst,
                options.search_burst,
                options.burst_window,
                options.daily_budget,
            ),
            options,
            base_url: url.to_owned(),
            forbidden: BTreeSet::new(),
            store: Store::default(),
        }
    }

    fn route(&self, call: &Call<'_>) -> Gate<Route> {
        route(call.method, call.uri.path())
    }

    fn grant(&mut self, tokens: &mut AccessTokens, call: &Call<'_>) -> Reply {
        self.grant_token(tokens, call)
    }

    fn authenticate(&self, tokens: &AccessTokens, call: &Call<'_>) -> Result<String, Reply> {
        self.check_credentials(tokens, call.credentials)
    }

    fn admit(&mut self, caller: &str, route: &Route) -> (Verdict, Headers) {
        match self.limits.count(caller, Cost::of(route)) {
            (Verdict::Pass, headers) if !self.account_open => {
                (Verdict::Refused(account_closed()), headers)
            }
            counted => counted,
        }
    }

    fn fault_answer(status: u16) -> Reply {
        answers::error(status, "Internal server error")
    }

    fn apply(&mut self, route: Route, call: &Call<'_>) -> (Reply, Option<PipedriveRefusal>) {
        let writes = Writes {
            lag: self.options.search_lag,
            forbidden: &self.forbidden,
        };
        match routes::apply(&mut self.store, route, &call.query, call.body, &writes) {
            Ok(reply) | Err(Fail::Answer(reply)) => (reply, None),
            Err(Fail::Refused(refused)) => (refused.reply(), Some(refused.why)),
        }
    }
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

impl Mock<Pipedrive> {
    /// Opens or closes the company account (closed: every authenticated call is 402).
    pub fn set_account_open(&self, open: bool) {
        self.lock().vendor.account_open = open;
    }

    /// The tokens left of the day's budget (`None`: no budget).
    pub fn daily_tokens_left(&self) -> Option<u64> {
        self.lock().vendor.limits.left()
    }

    /// Starts a new day: the whole daily budget is there again.
    pub fn reset_daily_budget(&self) {
        self.lock().vendor.limits.reset_day();
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
            .vendor
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
        self.lock().vendor.forbidden.insert(kind);
    }

    /// Undoes [`Self::forbid`].
    ///
    /// # Panics
    /// If the object type is unknown.
    pub fn allow(&self, object: &str) {
        let kind = kind_named(object);
        self.lock().vendor.forbidden.remove(&kind);
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
        match self.lock().vendor.store.create(kind, &body, Duration::ZERO) {
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
        let s = &s.vendor;
        s.store
            .records(kind)
            .map(|(id, rec)| public_record(&s.store, kind, id, rec))
            .collect()
    }

    /// One record, if it exists.
    pub fn record(&self, object: &str, id: i64) -> Option<PipedriveRecord> {
        let kind = Kind::named(object)?;
        let s = self.lock();
        let s = &s.vendor;
        s.store
            .get(kind, id)
            .map(|rec| public_record(&s.store, kind, id, rec))
    }
}

fn public_record(store: &Store, kind: Kind, id: i64, rec: &Rec) -> PipedriveRecord {
    PipedriveRecord {
        object: kind.plural().to_owned(),
        id,
        data: store.record_json(kind, id, rec),
    }
}
