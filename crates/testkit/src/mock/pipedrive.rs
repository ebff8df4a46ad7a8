//! A stateful mock of the Pipedrive API (the v2 endpoints of persons, organizations, deals
//! and activities, plus the OAuth token endpoint), for driving the Pipedrive connector end
//! to end. One server is the company domain, the OAuth host and the `api_domain` a token
//! answer names: all of them are [`MockPipedrive::url`].
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
//! - **Rate limits**, checked after auth and before anything else, per token: a rolling
//!   window of [`PipedriveOptions::burst`] calls per [`PipedriveOptions::burst_window`],
//!   and for search calls also [`PipedriveOptions::search_burst`] per the same window.
//!   Only calls let through take a slot. A call over either is 429 `Request over limit`
//!   with `Retry-After`; every authenticated answer carries `x-ratelimit-limit`,
//!   `x-ratelimit-remaining` and `x-ratelimit-reset` (whole seconds until the window frees
//!   a slot, at least 1).
//! - **A closed account** ([`PipedriveOptions::account_open`] false): every authenticated
//!   call that passed the rate limits is 402 `Company account is not open`.
//! - **Records** of persons, organizations, deals and activities: create (`POST`, 200),
//!   read, `PATCH` (fields not sent are kept, `custom_fields` merged), `DELETE`, a list
//!   with `updated_since` / `updated_until` / `limit` / `cursor` (and the owner and link
//!   filters, e.g. `org_id`) that reads the primary store (no lag), and search for
//!   persons, organizations and deals. Bodies are checked field by field: an unknown
//!   field, a value of the wrong shape or format, a link (`org_id`, `person_id`,
//!   `deal_id`, a participant's `person_id`) to a record that does not exist, an unknown
//!   custom field key or an unknown activity type are 400, naming the field.
//! - **Asynchronous search indexing.** A person, organization or deal created or changed
//!   less than [`PipedriveOptions::search_lag`] ago is not found by search at all (its
//!   earlier state neither); everything else sees it at once.
//! - **Search** (`GET /api/v2/{persons|organizations|deals}/search`): `term` (at least 2
//!   characters, or 1 with `exact_match`), `fields` (comma-separated; persons `name`,
//!   `email`, `phone`, `notes`, `custom_fields`; organizations `name`, `address`,
//!   `notes`, `custom_fields`; deals `title`, `notes`, `custom_fields`; default all),
//!   `exact_match` (whole value, ignoring case; otherwise a case-insensitive substring),
//!   `limit`, `cursor`, and the filters `organization_id` (persons, deals), `person_id`
//!   and `status` (deals). Items come by id, each with `result_score` 1.0, in Pipedrive's
//!   search-item shape (emails and phones as plain strings, custom field values as
//!   strings).
//! - **Forbidden writes** ([`MockPipedrive::forbid`]): every create, update and delete of
//!   that object type is 403.
//! - **Faults** ([`Fault`]), queued with [`MockPipedrive::fail_next`] and taken by
//!   authenticated API calls in arrival order once auth, the rate limits and the account
//!   check passed (never by `/oauth/token`). `Status` answers without applying the call
//!   (Pipedrive's `Internal server error` envelope when its body is empty); `Slow` applies
//!   the call, then waits before answering; `Drop` applies it, sends the status line,
//!   headers and half the body, then drops the connection.
//!   `Headers` answers like an empty-bodied `Status`, with each header sent exactly as
//!   given (over the mock's own); `Endless` and `Drip` apply the call, then send a body
//!   that never ends, or one byte at a time.
//!
//! Invariants:
//! - Ids are integers from one counter per object type, starting at 1, never reused.
//! - Answers use Pipedrive's envelope: `{"success": true, "data": …, "additional_data":
//!   …}`, errors `{"success": false, "error": …, "error_info": …, "data": null,
//!   "additional_data": null}`.
//! - Records are kept in v2 shape: every standard field present (`null`, `[]` or its
//!   default when unset), `add_time` / `update_time` as RFC 3339 in whole seconds with
//!   `Z`, and `custom_fields` holding every defined key of the type (`null` when unset).
//!   Values are kept as sent (an email keeps its case), except that emails and phones get
//!   a `label` (default `work`) and a `primary` (the first one when none is).
//! - Emails are not unique: any number of persons may share one.
//! - A request that fails (4xx, or a [`Fault::Status`]) changes nothing.
//! - A deleted record is gone at once, everywhere (reads, lists, search, links made
//!   afterwards).
//! - Every request is recorded ([`MockPipedrive::requests`]), the token endpoint, 401s and
//!   429s included, with the status it was answered (0 while unanswered, or when the
//!   answer did not complete: dropped, endless or dripped).
//!
//! Where it knowingly differs from Pipedrive: no users, pipelines, stages, labels, notes,
//! leads or products (any positive `owner_id`, `pipeline_id`, `stage_id` and label id is
//! accepted; `notes` never match), no derived fields (`first_name` / `last_name` are not
//! split from `name`, no `won_time`, `stage_change_time` or the like), links are not
//! cleared when the linked record is deleted, search scores are all 1.0 and matching is
//! plain substring or equality (no tokenising, no phone normalisation), lists always go by
//! id (`sort_by` is ignored), the daily token budget is not modelled, and the rate limits
//! are per token rather than per user and company.

use super::Fault;
use super::reply::{After, Answer, Reply, bind, spawn};
use super::wire::{base64_decode, base64_encode, decode_segment, pair, parse_pairs};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use chrono::{DateTime, NaiveDate, SecondsFormat, SubsecRound, Utc};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// The activity types the mock knows (Pipedrive's defaults).
const ACTIVITY_TYPES: [&str; 6] = ["call", "meeting", "task", "deadline", "email", "lunch"];

/// The allowed values of a deal's `status`.
const DEAL_STATUSES: [&str; 4] = ["open", "won", "lost", "deleted"];

/// The allowed values of `visible_to`.
const VISIBILITY: [i64; 4] = [1, 3, 5, 7];

/// The `error_info` of most errors.
const ERROR_INFO: &str =
    "Please check developers.pipedrive.com for more information about Pipedrive API.";

/// The scope an OAuth grant answers.
const OAUTH_SCOPE: &str = "base,contacts:full,deals:full,activities:full";

