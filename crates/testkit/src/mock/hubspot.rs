//! A stateful mock of the HubSpot CRM v3 API (plus the v4 association calls, the OAuth
//! token endpoint and the daily-usage endpoint), for driving the HubSpot connector end to
//! end.
//!
//! What it models, with HubSpot's documented bodies:
//! - **Auth.** Every `/crm/*` and `/account-info/*` call needs `Authorization: Bearer
//!   <token>`: a static private-app token from [`HubSpotOptions::tokens`], or an access
//!   token issued by `POST /oauth/v1/token` (`grant_type=refresh_token`) that has not
//!   expired. Otherwise 401 (`INVALID_AUTHENTICATION` or `EXPIRED_AUTHENTICATION`).
//! - **Rate limits**, checked after auth and before anything else: a rolling window over
//!   every authenticated call (429s included), an extra per-second limit on search calls
//!   and an optional daily limit, each answered with HubSpot's 429 body (no `Retry-After`:
//!   HubSpot sends none). Every authenticated answer carries the
//!   `X-HubSpot-RateLimit-*` headers.
//! - **Objects** of any type (`contacts`, `meetings`, `deals`, `companies`, custom ones
//!   such as `p_bookings` once they have a property), with property validation, unique
//!   properties (409 on a duplicate), lookups by `idProperty`, search, batch upsert,
//!   delete, and associations.
//! - **Asynchronous search indexing.** Search sees each record as it was `search_lag`
//!   ago: a record created less than that ago is not found, and an update shows in search
//!   only `search_lag` after it was made. Everything else (GET, PATCH, upsert, the
//!   uniqueness check) sees the current state. A deleted record is gone at once,
//!   everywhere.
//! - **Search** (`POST …/search`): filters of a group are ANDed, groups ORed; every
//!   HubSpot operator is understood (`EQ`/`NEQ` compare text, ignoring case for contacts'
//!   `email`; `IN`/`NOT_IN` ignore case; `LT`…`BETWEEN` compare numbers, else date-times,
//!   else text; `CONTAINS_TOKEN` is a case-insensitive substring match, `*` ignored), and
//!   an unknown one is a 400. Results go by id unless `sorts` says otherwise; `query`
//!   matches any property value containing it (case-insensitive). `limit` defaults to
//!   10 (at most 200); `after` is an offset.
//! - **Read shapes.** Create, PATCH and upsert answer every set property; GET, list and
//!   search answer the asked-for `properties` (`null` when unset) or HubSpot's defaults
//!   for the type, plus `hs_object_id` and the type's create / modification dates
//!   (`createdate`/`lastmodifieddate` for contacts, `createdate`/`hs_lastmodifieddate`
//!   for deals and companies, `hs_createdate`/`hs_lastmodifieddate` otherwise).
//! - **Faults** ([`Fault`]), queued with [`MockHubSpot::fail_next`] and taken by
//!   authenticated API calls in arrival order once auth and rate limits passed (never by
//!   `/oauth/v1/token`). `Status` answers without applying the call (HubSpot's
//!   `INTERNAL_ERROR` envelope when its body is empty); `Slow` applies the call, then waits
//!   before answering, so a client that gives up leaves the change made; `Drop` applies
//!   it, sends the status line, headers and half the body (a body-less answer as a 200),
//!   then drops the connection.
//!   `Headers` answers like an empty-bodied `Status`, with each header sent exactly as
//!   given (over the mock's own); `Endless` and `Drip` apply the call, then send a body
//!   that never ends, or one byte at a time.
//!
//! Invariants:
//! - Record ids come from one counter shared by every object type, starting at 101, so an
//!   id names one record of one type.
//! - Property values are kept as HubSpot returns them: strings (a number or boolean sent is
//!   kept as its text; `""` or `null` clears the property). Values are not otherwise
//!   normalised (an email keeps its case, a date its format).
//! - No two records of a type share a value of a unique property (`email` of contacts,
//!   compared case-insensitively, and any property defined unique, compared exactly).
//! - A request that fails (4xx, or a [`Fault::Status`]) changes nothing; a batch upsert is
//!   applied whole or not at all.
//! - Every request is recorded ([`MockHubSpot::requests`]), 401s and 429s included, with
//!   the status it was answered (0 while unanswered, or when the answer did not complete:
//!   dropped, endless or dripped).

use super::Fault;
use super::reply::{After, Answer, Reply, bind, spawn};
use super::wire::{decode_segment, pair, parse_pairs};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use chrono::{DateTime, NaiveDate, NaiveTime, SecondsFormat, TimeDelta, Utc};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// The allowed values of `hs_meeting_outcome`.
const MEETING_OUTCOMES: [&str; 5] = [
    "SCHEDULED",
    "COMPLETED",
    "RESCHEDULED",
    "NO_SHOW",
    "CANCELED",
];

/// Properties whose values must be a date-time (epoch milliseconds or ISO 8601).
const DATETIME_PROPERTIES: [&str; 4] = [
    "hs_timestamp",
    "hs_meeting_start_time",
    "hs_meeting_end_time",
    "closedate",
];

/// The most inputs a batch call takes.
const BATCH_MAX: usize = 100;

/// HubSpot-defined association type ids: (from type, to type, id). The first entry of a
/// pair is the unlabelled ("default") one.
const ASSOCIATION_TYPES: [(&str, &str, u32); 16] = [
    ("meetings", "contacts", 200),
    ("contacts", "meetings", 199),
    ("meetings", "companies", 188),
    ("companies", "meetings", 187),
    ("meetings", "deals", 212),
    ("deals", "meetings", 211),
    ("contacts", "companies", 279),
    ("contacts", "companies", 1),
    ("companies", "contacts", 280),
    ("companies", "contacts", 2),
    ("deals", "contacts", 3),
    ("contacts", "deals", 4),
    ("deals", "companies", 341),
    ("deals", "companies", 5),
    ("companies", "deals", 342),
    ("companies", "deals", 6),
];

