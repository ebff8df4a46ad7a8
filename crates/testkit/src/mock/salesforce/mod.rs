//! A stateful mock of the Salesforce REST API (sObject rows, upsert by external id, a
//! SOQL subset, the limits resource) and of its OAuth 2.0 token endpoint, at least as
//! strict as the real API, for driving the Salesforce connector end to end. One server is
//! both the login host and the instance: the token answer's `instance_url` is
//! [`Mock::url`].
//!
//! It runs on the mock chassis ([`Mock`]: server, request log, fault queue, access
//! tokens, usage budget). Modules, one idea each: [`schema`] and [`values`] (what the REST
//! API accepts: objects, fields, types, lengths, picklists, with the refusals it
//! implements and their sources), [`rules`] (the record-level checks: required fields, an
//! Event's times), [`model`] (the org's records and the save path), [`routes`] (which call
//! a request is, and the record calls), [`search`] (the SOQL subset), [`auth`] (sessions,
//! the token endpoint and its JWT rules), [`limits`] (the daily API limit), [`answers`]
//! (Salesforce's answer bodies).
//!
//! What it models, with Salesforce's documented bodies:
//! - **Tokens.** `POST /services/oauth2/token` grants an opaque access token (`00Dmock!…`,
//!   no refresh token) for `client_credentials`, `refresh_token` and the JWT bearer flow
//!   ([`auth`]: `aud` must be [`SalesforceOptions::audience`], `exp` in the next 3 minutes).
//! - **Sessions.** Every `/services/data/vXX.X/…` call needs `Authorization: Bearer
//!   <token>` with a token issued and not expired by [`Mock::expire_sessions`]; otherwise
//!   401 `INVALID_SESSION_ID`. Any `vNN.N` is accepted and recorded.
//! - **The daily API limit**, checked after auth: every authenticated call counts; with
//!   [`SalesforceOptions::daily_limit`] set, a call past it is 403 `REQUEST_LIMIT_EXCEEDED`.
//!   Every authenticated answer carries `Sforce-Limit-Info: api-usage=N/MAX`;
//!   `GET …/limits` answers `DailyApiRequests`.
//! - **sObjects** Lead, Contact, Event, Task, Opportunity and Account with their
//!   standard and audit fields (`CreatedDate` to the second, `SystemModstamp`, …),
//!   custom fields and objects ([`Mock::define_field`]; Event and Task custom fields are
//!   defined once on `Activity`, as in Salesforce's Object Manager); create,
//!   read, update and delete by id; upsert, read and delete by an external-id field;
//!   SOQL; then validation rules and duplicate rules on every save.
//! - **Faults** ([`Fault`](super::Fault)), queued with [`Mock::fail_next`] and taken by
//!   authenticated REST calls in arrival order once auth and the limit passed (never by
//!   the token endpoint). `Status` answers without applying the call (Salesforce's
//!   `UNKNOWN_EXCEPTION` body when its body is empty); `Slow`, `Drop`, `Endless` and
//!   `Drip` apply the call, then answer late, break off, never end or drip.
//!
//! Invariants:
//! - a request that fails (4xx, 300, or a [`Fault::Status`](super::Fault::Status)) changes
//!   nothing;
//! - every request is recorded ([`Mock::requests`]), the token endpoint and 401s included,
//!   with the status it was answered (0 while unanswered, or when the answer did not
//!   complete: dropped, endless or dripped) and, for a 400, its `errorCode`
//!   ([`SalesforceRequest`]).
//!
//! Where it knowingly differs from Salesforce: no users but one (`OwnerId` takes any
//! `005…` id), only 18-character ids, no cascade deletes, no recycle bin (undelete), no
//! paging of query results, no sharing or field-level security, and the daily limit is a
//! hard one.

mod answers;
mod auth;
mod limits;
mod model;
mod routes;
mod rules;
mod schema;
mod search;
mod values;

use super::chassis::auth::AccessTokens;
use super::chassis::ids::Ids;
use super::chassis::limits::DailyBudget;
use super::chassis::log::Request;
use super::chassis::reply::{Headers, Reply};
use super::chassis::{Call, Gate, Mock, Vendor, Verdict};
use answers::api_error;
use chrono::{DateTime, Utc};
use jsonwebtoken::DecodingKey;
use model::{DuplicateRule, Rec, ValidationRule};
use routes::{Route, Version, path_version, route};
use schema::{ACTIVITIES, ObjectDef, custom_prefix, standard_objects};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The public key that checks JWT assertions unless the options name another.
const TEST_PUBLIC_KEY: &str = include_str!("../../../fixtures/salesforce_jwt_test_key.pub.pem");

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

/// A request the mock got; a refused one (400) carries Salesforce's `errorCode`.
pub type SalesforceRequest = Request<String>;

/// The running mock.
pub type MockSalesforce = Mock<Salesforce>;

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

