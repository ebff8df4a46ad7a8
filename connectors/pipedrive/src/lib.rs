//! The Pipedrive connector (`type: pipedrive`): `create`, `update`, `upsert`, `delete` and
//! `find` on `persons`, `organizations`, `deals` and `activities`, through Pipedrive's v2
//! API (`/api/v2/…`).
//!
//! `properties` are v2 fields; three conveniences shape them:
//! - a key that is a custom field's 40-character hash goes under `custom_fields`;
//! - on persons, `email` / `phone` (text) become `emails` / `phones`
//!   (`[{value, primary: true, label: work}]`);
//! - `…_id` values that are whole numbers in text (`"{{steps.person.id}}"`) are sent as
//!   numbers, in `participants` too.
//!
//! How a `match: {property, value}` finds its record: `property: id` names it; otherwise
//! the record map, then search with `exact_match` on `email`, `name`, `phone`, `title`,
//! `address`, `notes` or a custom field's hash (persons, organizations, deals; the oldest
//! of several matches, as Pipedrive does not keep emails unique). Activities have no
//! search: they are found through the record map.
//!
//! Invariants:
//! - an upsert never makes a second record for the same match in one process: upserts of
//!   one match value run one at a time, and each remembers what it made before the next
//!   looks;
//! - on a retry (attempt 2+), a record a lost answer made is found among the records
//!   updated since the event arrived (read from the primary store: no search lag), so a
//!   retried job makes no second person, deal or activity;
//! - 429s wait for `Retry-After` / `x-ratelimit-reset`; 402/403 are permanent.

mod api;
mod auth;
mod error;

use api::Api;
use async_trait::async_trait;
use auth::{Auth, OAuth};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use slatis_core::DeliveryError;
use slatis_core::config::ConfigIssue;
use slatis_core::connector::{
    BuildContext, Connector, ConnectorFactory, Limiter, RateLimit, StepContext, StepOutput,
};
use slatis_core::step::{Action, RenderedMatch, RenderedStep, Step};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use error::PipedriveError;

/// The objects this connector writes.
const OBJECTS: [&str; 4] = ["persons", "organizations", "deals", "activities"];

/// `type: pipedrive` instance keys. (No `Debug`: it holds credentials.)
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PipedriveConfig {
    /// The company domain (`https://acme.pipedrive.com`); with OAuth the token's
    /// `api_domain` is used instead.
    #[serde(default)]
    base_url: Option<String>,
    /// An API token (sent as the `x-api-token` header).
    #[serde(default)]
    api_token: Option<String>,
    /// An OAuth app.
    #[serde(default)]
    oauth: Option<OAuthConfig>,
    /// Search calls per window (Pipedrive allows 10 searches per 2 s on every plan).
    #[serde(default = "default_search_rate_limit")]
    search_rate_limit: RateLimit,
}

/// `oauth:` keys. (No `Debug`: it holds credentials.)
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OAuthConfig {
    /// The app's client id.
    client_id: String,
    /// The app's client secret.
    client_secret: String,
    /// A refresh token from the app's install.
    refresh_token: String,
    /// The token endpoint; default `https://oauth.pipedrive.com/oauth/token`.
    #[serde(default)]
    token_url: Option<String>,
}

fn default_search_rate_limit() -> RateLimit {
    RateLimit::new(10, Duration::from_secs(2))
}