/// How the mock is set up.
#[derive(Debug, Clone)]
pub struct HubSpotOptions {
    /// Static private-app tokens that are valid (default `["pat-test-token"]`).
    pub tokens: Vec<String>,
    /// An OAuth app: `(client_id, client_secret, refresh_token)`. With it,
    /// `POST /oauth/v1/token` grants access tokens for that refresh token.
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

/// What search sees of a record: its state at one moment, visible from `visible_at`.
#[derive(Debug, Clone)]
struct Snapshot {
    visible_at: Instant,
    props: BTreeMap<String, String>,
    updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
struct Rec {
    props: BTreeMap<String, String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    /// Oldest first; the last one visible now and any pending after it.
    index: Vec<Snapshot>,
}

impl Rec {
    /// Records the current state for search, visible `lag` from now.
    fn reindex(&mut self, now: Instant, lag: Duration) {
        if let Some(last_visible) = self.index.iter().rposition(|s| s.visible_at <= now) {
            self.index.drain(..last_visible);
        }
        self.index.push(Snapshot {
            visible_at: now + lag,
            props: self.props.clone(),
            updated_at: self.updated_at,
        });
    }

    /// What search sees now.
    fn indexed(&self, now: Instant) -> Option<&Snapshot> {
        self.index.iter().rev().find(|s| s.visible_at <= now)
    }
}

/// A record's fields as one answer shows them.
struct View<'a> {
    id: u64,
    props: &'a BTreeMap<String, String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// Which properties an answer shows.
enum Shown<'a> {
    /// Every property that is set.
    All,
    /// These (`null` when unset; unknown names are left out).
    Only(&'a [String]),
}

#[derive(Debug, Clone)]
struct Association {
    from_type: String,
    from_id: u64,
    to_type: String,
    to_id: u64,
    type_id: u32,
}

/// Property name → unique, per object type.
type Schema = BTreeMap<String, BTreeMap<String, bool>>;

/// The records of every type; cloned to apply a batch whole or not at all.
#[derive(Debug, Clone)]
struct Objects {
    next_id: u64,
    by_type: BTreeMap<String, BTreeMap<u64, Rec>>,
}

fn correlation_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

fn now_text() -> String {
    timestamp(Utc::now())
}

fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// HubSpot's error envelope.
fn error(status: u16, message: &str, category: Option<&str>) -> Reply {
    let mut body = json!({
        "status": "error",
        "message": message,
        "correlationId": correlation_id(),
    });
    if let (Some(category), Some(map)) = (category, body.as_object_mut()) {
        map.insert("category".into(), category.into());
    }
    Reply::json(status, body)
}

fn not_found() -> Reply {
    error(404, "resource not found", None)
}

fn bad_request(message: &str) -> Reply {
    error(400, message, Some("VALIDATION_ERROR"))
}

/// One entry of a "Property values were not valid" answer.
fn invalid(name: &str, error: &str, message: &str) -> Value {
    json!({
        "isValid": false,
        "message": message,
        "error": error,
        "name": name,
        "localizedErrorMessage": message,
    })
}

/// The 400 for invalid property values: the message embeds the entries as JSON text.
fn invalid_properties(items: &[Value]) -> Reply {
    let list = serde_json::to_string(items).unwrap_or_default();
    bad_request(&format!("Property values were not valid: {list}"))
}

fn conflict(object_type: &str, property: &str, value: &str, existing: u64) -> Reply {
    let message = if object_type == "contacts" && property == "email" {
        format!("Contact already exists. Existing ID: {existing}")
    } else {
        format!(
            "An object with the unique value \"{value}\" for property \"{property}\" already exists. Existing ID: {existing}"
        )
    };
    error(409, &message, Some("CONFLICT"))
}

fn unknown_type(object_type: &str) -> Reply {
    bad_request(&format!("Unable to infer object type from: {object_type}"))
}

fn parse_json(body: &[u8]) -> Result<Value, Reply> {
    serde_json::from_slice(body).map_err(|e| {
        bad_request(&format!(
            "Invalid input JSON on line {}, column {}: {e}",
            e.line(),
            e.column()
        ))
    })
}

/// The canonical name of an object type: HubSpot's singular names and type ids of the
/// standard objects are accepted for the plural names.
fn canonical_type(name: &str) -> String {
    match name.to_ascii_lowercase().as_str() {
        "contact" | "contacts" | "0-1" => "contacts".into(),
        "company" | "companies" | "0-2" => "companies".into(),
        "deal" | "deals" | "0-3" => "deals".into(),
        "meeting" | "meetings" | "0-47" => "meetings".into(),
        _ => name.to_owned(),
    }
}

/// The read-only date properties of a type: (created, last modified).
fn date_properties(object_type: &str) -> (&'static str, &'static str) {
    match object_type {
        "contacts" => ("createdate", "lastmodifieddate"),
        "deals" | "companies" => ("createdate", "hs_lastmodifieddate"),
        _ => ("hs_createdate", "hs_lastmodifieddate"),
    }
}

fn is_read_only(object_type: &str, name: &str) -> bool {
    let (created, modified) = date_properties(object_type);
    name == "hs_object_id" || name == created || name == modified
}

/// The properties GET and search show when none are asked for (besides the read-only
/// id and dates).
fn default_properties(object_type: &str) -> &'static [&'static str] {
    match object_type {
        "contacts" => &["email", "firstname", "lastname"],
        "deals" => &["amount", "closedate", "dealname", "dealstage", "pipeline"],
        "companies" => &["domain", "name"],
        _ => &[],
    }
}

fn default_schema() -> Schema {
    let types: [(&str, &[&str]); 4] = [
        (
            "contacts",
            &[
                "email",
                "firstname",
                "lastname",
                "phone",
                "company",
                "website",
                "lifecyclestage",
                "hubspot_owner_id",
            ],
        ),
        (
            "meetings",
            &[
                "hs_timestamp",
                "hs_meeting_title",
                "hs_meeting_body",
                "hs_internal_meeting_notes",
                "hs_meeting_external_url",
                "hs_meeting_location",
                "hs_meeting_start_time",
                "hs_meeting_end_time",
                "hs_meeting_outcome",
                "hubspot_owner_id",
            ],
        ),
        (
            "deals",
            &[
                "dealname",
                "dealstage",
                "pipeline",
                "amount",
                "closedate",
                "hubspot_owner_id",
            ],
        ),
        (
            "companies",
            &[
                "name",
                "domain",
                "phone",
                "website",
                "city",
                "country",
                "industry",
                "hubspot_owner_id",
            ],
        ),
    ];
    types
        .iter()
        .map(|(object_type, names)| {
            let props = names
                .iter()
                .map(|n| ((*n).to_owned(), *object_type == "contacts" && *n == "email"))
                .collect();
            ((*object_type).to_owned(), props)
        })
        .collect()
}

/// Whether two values of a property are the same value (emails ignore case).
fn same_value(object_type: &str, property: &str, a: &str, b: &str) -> bool {
    if object_type == "contacts" && property == "email" {
        a.to_lowercase() == b.to_lowercase()
    } else {
        a == b
    }
}

/// A JSON scalar as HubSpot keeps it: text (`null` is the empty, clearing value).
fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null => Some(String::new()),
        Value::Array(_) | Value::Object(_) => None,
    }
}

