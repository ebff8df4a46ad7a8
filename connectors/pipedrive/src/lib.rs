//! The Pipedrive connector (`type: pipedrive`): `create`, `update`, `upsert`, `delete` and
//! `find` on `persons`, `organizations`, `deals` and `activities`, through Pipedrive's v2
//! API (`/api/v2/…`).
//!
//! `properties` are v2 fields, shaped by [`fields`]: a custom field's 40-character key
//! goes under `custom_fields`; on persons `email` / `phone` become `emails` / `phones`,
//! and an update merges them into the person's lists rather than replacing them; `…_id`
//! text that is a whole number is sent as a number. Write modes (`on: create | empty`)
//! apply to every action.
//!
//! The action engine is the toolkit's ([`slatis_crm::execute`]); [`engine`] is what is
//! Pipedrive's own in it. How a `match: {property, value}` finds its record: `property: id` names
//! it; otherwise the record map, then search with `exact_match` on `email`, `name`,
//! `phone`, `title`, `address`, `notes` or a custom field's key (persons, organizations,
//! deals), several hits ordered by creation for `match.on_many` (default: the oldest, as
//! Pipedrive keeps emails unique nowhere). Activities have no custom fields and no
//! search: `match: {property: note_ref, value: …}` names an activity by a reference the
//! step writes into its note ([`note_ref`]); the record map finds it, and after a lost
//! create answer the person's recently updated activities do.
//!
//! Invariants:
//! - an upsert never makes a second record for the same match in one instance (upserts of
//!   one value run one at a time under the instance's `cx.locks`), and a retried job (attempt 2+) finds what a lost answer made among the records updated
//!   since the event arrived (the primary store: no search lag);
//! - steps Pipedrive v2 would refuse are load errors where the config shows it:
//!   custom fields or `person_id` on activities, a match v2 cannot search;
//! - a 429 waits for its burst window, or, when the company's daily token budget is spent,
//!   until the budget resets ([`error`]); 402/403 are permanent.

mod api;
mod auth;
mod engine;
mod error;
mod fields;
mod note_ref;

use async_trait::async_trait;
use auth::{Auth, OAuth};
use chrono_tz::Tz;
use error::Budget;
use serde::Deserialize;
use slatis_core::DeliveryError;
use slatis_core::config::ConfigIssue;
use slatis_core::connector::{
    BuildContext, Connector, ConnectorFactory, RateLimit, StepContext, StepOutput,
};
use slatis_core::step::{Action, RenderedStep, Step};
use std::time::Duration;

pub use error::PipedriveError;

/// The objects this connector writes.
const OBJECTS: [&str; 4] = ["persons", "organizations", "deals", "activities"];

/// Where Pipedrive documents which objects have custom fields.
const CUSTOM_FIELDS_DOC: &str = "https://pipedrive.readme.io/docs/core-api-concepts-custom-fields";

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
    /// The IANA time zone whose midnight resets the company's daily token budget
    /// (Pipedrive's server day; default `UTC`).
    #[serde(default)]
    daily_budget_time_zone: Option<String>,
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

/// A built `type: pipedrive` instance.
pub struct Pipedrive {
    auth: Auth,
    /// Where the daily token budget resets.
    budget: Budget,
    /// The base a dry run shows.
    dry_base: String,
}

fn build(cx: &BuildContext<'_>) -> Result<Box<dyn Connector>, Vec<ConfigIssue>> {
    let cfg: PipedriveConfig = cx.parse()?;
    let mut issues: Vec<ConfigIssue> = Vec::new();
    let zone = match cfg.daily_budget_time_zone.as_deref().map(str::parse::<Tz>) {
        None => Tz::UTC,
        Some(Ok(zone)) => zone,
        Some(Err(_)) => {
            issues.push(cx.issue(
                "daily_budget_time_zone",
                "is not an IANA time zone (e.g. UTC, Europe/Berlin, America/New_York)",
            ));
            Tz::UTC
        }
    };
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
                refresh_token: slatis_crm::token::RefreshToken::new(o.refresh_token),
                current: slatis_crm::token::TokenCache::default(),
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
            budget: Budget { zone },
            dry_base: base,
        })),
        _ => Err(issues),
    }
}

inventory::submit! {
    ConnectorFactory {
        kind: "pipedrive",
        step_keys: &[],
        path_keys: &[],
        // API tokens on the entry plan (Lite, formerly Essential): 20 requests per rolling
        // 2 seconds (OAuth and higher plans allow more; raise it in the config):
        // https://pipedrive.readme.io/docs/core-api-concepts-rate-limiting
        default_rate_limit: Some(RateLimit::new(20, Duration::from_secs(2))),
        // Search: 10 per 2 seconds on every plan.
        default_search_rate_limit: Some(RateLimit::new(10, Duration::from_secs(2))),
        build,
    }
}

/// What is wrong with matching `object` on `property`, if anything.
fn match_issue(object: &str, property: &str) -> Option<String> {
    if property == "id" {
        return None;
    }
    match (object, property == note_ref::PROPERTY) {
        ("activities", true) => None,
        ("activities", false) => Some(format!(
            "Pipedrive activities have no custom fields and no search ({CUSTOM_FIELDS_DOC}): match them with `note_ref` (a reference the step writes into the note) or `id`, not `{property}`"
        )),
        (_, true) => Some(format!(
            "`note_ref` names activities by the reference in their note; match {object} on a field Pipedrive searches"
        )),
        _ if fields::search_field(object, property).is_some() => None,
        _ => Some(format!(
            "Pipedrive cannot search {object} by `{property}`: use email, name, phone, title, address, notes or a custom field's hash"
        )),
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
            if let Some(message) = match_issue(object, &m.property) {
                issues.push(("match.property".into(), message));
            }
        }
        if object == "activities" {
            for (key, _) in &step.properties {
                if fields::is_custom_key(key) || key == "custom_fields" {
                    issues.push((
                        format!("properties.{key}"),
                        format!("Pipedrive activities have no custom fields (they exist on deals, organizations, persons and products: {CUSTOM_FIELDS_DOC}); keep the booking id with match: {{property: note_ref, value: …}}, which writes it into the note"),
                    ));
                } else if key == "person_id" {
                    issues.push((
                        "properties.person_id".into(),
                        "an activity's person_id is read-only in Pipedrive's API v2: link the person with participants: [{person_id: …, primary: true}]".into(),
                    ));
                }
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
        let run = engine::Run {
            api: api::Api {
                pd: self,
                http: &cx.http,
            },
            step,
            object: step.object.as_deref().unwrap_or_default(),
        };
        slatis_crm::execute(&run, cx).await
    }
}
