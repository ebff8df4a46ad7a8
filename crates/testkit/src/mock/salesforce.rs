//! A stateful mock of the Salesforce REST API (sObject rows, upsert by external id, a
//! SOQL subset, the limits resource) and of its OAuth 2.0 token endpoint, for driving the
//! Salesforce connector end to end. One server is both the login host and the instance:
//! the token answer's `instance_url` is [`MockSalesforce::url`].
//!
//! What it models, with Salesforce's documented bodies:
//! - **Tokens.** `POST /services/oauth2/token` (form-urlencoded) grants an opaque access
//!   token (`00Dmock!…`, no refresh token) for `client_credentials` (`client_id`,
//!   `client_secret`), `refresh_token` (the same plus `refresh_token`) and the JWT bearer
//!   flow (`assertion`: RS256-signed with the key of
//!   [`SalesforceOptions::jwt_public_key_pem`], `iss` the client id, `sub` the username,
//!   `aud` the mock's URL, `https://login.salesforce.com` or `https://test.salesforce.com`,
//!   `exp` in the future but at most 5 minutes ahead, give or take 5 seconds). Failures
//!   are 400 `invalid_client_id` (unknown client id, or `iss`), `invalid_grant` (any other
//!   credential problem) or `unsupported_grant_type`.
//! - **Sessions.** Every `/services/data/vXX.X/…` call needs `Authorization: Bearer
//!   <token>` with a token issued and not expired by [`MockSalesforce::expire_sessions`];
//!   otherwise 401 `INVALID_SESSION_ID`. Any `vNN.N` is accepted and recorded.
//! - **The daily API limit**, checked after auth: every authenticated call counts; with
//!   [`SalesforceOptions::daily_limit`] set, a call past it is 403 `REQUEST_LIMIT_EXCEEDED`
//!   (and does not count). Every authenticated answer carries `Sforce-Limit-Info:
//!   api-usage=N/MAX`; `GET …/limits` answers `DailyApiRequests`.
//! - **sObjects** Lead, Contact, Event, Opportunity and Account with their common fields,
//!   custom fields and objects ([`MockSalesforce::define_field`]); create, read (`fields=`
//!   narrows it), update and delete by id; upsert, read and delete by an external-id field.
//!   Field names are case-insensitive; records keep the canonical case. Writes are
//!   checked as Salesforce does: unknown fields (`INVALID_FIELD`), `Id` in the body,
//!   value types (`JSON_PARSER_ERROR`, `INVALID_EMAIL_ADDRESS`, `MALFORMED_ID`), required
//!   fields (`REQUIRED_FIELD_MISSING`; an Event needs `StartDateTime` or
//!   `ActivityDateTime`, and unless all-day `EndDateTime` or `DurationInMinutes`, and
//!   must not end before it starts), lookups (`WhoId` a Contact or Lead, `WhatId` any
//!   other record, `AccountId` an Account: `INVALID_CROSS_REFERENCE_KEY`,
//!   `FIELD_INTEGRITY_EXCEPTION`, `ENTITY_IS_DELETED`; a Lead's event can have no
//!   `WhatId`), then validation rules, then duplicate rules.
//! - **Upsert** (`PATCH …/sobjects/{Object}/{Field}/{Value}`, the value matched ignoring
//!   case): 201 created; updated: 200 with `"created": false` from API version 46.0, 204
//!   before it; 300 with the records' URLs when several match.
//! - **SOQL** (`GET …/query?q=`): `SELECT f, … FROM Object [WHERE c [AND c]…] [ORDER BY f
//!   [ASC|DESC] [NULLS FIRST|LAST]] [LIMIT n]`, where `c` is `f = lit`, `f != lit` (also
//!   `<>`), `f IN (lit, …)` or `f NOT IN (lit, …)`, and `lit` a quoted string (SOQL's
//!   escapes), a number, `true`, `false` or `null`. Text compares ignoring case; `!=`
//!   and `NOT IN` match null fields (as in SOQL). Anything else (OR, LIKE, `<`, date
//!   literals, sub-queries, relationship fields, a bad escape, an unterminated literal) is
//!   400 `MALFORMED_QUERY`; an unknown object `INVALID_TYPE`, an unknown field
//!   `INVALID_FIELD`. Records come sorted by id unless `ORDER BY` says otherwise, all in
//!   one page (`done: true`).
//! - **Faults** ([`Fault`]), queued with [`MockSalesforce::fail_next`] and taken by
//!   authenticated REST calls in arrival order once auth and the limit passed (never by
//!   the token endpoint). `Status` answers without applying the call (Salesforce's
//!   `UNKNOWN_EXCEPTION` body when its body is empty); `Slow` applies the call, then waits
//!   before answering; `Drop` applies it, sends the status line, headers and half the body
//!   (a body-less answer as a 200), then drops the connection.
//!   `Headers` answers like an empty-bodied `Status`, with each header sent exactly as
//!   given (over the mock's own); `Endless` and `Drip` apply the call, then send a body
//!   that never ends, or one byte at a time.
//!
//! Invariants:
//! - Record ids are 18 characters: the object's key prefix (`00Q` Lead, `003` Contact,
//!   `00U` Event, `006` Opportunity, `001` Account, `a00`, `a01`… for custom objects in
//!   the order they appear), `Mock`, and 11 digits of one counter shared by every object,
//!   so an id names one record of one object. Ids match ignoring case.
//! - Field values are kept as JSON as sent (a string, number or boolean); `null` or `""`
//!   clears a field. Reads show every field of the object, `null` when unset (`false` for
//!   an unset boolean).
//! - A request that fails (4xx, 300, or a [`Fault::Status`]) changes nothing.
//! - A deleted record stays known (reads and writes of it are 404 `ENTITY_IS_DELETED`) but
//!   is invisible to SOQL, upsert, duplicate rules and [`MockSalesforce::records`].
//! - Every request is recorded ([`MockSalesforce::requests`]), the token endpoint and 401s
//!   included, with the status it was answered (0 while unanswered, or when the answer did
//!   not complete: dropped, endless or dripped).
//!
//! Where it knowingly differs from Salesforce: no system fields (`CreatedDate`,
//! `SystemModstamp`, `IsDeleted`, the compound `Name` of Contact and Lead), no derived
//! values (an Event's `EndDateTime` is not computed from `DurationInMinutes`, date-times
//! are not normalised to `+0000`), no picklist restrictions or defaults (a Lead's `Status`
//! stays unset), no users (`OwnerId` is any text), only 18-character ids, no cascade
//! deletes, no recycle bin (undelete), no paging of query results, and the daily limit is
//! a hard one.

use super::Fault;
use super::reply::{After, Answer, Reply, bind, spawn};
use super::wire::{decode_segment, pair, parse_pairs};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value, json};
use std::cmp::Ordering;
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// The public key that checks JWT assertions unless the options name another.
const TEST_PUBLIC_KEY: &str = include_str!("../../fixtures/salesforce_jwt_test_key.pub.pem");

/// The JWT bearer flow's `grant_type`.
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// The audiences an assertion may name besides the mock's own URL.
const LOGIN_AUDIENCES: [&str; 2] = [
    "https://login.salesforce.com",
    "https://test.salesforce.com",
];

/// How far ahead an assertion's `exp` may be, in seconds.
const JWT_MAX_AHEAD: i64 = 300;

/// The clock skew allowed on an assertion's `exp`, in seconds.
const JWT_SKEW: i64 = 5;

/// The API version that [`MockSalesforce::seed`]'s error answers name.
const SEED_VERSION: &str = "62.0";

/// The daily API request allowance when [`SalesforceOptions::daily_limit`] is `None`.
const DEFAULT_DAILY_MAX: usize = 100_000;

/// The message of an unknown field in a query or `fields=`.
const COLUMN_HINT: &str = "If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names.";

/// How the mock is set up.
#[derive(Debug, Clone)]
pub struct SalesforceOptions {
    /// The connected app's consumer key (default `sf-client`); also the `iss` a JWT
    /// assertion must carry.
    pub client_id: String,
    /// The connected app's consumer secret (default `sf-secret`).
    pub client_secret: String,
    /// The refresh token the `refresh_token` grant accepts (default `sf-refresh`).
    pub refresh_token: String,
    /// The username a JWT assertion's `sub` must be (default `integration@example.com`).
    pub username: String,
    /// The PEM public key that checks JWT assertions (default the test key in
    /// `fixtures/salesforce_jwt_test_key.pub.pem`); `None` (or a key that does not parse)
    /// refuses every assertion.
    pub jwt_public_key_pem: Option<String>,
    /// The daily API request limit (default `None`: never exceeded, reported as 100000).
    pub daily_limit: Option<usize>,
}

impl Default for SalesforceOptions {
    fn default() -> Self {
        Self {
            client_id: "sf-client".to_owned(),
            client_secret: "sf-secret".to_owned(),
            refresh_token: "sf-refresh".to_owned(),
            username: "integration@example.com".to_owned(),
            jwt_public_key_pem: Some(TEST_PUBLIC_KEY.to_owned()),
            daily_limit: None,
        }
    }
}