/// A date-time as epoch milliseconds: digits, RFC 3339, or a bare date (midnight UTC).
fn datetime_millis(text: &str) -> Option<i64> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().ok();
    }
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Some(at.timestamp_millis());
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .map(|d| d.and_time(NaiveTime::MIN).and_utc().timestamp_millis())
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

/// Checks property values sent for a type, and returns them as text ("" clears).
fn validate(
    schema: &Schema,
    object_type: &str,
    props: &Map<String, Value>,
) -> Result<BTreeMap<String, String>, Reply> {
    let known = schema.get(object_type);
    let mut items = Vec::new();
    let mut out = BTreeMap::new();
    for (name, value) in props {
        if is_read_only(object_type, name) {
            items.push(invalid(
                name,
                "READ_ONLY_VALUE",
                &format!("\"{name}\" is a read only property; its value cannot be set."),
            ));
            continue;
        }
        if !known.is_some_and(|k| k.contains_key(name)) {
            let message = format!("Property \"{name}\" does not exist");
            items.push(invalid(name, "PROPERTY_DOESNT_EXIST", &message));
            continue;
        }
        let Some(text) = scalar_text(value) else {
            items.push(invalid(
                name,
                "INVALID_VALUE",
                &format!("{value} is not a valid value for \"{name}\": expected text"),
            ));
            continue;
        };
        if !text.is_empty() {
            if name == "hs_meeting_outcome" && !MEETING_OUTCOMES.contains(&text.as_str()) {
                let message = format!(
                    "{text} was not one of the allowed options: [{}]",
                    MEETING_OUTCOMES.join(", ")
                );
                items.push(invalid(name, "INVALID_OPTION", &message));
                continue;
            }
            if DATETIME_PROPERTIES.contains(&name.as_str()) && datetime_millis(&text).is_none() {
                let message = format!(
                    "{text} is not a valid date-time for \"{name}\": expected epoch milliseconds or ISO 8601"
                );
                items.push(invalid(name, "INVALID_DATE", &message));
                continue;
            }
            if object_type == "contacts" && name == "email" && !plausible_email(&text) {
                let message = format!("Email address {text} is invalid");
                items.push(invalid(name, "INVALID_EMAIL", &message));
                continue;
            }
        }
        out.insert(name.clone(), text);
    }
    if items.is_empty() {
        Ok(out)
    } else {
        Err(invalid_properties(&items))
    }
}

/// The properties a new record of a type must have.
fn check_required(object_type: &str, props: &BTreeMap<String, String>) -> Result<(), Reply> {
    match object_type {
        "meetings" if !props.contains_key("hs_timestamp") => Err(invalid_properties(&[invalid(
            "hs_timestamp",
            "REQUIRED_PROPERTY",
            "Property \"hs_timestamp\" is required",
        )])),
        "contacts"
            if !["email", "firstname", "lastname"]
                .iter()
                .any(|p| props.contains_key(*p)) =>
        {
            Err(invalid_properties(&[invalid(
                "email",
                "REQUIRED_PROPERTY",
                "A contact needs at least one of \"email\", \"firstname\" or \"lastname\"",
            )]))
        }
        _ => Ok(()),
    }
}

fn is_unique(schema: &Schema, object_type: &str, property: &str) -> bool {
    schema
        .get(object_type)
        .and_then(|props| props.get(property))
        .copied()
        .unwrap_or(false)
}

impl Objects {
    fn records(&self, object_type: &str) -> impl Iterator<Item = (u64, &Rec)> {
        self.by_type
            .get(object_type)
            .into_iter()
            .flat_map(|records| records.iter().map(|(id, rec)| (*id, rec)))
    }

    fn get(&self, object_type: &str, id: u64) -> Option<&Rec> {
        self.by_type.get(object_type)?.get(&id)
    }

    /// The type of the record with this id.
    fn type_of(&self, id: u64) -> Option<&str> {
        self.by_type
            .iter()
            .find(|(_, records)| records.contains_key(&id))
            .map(|(object_type, _)| object_type.as_str())
    }

    /// The record whose unique `property` is `value` (`hs_object_id`: the id).
    fn find_unique(&self, object_type: &str, property: &str, value: &str) -> Option<u64> {
        if property == "hs_object_id" {
            let id = value.parse().ok()?;
            return self.get(object_type, id).map(|_| id);
        }
        self.records(object_type)
            .find(|(_, rec)| {
                rec.props
                    .get(property)
                    .is_some_and(|v| same_value(object_type, property, v, value))
            })
            .map(|(id, _)| id)
    }

    /// 409 if a changed unique property takes a value another record has.
    fn check_unique(
        &self,
        schema: &Schema,
        object_type: &str,
        id: Option<u64>,
        changes: &BTreeMap<String, String>,
    ) -> Result<(), Reply> {
        for (name, value) in changes {
            if value.is_empty() || !is_unique(schema, object_type, name) {
                continue;
            }
            if let Some(existing) = self.find_unique(object_type, name, value)
                && Some(existing) != id
            {
                return Err(conflict(object_type, name, value, existing));
            }
        }
        Ok(())
    }

    fn create(
        &mut self,
        schema: &Schema,
        object_type: &str,
        props: &Map<String, Value>,
        lag: Duration,
    ) -> Result<u64, Reply> {
        let changes = validate(schema, object_type, props)?;
        let props: BTreeMap<String, String> =
            changes.into_iter().filter(|(_, v)| !v.is_empty()).collect();
        check_required(object_type, &props)?;
        self.check_unique(schema, object_type, None, &props)?;
        let id = self.next_id;
        self.next_id += 1;
        let now = Utc::now();
        let mut rec = Rec {
            props,
            created_at: now,
            updated_at: now,
            index: Vec::new(),
        };
        rec.reindex(Instant::now(), lag);
        self.by_type
            .entry(object_type.to_owned())
            .or_default()
            .insert(id, rec);
        Ok(id)
    }

