//! A stateful mock of the Salesforce REST API (sObject rows, upsert by external id, a
//! SOQL subset, the limits resource) and of its OAuth 2.0 token endpoint, at least as
//! strict as the real API, for driving the Salesforce connector end to end. One server is
//! both the login host and the instance: the token answer's `instance_url` is
//! [`MockSalesforce::url`].
//!
//! Modules, one idea each: `schema` (what the REST API accepts: objects, fields, types,
//! lengths, picklists, with the refusals it implements and their sources), `rules` (the
//! record-level checks: required fields, an Event's times), `soql` (the query subset), `oauth` (the token endpoint and its JWT
//! rules), `routes` (which call a request is; auth, limits and faults), `calls` (the
//! record calls), `store` (the org's state and the save path), `answers` (Salesforce's
//! answer bodies).
//!
//! What it models, with Salesforce's documented bodies:
//! - **Tokens.** `POST /services/oauth2/token` grants an opaque access token (`00Dmock!…`,
//!   no refresh token) for `client_credentials`, `refresh_token` and the JWT bearer flow
//!   (`oauth`: `aud` must be [`SalesforceOptions::audience`], `exp` in the next 3 minutes).
//! - **Sessions.** Every `/services/data/vXX.X/…` call needs `Authorization: Bearer
//!   <token>` with a token issued and not expired by [`MockSalesforce::expire_sessions`];
//!   otherwise 401 `INVALID_SESSION_ID`. Any `vNN.N` is accepted and recorded.
//! - **The daily API limit**, checked after auth: every authenticated call counts; with
//!   [`SalesforceOptions::daily_limit`] set, a call past it is 403 `REQUEST_LIMIT_EXCEEDED`.
//!   Every authenticated answer carries `Sforce-Limit-Info: api-usage=N/MAX`;
//!   `GET …/limits` answers `DailyApiRequests`.
//! - **sObjects** Lead, Contact, Event, Task, Opportunity and Account with their
//!   standard and audit fields (`CreatedDate` to the second, `SystemModstamp`, …),
//!   custom fields and objects ([`MockSalesforce::define_field`]; Event and Task custom
//!   fields are defined once on `Activity`, as in Salesforce's Object Manager); create,
//!   read, update and delete by id; upsert, read and delete by an external-id field;
//!   SOQL; then validation rules and duplicate rules on every save.
//! - **Faults** ([`Fault`]), queued with [`MockSalesforce::fail_next`] and taken by
//!   authenticated REST calls in arrival order once auth and the limit passed (never by
//!   the token endpoint). `Status` answers without applying the call (Salesforce's
//!   `UNKNOWN_EXCEPTION` body when its body is empty); `Slow`, `Drop`, `Endless` and
//!   `Drip` apply the call, then answer late, break off, never end or drip.
//!
//! Invariants:
//! - a request that fails (4xx, 300, or a [`Fault::Status`]) changes nothing;
//! - every request is recorded ([`MockSalesforce::requests`]), the token endpoint and 401s
//!   included, with the status it was answered (0 while unanswered, or when the answer did
//!   not complete: dropped, endless or dripped).
//!
//! Where it knowingly differs from Salesforce: no users but one (`OwnerId` takes any
//! `005…` id), only 18-character ids, no cascade deletes, no recycle bin (undelete), no
//! paging of query results, no sharing or field-level security, and the daily limit is a
//! hard one.

mod answers;
mod calls;
mod oauth;
mod routes;
mod rules;
mod schema;
mod soql;
mod store;

use super::Fault;
use super::reply::{bind, spawn};
use super::wire::parse_pairs;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use chrono::{DateTime, Utc};
use routes::{Version, path_version};
use schema::{ACTIVITIES, ObjectDef, custom_prefix};
use serde_json::{Map, Value};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};
use store::{DuplicateRule, Inner, ValidationRule};

