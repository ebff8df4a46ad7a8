//! The HubSpot connector (`type: hubspot`): `create`, `update`, `upsert`, `delete` and
//! `find` on any object type (contacts, meetings, deals, custom objects), with
//! associations, through the CRM v3 objects API.
//!
//! The action engine is the toolkit's ([`slatis_crm::execute`]); [`engine`] is what is
//! HubSpot's own in it. How each action finds its record (`match: {property, value}`):
//! - `property: hs_object_id` (or `id`): the value is the record id;
//! - `external_id: true`: the property has unique values (email on contacts, or a custom
//!   property with "require unique values" — contacts, companies, deals, tickets and
//!   custom objects only), so the record is read from HubSpot's primary store, and an
//!   `upsert` is HubSpot's own `batch/upsert` — safe to repeat after a lost answer.
//!   Refused at load on activities (meetings, calls, emails, notes, tasks): HubSpot
//!   refuses unique values there, and `batch/upsert` by a non-unique property answers 400;
//! - otherwise: the record map, then the records linked to the step's first `associate`
//!   item (the v4 associations read, HubSpot's primary store), else search. A create sends
//!   its associations in the same call, so a meeting whose create answer was lost is found
//!   among its contact's meetings, never made twice. An activity `upsert` on a property
//!   must name an `associate` item (checked at load).
//!
//! Invariants:
//! - a contact upsert by email never makes a duplicate: search lags writes by seconds,
//!   so a create answered 409 "Contact already exists. Existing ID: N" updates N;
//! - property write modes hold for every action (the toolkit's engine);
//! - a record the record map names that HubSpot no longer has (404) is forgotten and
//!   looked up again;
//! - 429s are classed by HubSpot's `policyName`: the rolling 10-second and secondly
//!   windows pause the instance for the window, `DAILY` until HubSpot's reported reset;
//! - search calls also wait for `search_rate_limit` (HubSpot's search limit is lower
//!   than the general one).

mod api;
mod auth;
mod engine;
mod error;
mod links;

use api::Api;
use async_trait::async_trait;
use auth::{Auth, OAuth};
use links::is_activity;
use serde::Deserialize;
use slatis_core::DeliveryError;
use slatis_core::config::ConfigIssue;
use slatis_core::connector::{
    BuildContext, Connector, ConnectorFactory, RateLimit, StepContext, StepOutput,
};
use slatis_core::step::{Action, MatchSpec, RenderedStep, Step, Tree};
use std::sync::atomic::AtomicBool;
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
    /// The token endpoint; default `{base_url}/oauth/2026-03/token`.
    #[serde(default)]
    token_url: Option<String>,
}

fn default_base_url() -> String {
    "https://api.hubapi.com".to_owned()
}

/// A built `type: hubspot` instance.
pub struct HubSpot {
    base_url: String,
    auth: Auth,
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
                    .unwrap_or_else(|| format!("{base_url}{}", auth::TOKEN_PATH)),
                client_id: o.client_id,
                client_secret: o.client_secret,
                refresh_token: slatis_crm::token::RefreshToken::new(o.refresh_token),
                current: slatis_crm::token::TokenCache::default(),
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
    match auth {
        Some(auth) if issues.is_empty() => Ok(Box::new(HubSpot { base_url, auth })),
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
        // Search: a lower limit of its own (5 per second per account); 4 leaves a margin.
        default_search_rate_limit: Some(RateLimit::new(4, Duration::from_secs(1))),
        build,
    }
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
        let object = step.object.as_deref().unwrap_or_default();
        if object.is_empty() {
            issues.push((String::new(), "a hubspot step needs `object` (contacts, meetings, deals, or a custom object type)".into()));
        }
        if let Some(m) = &step.matcher {
            issues.extend(check_match(step, object, m));
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
        let links = links::links(step)?;
        let run = engine::Run {
            api: Api {
                hs: self,
                http: &cx.http,
            },
            step,
            object: step.object.as_deref().unwrap_or_default(),
            links: &links,
            inlined: AtomicBool::new(false),
        };
        let out = slatis_crm::execute(&run, cx).await?;
        if let Some(id) = &out.id
            && matches!(
                step.action,
                Action::Create | Action::Upsert | Action::Update
            )
        {
            for link in run.pending(&out) {
                let linked = run
                    .api
                    .associate(run.object, id, link.to, link.id, link.label)
                    .await;
                if let Err(e) = linked {
                    return Err(run.api.class(e).await);
                }
            }
        }
        Ok(out)
    }
}

/// What is wrong with a step's `match` for HubSpot.
fn check_match(step: &Step, object: &str, m: &MatchSpec) -> Vec<(String, String)> {
    let mut issues = Vec::new();
    if step.action == Action::Create && m.external_id {
        issues.push((
            "match.external_id".into(),
            "`create` does not match; use `upsert` for a unique property".into(),
        ));
    }
    if !is_activity(object) || engine::is_id(&m.property) {
        return issues;
    }
    if m.external_id {
        issues.push((
            "match.external_id".into(),
            format!(
                "{object} cannot have unique-value properties in HubSpot (only contacts, companies, deals, tickets and custom objects can), so `{}` cannot be an external id: drop `external_id: true`; the record is then found by the record map and among the records its `associate` items link it to",
                m.property
            ),
        ));
    } else if step.action == Action::Upsert && step.associate.is_empty() {
        issues.push((
            "associate".into(),
            format!(
                "an `upsert` of {object} by `{}` needs `associate: [{{to: contacts, id: \"{{{{steps.contact.id}}}}\"}}]`: {object} cannot have unique properties, and search lags new records, so the record is found among the associated record's {object} (and created with that association in the same call)",
                m.property
            ),
        ));
    }
    issues
}