/// A request the mock got.
#[derive(Debug, Clone)]
pub struct SalesforceRequest {
    /// The method.
    pub method: String,
    /// The path, with the query.
    pub path: String,
    /// The bearer token it carried, if any.
    pub token: Option<String>,
    /// The API version of a `/services/data/vXX.X/…` path (`"60.0"`), if any.
    pub api_version: Option<String>,
    /// The body.
    pub body: Vec<u8>,
    /// The status it was answered with (0: not answered, or the answer did not complete:
    /// dropped, endless or dripped).
    pub status: u16,
    /// When it arrived.
    pub at: Instant,
}

impl SalesforceRequest {
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
pub struct SalesforceRecord {
    /// Its object, in canonical case (`Contact`, `Booking__c`…).
    pub object: String,
    /// Its 18-character id.
    pub id: String,
    /// The fields that are set, by canonical name, as sent (`Id` is not in it).
    pub fields: Map<String, Value>,
    /// Whether it was deleted.
    pub deleted: bool,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was last changed (or deleted).
    pub updated_at: DateTime<Utc>,
}

impl SalesforceRecord {
    /// A field's value, if set (the name ignoring case).
    pub fn field(&self, name: &str) -> Option<&Value> {
        self.fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// A field's value, if set to a string (the name ignoring case).
    pub fn text(&self, name: &str) -> Option<&str> {
        self.field(name).and_then(Value::as_str)
    }
}

/// What a lookup field may point at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// `WhoId`: a Contact or a Lead.
    Who,
    /// `WhatId`: any record but a Contact or a Lead.
    What,
    /// `AccountId`: an Account.
    Account,
}

impl Target {
    /// The field's label, as Salesforce's messages name it.
    fn label(self) -> &'static str {
        match self {
            Self::Who => "Name ID",
            Self::What => "Related To ID",
            Self::Account => "Account ID",
        }
    }

    fn accepts(self, object: &str) -> bool {
        let person = object == "Contact" || object == "Lead";
        match self {
            Self::Who => person,
            Self::What => !person,
            Self::Account => object == "Account",
        }
    }
}

/// A field's type, as far as the mock checks values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Email,
    DateTime,
    Date,
    Int,
    Number,
    Bool,
    Ref(Target),
    /// A custom field: any scalar.
    Any,
}

impl Kind {
    /// The type's name in a `JSON_PARSER_ERROR` message.
    fn name(self) -> &'static str {
        match self {
            Self::Text | Self::Email | Self::Any => "string",
            Self::DateTime => "datetime",
            Self::Date => "date",
            Self::Int => "int",
            Self::Number => "double",
            Self::Bool => "boolean",
            Self::Ref(_) => "id",
        }
    }
}

#[derive(Debug, Clone)]
struct FieldDef {
    name: String,
    kind: Kind,
    required: bool,
    external_id: bool,
}

#[derive(Debug, Clone)]
struct ObjectDef {
    name: String,
    prefix: String,
    /// Every field but `Id`, in the order reads show them.
    fields: Vec<FieldDef>,
}

impl ObjectDef {
    fn field(&self, name: &str) -> Option<&FieldDef> {
        self.fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
    }

    /// The canonical name of `Id` or a field.
    fn column(&self, name: &str) -> Option<String> {
        if name.eq_ignore_ascii_case("Id") {
            Some("Id".to_owned())
        } else {
            self.field(name).map(|f| f.name.clone())
        }
    }
}

/// A standard field: name, type, required.
type StandardField = (&'static str, Kind, bool);

fn standard_objects() -> Vec<ObjectDef> {
    use Kind::{Bool, Date, DateTime, Email, Int, Number, Ref, Text};
    let defs: [(&str, &str, &[StandardField]); 5] = [
        (
            "Lead",
            "00Q",
            &[
                ("FirstName", Text, false),
                ("LastName", Text, true),
                ("Company", Text, true),
                ("Email", Email, false),
                ("Phone", Text, false),
                ("Title", Text, false),
                ("LeadSource", Text, false),
                ("Status", Text, false),
                ("Description", Text, false),
                ("OwnerId", Text, false),
            ],
        ),
        (
            "Contact",
            "003",
            &[
                ("FirstName", Text, false),
                ("LastName", Text, true),
                ("Email", Email, false),
                ("Phone", Text, false),
                ("Title", Text, false),
                ("Description", Text, false),
                ("AccountId", Ref(Target::Account), false),
                ("LeadSource", Text, false),
                ("OwnerId", Text, false),
            ],
        ),
        (
            "Event",
            "00U",
            &[
                ("Subject", Text, false),
                ("StartDateTime", DateTime, false),
                ("EndDateTime", DateTime, false),
                ("ActivityDateTime", DateTime, false),
                ("DurationInMinutes", Int, false),
                ("IsAllDayEvent", Bool, false),
                ("WhoId", Ref(Target::Who), false),
                ("WhatId", Ref(Target::What), false),
                ("Description", Text, false),
                ("Location", Text, false),
                ("OwnerId", Text, false),
                ("ShowAs", Text, false),
            ],
        ),
        (
            "Opportunity",
            "006",
            &[
                ("Name", Text, true),
                ("StageName", Text, true),
                ("CloseDate", Date, true),
                ("Amount", Number, false),
                ("AccountId", Ref(Target::Account), false),
                ("Description", Text, false),
            ],
        ),
        (
            "Account",
            "001",
            &[
                ("Name", Text, true),
                ("Website", Text, false),
                ("Phone", Text, false),
            ],
        ),
    ];
    defs.iter()
        .map(|(name, prefix, fields)| ObjectDef {
            name: (*name).to_owned(),
            prefix: (*prefix).to_owned(),
            fields: fields
                .iter()
                .map(|(field, kind, required)| FieldDef {
                    name: (*field).to_owned(),
                    kind: *kind,
                    required: *required,
                    external_id: false,
                })
                .collect(),
        })
        .collect()
}

/// The key prefix of the `n`th custom object: `a00`, `a01`, … `a0z`, `a10`, …
fn custom_prefix(n: usize) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let n = n % (36 * 36);
    format!(
        "a{}{}",
        char::from(DIGITS[n / 36]),
        char::from(DIGITS[n % 36])
    )
}

#[derive(Debug, Clone)]
struct Rec {
    id: String,
    object: String,
    fields: Map<String, Value>,
    deleted: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
struct DuplicateRule {
    object: String,
    field: String,
}

#[derive(Debug, Clone)]
struct ValidationRule {
    object: String,
    field: String,
    forbidden: Value,
    message: String,
}

/// An API version from a path (`v60.0`).
#[derive(Debug, Clone)]
struct Version {
    text: String,
    major: u32,
}

impl Version {
    fn parse(segment: &str) -> Option<Self> {
        let text = segment.strip_prefix('v')?;
        let (major, minor) = text.split_once('.')?;
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(major) || !digits(minor) {
            return None;
        }
        Some(Self {
            text: text.to_owned(),
            major: major.parse().ok()?,
        })
    }

