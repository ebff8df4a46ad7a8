//! The HubSpot connector (`type: hubspot`): `create`, `update`, `upsert`, `delete` and
//! `find` on any object type (contacts, meetings, deals, custom objects), with
//! associations, through the CRM v3 objects API.
//!
//! How each action finds its record (`match: {property, value}`):
//! - `property: hs_object_id` (or `id`): the value is the record id;
//! - `external_id: true`: the property has unique values (email on contacts, or a custom
//!   property with unique values), so the record is read from HubSpot's primary store,
//!   and an `upsert` is HubSpot's own `batch/upsert` — safe to repeat after a lost answer;
//! - otherwise: the record map (a record this service wrote before), then search.
//!
//! Invariants:
//! - a contact upsert by email never makes a duplicate: search lags writes by seconds,
//!   so a create answered 409 "Contact already exists. Existing ID: N" updates N;
//! - a record the record map names that HubSpot no longer has (404) is forgotten and
//!   looked up again;
//! - 429s are classed by HubSpot's `policyName`: the rolling 10-second and secondly
//!   windows pause the instance for the window, `DAILY` until HubSpot's reported reset;
//! - search calls also wait for `search_rate_limit` (HubSpot's search limit is lower
//!   than the general one).

mod api;
mod auth;
mod error;

use api::{Api, Written};
use async_trait::async_trait;
use auth::{Auth, OAuth};
use serde::Deserialize;
use slatis_core::DeliveryError;
use slatis_core::config::ConfigIssue;
use slatis_core::connector::{
    BuildContext, Connector, ConnectorFactory, Limiter, RateLimit, StepContext, StepOutput,
};
use slatis_core::step::{Action, RenderedMatch, RenderedStep, Step, Tree};
use std::time::Duration;

pub use error::HubSpotError;

/// `type: hubspot` instance keys. (No `Debug`: it holds credentials.)
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HubSpotConfig {
    /// A private-app access token (`pat-…`).
    #[serde(default)]
    access_token: Option<String>,
    /// An OAuth app: the access token is minted from the refresh token and refreshed
    /// before it expires.
    #[serde(default)]
    oauth: Option<OAuthConfig>,
    /// The API's base URL (a proxy or a mock in tests).
    #[serde(default = "default_base_url")]
    base_url: String,
    /// Search calls per window; HubSpot allows fewer searches than other calls.
    #[serde(default = "default_search_rate_limit")]
    search_rate_limit: RateLimit,
}

/// `oauth:` — an OAuth app's credentials. (No `Debug`: it holds credentials.)
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OAuthConfig {
    /// The app's client id.
    client_id: String,
    /// The app's client secret.
    client_secret: String,
    /// A refresh token from the app's install.
    refresh_token: String,
    /// The token endpoint; default `{base_url}/oauth/v1/token`.
    #[serde(default)]
    token_url: Option<String>,
}

fn default_base_url() -> String {
    "https://api.hubapi.com".to_owned()
}

fn default_search_rate_limit() -> RateLimit {
    RateLimit::new(4, Duration::from_secs(1))
}

/// A built `type: hubspot` instance.
pub struct HubSpot {
    base_url: String,
    auth: Auth,
    search_limiter: Limiter,
}

fn build(cx: &BuildContext<'_>) -> Result<Box<dyn Connector>, Vec<ConfigIssue>> {
    let cfg: HubSpotConfig = cx.parse()?;
    let mut issues = Vec::new();
    issues.extend(cx.url_issue("base_url", &cfg.base_url));
    let base_url = cfg.base_url.trim_end_matches('/').to_owned();
    let auth = match (cfg.access_token, cfg.oauth) {
        (Some(token), None) if !token.trim().is_empty() => {
            Some(Auth::Static(token.trim().to_owned()))
        }
        (Some(_), None) => {
            issues.push(cx.issue("access_token", "is empty (is its variable set?)"));
            None
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
            Some(Auth::OAuth(OAuth {
                token_url: o
                    .token_url
                    .unwrap_or_else(|| format!("{base_url}/oauth/v1/token")),
                client_id: o.client_id,
                client_secret: o.client_secret,
                refresh_token: tokio::sync::Mutex::new(o.refresh_token),
                current: tokio::sync::Mutex::new(None),
            }))
        }
        (Some(_), Some(_)) => {
            issues.push(cx.issue(
                "",
                "give either access_token (a private app) or oauth (an OAuth app), not both",
            ));
            None
        }
        (None, None) => {
            issues.push(cx.issue("", "needs access_token (a private app) or oauth: {client_id, client_secret, refresh_token}"));
            None
        }
    };
    if cfg.search_rate_limit.requests == 0 || cfg.search_rate_limit.per.is_zero() {
        issues.push(cx.issue(
            "search_rate_limit",
            "requests and per must both be above zero",
        ));
    }
    match auth {
        Some(auth) if issues.is_empty() => Ok(Box::new(HubSpot {
            base_url,
            auth,
            search_limiter: Limiter::new(cfg.search_rate_limit),
        })),
        _ => Err(issues),
    }
}