/// How many items a list or search answers unless `limit` says otherwise.
const DEFAULT_LIMIT: usize = 100;

/// The largest `limit`.
const MAX_LIMIT: usize = 500;

/// The owner of a record unless the body names one (the token's user).
const DEFAULT_OWNER: i64 = 1;

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

/// An object type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Kind {
    Person,
    Organization,
    Deal,
    Activity,
}

impl Kind {
    /// The type a path segment names.
    fn from_path(segment: &str) -> Option<Self> {
        Some(match segment {
            "persons" => Self::Person,
            "organizations" => Self::Organization,
            "deals" => Self::Deal,
            "activities" => Self::Activity,
            _ => return None,
        })
    }

    /// The type a test names: the path name or the singular, ignoring case.
    fn named(name: &str) -> Option<Self> {
        Some(match name.to_ascii_lowercase().as_str() {
            "persons" | "person" => Self::Person,
            "organizations" | "organization" | "orgs" | "org" => Self::Organization,
            "deals" | "deal" => Self::Deal,
            "activities" | "activity" => Self::Activity,
            _ => return None,
        })
    }

    fn plural(self) -> &'static str {
        match self {
            Self::Person => "persons",
            Self::Organization => "organizations",
            Self::Deal => "deals",
            Self::Activity => "activities",
        }
    }

    /// The noun of its "not found" message.
    fn noun(self) -> &'static str {
        match self {
            Self::Person => "Person",
            Self::Organization => "Organization",
            Self::Deal => "Deal",
            Self::Activity => "Activity",
        }
    }

    /// The standard fields a body may set.
    fn fields(self) -> &'static [&'static str] {
        match self {
            Self::Person => &[
                "name",
                "first_name",
                "last_name",
                "owner_id",
                "org_id",
                "emails",
                "phones",
                "visible_to",
                "label_ids",
            ],
            Self::Organization => &["name", "owner_id", "address", "visible_to", "label_ids"],
            Self::Deal => &[
                "title",
                "value",
                "currency",
                "person_id",
                "org_id",
                "pipeline_id",
                "stage_id",
                "status",
                "expected_close_date",
                "owner_id",
                "visible_to",
                "label_ids",
            ],
            Self::Activity => &[
                "subject",
                "type",
                "owner_id",
                "deal_id",
                "person_id",
                "org_id",
                "due_date",
                "due_time",
                "duration",
                "busy",
                "done",
                "location",
                "participants",
                "public_description",
                "note",
                "priority",
            ],
        }
    }

    /// The values of the standard fields a create does not set.
    fn defaults(self) -> Map<String, Value> {
        let defaults = match self {
            Self::Person => json!({
                "name": null,
                "first_name": null,
                "last_name": null,
                "owner_id": DEFAULT_OWNER,
                "org_id": null,
                "emails": [],
                "phones": [],
                "visible_to": 3,
                "label_ids": [],
            }),
            Self::Organization => json!({
                "name": null,
                "owner_id": DEFAULT_OWNER,
                "address": null,
                "visible_to": 3,
                "label_ids": [],
            }),
            Self::Deal => json!({
                "title": null,
                "value": 0,
                "currency": "USD",
                "person_id": null,
                "org_id": null,
                "pipeline_id": 1,
                "stage_id": 1,
                "status": "open",
                "expected_close_date": null,
                "owner_id": DEFAULT_OWNER,
                "visible_to": 3,
                "label_ids": [],
            }),
            Self::Activity => json!({
                "subject": null,
                "type": "call",
                "owner_id": DEFAULT_OWNER,
                "deal_id": null,
                "person_id": null,
                "org_id": null,
                "due_date": null,
                "due_time": null,
                "duration": null,
                "busy": false,
                "done": false,
                "location": null,
                "participants": [],
                "public_description": null,
                "note": null,
                "priority": null,
            }),
        };
        match defaults {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    /// The field a create must set.
    fn required(self) -> &'static str {
        match self {
            Self::Person | Self::Organization => "name",
            Self::Deal => "title",
            Self::Activity => "due_date",
        }
    }

    /// The `fields` search takes (empty: no search).
    fn search_fields(self) -> &'static [&'static str] {
        match self {
            Self::Person => &["name", "email", "phone", "notes", "custom_fields"],
            Self::Organization => &["name", "address", "notes", "custom_fields"],
            Self::Deal => &["title", "notes", "custom_fields"],
            Self::Activity => &[],
        }
    }

    /// The query parameters a list filters on, with the field each compares.
    fn list_filters(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Self::Person => &[("owner_id", "owner_id"), ("org_id", "org_id")],
            Self::Organization => &[("owner_id", "owner_id")],
            Self::Deal => &[
                ("owner_id", "owner_id"),
                ("person_id", "person_id"),
                ("org_id", "org_id"),
                ("pipeline_id", "pipeline_id"),
                ("stage_id", "stage_id"),
                ("status", "status"),
            ],
            Self::Activity => &[
                ("owner_id", "owner_id"),
                ("deal_id", "deal_id"),
                ("person_id", "person_id"),
                ("org_id", "org_id"),
                ("done", "done"),
            ],
        }
    }

    /// The query parameters search filters on, with the field each compares.
    fn search_filters(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Self::Person => &[("organization_id", "org_id")],
            Self::Deal => &[
                ("organization_id", "org_id"),
                ("person_id", "person_id"),
                ("status", "status"),
            ],
            Self::Organization | Self::Activity => &[],
        }
    }
}

#[derive(Debug, Clone)]
struct Rec {
    /// Every standard field, in the order answers show them.
    fields: Map<String, Value>,
    /// The custom fields that are set (never `null`).
    custom: Map<String, Value>,
    add_time: DateTime<Utc>,
    update_time: DateTime<Utc>,
    /// When search starts to see it.
    searchable_at: Instant,
}

/// A checked write body: (standard fields, custom fields), as kept.
type Checked = (Map<String, Value>, Map<String, Value>);

/// The records and the custom field definitions.
#[derive(Debug, Default)]
struct Store {
    /// The last id given, per type.
    last_id: BTreeMap<Kind, i64>,
    records: BTreeMap<Kind, BTreeMap<i64, Rec>>,
    /// Key → name, per type.
    custom_fields: BTreeMap<Kind, BTreeMap<String, String>>,
}