    fn update(
        &mut self,
        schema: &Schema,
        object_type: &str,
        id: u64,
        props: &Map<String, Value>,
        lag: Duration,
    ) -> Result<(), Reply> {
        let changes = validate(schema, object_type, props)?;
        if self.get(object_type, id).is_none() {
            return Err(not_found());
        }
        self.check_unique(schema, object_type, Some(id), &changes)?;
        let rec = self
            .by_type
            .get_mut(object_type)
            .and_then(|records| records.get_mut(&id))
            .ok_or_else(not_found)?;
        for (name, value) in changes {
            if value.is_empty() {
                rec.props.remove(&name);
            } else {
                rec.props.insert(name, value);
            }
        }
        rec.updated_at = Utc::now();
        rec.reindex(Instant::now(), lag);
        Ok(())
    }

    fn view(&self, object_type: &str, id: u64) -> Option<View<'_>> {
        self.get(object_type, id).map(|rec| View {
            id,
            props: &rec.props,
            created_at: rec.created_at,
            updated_at: rec.updated_at,
        })
    }
}

/// A record as HubSpot answers it.
fn object_json(schema: &Schema, object_type: &str, view: &View<'_>, shown: &Shown<'_>) -> Value {
    let (created, modified) = date_properties(object_type);
    let mut props: BTreeMap<String, Value> = BTreeMap::new();
    match shown {
        Shown::All => {
            for (name, value) in view.props {
                props.insert(name.clone(), Value::String(value.clone()));
            }
        }
        Shown::Only(names) => {
            let known = schema.get(object_type);
            for name in *names {
                if known.is_some_and(|k| k.contains_key(name)) {
                    let value = view
                        .props
                        .get(name)
                        .map_or(Value::Null, |v| Value::String(v.clone()));
                    props.insert(name.clone(), value);
                }
            }
        }
    }
    props.insert("hs_object_id".into(), Value::String(view.id.to_string()));
    props.insert(created.into(), Value::String(timestamp(view.created_at)));
    props.insert(modified.into(), Value::String(timestamp(view.updated_at)));
    json!({
        "id": view.id.to_string(),
        "properties": props.into_iter().collect::<Map<String, Value>>(),
        "createdAt": timestamp(view.created_at),
        "updatedAt": timestamp(view.updated_at),
        "archived": false,
    })
}

/// The value of a property as search compares it (the read-only ones included).
fn search_value(object_type: &str, view: &View<'_>, name: &str) -> Option<String> {
    let (created, modified) = date_properties(object_type);
    if name == "hs_object_id" {
        Some(view.id.to_string())
    } else if name == created {
        Some(timestamp(view.created_at))
    } else if name == modified {
        Some(timestamp(view.updated_at))
    } else {
        view.props.get(name).cloned()
    }
}

/// Orders two values: as numbers, else as date-times, else as text.
fn compare(a: &str, b: &str) -> std::cmp::Ordering {
    if let (Ok(x), Ok(y)) = (a.parse::<f64>(), b.parse::<f64>()) {
        return x.total_cmp(&y);
    }
    if let (Some(x), Some(y)) = (datetime_millis(a), datetime_millis(b)) {
        return x.cmp(&y);
    }
    a.cmp(b)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operator {
    Eq,
    Neq,
    Lt,
    Lte,
    Gt,
    Gte,
    Between,
    In,
    NotIn,
    HasProperty,
    NotHasProperty,
    ContainsToken,
    NotContainsToken,
}

impl Operator {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "EQ" => Self::Eq,
            "NEQ" => Self::Neq,
            "LT" => Self::Lt,
            "LTE" => Self::Lte,
            "GT" => Self::Gt,
            "GTE" => Self::Gte,
            "BETWEEN" => Self::Between,
            "IN" => Self::In,
            "NOT_IN" => Self::NotIn,
            "HAS_PROPERTY" => Self::HasProperty,
            "NOT_HAS_PROPERTY" => Self::NotHasProperty,
            "CONTAINS_TOKEN" => Self::ContainsToken,
            "NOT_CONTAINS_TOKEN" => Self::NotContainsToken,
            _ => return None,
        })
    }
}

#[derive(Debug)]
struct Filter {
    property: String,
    operator: Operator,
    value: String,
    high: String,
    values: Vec<String>,
}

impl Filter {
    fn parse(schema: &Schema, object_type: &str, filter: &Value) -> Result<Self, Reply> {
        let property = filter
            .get("propertyName")
            .and_then(Value::as_str)
            .ok_or_else(|| bad_request("A filter needs a \"propertyName\""))?;
        let operator_name = filter
            .get("operator")
            .and_then(Value::as_str)
            .ok_or_else(|| bad_request("A filter needs an \"operator\""))?;
        let operator = Operator::parse(operator_name)
            .ok_or_else(|| bad_request(&format!("Unknown filter operator \"{operator_name}\"")))?;
        let known = is_read_only(object_type, property)
            || schema
                .get(object_type)
                .is_some_and(|k| k.contains_key(property));
        if !known {
            return Err(bad_request(&format!(
                "There was a problem with a request filter: property \"{property}\" does not exist"
            )));
        }
        let text = |key: &str| filter.get(key).and_then(scalar_text);
        let value = text("value");
        let high = text("highValue");
        let values: Option<Vec<String>> = filter
            .get("values")
            .and_then(Value::as_array)
            .map(|vs| vs.iter().filter_map(scalar_text).collect());
        let missing = |what: &str| {
            bad_request(&format!(
                "Filter operator {operator_name} on \"{property}\" needs \"{what}\""
            ))
        };
        let (value, high, values) = match operator {
            Operator::HasProperty | Operator::NotHasProperty => {
                (String::new(), String::new(), Vec::new())
            }
            Operator::In | Operator::NotIn => (
                String::new(),
                String::new(),
                values.ok_or_else(|| missing("values"))?,
            ),
            Operator::Between => (
                value.ok_or_else(|| missing("value"))?,
                high.ok_or_else(|| missing("highValue"))?,
                Vec::new(),
            ),
            _ => (
                value.ok_or_else(|| missing("value"))?,
                String::new(),
                Vec::new(),
            ),
        };
        Ok(Self {
            property: property.to_owned(),
            operator,
            value,
            high,
            values,
        })
    }