    /// Whether an upsert that updates answers 200 with a body (46.0 on) rather than 204.
    fn upsert_answers_update(&self) -> bool {
        self.major >= 46
    }
}

/// Salesforce's REST error list with one entry; `fields` when the error names some.
fn api_error(status: u16, code: &str, message: &str, fields: Option<&[&str]>) -> Reply {
    let mut entry = Map::new();
    entry.insert("message".into(), message.into());
    entry.insert("errorCode".into(), code.into());
    if let Some(fields) = fields {
        entry.insert("fields".into(), json!(fields));
    }
    Reply::json(status, Value::Array(vec![Value::Object(entry)]))
}

fn not_found() -> Reply {
    Reply::json(
        404,
        json!([{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}]),
    )
}

fn entity_deleted() -> Reply {
    Reply::json(
        404,
        json!([{"errorCode": "ENTITY_IS_DELETED", "message": "entity is deleted"}]),
    )
}

fn invalid_session() -> Reply {
    api_error(
        401,
        "INVALID_SESSION_ID",
        "Session expired or invalid",
        None,
    )
}

fn invalid_field(message: &str) -> Reply {
    api_error(400, "INVALID_FIELD", message, None)
}

fn malformed_query(message: &str) -> Reply {
    api_error(400, "MALFORMED_QUERY", message, None)
}

fn parser_error(message: &str) -> Reply {
    api_error(400, "JSON_PARSER_ERROR", message, None)
}

fn no_such_column(name: &str, object: &str) -> Reply {
    invalid_field(&format!(
        "No such column '{name}' on entity '{object}'. {COLUMN_HINT}"
    ))
}

fn oauth_error(error: &str, description: &str) -> Reply {
    Reply::json(
        400,
        json!({"error": error, "error_description": description}),
    )
}

fn invalid_grant() -> Reply {
    oauth_error("invalid_grant", "authentication failure")
}

fn invalid_client_id() -> Reply {
    oauth_error("invalid_client_id", "client identifier invalid")
}

/// The URL path of a record, as `attributes.url` and 300 answers give it.
fn record_url(version: &str, object: &str, id: &str) -> String {
    format!("/services/data/v{version}/sobjects/{object}/{id}")
}

/// A scalar as text (for comparisons); `None` for null, arrays and objects.
fn text_of(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

/// The token name Salesforce's JSON parser gives a value, for its messages.
fn json_token(value: &Value) -> &'static str {
    match value {
        Value::Null => "VALUE_NULL",
        Value::Bool(true) => "VALUE_TRUE",
        Value::Bool(false) => "VALUE_FALSE",
        Value::Number(n) if n.is_f64() => "VALUE_NUMBER_FLOAT",
        Value::Number(_) => "VALUE_NUMBER_INT",
        Value::String(_) => "VALUE_STRING",
        Value::Array(_) => "START_ARRAY",
        Value::Object(_) => "START_OBJECT",
    }
}

/// Whether a value clears a field: `null` or `""`.
fn is_blank(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}

fn is_true(value: Option<&Value>) -> bool {
    match value {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
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

/// A date-time as Salesforce's REST API reads one: ISO 8601 with a zone (`Z`, `+02:00`
/// or `+0000`), seconds and optional fractions.
fn parse_datetime(text: &str) -> Option<DateTime<FixedOffset>> {
    DateTime::parse_from_rfc3339(text)
        .or_else(|_| DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .ok()
}

fn is_id_shaped(text: &str) -> bool {
    (text.len() == 15 || text.len() == 18) && text.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Checks a (non-blank) value against its field's type.
fn check_value(field: &FieldDef, value: &Value) -> Result<(), Reply> {
    let shown = text_of(value).unwrap_or_else(|| value.to_string());
    let parse_failure = || {
        parser_error(&format!(
            "Cannot deserialize instance of {} from {} value {shown} or request may be missing a required field",
            field.kind.name(),
            json_token(value)
        ))
    };
    if matches!(value, Value::Array(_) | Value::Object(_)) {
        return Err(parse_failure());
    }
    let ok = match (field.kind, value) {
        (Kind::Text | Kind::Any, _) => true,
        (Kind::Email, _) => {
            if value.as_str().is_some_and(plausible_email) {
                true
            } else {
                return Err(api_error(
                    400,
                    "INVALID_EMAIL_ADDRESS",
                    &format!("{}: invalid email address: {shown}", field.name),
                    Some(&[&field.name]),
                ));
            }
        }
        (Kind::DateTime, Value::String(s)) => parse_datetime(s).is_some(),
        (Kind::Date, Value::String(s)) => NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok(),
        (Kind::Int, Value::Number(n)) => n.is_i64() || n.is_u64(),
        (Kind::Int, Value::String(s)) => s.parse::<i64>().is_ok(),
        (Kind::Number, Value::Number(_)) | (Kind::Bool, Value::Bool(_)) => true,
        (Kind::Number, Value::String(s)) => s.parse::<f64>().is_ok(),
        (Kind::Bool, Value::String(s)) => {
            s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("false")
        }
        (Kind::Ref(target), _) => {
            if value.as_str().is_some_and(is_id_shaped) {
                true
            } else {
                return Err(api_error(
                    400,
                    "MALFORMED_ID",
                    &format!("{}: id value of incorrect type: {shown}", target.label()),
                    Some(&[&field.name]),
                ));
            }
        }
        _ => false,
    };
    if ok { Ok(()) } else { Err(parse_failure()) }
}

/// A request body as a JSON object.
fn parse_body(body: &[u8]) -> Result<Map<String, Value>, Reply> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(parser_error("No content to map due to end-of-input"));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(parser_error(&format!(
            "Cannot deserialize instance of sobject from {} value",
            json_token(&other)
        ))),
        Err(e) => Err(parser_error(&format!(
            "Unexpected character at [line:{}, column:{}]: {e}",
            e.line(),
            e.column()
        ))),
    }
}

// ---------------------------------------------------------------------------------------
// SOQL

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Str(String),
    Num(String),
    Comma,
    Open,
    Close,
    Op(&'static str),
}

impl Tok {
    fn shown(&self) -> String {
        match self {
            Self::Word(w) | Self::Num(w) => w.clone(),
            Self::Str(s) => format!("'{s}'"),
            Self::Comma => ",".into(),
            Self::Open => "(".into(),
            Self::Close => ")".into(),
            Self::Op(op) => (*op).into(),
        }
    }

    fn is_keyword(&self, keyword: &str) -> bool {
        matches!(self, Self::Word(w) if w.eq_ignore_ascii_case(keyword))
    }
}

/// A token and the column (1-based, in characters) it starts at.
type Lexed = (Tok, usize);

/// Where a query went wrong, in Salesforce's words: the query, a caret under the column,
/// and the message.
fn query_error(code: &str, soql: &str, column: usize, message: &str) -> Reply {
    let text = format!(
        "\n{soql}\n{}^\nERROR at Row:1:Column:{column}\n{message}",
        " ".repeat(column.saturating_sub(1))
    );
    api_error(400, code, &text, None)
}

fn malformed_at(soql: &str, column: usize, message: &str) -> Reply {
    query_error("MALFORMED_QUERY", soql, column, message)
}

/// The error of a string literal that opens at `start` and never closes.
fn unterminated(soql: &str, chars: &[char], start: usize) -> Reply {
    malformed_at(
        soql,
        start + 1,
        &format!(
            "line 1:{} mismatched character '<EOF>' expecting ''' (unexpected token: unterminated string literal)",
            chars.len()
        ),
    )
}

/// Splits a query into tokens; string literals are unescaped with SOQL's rules.
fn lex(soql: &str) -> Result<Vec<Lexed>, Reply> {
    let chars: Vec<char> = soql.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        let column = i + 1;
        let next = chars.get(i + 1).copied();
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while chars
                .get(i)
                .is_some_and(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '.')
            {
                i += 1;
            }
            out.push((Tok::Word(chars[start..i].iter().collect()), column));
        } else if c.is_ascii_digit() || (c == '-' && next.is_some_and(|n| n.is_ascii_digit())) {
            let start = i;
            i += 1;
            while chars
                .get(i)
                .is_some_and(|c| c.is_ascii_digit() || *c == '.')
            {
                i += 1;
            }
            out.push((Tok::Num(chars[start..i].iter().collect()), column));
        } else if c == '\'' {
            let (text, end) = string_literal(soql, &chars, i)?;
            out.push((Tok::Str(text), column));
            i = end;
        } else {
            let (tok, width) = match (c, next) {
                (',', _) => (Tok::Comma, 1),
                ('(', _) => (Tok::Open, 1),
                (')', _) => (Tok::Close, 1),
                ('=', _) => (Tok::Op("="), 1),
                ('!', Some('=')) => (Tok::Op("!="), 2),
                ('<', Some('>')) => (Tok::Op("<>"), 2),
                ('<', Some('=')) => (Tok::Op("<="), 2),
                ('>', Some('=')) => (Tok::Op(">="), 2),
                ('<', _) => (Tok::Op("<"), 1),
                ('>', _) => (Tok::Op(">"), 1),
                _ => {
                    return Err(malformed_at(
                        soql,
                        column,
                        &format!("unexpected token: '{c}'"),
                    ));
                }
            };
            out.push((tok, column));
            i += width;
        }
    }
    Ok(out)
}

/// The string literal opening at `start`: its value and the index after its closing quote.
fn string_literal(soql: &str, chars: &[char], start: usize) -> Result<(String, usize), Reply> {
    let mut text = String::new();
    let mut i = start + 1;
    loop {
        match chars.get(i) {
            None => return Err(unterminated(soql, chars, start)),
            Some('\'') => return Ok((text, i + 1)),
            Some('\\') => {
                let Some(&escaped) = chars.get(i + 1) else {
                    return Err(unterminated(soql, chars, start));
                };
                let c = match escaped {
                    '\\' => '\\',
                    '\'' => '\'',
                    '"' => '"',
                    'n' | 'N' => '\n',
                    'r' | 'R' => '\r',
                    't' | 'T' => '\t',
                    'b' | 'B' => '\u{8}',
                    'f' | 'F' => '\u{c}',
                    '_' => '_',
                    '%' => '%',
                    other => {
                        let raw: String = chars[start..=i + 1].iter().collect();
                        return Err(malformed_at(
                            soql,
                            start + 1,
                            &format!(
                                "Invalid string literal {raw}'. Illegal character sequence '\\{other}' in string literal. (unexpected token)"
                            ),
                        ));
                    }
                };
                text.push(c);
                i += 2;
            }
            Some(&c) => {
                text.push(c);
                i += 1;
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Lit {
    Null,
    Bool(bool),
    Num(String),
    Str(String),
}

#[derive(Debug)]
enum Test {
    Eq(Lit),
    Ne(Lit),
    In(Vec<Lit>),
    NotIn(Vec<Lit>),
}

#[derive(Debug)]
struct Cond {
    field: String,
    column: usize,
    test: Test,
}

#[derive(Debug)]
struct Order {
    field: String,
    column: usize,
    descending: bool,
    nulls_first: bool,
}

/// A parsed query; names as written (resolved against the schema later).
#[derive(Debug)]
struct Soql {
    fields: Vec<(String, usize)>,
    object: String,
    conds: Vec<Cond>,
    order: Option<Order>,
    limit: Option<usize>,
}

struct Parser<'a> {
    soql: &'a str,
    toks: Vec<Lexed>,
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|(t, _)| t)
    }

    fn column(&self) -> usize {
        self.toks
            .get(self.pos)
            .map_or(self.soql.chars().count() + 1, |(_, c)| *c)
    }

    fn at_keyword(&self, keyword: &str) -> bool {
        self.peek().is_some_and(|t| t.is_keyword(keyword))
    }

    /// The error for the token at the cursor.
    fn unexpected(&self) -> Reply {
        let message = match self.peek() {
            None => "unexpected token: <EOF>".to_owned(),
            Some(t) if t.is_keyword("OR") || t.is_keyword("NOT") || t.is_keyword("LIKE") => {
                format!(
                    "unexpected token: '{}' (the mock Salesforce does not support it)",
                    t.shown()
                )
            }
            Some(Tok::Op(op)) if ["<", ">", "<=", ">="].contains(op) => {
                format!("unexpected token: '{op}' (the mock Salesforce does not support it)")
            }
            Some(t) => format!("unexpected token: '{}'", t.shown()),
        };
        malformed_at(self.soql, self.column(), &message)
    }

    fn keyword(&mut self, keyword: &str) -> Result<(), Reply> {
        if self.at_keyword(keyword) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    /// A name (field or object) that is not a clause keyword.
    fn name(&mut self) -> Result<(String, usize), Reply> {
        let column = self.column();
        match self.peek() {
            Some(Tok::Word(w))
                if !["SELECT", "FROM", "WHERE", "AND", "OR", "ORDER", "LIMIT"]
                    .iter()
                    .any(|k| w.eq_ignore_ascii_case(k)) =>
            {
                let name = w.clone();
                self.pos += 1;
                Ok((name, column))
            }
            _ => Err(self.unexpected()),
        }
    }

    fn literal(&mut self) -> Result<Lit, Reply> {
        let lit = match self.peek() {
            Some(Tok::Str(s)) => Lit::Str(s.clone()),
            Some(Tok::Num(n)) => Lit::Num(n.clone()),
            Some(t) if t.is_keyword("null") => Lit::Null,
            Some(t) if t.is_keyword("true") => Lit::Bool(true),
            Some(t) if t.is_keyword("false") => Lit::Bool(false),
            _ => return Err(self.unexpected()),
        };
        self.pos += 1;
        Ok(lit)
    }

    fn literal_list(&mut self) -> Result<Vec<Lit>, Reply> {
        if self.peek() != Some(&Tok::Open) {
            return Err(self.unexpected());
        }
        self.pos += 1;
        let mut list = vec![self.literal()?];
        loop {
            match self.peek() {
                Some(Tok::Comma) => {
                    self.pos += 1;
                    list.push(self.literal()?);
                }
                Some(Tok::Close) => {
                    self.pos += 1;
                    return Ok(list);
                }
                _ => return Err(self.unexpected()),
            }
        }
    }

    fn condition(&mut self) -> Result<Cond, Reply> {
        let (field, column) = self.name()?;
        let test = match self.peek() {
            Some(Tok::Op("=")) => {
                self.pos += 1;
                Test::Eq(self.literal()?)
            }
            Some(Tok::Op("!=" | "<>")) => {
                self.pos += 1;
                Test::Ne(self.literal()?)
            }
            Some(t) if t.is_keyword("IN") => {
                self.pos += 1;
                Test::In(self.literal_list()?)
            }
            Some(t) if t.is_keyword("NOT") => {
                self.pos += 1;
                self.keyword("IN")?;
                Test::NotIn(self.literal_list()?)
            }
            _ => return Err(self.unexpected()),
        };
        Ok(Cond {
            field,
            column,
            test,
        })
    }

    fn parse(mut self) -> Result<Soql, Reply> {
        self.keyword("SELECT")?;
        let mut fields = vec![self.name()?];
        while self.peek() == Some(&Tok::Comma) {
            self.pos += 1;
            fields.push(self.name()?);
        }
        self.keyword("FROM")?;
        let (object, _) = self.name()?;
        let mut conds = Vec::new();
        if self.at_keyword("WHERE") {
            self.pos += 1;
            conds.push(self.condition()?);
            while self.at_keyword("AND") {
                self.pos += 1;
                conds.push(self.condition()?);
            }
        }
        let mut order = None;
        if self.at_keyword("ORDER") {
            self.pos += 1;
            self.keyword("BY")?;
            let (field, column) = self.name()?;
            let mut descending = false;
            if self.at_keyword("ASC") {
                self.pos += 1;
            } else if self.at_keyword("DESC") {
                self.pos += 1;
                descending = true;
            }
            let mut nulls_first = !descending;
            if self.at_keyword("NULLS") {
                self.pos += 1;
                if self.at_keyword("FIRST") {
                    nulls_first = true;
                } else if self.at_keyword("LAST") {
                    nulls_first = false;
                } else {
                    return Err(self.unexpected());
                }
                self.pos += 1;
            }
            order = Some(Order {
                field,
                column,
                descending,
                nulls_first,
            });
        }
        let mut limit = None;
        if self.at_keyword("LIMIT") {
            self.pos += 1;
            let count = match self.peek() {
                Some(Tok::Num(n)) => n.parse::<usize>().ok(),
                _ => None,
            };
            limit = Some(count.ok_or_else(|| self.unexpected())?);
            self.pos += 1;
        }
        if self.peek().is_some() {
            return Err(self.unexpected());
        }
        Ok(Soql {
            fields,
            object,
            conds,
            order,
            limit,
        })
    }
}

fn parse_soql(soql: &str) -> Result<Soql, Reply> {
    let toks = lex(soql)?;
    Parser { soql, toks, pos: 0 }.parse()
}

/// Whether a (non-null) field value equals a literal: text ignoring case, numbers by value.
fn lit_matches(value: &Value, lit: &Lit) -> bool {
    match lit {
        Lit::Null => value.is_null(),
        Lit::Bool(b) => match value {
            Value::Bool(x) => x == b,
            Value::String(s) => s.eq_ignore_ascii_case(if *b { "true" } else { "false" }),
            _ => false,
        },
        Lit::Num(n) => match (
            text_of(value).and_then(|t| t.parse::<f64>().ok()),
            n.parse::<f64>(),
        ) {
            (Some(x), Ok(y)) => x == y,
            _ => false,
        },
        Lit::Str(s) => text_of(value).is_some_and(|t| t.to_lowercase() == s.to_lowercase()),
    }
}

fn test_matches(value: &Value, test: &Test) -> bool {
    match test {
        Test::Eq(lit) => lit_matches(value, lit),
        Test::Ne(lit) => !lit_matches(value, lit),
        Test::In(list) => list.iter().any(|lit| lit_matches(value, lit)),
        Test::NotIn(list) => !list.iter().any(|lit| lit_matches(value, lit)),
    }
}

/// Orders two non-null values: numbers by value, booleans, else text ignoring case.
fn compare_values(a: &Value, b: &Value) -> Ordering {
    if let (Some(x), Some(y)) = (a.as_f64(), b.as_f64()) {
        return x.total_cmp(&y);
    }
    if let (Value::Bool(x), Value::Bool(y)) = (a, b) {
        return x.cmp(y);
    }
    let x = text_of(a).unwrap_or_default().to_lowercase();
    let y = text_of(b).unwrap_or_default().to_lowercase();
    x.cmp(&y)
}

// ---------------------------------------------------------------------------------------
// Routing

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verb {
    Get,
    Patch,
    Delete,
}

/// A `/services/data/vXX.X/…` call.
#[derive(Debug)]
enum Call {
    Limits,
    Query,
    Create(String),
    Record {
        verb: Verb,
        object: String,
        id: String,
    },
    External {
        verb: Verb,
        object: String,
        field: String,
        value: String,
    },
    NotAllowed {
        method: String,
        allowed: &'static str,
    },
    NotFound,
}

/// What a request is for.
#[derive(Debug)]
enum Route {
    Token,
    /// Answered once authenticated.
    Api(Version, Call),
    /// No such endpoint; not authenticated.
    Unknown,
}

fn route(method: &Method, path: &str) -> Route {
    let segments: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(decode_segment)
        .collect();
    let s: Vec<&str> = segments.iter().map(String::as_str).collect();
    let verb = match method.as_str() {
        "GET" => Some(Verb::Get),
        "PATCH" => Some(Verb::Patch),
        "DELETE" => Some(Verb::Delete),
        _ => None,
    };
    let not_allowed = |allowed: &'static str| Call::NotAllowed {
        method: method.to_string(),
        allowed,
    };
    match s.as_slice() {
        ["services", "oauth2", "token"] if method == Method::POST => Route::Token,
        ["services", "data", version, rest @ ..] => {
            let Some(version) = Version::parse(version) else {
                return Route::Api(
                    Version {
                        text: (*version).to_owned(),
                        major: 0,
                    },
                    Call::NotFound,
                );
            };
            let call = match (rest, verb) {
                (["limits"], Some(Verb::Get)) => Call::Limits,
                (["limits"], _) => not_allowed("GET"),
                (["query"], Some(Verb::Get)) => Call::Query,
                (["query"], _) => not_allowed("GET"),
                (["sobjects", object], _) if method == Method::POST => {
                    Call::Create((*object).to_owned())
                }
                (["sobjects", _], Some(Verb::Get)) => Call::NotFound,
                (["sobjects", _], _) => not_allowed("GET,POST"),
                (["sobjects", object, id], Some(verb)) => Call::Record {
                    verb,
                    object: (*object).to_owned(),
                    id: (*id).to_owned(),
                },
                (["sobjects", _, _], None) => not_allowed("GET,PATCH,DELETE"),
                (["sobjects", object, field, value], Some(verb)) => Call::External {
                    verb,
                    object: (*object).to_owned(),
                    field: (*field).to_owned(),
                    value: (*value).to_owned(),
                },
                (["sobjects", _, _, _], None) => not_allowed("GET,PATCH,DELETE"),
                _ => Call::NotFound,
            };
            Route::Api(version, call)
        }
        _ => Route::Unknown,
    }
}

/// The API version of a `/services/data/vXX.X/…` path.
fn path_version(path: &str) -> Option<String> {
    let rest = path.strip_prefix("/services/data/")?;
    let segment = rest.split('/').next()?;
    Version::parse(segment).map(|v| v.text)
}

/// The record(s) an external-id path names: `…/sobjects/{object}/{field}/{value}`.
#[derive(Debug, Clone, Copy)]
struct ExternalId<'a> {
    object: &'a str,
    field: &'a str,
    value: &'a str,
}

// ---------------------------------------------------------------------------------------
// State

struct Inner {
    options: SalesforceOptions,
    url: String,
    jwt_key: Option<DecodingKey>,
    sessions: HashSet<String>,
    /// The grant type of every token issued, in order.
    grants: Vec<String>,
    jwt_claims: Vec<Value>,
    api_used: usize,
    requests: Vec<SalesforceRequest>,
    faults: VecDeque<Fault>,
    /// Lower-case name → definition.
    objects: BTreeMap<String, ObjectDef>,
    custom_objects: usize,
    next_id: u64,
    /// Lower-case id → record.
    records: BTreeMap<String, Rec>,
    duplicate_rules: Vec<DuplicateRule>,
    validation_rules: Vec<ValidationRule>,
}

impl Inner {
    fn new(options: SalesforceOptions, url: String) -> Self {
        let jwt_key = options
            .jwt_public_key_pem
            .as_deref()
            .and_then(|pem| DecodingKey::from_rsa_pem(pem.as_bytes()).ok());
        Self {
            options,
            url,
            jwt_key,
            sessions: HashSet::new(),
            grants: Vec::new(),
            jwt_claims: Vec::new(),
            api_used: 0,
            requests: Vec::new(),
            faults: VecDeque::new(),
            objects: standard_objects()
                .into_iter()
                .map(|def| (def.name.to_ascii_lowercase(), def))
                .collect(),
            custom_objects: 0,
            next_id: 0,
            records: BTreeMap::new(),
            duplicate_rules: Vec::new(),
            validation_rules: Vec::new(),
        }
    }