/// The current time, in whole seconds (Pipedrive's precision).
fn now_secs() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(0)
}

fn stamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A success envelope.
fn ok(data: Value, additional: Value) -> Reply {
    Reply::json(
        200,
        json!({ "success": true, "data": data, "additional_data": additional }),
    )
}

/// Pipedrive's error envelope.
fn error_with(status: u16, message: &str, info: &str) -> Reply {
    Reply::json(
        status,
        json!({
            "success": false,
            "error": message,
            "error_info": info,
            "data": null,
            "additional_data": null,
        }),
    )
}

fn error(status: u16, message: &str) -> Reply {
    error_with(status, message, ERROR_INFO)
}

fn bad_request(message: &str) -> Reply {
    error(400, message)
}

fn unauthorized() -> Reply {
    Reply::json(
        401,
        json!({
            "success": false,
            "error": "unauthorized access",
            "errorCode": 401,
            "error_info": ERROR_INFO,
            "data": null,
            "additional_data": null,
        }),
    )
}

fn account_closed() -> Reply {
    error_with(
        402,
        "Company account is not open",
        "Please check that you have an active subscription.",
    )
}

fn forbidden() -> Reply {
    error(403, "You do not have permission to perform this action")
}

fn not_found(kind: Kind) -> Reply {
    error(404, &format!("{} not found", kind.noun()))
}

fn unknown_method() -> Reply {
    error(404, "Unknown method .")
}

fn over_limit() -> Reply {
    error_with(
        429,
        "Request over limit",
        "Please check developers.pipedrive.com",
    )
}

fn oauth_error(status: u16, error: &str, description: &str) -> Reply {
    Reply::json(
        status,
        json!({ "error": error, "error_description": description }),
    )
}

fn bad_field(name: &str, expected: &str) -> Reply {
    bad_request(&format!(
        "Invalid value for field '{name}': expected {expected}"
    ))
}

fn bad_param(name: &str, expected: &str) -> Reply {
    bad_request(&format!(
        "Invalid value for parameter '{name}': expected {expected}"
    ))
}

/// A JSON body that must be an object.
fn parse_object(body: &[u8]) -> Result<Map<String, Value>, Reply> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(bad_request("The request body must be a JSON object")),
        Err(e) => Err(bad_request(&format!("Invalid JSON in request body: {e}"))),
    }
}

fn plausible_email(text: &str) -> bool {
    let Some((local, domain)) = text.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !text.chars().any(char::is_whitespace)
}

fn positive_id(value: &Value) -> Option<i64> {
    value.as_i64().filter(|n| *n > 0)
}

/// `YYYY-MM-DD`.
fn is_date(text: &str) -> bool {
    text.len() == 10 && NaiveDate::parse_from_str(text, "%Y-%m-%d").is_ok()
}

/// `HH:MM`, hours at most `max_hours`.
fn is_hh_mm(text: &str, max_hours: u32) -> bool {
    let b = text.as_bytes();
    if b.len() != 5 || b[2] != b':' {
        return false;
    }
    let digits = [b[0], b[1], b[3], b[4]];
    if !digits.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let n = |x: u8, y: u8| u32::from(x - b'0') * 10 + u32::from(y - b'0');
    n(b[0], b[1]) <= max_hours && n(b[3], b[4]) <= 59
}

/// A value as search and search items show it: text (`null` is none).
fn value_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// An address or location as text: a string, or an object's `value`.
fn place_text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("value").and_then(Value::as_str).map(str::to_owned),
        _ => None,
    }
}

/// Whether a field's value is what a query parameter names.
fn same_as_param(value: Option<&Value>, param: &str) -> bool {
    match value {
        Some(Value::String(s)) => s == param,
        Some(Value::Number(n)) => n.to_string() == param,
        Some(Value::Bool(b)) => b.to_string() == param,
        _ => false,
    }
}

/// An opaque paging cursor: base64url of `{"<key>": n}`.
fn make_cursor(key: &str, n: u64) -> String {
    let mut map = Map::new();
    map.insert(key.to_owned(), n.into());
    base64_encode(Value::Object(map).to_string().as_bytes())
}

fn read_cursor(cursor: Option<&str>, key: &str) -> Result<u64, Reply> {
    let Some(text) = cursor.filter(|c| !c.is_empty()) else {
        return Ok(0);
    };
    base64_decode(text)
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .and_then(|v| v.get(key).and_then(Value::as_u64))
        .ok_or_else(|| bad_request(&format!("Invalid cursor: {text}")))
}

fn parse_limit(query: &[(String, String)]) -> Result<usize, Reply> {
    match pair(query, "limit") {
        None | Some("") => Ok(DEFAULT_LIMIT),
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|l| (1..=MAX_LIMIT).contains(l))
            .ok_or_else(|| bad_param("limit", &format!("a number from 1 to {MAX_LIMIT}"))),
    }
}