    fn matches(&self, object_type: &str, view: &View<'_>) -> bool {
        use std::cmp::Ordering::{Greater, Less};
        let Some(actual) = search_value(object_type, view, &self.property) else {
            return matches!(
                self.operator,
                Operator::Neq
                    | Operator::NotIn
                    | Operator::NotHasProperty
                    | Operator::NotContainsToken
            );
        };
        let same = |v: &str| same_value(object_type, &self.property, &actual, v);
        let token = || {
            let wanted = self.value.trim_matches('*').to_lowercase();
            actual.to_lowercase().contains(&wanted)
        };
        match self.operator {
            Operator::Eq => same(&self.value),
            Operator::Neq => !same(&self.value),
            Operator::Lt => compare(&actual, &self.value) == Less,
            Operator::Lte => compare(&actual, &self.value) != Greater,
            Operator::Gt => compare(&actual, &self.value) == Greater,
            Operator::Gte => compare(&actual, &self.value) != Less,
            Operator::Between => {
                compare(&actual, &self.value) != Less && compare(&actual, &self.high) != Greater
            }
            Operator::In => self
                .values
                .iter()
                .any(|v| v.to_lowercase() == actual.to_lowercase()),
            Operator::NotIn => !self
                .values
                .iter()
                .any(|v| v.to_lowercase() == actual.to_lowercase()),
            Operator::HasProperty => true,
            Operator::NotHasProperty => false,
            Operator::ContainsToken => token(),
            Operator::NotContainsToken => !token(),
        }
    }
}

/// The `properties` asked for in a query (`properties=a,b` or repeated), if any.
fn asked_properties(query: &[(String, String)]) -> Option<Vec<String>> {
    let names: Vec<String> = query
        .iter()
        .filter(|(k, _)| k == "properties")
        .flat_map(|(_, v)| v.split(','))
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .collect();
    (!names.is_empty()).then_some(names)
}

fn default_shown(object_type: &str) -> Vec<String> {
    default_properties(object_type)
        .iter()
        .map(|n| (*n).to_owned())
        .collect()
}