    fn daily_max(&self) -> usize {
        self.options.daily_limit.unwrap_or(DEFAULT_DAILY_MAX)
    }

    /// Answers a request; the second part says how to deliver the answer.
    fn process(
        &mut self,
        method: &Method,
        uri: &Uri,
        token: Option<&str>,
        body: &[u8],
    ) -> (Reply, After) {
        let (version, call) = match route(method, uri.path()) {
            Route::Token => return (self.grant(body), After::Answer),
            Route::Unknown => return (not_found(), After::Answer),
            Route::Api(version, call) => (version, call),
        };
        if !token.is_some_and(|t| self.sessions.contains(t)) {
            return (invalid_session(), After::Answer);
        }
        let over = self
            .options
            .daily_limit
            .is_some_and(|limit| self.api_used >= limit);
        if !over {
            self.api_used += 1;
        }
        let usage = format!("api-usage={}/{}", self.api_used, self.daily_max());
        let (mut reply, after) = if over {
            let reply = api_error(
                403,
                "REQUEST_LIMIT_EXCEEDED",
                "TotalRequests Limit exceeded.",
                None,
            );
            (reply, After::Answer)
        } else {
            Fault::answer(
                self.faults.pop_front(),
                |status| {
                    api_error(
                        status,
                        "UNKNOWN_EXCEPTION",
                        "An unexpected error occurred.",
                        None,
                    )
                },
                || self.apply(&version, call, uri, body),
            )
        };
        reply.headers.push(("sforce-limit-info", usage));
        (reply, after)
    }