/// A built `type: pipedrive` instance.
pub struct Pipedrive {
    auth: Auth,
    search_limiter: Limiter,
    /// The base a dry run shows.
    dry_base: String,
    /// One lock per (object, match property, value) being upserted.
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

fn build(cx: &BuildContext<'_>) -> Result<Box<dyn Connector>, Vec<ConfigIssue>> {
    let cfg: PipedriveConfig = cx.parse()?;
    let mut issues: Vec<ConfigIssue> = Vec::new();
    if let Some(b) = &cfg.base_url {
        issues.extend(cx.url_issue("base_url", b));
    }
    let base = cfg
        .base_url
        .as_deref()
        .unwrap_or("https://api.pipedrive.com")
        .trim_end_matches('/')
        .to_owned();
    let auth = match (cfg.api_token, cfg.oauth) {
        (Some(token), None) => {
            if token.trim().is_empty() {
                issues.push(cx.issue("api_token", "is empty (is its variable set?)"));
            }
            if cfg.base_url.is_none() {
                issues.push(cx.issue(
                    "base_url",
                    "an api_token needs the company domain, e.g. https://acme.pipedrive.com",
                ));
            }
            Some(Auth::Token {
                token: token.trim().to_owned(),
                base: base.clone(),
            })
        }
        (None, Some(o)) => {
            for (key, value) in [
                ("client_id", &o.client_id),
                ("client_secret", &o.client_secret),
                ("refresh_token", &o.refresh_token),
            ] {
                if value.is_empty() {
                    issues
                        .push(cx.issue(&format!("oauth.{key}"), "is empty (is its variable set?)"));
                }
            }
            Some(Auth::OAuth(Box::new(OAuth {
                token_url: o
                    .token_url
                    .unwrap_or_else(|| "https://oauth.pipedrive.com/oauth/token".to_owned()),
                client_id: o.client_id,
                client_secret: o.client_secret,
                refresh_token: tokio::sync::Mutex::new(o.refresh_token),
                current: tokio::sync::Mutex::new(None),
            })))
        }
        (Some(_), Some(_)) => {
            issues.push(cx.issue("", "give either api_token or oauth, not both"));
            None
        }
        (None, None) => {
            issues.push(cx.issue("", "needs api_token (with base_url) or oauth: {client_id, client_secret, refresh_token}"));
            None
        }
    };
    match auth {
        Some(auth) if issues.is_empty() => Ok(Box::new(Pipedrive {
            auth,
            search_limiter: Limiter::new(cfg.search_rate_limit),
            dry_base: base,
            locks: Mutex::new(HashMap::new()),
        })),
        _ => Err(issues),
    }
}

inventory::submit! {
    ConnectorFactory {
        kind: "pipedrive",
        step_keys: &[],
        path_keys: &[],
        // API tokens on the Essential plan: 20 requests per rolling 2 seconds (OAuth and
        // higher plans allow more; raise it in the config).
        default_rate_limit: Some(RateLimit::new(20, Duration::from_secs(2))),
        build,
    }
}

/// A custom field's key: 40 lowercase hex characters.
fn is_custom_key(key: &str) -> bool {
    key.len() == 40
        && key
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The `fields` a search on `object` uses for `property`, if it can search on it.
fn search_field(object: &str, property: &str) -> Option<&'static str> {
    if is_custom_key(property) && object != "activities" {
        return Some("custom_fields");
    }
    match (object, property) {
        ("persons", "email") => Some("email"),
        ("persons", "phone") => Some("phone"),
        ("persons" | "organizations", "name") => Some("name"),
        ("organizations", "address") => Some("address"),
        ("deals", "title") => Some("title"),
        ("persons" | "organizations" | "deals", "notes") => Some("notes"),
        _ => None,
    }
}

/// The v2 body for `object` from rendered properties.
fn body(object: &str, properties: &Map<String, Value>) -> Value {
    let mut out = Map::new();
    let mut custom = Map::new();
    for (key, value) in properties {
        let value = numeric_ids(key, value.clone());
        if is_custom_key(key) {
            custom.insert(key.clone(), value);
        } else if object == "persons" && matches!(key.as_str(), "email" | "phone") {
            let list = match value {
                Value::String(s) if s.is_empty() => json!([]),
                Value::String(s) => json!([{ "value": s, "primary": true, "label": "work" }]),
                other => other,
            };
            out.insert(format!("{key}s"), list);
        } else {
            out.insert(key.clone(), value);
        }
    }
    if !custom.is_empty() {
        out.insert("custom_fields".to_owned(), Value::Object(custom));
    }
    Value::Object(out)
}

/// `…_id` values that are whole numbers in text become numbers (Pipedrive's ids are
/// integers; a template renders text), also inside lists and objects (`participants`).
fn numeric_ids(key: &str, value: Value) -> Value {
    match value {
        Value::String(s)
            if key.ends_with("_id") && !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) =>
        {
            s.parse::<i64>().map_or(Value::String(s), Value::from)
        }
        Value::Array(items) => {
            Value::Array(items.into_iter().map(|v| numeric_ids(key, v)).collect())
        }
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let v = numeric_ids(&k, v);
                    (k, v)
                })
                .collect(),
        ),
        other => other,
    }
}

/// Whether a record (as the v2 API returns it) has `property` equal to `value`.
fn has(record: &Value, property: &str, value: &str) -> bool {
    let same = |v: &Value| match v {
        Value::String(s) => s.eq_ignore_ascii_case(value),
        Value::Number(n) => n.to_string() == value,
        Value::Object(o) => o
            .get("value")
            .and_then(Value::as_str)
            .is_some_and(|s| s.eq_ignore_ascii_case(value)),
        _ => false,
    };
    let field = match property {
        "email" => record.get("emails"),
        "phone" => record.get("phones"),
        p if is_custom_key(p) => record.pointer(&format!("/custom_fields/{p}")),
        p => record.get(p),
    };
    match field {
        Some(Value::Array(items)) => items.iter().any(same),
        Some(v) => same(v),
        None => false,
    }
}