/// What a request is for.
#[derive(Debug)]
enum Route {
    Token,
    Create(String),
    List(String),
    Search(String),
    Upsert(String),
    Get(String, String),
    Patch(String, String),
    Delete(String, String),
    Associate {
        from_type: String,
        from_id: String,
        to_type: String,
        to_id: String,
        labelled: bool,
    },
    Usage,
    /// No such endpoint; `api` when under `/crm` or `/account-info` (so auth applies).
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
    let t = |name: &str| canonical_type(name);
    let associate =
        |from: &str, from_id: &str, to: &str, to_id: &str, labelled: bool| Route::Associate {
            from_type: t(from),
            from_id: from_id.to_owned(),
            to_type: t(to),
            to_id: to_id.to_owned(),
            labelled,
        };
    match (method.as_str(), s.as_slice()) {
        ("POST", ["oauth", "v1", "token"]) => Route::Token,
        ("POST", ["crm", "v3", "objects", ty]) => Route::Create(t(ty)),
        ("GET", ["crm", "v3", "objects", ty]) => Route::List(t(ty)),
        ("POST", ["crm", "v3", "objects", ty, "search"]) => Route::Search(t(ty)),
        ("POST", ["crm", "v3", "objects", ty, "batch", "upsert"]) => Route::Upsert(t(ty)),
        ("GET", ["crm", "v3", "objects", ty, id]) => Route::Get(t(ty), (*id).to_owned()),
        ("PATCH", ["crm", "v3", "objects", ty, id]) => Route::Patch(t(ty), (*id).to_owned()),
        ("DELETE", ["crm", "v3", "objects", ty, id]) => Route::Delete(t(ty), (*id).to_owned()),
        (
            "PUT",
            [
                "crm",
                "v4",
                "objects",
                from,
                from_id,
                "associations",
                "default",
                to,
                to_id,
            ],
        ) => associate(from, from_id, to, to_id, false),
        (
            "PUT",
            [
                "crm",
                "v4",
                "objects",
                from,
                from_id,
                "associations",
                to,
                to_id,
            ],
        ) => associate(from, from_id, to, to_id, true),
        ("GET", ["account-info", "v3", "api-usage", "daily", "private-apps"]) => Route::Usage,
        (_, ["crm", ..] | ["account-info", ..]) => Route::NotFound { api: true },
        _ => Route::NotFound { api: false },
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
            schema: default_schema(),
            objects: Objects {
                next_id: 101,
                by_type: BTreeMap::new(),
            },
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
            self.count_call(matches!(route, Route::Search(_)))
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

    fn authenticate(&self, token: Option<&str>) -> Result<(), Reply> {
        let Some(token) = token else {
            return Err(unauthenticated());
        };
        if self.options.tokens.iter().any(|t| t == token) {
            return Ok(());
        }
        match self.access_tokens.get(token) {
            Some(expires) => {
                let now = Instant::now();
                if now < *expires {
                    Ok(())
                } else {
                    let ago = now.duration_since(*expires).as_secs();
                    Err(error(
                        401,
                        &format!(
                            "The OAuth token used to make this call expired {ago} second(s) ago."
                        ),
                        Some("EXPIRED_AUTHENTICATION"),
                    ))
                }
            }
            None => Err(unauthenticated()),
        }
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

    /// `POST /oauth/v1/token`.
    fn grant(&mut self, body: &[u8]) -> Reply {
        let form = parse_pairs(&String::from_utf8_lossy(body));
        let field = |k: &str| pair(&form, k).unwrap_or_default();
        if field("grant_type") != "refresh_token" {
            return Reply::json(
                400,
                json!({
                    "status": "BAD_GRANT_TYPE",
                    "message": "grant_type must be refresh_token",
                }),
            );
        }
        let accepted = self
            .options
            .oauth
            .as_ref()
            .is_some_and(|(id, secret, refresh)| {
                field("client_id") == id
                    && field("client_secret") == secret
                    && field("refresh_token") == refresh
            });
        if !accepted {
            return Reply::json(
                400,
                json!({
                    "status": "BAD_REFRESH_TOKEN",
                    "message": "missing or unknown refresh token",
                }),
            );
        }
        let token = format!("oauth-{}", uuid::Uuid::now_v7().simple());
        let ttl = self.options.access_token_ttl;
        self.access_tokens
            .insert(token.clone(), Instant::now() + ttl);
        self.tokens_issued += 1;
        Reply::json(
            200,
            json!({
                "access_token": token,
                "refresh_token": field("refresh_token"),
                "expires_in": self.options.token_expires_in.clone().unwrap_or_else(|| json!(ttl.as_secs())),
                "token_type": "bearer",
            }),
        )
    }

    fn apply(&mut self, route: Route, uri: &Uri, body: &[u8]) -> Reply {
        let query = parse_pairs(uri.query().unwrap_or_default());
        let answer = match route {
            Route::Create(ty) => self.create(&ty, body),
            Route::List(ty) => self.list(&ty, &query),
            Route::Search(ty) => self.search(&ty, body),
            Route::Upsert(ty) => self.upsert(&ty, body),
            Route::Get(ty, id) => self.read(&ty, &id, &query),
            Route::Patch(ty, id) => self.patch(&ty, &id, &query, body),
            Route::Delete(ty, id) => self.delete(&ty, &id),
            Route::Associate {
                from_type,
                from_id,
                to_type,
                to_id,
                labelled,
            } => self.associate(
                &from_type,
                &from_id,
                &to_type,
                &to_id,
                labelled.then_some(body),
            ),
            Route::Usage => Ok(self.usage()),
            Route::Token | Route::NotFound { .. } => Err(not_found()),
        };
        answer.unwrap_or_else(|reply| reply)
    }

    fn known_type(&self, object_type: &str) -> Result<(), Reply> {
        if self.schema.get(object_type).is_some_and(|p| !p.is_empty()) {
            Ok(())
        } else {
            Err(unknown_type(object_type))
        }
    }

    fn record_json(&self, object_type: &str, id: u64, shown: &Shown<'_>) -> Result<Value, Reply> {
        let view = self.objects.view(object_type, id).ok_or_else(not_found)?;
        Ok(object_json(&self.schema, object_type, &view, shown))
    }

    /// The id a path segment names, by id or by a unique `idProperty`.
    fn resolve(
        &self,
        object_type: &str,
        segment: &str,
        query: &[(String, String)],
    ) -> Result<u64, Reply> {
        let property = pair(query, "idProperty").unwrap_or("hs_object_id");
        if property != "hs_object_id" && !is_unique(&self.schema, object_type, property) {
            return Err(bad_request(&format!(
                "Property \"{property}\" is not a unique property of {object_type}, so it cannot be an idProperty"
            )));
        }
        self.objects
            .find_unique(object_type, property, segment)
            .ok_or_else(not_found)
    }

    fn create(&mut self, object_type: &str, body: &[u8]) -> Answer {
        self.known_type(object_type)?;
        let body = parse_json(body)?;
        let props = properties_of(&body)?;
        let links = self.parse_create_associations(object_type, &body)?;
        let lag = self.options.search_lag;
        let id = self
            .objects
            .create(&self.schema, object_type, &props, lag)?;
        for (to_type, to_id, type_id) in links {
            self.link(object_type, id, &to_type, to_id, type_id);
        }
        Ok(Reply::json(
            201,
            self.record_json(object_type, id, &Shown::All)?,
        ))
    }

    /// The `associations` of a create body: (to type, to id, type id).
    fn parse_create_associations(
        &self,
        object_type: &str,
        body: &Value,
    ) -> Result<Vec<(String, u64, u32)>, Reply> {
        let Some(list) = body.get("associations") else {
            return Ok(Vec::new());
        };
        let list = list
            .as_array()
            .ok_or_else(|| bad_request("\"associations\" must be an array"))?;
        let mut links = Vec::new();
        for item in list {
            let to = item
                .get("to")
                .and_then(|to| to.get("id"))
                .and_then(scalar_text)
                .ok_or_else(|| bad_request("An association needs \"to\": {\"id\": …}"))?;
            let to_id = to.parse::<u64>().ok();
            let to_type = to_id
                .and_then(|id| self.objects.type_of(id))
                .ok_or_else(|| bad_request(&format!("Association target {to} does not exist")))?
                .to_owned();
            let specs = item
                .get("types")
                .ok_or_else(|| bad_request("An association needs \"types\""))?;
            for type_id in parse_specs(object_type, &to_type, specs)? {
                links.push((to_type.clone(), to_id.unwrap_or_default(), type_id));
            }
        }
        Ok(links)
    }

    fn link(&mut self, from_type: &str, from_id: u64, to_type: &str, to_id: u64, type_id: u32) {
        let exists = self
            .associations
            .iter()
            .any(|a| a.from_id == from_id && a.to_id == to_id && a.type_id == type_id);
        if !exists {
            self.associations.push(Association {
                from_type: from_type.to_owned(),
                from_id,
                to_type: to_type.to_owned(),
                to_id,
                type_id,
            });
        }
    }

    fn read(&self, object_type: &str, segment: &str, query: &[(String, String)]) -> Answer {
        self.known_type(object_type)?;
        let id = self.resolve(object_type, segment, query)?;
        let names = asked_properties(query).unwrap_or_else(|| default_shown(object_type));
        Ok(Reply::json(
            200,
            self.record_json(object_type, id, &Shown::Only(&names))?,
        ))
    }

    fn list(&self, object_type: &str, query: &[(String, String)]) -> Answer {
        self.known_type(object_type)?;
        let limit = match pair(query, "limit") {
            None => 10,
            Some(text) => text
                .parse::<usize>()
                .ok()
                .filter(|l| (1..=100).contains(l))
                .ok_or_else(|| bad_request("limit must be a number from 1 to 100"))?,
        };
        let offset = parse_after(pair(query, "after"))?;
        let names = asked_properties(query).unwrap_or_else(|| default_shown(object_type));
        let shown = Shown::Only(&names);
        let ids: Vec<u64> = self
            .objects
            .records(object_type)
            .map(|(id, _)| id)
            .collect();
        let results = ids
            .iter()
            .skip(offset)
            .take(limit)
            .map(|id| self.record_json(object_type, *id, &shown))
            .collect::<Result<Vec<_>, _>>()?;
        let mut answer = json!({ "results": results });
        if offset + limit < ids.len() {
            answer["paging"] = json!({ "next": { "after": (offset + limit).to_string() } });
        }
        Ok(Reply::json(200, answer))
    }

    fn patch(
        &mut self,
        object_type: &str,
        segment: &str,
        query: &[(String, String)],
        body: &[u8],
    ) -> Answer {
        self.known_type(object_type)?;
        let id = self.resolve(object_type, segment, query)?;
        let body = parse_json(body)?;
        let props = properties_of(&body)?;
        let lag = self.options.search_lag;
        self.objects
            .update(&self.schema, object_type, id, &props, lag)?;
        Ok(Reply::json(
            200,
            self.record_json(object_type, id, &Shown::All)?,
        ))
    }

    fn delete(&mut self, object_type: &str, segment: &str) -> Answer {
        self.known_type(object_type)?;
        let id = segment.parse::<u64>().map_err(|_| not_found())?;
        self.objects
            .by_type
            .get_mut(object_type)
            .and_then(|records| records.remove(&id))
            .ok_or_else(not_found)?;
        self.associations
            .retain(|a| a.from_id != id && a.to_id != id);
        Ok(Reply::empty(204))
    }

    fn search(&self, object_type: &str, body: &[u8]) -> Answer {
        self.known_type(object_type)?;
        let body = parse_json(body)?;
        let groups = match body.get("filterGroups") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(groups)) => groups.clone(),
            Some(_) => return Err(bad_request("\"filterGroups\" must be an array")),
        };
        if groups.len() > 5 {
            return Err(bad_request("A search takes at most 5 filterGroups"));
        }
        let mut parsed: Vec<Vec<Filter>> = Vec::new();
        for group in &groups {
            let filters = group
                .get("filters")
                .and_then(Value::as_array)
                .ok_or_else(|| bad_request("A filter group needs \"filters\""))?;
            if filters.len() > 6 {
                return Err(bad_request("A filter group takes at most 6 filters"));
            }
            parsed.push(
                filters
                    .iter()
                    .map(|f| Filter::parse(&self.schema, object_type, f))
                    .collect::<Result<_, _>>()?,
            );
        }
        if parsed.iter().map(Vec::len).sum::<usize>() > 18 {
            return Err(bad_request("A search takes at most 18 filters in all"));
        }
        let limit = match body.get("limit") {
            None | Some(Value::Null) => 10,
            Some(v) => v
                .as_u64()
                .and_then(|l| usize::try_from(l).ok())
                .filter(|l| *l <= 200)
                .ok_or_else(|| bad_request("limit must be a number from 0 to 200"))?,
        };
        let offset = match body.get("after") {
            None | Some(Value::Null) => 0,
            Some(v) => parse_after(scalar_text(v).as_deref())?,
        };
        let names: Vec<String> = match body.get("properties") {
            Some(Value::Array(names)) if !names.is_empty() => names
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            _ => default_shown(object_type),
        };
        let sorts = parse_sorts(&self.schema, object_type, body.get("sorts"))?;
        let query = body
            .get("query")
            .and_then(Value::as_str)
            .map(str::to_lowercase)
            .filter(|q| !q.is_empty());
        let now = Instant::now();
        let mut matching: Vec<View<'_>> = self
            .objects
            .records(object_type)
            .filter_map(|(id, rec)| {
                rec.indexed(now).map(|snapshot| View {
                    id,
                    props: &snapshot.props,
                    created_at: rec.created_at,
                    updated_at: snapshot.updated_at,
                })
            })
            .filter(|view| {
                parsed.is_empty()
                    || parsed
                        .iter()
                        .any(|group| group.iter().all(|f| f.matches(object_type, view)))
            })
            .filter(|view| {
                query
                    .as_ref()
                    .is_none_or(|q| view.props.values().any(|v| v.to_lowercase().contains(q)))
            })
            .collect();
        if !sorts.is_empty() {
            matching.sort_by(|a, b| {
                sorts
                    .iter()
                    .map(|(property, descending)| {
                        let x = search_value(object_type, a, property).unwrap_or_default();
                        let y = search_value(object_type, b, property).unwrap_or_default();
                        let order = compare(&x, &y);
                        if *descending { order.reverse() } else { order }
                    })
                    .find(|order| order.is_ne())
                    .unwrap_or_else(|| a.id.cmp(&b.id))
            });
        }
        let shown = Shown::Only(&names);
        let results: Vec<Value> = matching
            .iter()
            .skip(offset)
            .take(limit)
            .map(|view| object_json(&self.schema, object_type, view, &shown))
            .collect();
        let mut answer = json!({ "total": matching.len(), "results": results });
        if offset + limit < matching.len() {
            answer["paging"] = json!({ "next": { "after": (offset + limit).to_string() } });
        }
        Ok(Reply::json(200, answer))
    }

