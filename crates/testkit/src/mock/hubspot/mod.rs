//! A stateful mock of HubSpot's CRM v3 objects API, the v4 association calls, the
//! properties API, the date-versioned OAuth token endpoint and the daily-usage endpoint,
//! for driving the HubSpot connector end to end. It is at least as strict as HubSpot:
//! every request is checked against one schema ([`schema`]) and refused in HubSpot's own
//! shape.
//!
//! It runs on the mock chassis ([`Mock`]: server, request log, fault queue, access
//! tokens, rate windows). Modules: [`schema`] and [`values`] (what HubSpot accepts),
//! [`model`] (records, associations), [`search`], [`routes`] (the endpoints),
//! [`associations`] (linking records, reading links), [`auth`] (who may call, the token
//! endpoint), [`limits`] (the rate limits), [`answers`] (the refusal envelopes). This one
//! holds the options, the records tests read, and the calls tests make.
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
//! - **Faults** ([`Fault`](super::Fault)), queued with [`Mock::fail_next`] and taken by
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
//! - a request that fails (4xx, or a [`Fault::Status`](super::Fault::Status)) changes
//!   nothing; a batch is applied whole or not at all (see [`model`] for the records' own);
//! - every request is recorded ([`Mock::requests`]), 401s and 429s included, with the
//!   status it was answered (0 while unanswered, or when the answer did not complete:
//!   dropped, endless or dripped) and, for a 400, HubSpot's message ([`HubSpotRequest`]).

mod answers;
mod associations;
mod auth;
mod limits;
mod model;
mod routes;
mod schema;
mod search;
mod values;

use super::chassis::auth::AccessTokens;
use super::chassis::limits::{DailyBudget, RollingWindow};
use super::chassis::log::Request;
use super::chassis::reply::{Headers, Payload, Reply};
use super::chassis::{Call, Gate, Mock, Vendor, Verdict};
use answers::error;
use chrono::{DateTime, NaiveTime, Utc};
use model::{Association, Objects, Rec};
use routes::{Route, route};
use schema::{Schema, canonical_type};
use serde_json::{Map, Value, json};
use std::time::Duration;

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

/// A request the mock got; a refused one (400) carries HubSpot's message.
pub type HubSpotRequest = Request<String>;

/// The running mock.
pub type MockHubSpot = Mock<HubSpot>;

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

/// The mock's HubSpot account: its options, rate windows, daily count, schema, records
/// and associations.
pub struct HubSpot {
    options: HubSpotOptions,
    /// Every authenticated call of the rolling window.
    window: RollingWindow,
    /// The search calls of the last second.
    searches: RollingWindow,
    daily: DailyBudget,
    schema: Schema,
    objects: Objects,
    associations: Vec<Association>,
}

impl Vendor for HubSpot {
    type Options = HubSpotOptions;
    type Route = Route;
    type Refusal = String;
    const NAME: &'static str = "HubSpot";

    fn new(options: HubSpotOptions, _url: &str) -> Self {
        let limit = options
            .daily_limit
            .map(|l| u64::try_from(l).unwrap_or(u64::MAX));
        Self {
            window: RollingWindow::new(options.window),
            searches: RollingWindow::new(Duration::from_secs(1)),
            daily: DailyBudget::new(limit, Some(options.daily_resets_at)),
            options,
            schema: Schema::standard(),
            objects: Objects::default(),
            associations: Vec::new(),
        }
    }

    fn route(&self, call: &Call<'_>) -> Gate<Route> {
        route(call.method, call.uri.path())
    }

    fn grant(&mut self, tokens: &mut AccessTokens, call: &Call<'_>) -> Reply {
        self.grant_token(tokens, call)
    }

    fn authenticate(&self, tokens: &AccessTokens, call: &Call<'_>) -> Result<String, Reply> {
        self.check_token(tokens, call.credentials.bearer.as_deref())
    }

    fn admit(&mut self, _caller: &str, route: &Route) -> (Verdict, Headers) {
        // The usage endpoint reports the limits; it is how a client learns when the daily
        // limit resets, so it is not itself limited.
        if matches!(route, Route::Usage) {
            return (Verdict::Pass, Headers::new());
        }
        self.count_call(route.is_search())
    }

    fn fault_answer(status: u16) -> Reply {
        error(status, "internal error", Some("INTERNAL_ERROR"))
    }

    fn apply(&mut self, route: Route, call: &Call<'_>) -> (Reply, Option<String>) {
        let reply = self.apply_route(route, &call.query, call.body);
        let refusal = answers::refusal(&reply);
        (reply, refusal)
    }
}

impl Mock<HubSpot> {
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
            .vendor
            .schema
            .define(&object_type, definition, true)
            .map(drop)
            .map_err(|reply| {
                let message = match &reply.body {
                    Payload::Json(body) => body["message"].as_str().unwrap_or_default().to_owned(),
                    _ => String::new(),
                };
                format!("{}: {message}", reply.status)
            })
    }

    /// Defines a USER_DEFINED association label (a type id) from one type to another.
    pub fn define_label(&self, from_type: &str, to_type: &str, type_id: u32) {
        self.lock().vendor.schema.define_label(
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
        let s = &mut s.vendor;
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
            .vendor
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
            .vendor
            .objects
            .get(&object_type, id)
            .map(|rec| public_record(&object_type, id, rec))
    }

    /// Every association, in the order made: (from type, from id, to type, to id,
    /// association type id).
    pub fn associations(&self) -> Vec<(String, String, String, String, u32)> {
        self.lock()
            .vendor
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