    // -- OAuth ----------------------------------------------------------------------------

    /// `POST /services/oauth2/token`.
    fn grant(&mut self, body: &[u8]) -> Reply {
        let form = parse_pairs(&String::from_utf8_lossy(body));
        let field = |key: &str| pair(&form, key).unwrap_or_default();
        let grant_type = field("grant_type");
        let checked = match grant_type {
            "client_credentials" => self.check_client(field("client_id"), field("client_secret")),
            "refresh_token" => self
                .check_client(field("client_id"), field("client_secret"))
                .and_then(|()| {
                    if field("refresh_token") == self.options.refresh_token {
                        Ok(())
                    } else {
                        Err(invalid_grant())
                    }
                }),
            JWT_BEARER => self.check_assertion(field("assertion")),
            _ => Err(oauth_error(
                "unsupported_grant_type",
                "grant type not supported",
            )),
        };
        if let Err(reply) = checked {
            return reply;
        }
        let token = format!("00Dmock!{}", uuid::Uuid::now_v7().simple());
        self.sessions.insert(token.clone());
        self.grants.push(grant_type.to_owned());
        Reply::json(
            200,
            json!({
                "access_token": token,
                "signature": format!("mock-signature-{}", uuid::Uuid::now_v7().simple()),
                "token_format": "opaque",
                "instance_url": self.url,
                "id": format!("{}/id/00Dmock/005mock", self.url),
                "token_type": "Bearer",
                "issued_at": Utc::now().timestamp_millis().to_string(),
                "scope": "api",
            }),
        )
    }

    fn check_client(&self, client_id: &str, client_secret: &str) -> Result<(), Reply> {
        if client_id != self.options.client_id {
            Err(invalid_client_id())
        } else if client_secret != self.options.client_secret {
            Err(invalid_grant())
        } else {
            Ok(())
        }
    }