    fn upsert(&mut self, object_type: &str, body: &[u8]) -> Answer {
        self.known_type(object_type)?;
        let requested_at = now_text();
        let body = parse_json(body)?;
        let inputs = body
            .get("inputs")
            .and_then(Value::as_array)
            .ok_or_else(|| bad_request("A batch needs \"inputs\""))?;
        if inputs.len() > BATCH_MAX {
            return Err(bad_request(&format!(
                "Batch input is limited to {BATCH_MAX} inputs"
            )));
        }
        let mut parsed: Vec<(String, String, Map<String, Value>)> = Vec::new();
        for input in inputs {
            let value = input
                .get("id")
                .and_then(scalar_text)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| bad_request("Each upsert input needs an \"id\""))?;
            let property = input
                .get("idProperty")
                .and_then(Value::as_str)
                .ok_or_else(|| bad_request("Each upsert input needs an \"idProperty\""))?;
            if !is_unique(&self.schema, object_type, property) {
                return Err(bad_request(&format!(
                    "Property \"{property}\" is not a unique property of {object_type}, so it cannot be an idProperty"
                )));
            }
            let props = properties_of(input)?;
            if parsed
                .iter()
                .any(|(p, v, _)| p == property && same_value(object_type, p, v, &value))
            {
                return Err(bad_request(&format!(
                    "Duplicate IDs found in batch input: [{value}]"
                )));
            }
            parsed.push((property.to_owned(), value, props));
        }
        let started_at = now_text();
        let lag = self.options.search_lag;
        let mut scratch = self.objects.clone();
        let mut done = Vec::new();
        for (property, value, mut props) in parsed {
            match scratch.find_unique(object_type, &property, &value) {
                Some(id) => {
                    scratch.update(&self.schema, object_type, id, &props, lag)?;
                    done.push((id, false));
                }
                None => {
                    props.insert(property, Value::String(value));
                    let id = scratch.create(&self.schema, object_type, &props, lag)?;
                    done.push((id, true));
                }
            }
        }
        self.objects = scratch;
        let mut results = Vec::new();
        for (id, new) in done {
            let object = self.record_json(object_type, id, &Shown::All)?;
            results.push(json!({
                "id": object["id"],
                "new": new,
                "properties": object["properties"],
                "createdAt": object["createdAt"],
                "updatedAt": object["updatedAt"],
                "archived": false,
            }));
        }
        Ok(Reply::json(
            200,
            json!({
                "status": "COMPLETE",
                "results": results,
                "requestedAt": requested_at,
                "startedAt": started_at,
                "completedAt": now_text(),
            }),
        ))
    }

    fn associate(
        &mut self,
        from_type: &str,
        from_id: &str,
        to_type: &str,
        to_id: &str,
        labels: Option<&[u8]>,
    ) -> Answer {
        let started_at = now_text();
        self.known_type(from_type)?;
        self.known_type(to_type)?;
        let find = |object_type: &str, id: &str| {
            id.parse::<u64>()
                .ok()
                .filter(|id| self.objects.get(object_type, *id).is_some())
        };
        let (Some(from), Some(to)) = (find(from_type, from_id), find(to_type, to_id)) else {
            return Err(not_found());
        };
        let type_ids = match labels {
            None => vec![default_association(from_type, to_type)],
            Some(body) => parse_specs(from_type, to_type, &parse_json(body)?)?,
        };
        let mut results = Vec::new();
        for type_id in type_ids {
            self.link(from_type, from, to_type, to, type_id);
            results.push(json!({
                "from": { "id": from.to_string() },
                "to": { "id": to.to_string() },
                "associationSpec": {
                    "associationCategory": "HUBSPOT_DEFINED",
                    "associationTypeId": type_id,
                },
            }));
        }
        Ok(Reply::json(
            200,
            json!({
                "status": "COMPLETE",
                "results": results,
                "startedAt": started_at,
                "completedAt": now_text(),
            }),
        ))
    }

    fn usage(&self) -> Reply {
        Reply::json(
            200,
            json!({
                "results": [{
                    "name": "private-apps-api-calls-daily",
                    "usageLimit": self.options.daily_limit.unwrap_or(250_000),
                    "currentUsage": self.daily_used,
                    "resetsAt": timestamp(self.daily_resets_at),
                    "fetchStatus": "SUCCESS",
                    "collectedAt": now_text(),
                }],
            }),
        )
    }
}