/// The public key that checks JWT assertions unless the options name another.
const TEST_PUBLIC_KEY: &str = include_str!("../../fixtures/salesforce_jwt_test_key.pub.pem");

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
    /// The one `aud` a JWT assertion may name: [`Self::PRODUCTION_AUDIENCE`] (the default:
    /// a production org), [`Self::SANDBOX_AUDIENCE`] (a sandbox) or an Experience Cloud site's URL.
    /// The mock's own URL (standing for the org's My Domain) is refused, as Salesforce
    /// refuses a My Domain.
    pub audience: String,
}

impl SalesforceOptions {
    /// The audience a production org's token endpoint accepts.
    pub const PRODUCTION_AUDIENCE: &str = "https://login.salesforce.com";
    /// The audience a sandbox's token endpoint accepts.
    pub const SANDBOX_AUDIENCE: &str = "https://test.salesforce.com";
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
            audience: Self::PRODUCTION_AUDIENCE.to_owned(),
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
    /// it is an external id. Event and Task fields are defined on `Activity`, as Salesforce
    /// creates them (Object Manager → Activity → Fields & Relationships): the field lands
    /// on both. A custom object (`Booking__c`) exists once it has a field; it also has an
    /// optional `Name`. Custom fields take any scalar value.
    ///
    /// # Panics
    /// If the field name does not end in `__c`; if the object is `Event` or `Task` (their
    /// custom fields are Activity's); or if it is neither a standard object the mock knows,
    /// `Activity`, nor a custom one (ending in `__c`).
    pub fn define_field(&self, object: &str, name: &str, external_id: bool) {
        assert!(
            name.to_ascii_lowercase().ends_with("__c"),
            "define_field {object}.{name}: a custom field's name ends in __c"
        );
        assert!(
            !ACTIVITIES.iter().any(|a| a.eq_ignore_ascii_case(object)),
            "define_field {object}.{name}: Salesforce has no custom fields of its own on {object}; define it on Activity (it lands on Event and Task)"
        );
        let mut s = self.lock();
        let targets: Vec<String> = if object.eq_ignore_ascii_case("Activity") {
            ACTIVITIES.iter().map(|a| a.to_ascii_lowercase()).collect()
        } else {
            vec![object.to_ascii_lowercase()]
        };
        for key in targets {
            if !s.objects.contains_key(&key) {
                assert!(
                    key.ends_with("__c"),
                    "define_field {object}.{name}: no such standard object, and a custom object's name ends in __c"
                );
                let prefix = custom_prefix(s.custom_objects);
                s.custom_objects += 1;
                s.objects
                    .insert(key.clone(), ObjectDef::custom(object, prefix));
            }
            if let Some(def) = s.objects.get_mut(&key) {
                def.define(name, external_id);
            }
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
        match s.prepare(&Version::seed().text, &def, None, &body) {
            Ok(fields) => s.insert(&def, fields),
            Err(reply) => panic!("seed {object}: {:?}", reply.body),
        }
    }

    /// Sets when a record was created, as an admin with "Set Audit Fields upon Record
    /// Creation" can: `CreatedDate` (to the second) then reads `at`.
    ///
    /// # Panics
    /// If there is no such record.
    pub fn set_created(&self, id: &str, at: DateTime<Utc>) {
        let mut s = self.lock();
        let Some(rec) = s.records.get_mut(&id.to_ascii_lowercase()) else {
            panic!("set_created {id}: no such record");
        };
        rec.created_at = at;
    }

    /// The live (not deleted) records of an object, by id.
    pub fn records(&self, object: &str) -> Vec<SalesforceRecord> {
        let s = self.lock();
        let Some(def) = s.object(object) else {
            return Vec::new();
        };
        s.live(&def.name).map(store::Rec::public).collect()
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
            .map(store::Rec::public)
            .collect()
    }

    /// One live record of an object, if it exists (the id ignoring case).
    pub fn record(&self, object: &str, id: &str) -> Option<SalesforceRecord> {
        let s = self.lock();
        let def = s.object(object)?;
        s.find_in(def, id).ok().map(store::Rec::public)
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