    /// Checks a JWT bearer assertion; records its claims once its signature checks out.
    fn check_assertion(&mut self, assertion: &str) -> Result<(), Reply> {
        let key = self.jwt_key.as_ref().ok_or_else(invalid_grant)?;
        let mut validation = Validation::new(Algorithm::RS256);
        // The claims are checked below, with Salesforce's rules.
        validation.required_spec_claims = HashSet::new();
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.leeway = 0;
        let claims = jsonwebtoken::decode::<Value>(assertion, key, &validation)
            .map_err(|_| invalid_grant())?
            .claims;
        self.jwt_claims.push(claims.clone());
        let text = |name: &str| claims.get(name).and_then(Value::as_str);
        if text("iss") != Some(self.options.client_id.as_str()) {
            return Err(invalid_client_id());
        }
        if text("sub") != Some(self.options.username.as_str()) {
            return Err(invalid_grant());
        }
        let audiences: Vec<&str> = match claims.get("aud") {
            Some(Value::String(aud)) => vec![aud.as_str()],
            Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        let known = |aud: &&str| *aud == self.url || LOGIN_AUDIENCES.contains(aud);
        if !audiences.iter().any(known) {
            return Err(invalid_grant());
        }
        let exp = claims
            .get("exp")
            .and_then(|e| e.as_i64().or_else(|| e.as_f64().map(|f| f.floor() as i64)))
            .ok_or_else(invalid_grant)?;
        let now = Utc::now().timestamp();
        if exp <= now - JWT_SKEW || exp > now + JWT_MAX_AHEAD + JWT_SKEW {
            return Err(invalid_grant());
        }
        Ok(())
    }

    // -- Schema and records -----------------------------------------------------------------

    fn object(&self, name: &str) -> Option<&ObjectDef> {
        self.objects.get(&name.to_ascii_lowercase())
    }

    fn find(&self, id: &str) -> Option<&Rec> {
        self.records.get(&id.to_ascii_lowercase())
    }

    /// The record of `object` with this id: 404 when unknown, or deleted.
    fn find_in(&self, def: &ObjectDef, id: &str) -> Result<&Rec, Reply> {
        match self.find(id) {
            Some(rec) if rec.object == def.name => {
                if rec.deleted {
                    Err(entity_deleted())
                } else {
                    Ok(rec)
                }
            }
            _ => Err(not_found()),
        }
    }

    fn live(&self, object: &str) -> impl Iterator<Item = &Rec> {
        self.records
            .values()
            .filter(move |rec| rec.object == object && !rec.deleted)
    }

    /// The live records of `object` whose `field` is `value`, ignoring case.
    fn by_value(&self, object: &str, field: &str, value: &str) -> Vec<&Rec> {
        let wanted = value.to_lowercase();
        self.live(object)
            .filter(|rec| {
                rec.fields
                    .get(field)
                    .and_then(text_of)
                    .is_some_and(|t| t.to_lowercase() == wanted)
            })
            .collect()
    }

    /// The fields a record would have once `body` is applied to `current` (empty for a
    /// new record), if Salesforce would save it.
    fn prepare(
        &self,
        version: &str,
        def: &ObjectDef,
        own_id: Option<&str>,
        current: &Map<String, Value>,
        body: &Map<String, Value>,
    ) -> Result<Map<String, Value>, Reply> {
        let mut merged = current.clone();
        let mut lookups = Vec::new();
        for (name, value) in body {
            if name == "attributes" {
                continue;
            }
            if name.eq_ignore_ascii_case("Id") {
                return Err(invalid_field(
                    "The Id field should not be specified in the sobject data.",
                ));
            }
            let field = def.field(name).ok_or_else(|| {
                invalid_field(&format!(
                    "No such column '{name}' on sobject of type {}",
                    def.name
                ))
            })?;
            if is_blank(value) {
                merged.remove(&field.name);
                continue;
            }
            check_value(field, value)?;
            if let (Kind::Ref(target), Some(id)) = (field.kind, value.as_str()) {
                lookups.push((field.name.as_str(), target, id));
            }
            merged.insert(field.name.clone(), value.clone());
        }
        let missing = missing_fields(def, &merged);
        if !missing.is_empty() {
            return Err(api_error(
                400,
                "REQUIRED_FIELD_MISSING",
                &format!("Required fields are missing: [{}]", missing.join(", ")),
                Some(&missing),
            ));
        }
        for (name, target, id) in lookups {
            self.check_lookup(name, target, id)?;
        }
        if def.name == "Event" {
            self.check_event(&merged)?;
        }
        self.check_rules(version, def, own_id, &merged)?;
        Ok(merged)
    }

    fn check_lookup(&self, name: &str, target: Target, id: &str) -> Result<(), Reply> {
        match self.find(id) {
            None => Err(api_error(
                400,
                "INVALID_CROSS_REFERENCE_KEY",
                "invalid cross reference id",
                Some(&[name]),
            )),
            Some(rec) if rec.deleted => Err(api_error(
                400,
                "ENTITY_IS_DELETED",
                "entity is deleted",
                Some(&[name]),
            )),
            Some(rec) if !target.accepts(&rec.object) => Err(api_error(
                400,
                "FIELD_INTEGRITY_EXCEPTION",
                &format!("{}: id value of incorrect type: {id}", target.label()),
                Some(&[name]),
            )),
            Some(_) => Ok(()),
        }
    }

    /// An Event must not end before it starts, and a Lead's event relates to nothing.
    fn check_event(&self, merged: &Map<String, Value>) -> Result<(), Reply> {
        let at = |name: &str| {
            merged
                .get(name)
                .and_then(Value::as_str)
                .and_then(parse_datetime)
        };
        let start = at("StartDateTime").or_else(|| at("ActivityDateTime"));
        if let (Some(start), Some(end)) = (start, at("EndDateTime"))
            && end < start
        {
            return Err(api_error(
                400,
                "FIELD_INTEGRITY_EXCEPTION",
                "End Date/Time: The end time must be after the start time.",
                Some(&["EndDateTime"]),
            ));
        }
        let who_is_lead = merged
            .get("WhoId")
            .and_then(Value::as_str)
            .and_then(|id| self.find(id))
            .is_some_and(|rec| rec.object == "Lead");
        if who_is_lead && merged.contains_key("WhatId") {
            return Err(api_error(
                400,
                "FIELD_INTEGRITY_EXCEPTION",
                "Related To ID: an activity whose Name is a lead cannot be related to a record.",
                Some(&["WhatId"]),
            ));
        }
        Ok(())
    }

    /// Validation rules, then duplicate rules, on the record as it would be saved.
    fn check_rules(
        &self,
        version: &str,
        def: &ObjectDef,
        own_id: Option<&str>,
        merged: &Map<String, Value>,
    ) -> Result<(), Reply> {
        for rule in self
            .validation_rules
            .iter()
            .filter(|r| r.object == def.name)
        {
            if merged.get(&rule.field) == Some(&rule.forbidden) {
                return Err(api_error(
                    400,
                    "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                    &rule.message,
                    Some(&[&rule.field]),
                ));
            }
        }
        for rule in self.duplicate_rules.iter().filter(|r| r.object == def.name) {
            let Some(value) = merged.get(&rule.field).and_then(text_of) else {
                continue;
            };
            let matches: Vec<&Rec> = self
                .by_value(&def.name, &rule.field, &value)
                .into_iter()
                .filter(|rec| own_id.is_none_or(|own| !rec.id.eq_ignore_ascii_case(own)))
                .collect();
            if !matches.is_empty() {
                return Err(duplicates_detected(version, &def.name, &matches));
            }
        }
        Ok(())
    }

    fn insert(&mut self, def: &ObjectDef, fields: Map<String, Value>) -> String {
        self.next_id += 1;
        let id = format!("{}Mock{:011}", def.prefix, self.next_id);
        let now = Utc::now();
        self.records.insert(
            id.to_ascii_lowercase(),
            Rec {
                id: id.clone(),
                object: def.name.clone(),
                fields,
                deleted: false,
                created_at: now,
                updated_at: now,
            },
        );
        id
    }

    fn store(&mut self, id: &str, fields: Map<String, Value>) {
        if let Some(rec) = self.records.get_mut(&id.to_ascii_lowercase()) {
            rec.fields = fields;
            rec.updated_at = Utc::now();
        }
    }

    fn remove(&mut self, id: &str) {
        if let Some(rec) = self.records.get_mut(&id.to_ascii_lowercase()) {
            rec.deleted = true;
            rec.updated_at = Utc::now();
        }
    }

    /// The canonical names `fields=a,b` asks for (`None`: every field).
    fn asked_fields(
        def: &ObjectDef,
        query: &[(String, String)],
    ) -> Result<Option<Vec<String>>, Reply> {
        let Some(list) = pair(query, "fields") else {
            return Ok(None);
        };
        list.split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(|n| def.column(n).ok_or_else(|| no_such_column(n, &def.name)))
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    // -- Calls --------------------------------------------------------------------------------

    fn apply(&mut self, version: &Version, call: Call, uri: &Uri, body: &[u8]) -> Reply {
        let query = parse_pairs(uri.query().unwrap_or_default());
        let answer = match call {
            Call::Limits => Ok(self.limits()),
            Call::Query => self.query(version, &query),
            Call::Create(object) => self.create(version, &object, body),
            Call::Record { verb, object, id } => match verb {
                Verb::Get => self.read(version, &object, &id, &query),
                Verb::Patch => self.update(version, &object, &id, body),
                Verb::Delete => self.delete(&object, &id),
            },
            Call::External {
                verb,
                object,
                field,
                value,
            } => {
                let key = ExternalId {
                    object: &object,
                    field: &field,
                    value: &value,
                };
                self.external(version, verb, &key, &query, body)
            }
            Call::NotAllowed { method, allowed } => Err(api_error(
                405,
                "METHOD_NOT_ALLOWED",
                &format!("HTTP Method '{method}' not allowed. Allowed are {allowed}"),
                None,
            )),
            Call::NotFound => Err(not_found()),
        };
        answer.unwrap_or_else(|reply| reply)
    }

    fn limits(&self) -> Reply {
        let max = self.daily_max();
        Reply::json(
            200,
            json!({
                "DailyApiRequests": {
                    "Max": max,
                    "Remaining": max.saturating_sub(self.api_used),
                },
            }),
        )
    }

    fn create(&mut self, version: &Version, object: &str, body: &[u8]) -> Answer {
        let def = self.object(object).cloned().ok_or_else(not_found)?;
        let body = parse_body(body)?;
        let fields = self.prepare(&version.text, &def, None, &Map::new(), &body)?;
        let id = self.insert(&def, fields);
        Ok(Reply::json(
            201,
            json!({"id": id, "success": true, "errors": []}),
        ))
    }

    fn read(
        &self,
        version: &Version,
        object: &str,
        id: &str,
        query: &[(String, String)],
    ) -> Answer {
        let def = self.object(object).ok_or_else(not_found)?;
        let rec = self.find_in(def, id)?;
        let fields = Self::asked_fields(def, query)?;
        Ok(Reply::json(
            200,
            record_json(def, rec, &version.text, fields.as_deref()),
        ))
    }

    fn update(&mut self, version: &Version, object: &str, id: &str, body: &[u8]) -> Answer {
        let def = self.object(object).cloned().ok_or_else(not_found)?;
        let rec = self.find_in(&def, id)?;
        let id = rec.id.clone();
        let body = parse_body(body)?;
        let fields = self.prepare(&version.text, &def, Some(&id), &rec.fields, &body)?;
        self.store(&id, fields);
        Ok(Reply::empty(204))
    }

    fn delete(&mut self, object: &str, id: &str) -> Answer {
        let def = self.object(object).cloned().ok_or_else(not_found)?;
        let id = self.find_in(&def, id)?.id.clone();
        self.remove(&id);
        Ok(Reply::empty(204))
    }

    /// `…/sobjects/{object}/{field}/{value}`: read, upsert or delete by an external id.
    fn external(
        &mut self,
        version: &Version,
        verb: Verb,
        key: &ExternalId<'_>,
        query: &[(String, String)],
        body: &[u8],
    ) -> Answer {
        let ExternalId {
            object,
            field,
            value,
        } = *key;
        let def = self.object(object).cloned().ok_or_else(not_found)?;
        let field = def
            .field(field)
            .filter(|f| f.external_id)
            .map(|f| f.name.clone())
            .ok_or_else(|| {
                Reply::json(
                    404,
                    json!([{
                        "errorCode": "NOT_FOUND",
                        "message": format!("Provided external ID field does not exist or is not accessible: {field}"),
                    }]),
                )
            })?;
        let matching: Vec<(String, Map<String, Value>)> = self
            .by_value(&def.name, &field, value)
            .into_iter()
            .map(|rec| (rec.id.clone(), rec.fields.clone()))
            .collect();
        if matching.len() > 1 {
            let urls: Vec<Value> = matching
                .iter()
                .map(|(id, _)| Value::String(record_url(&version.text, &def.name, id)))
                .collect();
            return Ok(Reply::json(300, Value::Array(urls)));
        }
        let found = matching.into_iter().next();
        match verb {
            Verb::Get => {
                let (id, _) = found.ok_or_else(not_found)?;
                self.read(version, &def.name, &id, query)
            }
            Verb::Delete => {
                let (id, _) = found.ok_or_else(not_found)?;
                self.remove(&id);
                Ok(Reply::empty(204))
            }
            Verb::Patch => {
                let mut body = parse_body(body)?;
                let sent = body
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(&field))
                    .map(|(k, v)| (k.clone(), v.clone()));
                if let Some((key, sent)) = sent {
                    let same =
                        text_of(&sent).is_some_and(|t| t.to_lowercase() == value.to_lowercase());
                    if !same {
                        return Err(invalid_field(&format!(
                            "{field}: the value in the body ({}) does not match the external id in the URL ({value})",
                            text_of(&sent).unwrap_or_else(|| sent.to_string())
                        )));
                    }
                    body.remove(&key);
                }
                match found {
                    None => {
                        body.insert(field, Value::String(value.to_owned()));
                        let fields = self.prepare(&version.text, &def, None, &Map::new(), &body)?;
                        let id = self.insert(&def, fields);
                        let mut answer = json!({"id": id, "success": true, "errors": []});
                        if version.upsert_answers_update() {
                            answer["created"] = Value::Bool(true);
                        }
                        Ok(Reply::json(201, answer))
                    }
                    Some((id, current)) => {
                        let fields =
                            self.prepare(&version.text, &def, Some(&id), &current, &body)?;
                        self.store(&id, fields);
                        if version.upsert_answers_update() {
                            Ok(Reply::json(
                                200,
                                json!({"id": id, "success": true, "errors": [], "created": false}),
                            ))
                        } else {
                            Ok(Reply::empty(204))
                        }
                    }
                }
            }
        }
    }

    /// `GET …/query?q=`.
    fn query(&self, version: &Version, query: &[(String, String)]) -> Answer {
        let soql = pair(query, "q")
            .filter(|q| !q.trim().is_empty())
            .ok_or_else(|| malformed_query("A query string has to be specified"))?;
        let parsed = parse_soql(soql)?;
        let def = self.object(&parsed.object).ok_or_else(|| {
            api_error(
                400,
                "INVALID_TYPE",
                &format!(
                    "sObject type '{}' is not supported. If you are attempting to use a custom object, be sure to append the '__c' after the entity name. Please reference your WSDL or the describe call for the appropriate names.",
                    parsed.object
                ),
                None,
            )
        })?;
        let column = |name: &str, at: usize| {
            def.column(name).ok_or_else(|| {
                query_error(
                    "INVALID_FIELD",
                    soql,
                    at,
                    &format!(
                        "No such column '{name}' on entity '{}'. {COLUMN_HINT}",
                        def.name
                    ),
                )
            })
        };
        let mut selected = Vec::new();
        for (name, at) in &parsed.fields {
            let name = column(name, *at)?;
            if selected.contains(&name) {
                return Err(malformed_query(&format!(
                    "duplicate field selected: {name}"
                )));
            }
            selected.push(name);
        }
        let conds = parsed
            .conds
            .iter()
            .map(|c| Ok((column(&c.field, c.column)?, &c.test)))
            .collect::<Result<Vec<_>, Reply>>()?;
        let order = match &parsed.order {
            Some(o) => Some((column(&o.field, o.column)?, o)),
            None => None,
        };
        let mut rows: Vec<&Rec> = self
            .live(&def.name)
            .filter(|rec| {
                conds
                    .iter()
                    .all(|(name, test)| test_matches(&value_of(def, rec, name), test))
            })
            .collect();
        if let Some((name, o)) = &order {
            rows.sort_by(|a, b| {
                let (x, y) = (value_of(def, a, name), value_of(def, b, name));
                let order = match (x.is_null(), y.is_null()) {
                    (true, true) => Ordering::Equal,
                    (true, false) => {
                        if o.nulls_first {
                            Ordering::Less
                        } else {
                            Ordering::Greater
                        }
                    }
                    (false, true) => {
                        if o.nulls_first {
                            Ordering::Greater
                        } else {
                            Ordering::Less
                        }
                    }
                    (false, false) => {
                        let order = compare_values(&x, &y);
                        if o.descending { order.reverse() } else { order }
                    }
                };
                order.then_with(|| a.id.cmp(&b.id))
            });
        }
        if let Some(limit) = parsed.limit {
            rows.truncate(limit);
        }
        let records: Vec<Value> = rows
            .iter()
            .map(|rec| record_json(def, rec, &version.text, Some(&selected)))
            .collect();
        Ok(Reply::json(
            200,
            json!({"totalSize": records.len(), "done": true, "records": records}),
        ))
    }
}

/// The fields a record lacks to be saved: the required ones, and an Event's start and end.
fn missing_fields<'a>(def: &'a ObjectDef, merged: &Map<String, Value>) -> Vec<&'a str> {
    let mut missing: Vec<&str> = def
        .fields
        .iter()
        .filter(|f| f.required && !merged.contains_key(&f.name))
        .map(|f| f.name.as_str())
        .collect();
    if def.name == "Event" {
        let has = |name: &str| merged.contains_key(name);
        if !has("StartDateTime") && !has("ActivityDateTime") {
            missing.push("StartDateTime");
        }
        if !is_true(merged.get("IsAllDayEvent")) && !has("EndDateTime") && !has("DurationInMinutes")
        {
            missing.push("EndDateTime");
        }
    }
    missing
}