inventory::submit! {
    ConnectorFactory {
        kind: "hubspot",
        step_keys: &[],
        path_keys: &[],
        // Private apps on Free/Starter: 100 requests per rolling 10 seconds.
        default_rate_limit: Some(RateLimit::new(100, Duration::from_secs(10))),
        build,
    }
}

/// One `associate:` item, read at run time.
struct Link<'a> {
    to: &'a str,
    id: &'a str,
    label: Option<(&'a str, u64)>,
}

#[async_trait]
impl Connector for HubSpot {
    fn check_step(&self, step: &Step) -> Vec<(String, String)> {
        let mut issues = Vec::new();
        if step.action == Action::Request {
            issues.push((
                "action".into(),
                "the hubspot connector takes create, update, upsert, delete or find".into(),
            ));
        }
        if step.object.as_deref().is_none_or(str::is_empty) {
            issues.push((String::new(), "a hubspot step needs `object` (contacts, meetings, deals, or a custom object type)".into()));
        }
        if step.action == Action::Create && step.matcher.as_ref().is_some_and(|m| m.external_id) {
            issues.push((
                "match.external_id".into(),
                "`create` does not match; use `upsert` for a unique property".into(),
            ));
        }
        for (i, item) in step.associate.iter().enumerate() {
            let keys: Vec<&str> = match item {
                Tree::Object(entries) => entries.iter().map(|(k, _)| k.as_str()).collect(),
                _ => Vec::new(),
            };
            let known = ["to", "id", "type_id", "category"];
            if !keys.contains(&"to")
                || !keys.contains(&"id")
                || keys.iter().any(|k| !known.contains(k))
            {
                issues.push((
                    format!("associate[{i}]"),
                    "an association is {to: <object type>, id: <record id>} with optional type_id and category".into(),
                ));
            }
        }
        issues
    }

    async fn execute(
        &self,
        step: &RenderedStep,
        cx: &StepContext<'_>,
    ) -> Result<StepOutput, DeliveryError> {
        let api = Api {
            hs: self,
            http: &cx.http,
        };
        let object = step.object.as_deref().unwrap_or_default();
        let links = links(step)?;
        let written = match (step.action, step.matcher.as_ref()) {
            (Action::Create, _) => Some(self.create(&api, object, step).await?),
            (Action::Upsert, Some(m)) => Some(self.upsert(&api, cx, object, m, step).await?),
            (Action::Update, Some(m)) => Some(self.update(&api, cx, object, m, step).await?),
            (Action::Delete, Some(m)) => {
                if let Some(id) = self.locate(&api, cx, object, m, true).await? {
                    check(&api, api.delete(object, &id).await).await?;
                }
                None
            }
            (Action::Find, Some(m)) => match self.locate(&api, cx, object, m, true).await? {
                Some(id) => Some(Written { id, created: false }),
                None if step.optional => None,
                None => return Err(not_found(object, m)),
            },
            (action, _) => {
                return Err(DeliveryError::permanent(format!(
                    "`{action}` needs a `match`"
                )));
            }
        };
        let Some(written) = written else {
            return Ok(StepOutput::default());
        };
        if step.action != Action::Find {
            for link in &links {
                check(
                    &api,
                    api.associate(object, &written.id, link.to, link.id, link.label)
                        .await,
                )
                .await?;
            }
        }
        Ok(StepOutput {
            id: Some(written.id),
            created: written.created,
        })
    }
}

fn links(step: &RenderedStep) -> Result<Vec<Link<'_>>, DeliveryError> {
    step.associate
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let text = |k: &str| {
                a.get(k)
                    .and_then(serde_json::Value::as_str)
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
            };
            let id = text("id").ok_or_else(|| {
                DeliveryError::permanent(format!(
                    "associate[{i}].id is empty: the step it reads from found no record"
                ))
            })?;
            let label = match a.get("type_id") {
                None | Some(serde_json::Value::Null) => None,
                Some(v) => {
                    let n = v
                        .as_u64()
                        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                        .ok_or_else(|| {
                            DeliveryError::permanent(format!(
                                "associate[{i}].type_id must be a number"
                            ))
                        })?;
                    Some((text("category").unwrap_or("HUBSPOT_DEFINED"), n))
                }
            };
            Ok(Link {
                to: text("to").unwrap_or_default(),
                id,
                label,
            })
        })
        .collect()
}

fn not_found(object: &str, m: &RenderedMatch) -> DeliveryError {
    DeliveryError::retryable(format!(
        "no {object} with {} = {:?} (HubSpot's search can lag new records by seconds; retried)",
        m.property, m.value
    ))
}

fn is_id(property: &str) -> bool {
    matches!(property, "hs_object_id" | "id")
}