#[async_trait]
impl Connector for Pipedrive {
    fn check_step(&self, step: &Step) -> Vec<(String, String)> {
        let mut issues = Vec::new();
        if step.action == Action::Request {
            issues.push((
                "action".into(),
                "the pipedrive connector takes create, update, upsert, delete or find".into(),
            ));
        }
        let object = step.object.as_deref().unwrap_or_default();
        if !OBJECTS.contains(&object) {
            issues.push((
                "object".into(),
                format!("`{object}` is not one of {}", OBJECTS.join(", ")),
            ));
        }
        if let Some(m) = &step.matcher {
            if m.external_id {
                issues.push((
                    "match.external_id".into(),
                    "Pipedrive has no external ids; match on a field (or a custom field's hash)"
                        .into(),
                ));
            }
            let searchable = m.property == "id" || search_field(object, &m.property).is_some();
            if !searchable && object != "activities" {
                issues.push((
                    "match.property".into(),
                    format!("Pipedrive cannot search {object} by `{}`: use email, name, phone, title, address, notes or a custom field's hash", m.property),
                ));
            }
        }
        if !step.associate.is_empty() {
            issues.push(("associate".into(), "Pipedrive links records through fields: set person_id, org_id or deal_id in properties".into()));
        }
        issues
    }

    async fn execute(
        &self,
        step: &RenderedStep,
        cx: &StepContext<'_>,
    ) -> Result<StepOutput, DeliveryError> {
        let api = Api {
            pd: self,
            http: &cx.http,
        };
        let object = step.object.as_deref().unwrap_or_default();
        let body = body(object, &step.properties);
        let out = match (step.action, step.matcher.as_ref()) {
            (Action::Create, _) => StepOutput {
                id: Some(api.create(object, &body).await?),
                created: true,
            },
            (Action::Upsert, Some(m)) => {
                let _held = self.lock(object, m).await;
                let out = match self.locate(&api, cx, object, m, false).await? {
                    Some(id) => match api.update(object, &id, &body).await {
                        Ok(()) => StepOutput {
                            id: Some(id),
                            created: false,
                        },
                        Err(PipedriveError::NotFound(_)) => {
                            cx.records.forget(object, &m.property, &m.value).await?;
                            StepOutput {
                                id: Some(api.create(object, &body).await?),
                                created: true,
                            }
                        }
                        Err(e) => return Err(e.into()),
                    },
                    None => StepOutput {
                        id: Some(api.create(object, &body).await?),
                        created: true,
                    },
                };
                // Remembered before the next upsert of this value looks.
                if let Some(id) = &out.id
                    && !cx.http.dry_run()
                {
                    cx.records.put(object, &m.property, &m.value, id).await?;
                }
                out
            }
            (Action::Update, Some(m)) => match self.locate(&api, cx, object, m, true).await? {
                Some(id) => match api.update(object, &id, &body).await {
                    Err(PipedriveError::NotFound(_)) => {
                        cx.records.forget(object, &m.property, &m.value).await?;
                        return Err(not_found(object, m));
                    }
                    other => {
                        other?;
                        StepOutput {
                            id: Some(id),
                            created: false,
                        }
                    }
                },
                None => return Err(not_found(object, m)),
            },
            (Action::Delete, Some(m)) => {
                if let Some(id) = self.locate(&api, cx, object, m, true).await? {
                    api.delete(object, &id).await?;
                }
                StepOutput::default()
            }
            (Action::Find, Some(m)) => match self.locate(&api, cx, object, m, true).await? {
                Some(id) => StepOutput {
                    id: Some(id),
                    created: false,
                },
                None if step.optional => StepOutput::default(),
                None => return Err(not_found(object, m)),
            },
            (action, _) => {
                return Err(DeliveryError::permanent(format!(
                    "`{action}` needs a `match`"
                )));
            }
        };
        Ok(out)
    }
}

fn not_found(object: &str, m: &RenderedMatch) -> DeliveryError {
    DeliveryError::retryable(format!(
        "no {object} with {} = {:?} yet (search can lag; retried)",
        m.property, m.value
    ))
}