/// A field's value as reads and queries see it: `Id`, the value, `false` for an unset
/// boolean, else `null`.
fn value_of(def: &ObjectDef, rec: &Rec, name: &str) -> Value {
    if name == "Id" {
        return Value::String(rec.id.clone());
    }
    match rec.fields.get(name) {
        Some(value) => value.clone(),
        None if def.field(name).is_some_and(|f| f.kind == Kind::Bool) => Value::Bool(false),
        None => Value::Null,
    }
}

/// A record as Salesforce answers it: `attributes`, then `fields` (`None`: `Id` and every
/// field of the object).
fn record_json(def: &ObjectDef, rec: &Rec, version: &str, fields: Option<&[String]>) -> Value {
    let mut out = Map::new();
    out.insert(
        "attributes".into(),
        json!({"type": def.name, "url": record_url(version, &def.name, &rec.id)}),
    );
    match fields {
        Some(names) => {
            for name in names {
                out.insert(name.clone(), value_of(def, rec, name));
            }
        }
        None => {
            out.insert("Id".into(), Value::String(rec.id.clone()));
            for field in &def.fields {
                out.insert(field.name.clone(), value_of(def, rec, &field.name));
            }
        }
    }
    Value::Object(out)
}

/// Salesforce's `DUPLICATES_DETECTED` answer for a save that matches `matches`.
fn duplicates_detected(version: &str, object: &str, matches: &[&Rec]) -> Reply {
    let records: Vec<Value> = matches
        .iter()
        .map(|rec| {
            json!({
                "additionalInformation": [],
                "fieldDiffs": [],
                "matchConfidence": 100.0,
                "record": {
                    "attributes": {
                        "type": object,
                        "url": record_url(version, object, &rec.id),
                    },
                    "Id": rec.id,
                },
            })
        })
        .collect();
    Reply::json(
        400,
        json!([{
            "message": "Use one of these records?",
            "errorCode": "DUPLICATES_DETECTED",
            "fields": [],
            "duplicateResult": {
                "allowSave": false,
                "duplicateRule": format!("Standard_{object}_Duplicate_Rule"),
                "duplicateRuleEntityType": object,
                "errorMessage": "You're creating a duplicate record. We recommend you use an existing record instead.",
                "matchResults": [{
                    "entityType": object,
                    "errors": [],
                    "matchEngine": "FuzzyMatchEngine",
                    "matchRecords": records,
                    "rule": format!("Standard_{object}_Match_Rule_v1_0"),
                    "size": matches.len(),
                    "success": true,
                }],
            },
        }]),
    )
}