/// Whether a custom field key is shaped like Pipedrive's: 40 lowercase hex digits.
fn is_field_key(key: &str) -> bool {
    key.len() == 40
        && key
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl Store {
    fn get(&self, kind: Kind, id: i64) -> Option<&Rec> {
        self.records.get(&kind)?.get(&id)
    }

    fn exists(&self, kind: Kind, id: i64) -> bool {
        self.get(kind, id).is_some()
    }

    fn records(&self, kind: Kind) -> impl Iterator<Item = (i64, &Rec)> {
        self.records
            .get(&kind)
            .into_iter()
            .flat_map(|records| records.iter().map(|(id, rec)| (*id, rec)))
    }

    /// A link field's value: a positive id of an existing record, or `null`.
    fn check_link(&self, name: &str, value: &Value, target: Kind) -> Result<Value, Reply> {
        if value.is_null() {
            return Ok(Value::Null);
        }
        let id =
            positive_id(value).ok_or_else(|| bad_field(name, "a positive integer id or null"))?;
        if self.exists(target, id) {
            Ok(id.into())
        } else {
            Err(bad_request(&format!(
                "Invalid value for field '{name}': {} {id} not found",
                target.noun()
            )))
        }
    }

    /// Checks one standard field's value, and returns it as kept.
    fn check_field(&self, name: &str, value: &Value) -> Result<Value, Reply> {
        let bad = |expected: &str| bad_field(name, expected);
        match name {
            "name" | "title" => match value {
                Value::String(s) if !s.trim().is_empty() => Ok(value.clone()),
                _ => Err(bad("a non-empty string")),
            },
            "first_name" | "last_name" | "subject" | "public_description" | "note" => match value {
                Value::Null | Value::String(_) => Ok(value.clone()),
                _ => Err(bad("a string or null")),
            },
            "owner_id" | "pipeline_id" | "stage_id" => positive_id(value)
                .map(Value::from)
                .ok_or_else(|| bad("a positive integer")),
            "org_id" => self.check_link(name, value, Kind::Organization),
            "person_id" => self.check_link(name, value, Kind::Person),
            "deal_id" => self.check_link(name, value, Kind::Deal),
            "emails" => contact_list(name, value, true),
            "phones" => contact_list(name, value, false),
            "visible_to" => value
                .as_i64()
                .filter(|v| VISIBILITY.contains(v))
                .map(Value::from)
                .ok_or_else(|| bad("one of 1, 3, 5, 7")),
            "label_ids" => match value {
                Value::Array(ids) if ids.iter().all(|id| positive_id(id).is_some()) => {
                    Ok(value.clone())
                }
                _ => Err(bad("an array of positive integers")),
            },
            "address" | "location" => match value {
                Value::Null | Value::String(_) | Value::Object(_) => Ok(value.clone()),
                _ => Err(bad("a string, an object or null")),
            },
            "value" => match value {
                Value::Number(_) => Ok(value.clone()),
                _ => Err(bad("a number")),
            },
            "currency" => match value.as_str() {
                Some(c) if c.len() == 3 && c.bytes().all(|b| b.is_ascii_alphabetic()) => {
                    Ok(value.clone())
                }
                _ => Err(bad("a 3-letter currency code")),
            },
            "status" => match value.as_str() {
                Some(s) if DEAL_STATUSES.contains(&s) => Ok(value.clone()),
                _ => Err(bad("one of open, won, lost, deleted")),
            },
            "expected_close_date" => match value {
                Value::Null => Ok(Value::Null),
                Value::String(s) if is_date(s) => Ok(value.clone()),
                _ => Err(bad("a date (YYYY-MM-DD) or null")),
            },
            "due_date" => match value {
                Value::String(s) if is_date(s) => Ok(value.clone()),
                _ => Err(bad("a date (YYYY-MM-DD)")),
            },
            "due_time" => match value {
                Value::Null => Ok(Value::Null),
                Value::String(s) if is_hh_mm(s, 23) => Ok(value.clone()),
                _ => Err(bad("a time (HH:MM) or null")),
            },
            "duration" => match value {
                Value::Null => Ok(Value::Null),
                Value::String(s) if is_hh_mm(s, 99) => Ok(value.clone()),
                _ => Err(bad("a duration (HH:MM) or null")),
            },
            "busy" | "done" => match value {
                Value::Bool(_) => Ok(value.clone()),
                _ => Err(bad("a boolean")),
            },
            "priority" => match value {
                Value::Null => Ok(Value::Null),
                Value::Number(n) if n.is_i64() || n.is_u64() => Ok(value.clone()),
                _ => Err(bad("an integer or null")),
            },
            "type" => match value.as_str() {
                Some(t) if ACTIVITY_TYPES.contains(&t) => Ok(value.clone()),
                _ => Err(error_with(
                    400,
                    "Invalid activity type",
                    &format!("Field 'type' must be one of: {}", ACTIVITY_TYPES.join(", ")),
                )),
            },
            "participants" => self.check_participants(value),
            _ => Err(bad_request(&format!("Unknown field: {name}"))),
        }
    }

    /// `participants`: `[{"person_id", "primary"}]`, each person existing.
    fn check_participants(&self, value: &Value) -> Result<Value, Reply> {
        let bad = || bad_field("participants", "an array of {\"person_id\", \"primary\"}");
        let list = value.as_array().ok_or_else(bad)?;
        let mut out = Vec::new();
        for item in list {
            let item = item.as_object().ok_or_else(bad)?;
            if item.keys().any(|k| k != "person_id" && k != "primary") {
                return Err(bad());
            }
            let id = item
                .get("person_id")
                .and_then(positive_id)
                .ok_or_else(bad)?;
            if !self.exists(Kind::Person, id) {
                return Err(bad_request(&format!(
                    "Invalid value for field 'participants': Person {id} not found"
                )));
            }
            let primary = match item.get("primary") {
                None => false,
                Some(Value::Bool(b)) => *b,
                Some(_) => return Err(bad()),
            };
            out.push(json!({ "person_id": id, "primary": primary }));
        }
        Ok(Value::Array(out))
    }

    /// Checks a write's body: (standard fields, custom fields), as kept.
    fn validate(&self, kind: Kind, body: &Map<String, Value>) -> Result<Checked, Reply> {
        let mut fields = Map::new();
        let mut custom = Map::new();
        for (name, value) in body {
            if name == "custom_fields" {
                let Value::Object(values) = value else {
                    return Err(bad_field(name, "an object"));
                };
                let defined = self.custom_fields.get(&kind);
                for (key, value) in values {
                    if !defined.is_some_and(|d| d.contains_key(key)) {
                        return Err(bad_request(&format!("Custom field {key} does not exist")));
                    }
                    custom.insert(key.clone(), value.clone());
                }
            } else if kind.fields().contains(&name.as_str()) {
                fields.insert(name.clone(), self.check_field(name, value)?);
            } else {
                return Err(bad_request(&format!("Unknown field: {name}")));
            }
        }
        Ok((fields, custom))
    }

    /// Creates a record, searchable `lag` from now; its id.
    fn create(
        &mut self,
        kind: Kind,
        body: &Map<String, Value>,
        lag: Duration,
    ) -> Result<i64, Reply> {
        let (changes, custom) = self.validate(kind, body)?;
        let required = kind.required();
        if !changes.contains_key(required) {
            return Err(bad_request(&format!("Field '{required}' is required")));
        }
        let mut fields = kind.defaults();
        for (name, value) in changes {
            fields.insert(name, value);
        }
        if kind == Kind::Activity && fields.get("subject").is_none_or(Value::is_null) {
            let subject = fields
                .get("type")
                .and_then(Value::as_str)
                .map(|t| {
                    let mut chars = t.chars();
                    chars
                        .next()
                        .map(|c| c.to_uppercase().chain(chars).collect::<String>())
                        .unwrap_or_default()
                })
                .unwrap_or_default();
            fields.insert("subject".into(), subject.into());
        }
        let id = self.last_id.get(&kind).copied().unwrap_or(0) + 1;
        self.last_id.insert(kind, id);
        let now = now_secs();
        let rec = Rec {
            fields,
            custom: custom.into_iter().filter(|(_, v)| !v.is_null()).collect(),
            add_time: now,
            update_time: now,
            searchable_at: Instant::now() + lag,
        };
        self.records.entry(kind).or_default().insert(id, rec);
        Ok(id)
    }

    /// Changes a record; a change that changes something restarts its search lag.
    fn update(
        &mut self,
        kind: Kind,
        id: i64,
        body: &Map<String, Value>,
        lag: Duration,
    ) -> Result<(), Reply> {
        if !self.exists(kind, id) {
            return Err(not_found(kind));
        }
        let (changes, custom) = self.validate(kind, body)?;
        let rec = self
            .records
            .get_mut(&kind)
            .and_then(|records| records.get_mut(&id))
            .ok_or_else(|| not_found(kind))?;
        let before = (rec.fields.clone(), rec.custom.clone());
        for (name, value) in changes {
            rec.fields.insert(name, value);
        }
        for (key, value) in custom {
            if value.is_null() {
                rec.custom.remove(&key);
            } else {
                rec.custom.insert(key, value);
            }
        }
        if before != (rec.fields.clone(), rec.custom.clone()) {
            rec.update_time = now_secs();
            rec.searchable_at = Instant::now() + lag;
        }
        Ok(())
    }

    /// A record as the API answers it.
    fn record_json(&self, kind: Kind, id: i64, rec: &Rec) -> Map<String, Value> {
        let mut out = Map::new();
        out.insert("id".into(), id.into());
        for (name, value) in &rec.fields {
            out.insert(name.clone(), value.clone());
        }
        out.insert("add_time".into(), stamp(rec.add_time).into());
        out.insert("update_time".into(), stamp(rec.update_time).into());
        out.insert("is_deleted".into(), false.into());
        let custom: Map<String, Value> = self
            .custom_fields
            .get(&kind)
            .into_iter()
            .flat_map(|defined| defined.keys())
            .map(|key| {
                (
                    key.clone(),
                    rec.custom.get(key).cloned().unwrap_or(Value::Null),
                )
            })
            .collect();
        out.insert("custom_fields".into(), Value::Object(custom));
        out
    }

    fn answer(&self, kind: Kind, id: i64) -> Answer {
        let rec = self.get(kind, id).ok_or_else(|| not_found(kind))?;
        Ok(ok(
            Value::Object(self.record_json(kind, id, rec)),
            Value::Null,
        ))
    }

    /// The values of a record's custom fields, as text, by key.
    fn custom_texts(&self, kind: Kind, rec: &Rec) -> Vec<String> {
        self.custom_fields
            .get(&kind)
            .into_iter()
            .flat_map(|defined| defined.keys())
            .filter_map(|key| rec.custom.get(key).and_then(value_text))
            .collect()
    }

    /// The texts a search field of a record matches against.
    fn search_texts(&self, kind: Kind, rec: &Rec, field: &str) -> Vec<String> {
        let text = |name: &str| {
            rec.fields
                .get(name)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .into_iter()
                .collect()
        };
        match field {
            "name" | "title" => text(field),
            "email" => list_values(rec.fields.get("emails")),
            "phone" => list_values(rec.fields.get("phones")),
            "address" => place_text(rec.fields.get("address")).into_iter().collect(),
            "custom_fields" => self.custom_texts(kind, rec),
            _ => Vec::new(),
        }
    }

    /// `{"id", "name"}` of a linked person, or `null`.
    fn person_ref(&self, id: Option<&Value>) -> Value {
        let Some(id) = id.and_then(Value::as_i64) else {
            return Value::Null;
        };
        self.get(Kind::Person, id).map_or(
            Value::Null,
            |rec| json!({ "id": id, "name": rec.fields.get("name") }),
        )
    }

    /// `{"id", "name", "address"}` of a linked organization, or `null`.
    fn org_ref(&self, id: Option<&Value>) -> Value {
        let Some(id) = id.and_then(Value::as_i64) else {
            return Value::Null;
        };
        self.get(Kind::Organization, id).map_or(Value::Null, |rec| {
            json!({
                "id": id,
                "name": rec.fields.get("name"),
                "address": place_text(rec.fields.get("address")),
            })
        })
    }

    /// A record as a search item shows it.
    fn search_item(&self, kind: Kind, id: i64, rec: &Rec) -> Value {
        let field = |name: &str| rec.fields.get(name).cloned().unwrap_or(Value::Null);
        let owner = json!({ "id": field("owner_id") });
        let custom = self.custom_texts(kind, rec);
        let update_time = stamp(rec.update_time);
        match kind {
            Kind::Person => json!({
                "id": id,
                "type": "person",
                "name": field("name"),
                "phones": list_values(rec.fields.get("phones")),
                "emails": list_values(rec.fields.get("emails")),
                "visible_to": field("visible_to"),
                "owner": owner,
                "organization": self.org_ref(rec.fields.get("org_id")),
                "custom_fields": custom,
                "notes": [],
                "update_time": update_time,
            }),
            Kind::Organization => json!({
                "id": id,
                "type": "organization",
                "name": field("name"),
                "address": place_text(rec.fields.get("address")),
                "visible_to": field("visible_to"),
                "owner": owner,
                "custom_fields": custom,
                "notes": [],
                "update_time": update_time,
            }),
            Kind::Deal | Kind::Activity => json!({
                "id": id,
                "type": "deal",
                "title": field("title"),
                "value": field("value"),
                "currency": field("currency"),
                "status": field("status"),
                "visible_to": field("visible_to"),
                "owner": owner,
                "person": self.person_ref(rec.fields.get("person_id")),
                "organization": self.org_ref(rec.fields.get("org_id")),
                "custom_fields": custom,
                "notes": [],
                "update_time": update_time,
            }),
        }
    }
}

/// The `value`s of an emails or phones list.
fn list_values(list: Option<&Value>) -> Vec<String> {
    list.and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|item| item.get("value").and_then(Value::as_str))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// `emails` / `phones`: `[{"value", "primary", "label"}]`, as kept (a `label` of `work`
/// and the first one primary unless given).
fn contact_list(name: &str, value: &Value, email: bool) -> Result<Value, Reply> {
    let bad = || {
        bad_field(
            name,
            "an array of {\"value\": string, \"primary\": boolean, \"label\": string}",
        )
    };
    let list = value.as_array().ok_or_else(bad)?;
    let mut out = Vec::new();
    for item in list {
        let item = item.as_object().ok_or_else(bad)?;
        if item
            .keys()
            .any(|k| !["value", "primary", "label"].contains(&k.as_str()))
        {
            return Err(bad());
        }
        let text = item
            .get("value")
            .and_then(Value::as_str)
            .filter(|v| !v.trim().is_empty())
            .ok_or_else(bad)?;
        if email && !plausible_email(text) {
            return Err(bad_request(&format!(
                "Invalid value for field '{name}': {text} is not a valid email address"
            )));
        }
        let primary = match item.get("primary") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(bad()),
        };
        let label = match item.get("label") {
            None | Some(Value::Null) => "work",
            Some(Value::String(l)) => l.as_str(),
            Some(_) => return Err(bad()),
        };
        out.push(json!({ "value": text, "primary": primary, "label": label }));
    }
    if !out.iter().any(|e| e["primary"] == true)
        && let Some(first) = out.first_mut()
    {
        first["primary"] = true.into();
    }
    Ok(Value::Array(out))
}