/// Classes a call's failure for the queue; a `DAILY` limit waits for the reset HubSpot
/// reports (an hour if it does not say).
async fn check<T>(api: &Api<'_>, result: Result<T, HubSpotError>) -> Result<T, DeliveryError> {
    match result {
        Ok(v) => Ok(v),
        Err(e @ HubSpotError::RateLimited { .. }) if matches!(&e, HubSpotError::RateLimited { policy, .. } if policy == "DAILY") =>
        {
            let until = match api.daily_reset().await {
                Some(at) if at > chrono::Utc::now() => at,
                _ => slatis_core::time::in_seconds(3600),
            };
            Err(DeliveryError::rate_limited(
                format!("{e} (paused until HubSpot's daily reset)"),
                until,
            ))
        }
        Err(e) => Err(e.into_delivery()),
    }
}

impl HubSpot {
    /// Finds the record a match names: by id, by unique property, by the record map,
    /// then by search. `assume_found` sets what a dry run's search pretends.
    async fn locate(
        &self,
        api: &Api<'_>,
        cx: &StepContext<'_>,
        object: &str,
        m: &RenderedMatch,
        assume_found: bool,
    ) -> Result<Option<String>, DeliveryError> {
        if is_id(&m.property) {
            return Ok(Some(m.value.clone()));
        }
        if m.external_id {
            return check(api, api.get_by(object, &m.property, &m.value).await).await;
        }
        if let Some(id) = cx.records.get(object, &m.property, &m.value).await? {
            return Ok(Some(id));
        }
        self.search_one(api, object, m, assume_found).await
    }

    async fn search_one(
        &self,
        api: &Api<'_>,
        object: &str,
        m: &RenderedMatch,
        assume_found: bool,
    ) -> Result<Option<String>, DeliveryError> {
        let ids = check(
            api,
            api.search(object, &m.property, &m.value, assume_found)
                .await,
        )
        .await?;
        m.choose(ids, object, "match on a unique property")
    }

    async fn create(
        &self,
        api: &Api<'_>,
        object: &str,
        step: &RenderedStep,
    ) -> Result<Written, DeliveryError> {
        match api.create(object, &step.properties).await {
            Ok(w) => Ok(w),
            // A unique value is taken (a contact's email): the record exists, so this
            // create — typically a retry whose first answer was lost — updates it.
            Err(HubSpotError::Conflict {
                existing_id: Some(id),
                ..
            }) => check(api, api.update(object, &id, None, &step.properties).await).await,
            other => check(api, other).await,
        }
    }

    async fn upsert(
        &self,
        api: &Api<'_>,
        cx: &StepContext<'_>,
        object: &str,
        m: &RenderedMatch,
        step: &RenderedStep,
    ) -> Result<Written, DeliveryError> {
        if m.external_id {
            return check(
                api,
                api.upsert_unique(object, &m.property, &m.value, &step.properties)
                    .await,
            )
            .await;
        }
        if let Some(known) = self.locate(api, cx, object, m, false).await? {
            match api.update(object, &known, None, &step.properties).await {
                Err(HubSpotError::NotFound { .. }) => {
                    if let Some(w) = self
                        .update_found_again(api, cx, (object, m, step), &known, false)
                        .await?
                    {
                        return Ok(w);
                    }
                }
                other => return check(api, other).await,
            }
        }
        self.create(api, object, step).await
    }

    /// `known` is gone from HubSpot (deleted or merged since): forgets it, searches again
    /// and updates what search finds instead, if anything.
    async fn update_found_again(
        &self,
        api: &Api<'_>,
        cx: &StepContext<'_>,
        (object, m, step): (&str, &RenderedMatch, &RenderedStep),
        known: &str,
        assume_found: bool,
    ) -> Result<Option<Written>, DeliveryError> {
        cx.records.forget(object, &m.property, &m.value).await?;
        match self
            .search_one(api, object, m, assume_found)
            .await?
            .filter(|f| f != known)
        {
            Some(found) => check(
                api,
                api.update(object, &found, None, &step.properties).await,
            )
            .await
            .map(Some),
            None => Ok(None),
        }
    }

    async fn update(
        &self,
        api: &Api<'_>,
        cx: &StepContext<'_>,
        object: &str,
        m: &RenderedMatch,
        step: &RenderedStep,
    ) -> Result<Written, DeliveryError> {
        if m.external_id || is_id(&m.property) {
            let id_property = m.external_id.then_some(m.property.as_str());
            return match api
                .update(object, &m.value, id_property, &step.properties)
                .await
            {
                Err(HubSpotError::NotFound { .. }) => Err(not_found(object, m)),
                other => check(api, other).await,
            };
        }
        let Some(known) = self.locate(api, cx, object, m, true).await? else {
            return Err(not_found(object, m));
        };
        match api.update(object, &known, None, &step.properties).await {
            Err(HubSpotError::NotFound { .. }) => self
                .update_found_again(api, cx, (object, m, step), &known, true)
                .await?
                .ok_or_else(|| not_found(object, m)),
            other => check(api, other).await,
        }
    }
}