/// The mock org: its options, token key, usage, schema, records and rules.
pub struct Salesforce {
    options: SalesforceOptions,
    /// The login host and instance: the mock's URL.
    url: String,
    jwt_key: Option<DecodingKey>,
    /// The claims of every JWT assertion whose signature checked out.
    jwt_claims: Vec<Value>,
    /// The daily API requests.
    usage: DailyBudget,
    /// Lower-case name → definition.
    objects: BTreeMap<String, ObjectDef>,
    custom_objects: usize,
    ids: Ids,
    /// Lower-case id → record.
    records: BTreeMap<String, Rec>,
    duplicate_rules: Vec<DuplicateRule>,
    validation_rules: Vec<ValidationRule>,
}

impl Vendor for Salesforce {
    type Options = SalesforceOptions;
    type Route = (Version, Route);
    type Refusal = String;
    const NAME: &'static str = "Salesforce";

    fn new(options: SalesforceOptions, url: &str) -> Self {
        let jwt_key = options
            .jwt_public_key_pem
            .as_deref()
            .and_then(|pem| DecodingKey::from_rsa_pem(pem.as_bytes()).ok());
        let limit = options
            .daily_limit
            .map(|l| u64::try_from(l).unwrap_or(u64::MAX));
        Self {
            options,
            url: url.to_owned(),
            jwt_key,
            jwt_claims: Vec::new(),
            usage: DailyBudget::new(limit, None),
            objects: standard_objects()
                .into_iter()
                .map(|def| (def.name.to_ascii_lowercase(), def))
                .collect(),
            custom_objects: 0,
            ids: Ids::starting_at(1),
            records: BTreeMap::new(),
            duplicate_rules: Vec::new(),
            validation_rules: Vec::new(),
        }
    }

    fn route(&self, call: &Call<'_>) -> Gate<(Version, Route)> {
        route(call.method, call.uri.path())
    }

    fn grant(&mut self, tokens: &mut AccessTokens, call: &Call<'_>) -> Reply {
        self.grant_token(tokens, call)
    }

    fn authenticate(&self, tokens: &AccessTokens, call: &Call<'_>) -> Result<String, Reply> {
        Self::check_session(tokens, call.credentials.bearer.as_deref())
    }

    fn admit(&mut self, _caller: &str, _route: &(Version, Route)) -> (Verdict, Headers) {
        self.count_call()
    }

    fn fault_answer(status: u16) -> Reply {
        api_error(
            status,
            "UNKNOWN_EXCEPTION",
            "An unexpected error occurred.",
            None,
        )
    }

    fn apply(
        &mut self,
        (version, route): (Version, Route),
        call: &Call<'_>,
    ) -> (Reply, Option<String>) {
        let reply = self
            .apply_route(&version, route, &call.query, call.body)
            .unwrap_or_else(|reply| reply);
        let refusal = answers::refusal(&reply);
        (reply, refusal)
    }

    fn api_version(path: &str) -> Option<String> {
        path_version(path)
    }
}

impl Mock<Salesforce> {
    /// The claims of every JWT assertion whose signature checked out, in arrival order,
    /// whether or not the claims were then accepted.
    pub fn jwt_claims(&self) -> Vec<Value> {
        self.lock().vendor.jwt_claims.clone()
    }

    /// Invalidates every access token issued so far: their next call is 401
    /// `INVALID_SESSION_ID`.
    pub fn expire_sessions(&self) {
        self.expire_tokens_now();
    }

    /// How many calls counted against the daily API limit so far.
    pub fn api_usage(&self) -> usize {
        usize::try_from(self.lock().vendor.usage.spent()).unwrap_or(usize::MAX)
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
        let mut guard = self.lock();
        let s = &mut guard.vendor;
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
        let guard = self.lock();
        let Some(def) = guard.vendor.object(object) else {
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
            .vendor
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
        self.lock().vendor.validation_rules.push(ValidationRule {
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
        let mut guard = self.lock();
        let s = &mut guard.vendor;
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
        let mut guard = self.lock();
        let Some(rec) = guard.vendor.records.get_mut(&id.to_ascii_lowercase()) else {
            panic!("set_created {id}: no such record");
        };
        rec.created_at = at;
    }

    /// The live (not deleted) records of an object, by id.
    pub fn records(&self, object: &str) -> Vec<SalesforceRecord> {
        let guard = self.lock();
        let s = &guard.vendor;
        let Some(def) = s.object(object) else {
            return Vec::new();
        };
        s.live(&def.name).map(Rec::public).collect()
    }

    /// The deleted records of an object, by id.
    pub fn deleted_records(&self, object: &str) -> Vec<SalesforceRecord> {
        let guard = self.lock();
        let s = &guard.vendor;
        let Some(def) = s.object(object) else {
            return Vec::new();
        };
        s.records
            .values()
            .filter(|rec| rec.object == def.name && rec.deleted)
            .map(Rec::public)
            .collect()
    }

    /// One live record of an object, if it exists (the id ignoring case).
    pub fn record(&self, object: &str, id: &str) -> Option<SalesforceRecord> {
        let guard = self.lock();
        let s = &guard.vendor;
        let def = s.object(object)?;
        s.find_in(def, id).ok().map(Rec::public)
    }
}