/// What a request is for.
#[derive(Debug)]
enum Route {
    Token,
    Create(Kind),
    List(Kind),
    Search(Kind),
    Get(Kind, i64),
    Patch(Kind, i64),
    Delete(Kind, i64),
    /// A record path whose id is not a positive integer.
    BadId(String),
    /// No such endpoint; `api` when under `/api` (so auth applies).
    NotFound {
        api: bool,
    },
}

fn route(method: &Method, path: &str) -> Route {
    let segments: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(decode_segment)
        .collect();
    let s: Vec<&str> = segments.iter().map(String::as_str).collect();
    let api = Route::NotFound { api: true };
    match (method.as_str(), s.as_slice()) {
        ("POST", ["oauth", "token"]) => Route::Token,
        (m, ["api", "v2", ty, rest @ ..]) => {
            let Some(kind) = Kind::from_path(ty) else {
                return api;
            };
            match (m, rest) {
                ("POST", []) => Route::Create(kind),
                ("GET", []) => Route::List(kind),
                ("GET", ["search"]) if !kind.search_fields().is_empty() => Route::Search(kind),
                (_, ["search"]) => api,
                ("GET" | "PATCH" | "DELETE", [id]) => {
                    let Some(id) = id.parse::<i64>().ok().filter(|id| *id > 0) else {
                        return Route::BadId((*id).to_owned());
                    };
                    match m {
                        "GET" => Route::Get(kind, id),
                        "PATCH" => Route::Patch(kind, id),
                        _ => Route::Delete(kind, id),
                    }
                }
                _ => api,
            }
        }
        (_, ["api", ..]) => api,
        _ => Route::NotFound { api: false },
    }
}