fn unauthenticated() -> Reply {
    error(
        401,
        "Authentication credentials not found.",
        Some("INVALID_AUTHENTICATION"),
    )
}

/// `properties` of a body (absent: none).
fn properties_of(body: &Value) -> Result<Map<String, Value>, Reply> {
    match body.get("properties") {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(props)) => Ok(props.clone()),
        Some(_) => Err(bad_request("\"properties\" must be an object")),
    }
}

/// A search's `sorts` (`[{"propertyName", "direction"}]`, or `"name"` / `"-name"`) as
/// (property, descending).
fn parse_sorts(
    schema: &Schema,
    object_type: &str,
    sorts: Option<&Value>,
) -> Result<Vec<(String, bool)>, Reply> {
    let sorts = match sorts {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(sorts)) => sorts,
        Some(_) => return Err(bad_request("\"sorts\" must be an array")),
    };
    let mut out = Vec::new();
    for sort in sorts {
        let (property, descending) = match sort {
            Value::String(text) => match text.strip_prefix('-') {
                Some(name) => (name.to_owned(), true),
                None => (text.clone(), false),
            },
            Value::Object(_) => {
                let property = sort
                    .get("propertyName")
                    .and_then(Value::as_str)
                    .ok_or_else(|| bad_request("A sort needs a \"propertyName\""))?;
                let descending = match sort.get("direction").and_then(Value::as_str) {
                    None | Some("ASCENDING") => false,
                    Some("DESCENDING") => true,
                    Some(other) => {
                        return Err(bad_request(&format!(
                            "Invalid sort direction \"{other}\": expected ASCENDING or DESCENDING"
                        )));
                    }
                };
                (property.to_owned(), descending)
            }
            _ => return Err(bad_request("A sort must be an object or a property name")),
        };
        let known = is_read_only(object_type, &property)
            || schema
                .get(object_type)
                .is_some_and(|k| k.contains_key(&property));
        if !known {
            return Err(bad_request(&format!(
                "Cannot sort on property \"{property}\": it does not exist"
            )));
        }
        out.push((property, descending));
    }
    Ok(out)
}

/// A paging cursor: an offset.
fn parse_after(after: Option<&str>) -> Result<usize, Reply> {
    match after {
        None | Some("") => Ok(0),
        Some(text) => text
            .parse()
            .map_err(|_| bad_request(&format!("Invalid paging cursor \"after\": {text}"))),
    }
}

/// The unlabelled association type id from one type to another.
fn default_association(from_type: &str, to_type: &str) -> u32 {
    ASSOCIATION_TYPES
        .iter()
        .find(|(f, t, _)| *f == from_type && *t == to_type)
        .map_or(1, |(_, _, id)| *id)
}

/// Association specs (`[{"associationCategory", "associationTypeId"}]`) as type ids. A
/// HubSpot-defined id that HubSpot defines for another pair of types is refused.
fn parse_specs(from_type: &str, to_type: &str, specs: &Value) -> Result<Vec<u32>, Reply> {
    let specs = specs
        .as_array()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| bad_request("Association types must be a non-empty array"))?;
    let mut ids = Vec::new();
    for spec in specs {
        let category = spec
            .get("associationCategory")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !["HUBSPOT_DEFINED", "USER_DEFINED", "INTEGRATOR_DEFINED"].contains(&category) {
            return Err(bad_request(&format!(
                "Invalid associationCategory \"{category}\": expected HUBSPOT_DEFINED, USER_DEFINED or INTEGRATOR_DEFINED"
            )));
        }
        let id = spec
            .get("associationTypeId")
            .and_then(Value::as_u64)
            .and_then(|id| u32::try_from(id).ok())
            .ok_or_else(|| {
                bad_request("An association type needs a numeric \"associationTypeId\"")
            })?;
        if category == "HUBSPOT_DEFINED" {
            let pairs: Vec<_> = ASSOCIATION_TYPES
                .iter()
                .filter(|(_, _, i)| *i == id)
                .collect();
            if !pairs.is_empty()
                && !pairs
                    .iter()
                    .any(|(f, t, _)| *f == from_type && *t == to_type)
            {
                return Err(bad_request(&format!(
                    "Association type {id} is not defined from {from_type} to {to_type}"
                )));
            }
        }
        ids.push(id);
    }
    Ok(ids)
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

    /// How many access tokens `POST /oauth/v1/token` granted.
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

    /// Defines a property of an object type (or redefines whether it is unique). A custom
    /// object type exists once it has a property.
    pub fn define_property(&self, object_type: &str, name: &str, unique: bool) {
        self.lock()
            .schema
            .entry(canonical_type(object_type))
            .or_default()
            .insert(name.to_owned(), unique);
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
        if let Err(reply) = s.known_type(&object_type) {
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