/// Held while an upsert of one match value runs; the last holder removes the entry.
struct KeyLock<'a> {
    pd: &'a Pipedrive,
    key: String,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Drop for KeyLock<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut locks = self
            .pd
            .locks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if locks
            .get(&self.key)
            .is_some_and(|l| Arc::strong_count(l) == 1)
        {
            locks.remove(&self.key);
        }
    }
}

impl Pipedrive {
    fn lock_key(object: &str, m: &RenderedMatch) -> String {
        format!("{object}\u{0}{}\u{0}{}", m.property, m.value.to_lowercase())
    }

    /// Waits for the upserts of this match value that came first.
    async fn lock(&self, object: &str, m: &RenderedMatch) -> KeyLock<'_> {
        let key = Self::lock_key(object, m);
        let mutex = {
            let mut locks = self
                .locks
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            Arc::clone(locks.entry(key.clone()).or_default())
        };
        KeyLock {
            pd: self,
            key,
            guard: Some(mutex.lock_owned().await),
        }
    }

    /// The record a match names: by id, the record map, search, and on a retry the
    /// records updated since the event arrived.
    async fn locate(
        &self,
        api: &Api<'_>,
        cx: &StepContext<'_>,
        object: &str,
        m: &RenderedMatch,
        assume_found: bool,
    ) -> Result<Option<String>, DeliveryError> {
        if m.property == "id" {
            return Ok(Some(m.value.clone()));
        }
        if let Some(id) = cx.records.get(object, &m.property, &m.value).await? {
            return Ok(Some(id));
        }
        if let Some(fields) = search_field(object, &m.property)
            && m.value.chars().count() >= 2
            && let Some(id) = api
                .search(object, fields, &m.value, assume_found)
                .await?
                .into_iter()
                .next()
        {
            return Ok(Some(id));
        }
        if cx.http.dry_run() && assume_found {
            // A dry run has no record map entries to show: assume the record exists, so the
            // run shows the write it would make.
            return Ok(Some("0".to_owned()));
        }
        if cx.attempt > 1 {
            // An earlier attempt may have made the record and lost the answer; search may
            // not see it yet, the primary store does.
            let since = slatis_core::time::sub(cx.received_at, Duration::from_secs(300));
            let recent = api.updated_since(object, since).await?;
            let mut ids: Vec<i64> = recent
                .iter()
                .filter(|r| has(r, &m.property, &m.value))
                .filter_map(|r| r.get("id").and_then(Value::as_i64))
                .collect();
            ids.sort_unstable();
            return Ok(ids.first().map(ToString::to_string));
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_take_v2_shape() {
        let hash = "dcf558aac1ae4e8c4f849ba5e668430d8df9be12";
        let props: Map<String, Value> = serde_json::from_value(json!({
            "name": "Ada Lovelace", "email": "ada@example.com", "phone": "", "org_id": "45", hash: "bkg_1",
            "participants": [{"person_id": "77", "primary": true}]
        }))
        .unwrap_or_default();
        assert_eq!(
            body("persons", &props),
            json!({
                "name": "Ada Lovelace",
                "emails": [{"value": "ada@example.com", "primary": true, "label": "work"}],
                "phones": [],
                "org_id": 45,
                "participants": [{"person_id": 77, "primary": true}],
                "custom_fields": {hash: "bkg_1"}
            })
        );
        assert_eq!(
            body("activities", &props)["email"],
            "ada@example.com",
            "only persons reshape email"
        );
    }

    #[test]
    fn records_match_by_emails_custom_fields_and_plain_fields() {
        let hash = "dcf558aac1ae4e8c4f849ba5e668430d8df9be12";
        let record = json!({"id": 3, "name": "Ada", "emails": [{"value": "Ada@Example.com"}], "custom_fields": {hash: "bkg_1"}, "subject": "Intro"});
        assert!(has(&record, "email", "ada@example.com"));
        assert!(has(&record, hash, "bkg_1"));
        assert!(has(&record, "subject", "intro"));
        assert!(!has(&record, "email", "other@example.com"));
        assert!(!has(&record, "phone", "1"));
    }

    #[test]
    fn search_fields() {
        assert_eq!(search_field("persons", "email"), Some("email"));
        assert_eq!(
            search_field("deals", "dcf558aac1ae4e8c4f849ba5e668430d8df9be12"),
            Some("custom_fields")
        );
        assert_eq!(search_field("activities", "subject"), None);
        assert_eq!(search_field("deals", "email"), None);
    }
}