type Shared = Arc<Mutex<Inner>>;

fn lock(state: &Shared) -> MutexGuard<'_, Inner> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The running mock.
pub struct MockSalesforce {
    addr: SocketAddr,
    state: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for MockSalesforce {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl MockSalesforce {
    /// Starts the mock on `127.0.0.1:0`.
    ///
    /// # Panics
    /// If no port can be bound.
    pub async fn start(options: SalesforceOptions) -> Self {
        let (listener, addr) = bind("Salesforce").await;
        let state = Arc::new(Mutex::new(Inner::new(options, format!("http://{addr}"))));
        let app = Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&state));
        let task = spawn(listener, app);
        Self { addr, state, task }
    }

    /// The base URL, e.g. `http://127.0.0.1:41234`: the login host (`/services/oauth2/token`
    /// goes after it) and the instance (`/services/data/vXX.X/…`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        lock(&self.state)
    }

    /// Makes the next `n` authenticated REST calls misbehave with `fault` (after any
    /// already queued).
    pub fn fail_next(&self, n: usize, fault: Fault) {
        let mut s = self.lock();
        for _ in 0..n {
            s.faults.push_back(fault.clone());
        }
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<SalesforceRequest> {
        self.lock().requests.clone()
    }

    /// How many access tokens the token endpoint granted, all grant types together.
    pub fn tokens_issued(&self) -> usize {
        self.lock().grants.len()
    }

    /// How many access tokens were granted for one `grant_type` (`client_credentials`,
    /// `refresh_token` or `urn:ietf:params:oauth:grant-type:jwt-bearer`).
    pub fn tokens_issued_by(&self, grant_type: &str) -> usize {
        self.lock()
            .grants
            .iter()
            .filter(|g| *g == grant_type)
            .count()
    }

    /// The claims of every JWT assertion whose signature checked out, in arrival order,
    /// whether or not the claims were then accepted.
    pub fn jwt_claims(&self) -> Vec<Value> {
        self.lock().jwt_claims.clone()
    }

    /// Invalidates every access token issued so far: their next call is 401
    /// `INVALID_SESSION_ID`.
    pub fn expire_sessions(&self) {
        self.lock().sessions.clear();
    }

    /// How many calls counted against the daily API limit so far.
    pub fn api_usage(&self) -> usize {
        self.lock().api_used
    }

    /// Defines a custom field (its name ends in `__c`) of an object, or redefines whether
    /// it is an external id. A custom object (`Booking__c`) exists once it has a field; it
    /// also has an optional `Name`. Custom fields take any scalar value.
    ///
    /// # Panics
    /// If the field name does not end in `__c`, or the object is neither a standard one
    /// the mock knows nor a custom one (ending in `__c`).
    pub fn define_field(&self, object: &str, name: &str, external_id: bool) {
        assert!(
            name.to_ascii_lowercase().ends_with("__c"),
            "define_field {object}.{name}: a custom field's name ends in __c"
        );
        let mut s = self.lock();
        let key = object.to_ascii_lowercase();
        if !s.objects.contains_key(&key) {
            assert!(
                key.ends_with("__c"),
                "define_field {object}.{name}: no such standard object, and a custom object's name ends in __c"
            );
            let prefix = custom_prefix(s.custom_objects);
            s.custom_objects += 1;
            s.objects.insert(
                key.clone(),
                ObjectDef {
                    name: object.to_owned(),
                    prefix,
                    fields: vec![FieldDef {
                        name: "Name".to_owned(),
                        kind: Kind::Text,
                        required: false,
                        external_id: false,
                    }],
                },
            );
        }
        let Some(def) = s.objects.get_mut(&key) else {
            return;
        };
        match def
            .fields
            .iter_mut()
            .find(|f| f.name.eq_ignore_ascii_case(name))
        {
            Some(field) => field.external_id = external_id,
            None => def.fields.push(FieldDef {
                name: name.to_owned(),
                kind: Kind::Any,
                required: false,
                external_id,
            }),
        }
    }

    /// The canonical object and field names, for a rule.
    ///
    /// # Panics
    /// If either is unknown.
    fn rule_target(&self, object: &str, field: &str) -> (String, String) {
        let s = self.lock();
        let Some(def) = s.object(object) else {
            panic!("rule on {object}.{field}: no such object");
        };
        let Some(field) = def.field(field) else {
            panic!("rule on {object}.{field}: no such field");
        };
        (def.name.clone(), field.name.clone())
    }

    /// Adds a duplicate rule: saving (creating or updating) a record whose `field` equals,
    /// ignoring case, another live record's is 400 `DUPLICATES_DETECTED`.
    ///
    /// # Panics
    /// If the object or field is unknown.
    pub fn duplicate_rule(&self, object: &str, field: &str) {
        let (object, field) = self.rule_target(object, field);
        self.lock()
            .duplicate_rules
            .push(DuplicateRule { object, field });
    }

    /// Adds a validation rule: saving a record whose `field` would be `forbidden_value`
    /// (compared as JSON, strings exactly) is 400 `FIELD_CUSTOM_VALIDATION_EXCEPTION` with
    /// `message`.
    ///
    /// # Panics
    /// If the object or field is unknown.
    pub fn validation_rule(
        &self,
        object: &str,
        field: &str,
        forbidden_value: impl Into<Value>,
        message: &str,
    ) {
        let (object, field) = self.rule_target(object, field);
        self.lock().validation_rules.push(ValidationRule {
            object,
            field,
            forbidden: forbidden_value.into(),
            message: message.to_owned(),
        });
    }

    /// Creates a record directly, as `POST …/sobjects/{object}/` would (every check and
    /// rule applies, no API usage counts); returns its id.
    ///
    /// # Panics
    /// If the object is unknown, `fields` is not an object, or the API would refuse it.
    pub fn seed(&self, object: &str, fields: Value) -> String {
        let Value::Object(body) = fields else {
            panic!("seed {object}: fields must be a JSON object");
        };
        let mut s = self.lock();
        let Some(def) = s.object(object).cloned() else {
            panic!("seed {object}: no such object");
        };
        match s.prepare(SEED_VERSION, &def, None, &Map::new(), &body) {
            Ok(fields) => s.insert(&def, fields),
            Err(reply) => panic!("seed {object}: {:?}", reply.body),
        }
    }

    /// The live (not deleted) records of an object, by id.
    pub fn records(&self, object: &str) -> Vec<SalesforceRecord> {
        let s = self.lock();
        let Some(def) = s.object(object) else {
            return Vec::new();
        };
        s.live(&def.name).map(public_record).collect()
    }

    /// The deleted records of an object, by id.
    pub fn deleted_records(&self, object: &str) -> Vec<SalesforceRecord> {
        let s = self.lock();
        let Some(def) = s.object(object) else {
            return Vec::new();
        };
        s.records
            .values()
            .filter(|rec| rec.object == def.name && rec.deleted)
            .map(public_record)
            .collect()
    }

    /// One live record of an object, if it exists (the id ignoring case).
    pub fn record(&self, object: &str, id: &str) -> Option<SalesforceRecord> {
        let s = self.lock();
        let def = s.object(object)?;
        s.find_in(def, id).ok().map(public_record)
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

fn public_record(rec: &Rec) -> SalesforceRecord {
    SalesforceRecord {
        object: rec.object.clone(),
        id: rec.id.clone(),
        fields: rec.fields.clone(),
        deleted: rec.deleted,
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
        s.requests.push(SalesforceRequest {
            method: method.to_string(),
            path: uri
                .path_and_query()
                .map_or_else(|| uri.path().to_owned(), ToString::to_string),
            token: token.clone(),
            api_version: path_version(uri.path()),
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