/// The credentials a request carries.
#[derive(Debug, Default)]
struct Credentials {
    /// `x-api-token`.
    api_token: Option<String>,
    /// `Authorization: Bearer …`.
    bearer: Option<String>,
    /// `Authorization: Basic …`, decoded: (user, password).
    basic: Option<(String, String)>,
    /// `?api_token=` (possibly empty).
    url_token: Option<String>,
}

impl Credentials {
    fn of(headers: &HeaderMap, uri: &Uri) -> Self {
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        let authorization = header("authorization");
        let scheme = |wanted: &str| {
            let (scheme, value) = authorization.as_deref()?.split_once(' ')?;
            scheme
                .eq_ignore_ascii_case(wanted)
                .then(|| value.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let basic = scheme("basic")
            .and_then(|b| base64_decode(&b))
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .and_then(|text| {
                text.split_once(':')
                    .map(|(user, password)| (user.to_owned(), password.to_owned()))
            });
        let url_token = parse_pairs(uri.query().unwrap_or_default())
            .into_iter()
            .find(|(k, _)| k == "api_token")
            .map(|(_, v)| v);
        Self {
            api_token: header("x-api-token"),
            bearer: scheme("bearer"),
            basic,
            url_token,
        }
    }
}

struct Inner {
    options: PipedriveOptions,
    base_url: String,
    account_open: bool,
    /// OAuth access token → when it expires.
    access_tokens: HashMap<String, Instant>,
    tokens_issued: usize,
    /// Per token, the calls let through in the window.
    burst_calls: HashMap<String, VecDeque<Instant>>,
    /// Per token, the search calls let through in the window.
    search_calls: HashMap<String, VecDeque<Instant>>,
    requests: Vec<PipedriveRequest>,
    rate_limited: usize,
    faults: VecDeque<Fault>,
    forbidden: BTreeSet<Kind>,
    store: Store,
}

fn prune(calls: &mut VecDeque<Instant>, now: Instant, window: Duration) {
    while calls.front().is_some_and(|at| *at + window <= now) {
        calls.pop_front();
    }
}

/// Whole seconds until the oldest call leaves the window, at least 1.
fn reset_secs(calls: &VecDeque<Instant>, now: Instant, window: Duration) -> u64 {
    let left = calls.front().map_or(window, |oldest| {
        (*oldest + window).saturating_duration_since(now)
    });
    (left.as_secs() + u64::from(left.subsec_nanos() > 0)).max(1)
}

impl Inner {
    fn new(options: PipedriveOptions, base_url: String) -> Self {
        Self {
            account_open: options.account_open,
            options,
            base_url,
            access_tokens: HashMap::new(),
            tokens_issued: 0,
            burst_calls: HashMap::new(),
            search_calls: HashMap::new(),
            requests: Vec::new(),
            rate_limited: 0,
            faults: VecDeque::new(),
            forbidden: BTreeSet::new(),
            store: Store::default(),
        }
    }

    /// Answers a request; the second part says how to deliver the answer.
    fn process(
        &mut self,
        method: &Method,
        uri: &Uri,
        credentials: &Credentials,
        body: &[u8],
    ) -> (Reply, After) {
        let route = route(method, uri.path());
        match route {
            Route::Token => return (self.grant(credentials, body), After::Answer),
            Route::NotFound { api: false } => return (unknown_method(), After::Answer),
            _ => {}
        }
        let token = match self.authenticate(credentials) {
            Ok(token) => token,
            Err(reply) => return (reply, After::Answer),
        };
        let (limited, headers) = self.count_call(&token, matches!(route, Route::Search(_)));
        let (mut reply, after) = if limited {
            self.rate_limited += 1;
            (over_limit(), After::Answer)
        } else if !self.account_open {
            (account_closed(), After::Answer)
        } else {
            Fault::answer(
                self.faults.pop_front(),
                |status| error(status, "Internal server error"),
                || self.apply(route, uri, body),
            )
        };
        reply.add_headers(headers);
        (reply, after)
    }

    /// The token a call is made with, if valid: the `x-api-token` header, else the bearer
    /// token, else the `api_token` query parameter.
    fn authenticate(&self, credentials: &Credentials) -> Result<String, Reply> {
        let api_token = |token: &str| {
            if self.options.api_tokens.iter().any(|t| t == token) {
                Ok(token.to_owned())
            } else {
                Err(unauthorized())
            }
        };
        if let Some(token) = &credentials.api_token {
            return api_token(token);
        }
        if let Some(token) = &credentials.bearer {
            return match self.access_tokens.get(token) {
                Some(expires) if Instant::now() < *expires => Ok(token.clone()),
                _ => Err(unauthorized()),
            };
        }
        if let Some(token) = &credentials.url_token {
            return api_token(token);
        }
        Err(unauthorized())
    }

    /// Counts a call of `token` against the burst limits: whether it is over one (then it
    /// takes no slot), and the rate-limit headers.
    fn count_call(&mut self, token: &str, search: bool) -> (bool, Vec<(&'static str, String)>) {
        let now = Instant::now();
        let window = self.options.burst_window;
        let calls = self.burst_calls.entry(token.to_owned()).or_default();
        prune(calls, now, window);
        let searches = self.search_calls.entry(token.to_owned()).or_default();
        prune(searches, now, window);
        let (limit, over) = if calls.len() >= self.options.burst {
            (self.options.burst, Some(&*calls))
        } else if search && searches.len() >= self.options.search_burst {
            (self.options.search_burst, Some(&*searches))
        } else {
            (self.options.burst, None)
        };
        if let Some(full) = over {
            let reset = reset_secs(full, now, window).to_string();
            return (
                true,
                vec![
                    ("x-ratelimit-limit", limit.to_string()),
                    ("x-ratelimit-remaining", "0".to_owned()),
                    ("x-ratelimit-reset", reset.clone()),
                    ("retry-after", reset),
                ],
            );
        }
        calls.push_back(now);
        if search {
            searches.push_back(now);
        }
        let calls = &*calls;
        (
            false,
            vec![
                ("x-ratelimit-limit", limit.to_string()),
                (
                    "x-ratelimit-remaining",
                    limit.saturating_sub(calls.len()).to_string(),
                ),
                (
                    "x-ratelimit-reset",
                    reset_secs(calls, now, window).to_string(),
                ),
            ],
        )
    }

    /// `POST /oauth/token`.
    fn grant(&mut self, credentials: &Credentials, body: &[u8]) -> Reply {
        let Some((id, secret, refresh)) = self.options.oauth.clone() else {
            return oauth_error(401, "invalid_client", "Invalid client");
        };
        let client_ok = credentials
            .basic
            .as_ref()
            .is_some_and(|(user, password)| *user == id && *password == secret);
        if !client_ok {
            return oauth_error(401, "invalid_client", "Invalid client");
        }
        let form = parse_pairs(&String::from_utf8_lossy(body));
        let field = |k: &str| pair(&form, k).unwrap_or_default();
        if field("grant_type") != "refresh_token" {
            return oauth_error(400, "unsupported_grant_type", "Unsupported grant type");
        }
        if field("refresh_token") != refresh {
            return oauth_error(400, "invalid_grant", "Invalid refresh token");
        }
        let token = format!("pd-oauth-{}", uuid::Uuid::now_v7().simple());
        let ttl = self.options.access_token_ttl;
        self.access_tokens
            .insert(token.clone(), Instant::now() + ttl);
        self.tokens_issued += 1;
        Reply::json(
            200,
            json!({
                "access_token": token,
                "token_type": "Bearer",
                "refresh_token": refresh,
                "scope": OAUTH_SCOPE,
                "expires_in": self.options.token_expires_in.clone().unwrap_or_else(|| json!(ttl.as_secs())),
                "api_domain": self.base_url,
            }),
        )
    }

    fn apply(&mut self, route: Route, uri: &Uri, body: &[u8]) -> Reply {
        let query = parse_pairs(uri.query().unwrap_or_default());
        let lag = self.options.search_lag;
        let answer = match route {
            Route::Create(kind) => self.writable(kind).and_then(|()| {
                let body = parse_object(body)?;
                let id = self.store.create(kind, &body, lag)?;
                self.store.answer(kind, id)
            }),
            Route::Patch(kind, id) => self.writable(kind).and_then(|()| {
                if !self.store.exists(kind, id) {
                    return Err(not_found(kind));
                }
                let body = parse_object(body)?;
                self.store.update(kind, id, &body, lag)?;
                self.store.answer(kind, id)
            }),
            Route::Delete(kind, id) => self.writable(kind).and_then(|()| {
                self.store
                    .records
                    .get_mut(&kind)
                    .and_then(|records| records.remove(&id))
                    .ok_or_else(|| not_found(kind))?;
                Ok(Reply::json(
                    200,
                    json!({ "success": true, "data": { "id": id } }),
                ))
            }),
            Route::Get(kind, id) => self.store.answer(kind, id),
            Route::List(kind) => self.list(kind, &query),
            Route::Search(kind) => self.search(kind, &query),
            Route::BadId(id) => Err(bad_request(&format!(
                "Invalid value for parameter 'id': expected a positive integer, got {id}"
            ))),
            Route::Token | Route::NotFound { .. } => Err(unknown_method()),
        };
        answer.unwrap_or_else(|reply| reply)
    }

    fn writable(&self, kind: Kind) -> Result<(), Reply> {
        if self.forbidden.contains(&kind) {
            Err(forbidden())
        } else {
            Ok(())
        }
    }

    /// `GET /api/v2/{type}`: by id, from the primary store.
    fn list(&self, kind: Kind, query: &[(String, String)]) -> Answer {
        let limit = parse_limit(query)?;
        let after = read_cursor(pair(query, "cursor"), "after")?;
        let time = |name: &str| -> Result<Option<DateTime<Utc>>, Reply> {
            match pair(query, name) {
                None | Some("") => Ok(None),
                Some(text) => DateTime::parse_from_rfc3339(text)
                    .map(|t| Some(t.with_timezone(&Utc)))
                    .map_err(|_| bad_param(name, "an RFC 3339 date-time")),
            }
        };
        let since = time("updated_since")?;
        let until = time("updated_until")?;
        let filters: Vec<(&str, &str)> = kind
            .list_filters()
            .iter()
            .filter_map(|(param, field)| {
                pair(query, param)
                    .filter(|v| !v.is_empty())
                    .map(|v| (*field, v))
            })
            .collect();
        let matching: Vec<(i64, &Rec)> = self
            .store
            .records(kind)
            .filter(|(id, _)| u64::try_from(*id).is_ok_and(|id| id > after))
            .filter(|(_, rec)| since.is_none_or(|s| rec.update_time >= s))
            .filter(|(_, rec)| until.is_none_or(|u| rec.update_time < u))
            .filter(|(_, rec)| {
                filters
                    .iter()
                    .all(|(field, v)| same_as_param(rec.fields.get(*field), v))
            })
            .collect();
        let page: Vec<Value> = matching
            .iter()
            .take(limit)
            .map(|(id, rec)| Value::Object(self.store.record_json(kind, *id, rec)))
            .collect();
        let next = if matching.len() > limit {
            matching
                .get(limit - 1)
                .and_then(|(id, _)| u64::try_from(*id).ok())
                .map(|id| Value::String(make_cursor("after", id)))
                .unwrap_or(Value::Null)
        } else {
            Value::Null
        };
        Ok(ok(Value::Array(page), json!({ "next_cursor": next })))
    }

    /// `GET /api/v2/{type}/search`: what the index sees now, by id.
    fn search(&self, kind: Kind, query: &[(String, String)]) -> Answer {
        let exact = match pair(query, "exact_match") {
            None | Some("" | "false" | "0") => false,
            Some("true" | "1") => true,
            Some(_) => return Err(bad_param("exact_match", "true or false")),
        };
        let term = pair(query, "term")
            .unwrap_or_default()
            .trim()
            .to_lowercase();
        let length = term.chars().count();
        if length < 2 && !(exact && length == 1) {
            return Err(bad_param(
                "term",
                "at least 2 characters (1 with exact_match)",
            ));
        }
        let allowed = kind.search_fields();
        let fields: Vec<&str> = match pair(query, "fields").filter(|f| !f.trim().is_empty()) {
            None => allowed.to_vec(),
            Some(list) => {
                let mut fields = Vec::new();
                for field in list.split(',').map(str::trim).filter(|f| !f.is_empty()) {
                    let known = allowed.iter().find(|a| **a == field).ok_or_else(|| {
                        bad_param("fields", &format!("any of {}", allowed.join(", ")))
                    })?;
                    fields.push(*known);
                }
                fields
            }
        };
        let limit = parse_limit(query)?;
        let offset =
            usize::try_from(read_cursor(pair(query, "cursor"), "offset")?).unwrap_or(usize::MAX);
        let filters: Vec<(&str, &str)> = kind
            .search_filters()
            .iter()
            .filter_map(|(param, field)| {
                pair(query, param)
                    .filter(|v| !v.is_empty())
                    .map(|v| (*field, v))
            })
            .collect();
        let now = Instant::now();
        let hits = |value: &String| {
            let value = value.to_lowercase();
            if exact {
                value == term
            } else {
                value.contains(&term)
            }
        };
        let matching: Vec<(i64, &Rec)> = self
            .store
            .records(kind)
            .filter(|(_, rec)| rec.searchable_at <= now)
            .filter(|(_, rec)| {
                filters
                    .iter()
                    .all(|(field, v)| same_as_param(rec.fields.get(*field), v))
            })
            .filter(|(_, rec)| {
                fields
                    .iter()
                    .any(|field| self.store.search_texts(kind, rec, field).iter().any(hits))
            })
            .collect();
        let items: Vec<Value> = matching
            .iter()
            .skip(offset)
            .take(limit)
            .map(|(id, rec)| {
                json!({
                    "result_score": 1.0,
                    "item": self.store.search_item(kind, *id, rec),
                })
            })
            .collect();
        let end = offset.saturating_add(limit);
        let next = if matching.len() > end {
            Value::String(make_cursor(
                "offset",
                u64::try_from(end).unwrap_or(u64::MAX),
            ))
        } else {
            Value::Null
        };
        Ok(ok(
            json!({ "items": items }),
            json!({ "next_cursor": next }),
        ))
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
        self.lock().tokens_issued
    }

    /// Makes every OAuth access token issued so far expired (API tokens stay valid).
    pub fn expire_tokens_now(&self) {
        let now = Instant::now();
        for expires in self.lock().access_tokens.values_mut() {
            *expires = (*expires).min(now);
        }
    }

    /// Opens or closes the company account (closed: every authenticated call is 402).
    pub fn set_account_open(&self, open: bool) {
        self.lock().account_open = open;
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
            Err(reply) => panic!("seed {object}: {:?}", reply.body),
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
        });
        let index = s.requests.len() - 1;
        let (reply, after) = s.process(&method, &uri, &credentials, &body);
        (reply, after, index)
    };
    let set_status = |status: u16| {
        if let Some(r) = lock(&state).requests.get_mut(index) {
            r.status = status;
        }
    };
    after.deliver(reply, set_status).await
}
