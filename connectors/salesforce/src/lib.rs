//! The Salesforce connector (`type: salesforce`): `create`, `update`, `upsert`, `delete`
//! and `find` on any sObject (`Lead`, `Contact`, `Event`, `Opportunity`, `…__c`) through
//! the REST API, authenticated with no user present (client credentials, refresh token or
//! JWT bearer).
//!
//! Modules: `auth` (tokens), `audience` (a JWT assertion's default `aud`), `api` (the
//! record API), `engine` (Salesforce's side of the toolkit's action engine,
//! [`slatis_crm::execute`]: matching, `on_many`, write modes), `soql` (queries built safely), `error` (Salesforce's answers, classed).
//!
//! Invariants: Salesforce's `errorCode` and `message` are kept in every failure;
//! `UNABLE_TO_LOCK_ROW`, 5xx and timeouts are retried; `REQUEST_LIMIT_EXCEEDED` pauses the
//! instance instead of spending the org's allocation.

mod api;
mod audience;
mod auth;
mod engine;
mod error;
mod soql;

use api::Api;
use async_trait::async_trait;
use auth::{Auth, Flow};
use jsonwebtoken::EncodingKey;
use serde::Deserialize;
use slatis_core::DeliveryError;
use slatis_core::config::ConfigIssue;
use slatis_core::connector::{
    BuildContext, Connector, ConnectorFactory, RateLimit, StepContext, StepOutput,
};
use slatis_core::step::{Action, RenderedStep, Step};
use std::time::Duration;

pub use error::SalesforceError;

/// `type: salesforce` instance keys. (No `Debug`: it holds credentials.)
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SalesforceConfig {
    /// Where tokens come from: `https://login.salesforce.com`, `https://test.salesforce.com`
    /// (sandboxes), or the org's My Domain (required for client credentials).
    #[serde(default = "default_login_url")]
    login_url: String,
    /// The REST API version, e.g. `66.0`.
    #[serde(default = "default_api_version")]
    api_version: String,
    /// How to get an access token.
    auth: AuthConfig,
}

/// The server-side OAuth flows.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum FlowName {
    /// The connected app's client credentials flow.
    ClientCredentials,
    /// A refresh token from an earlier install.
    RefreshToken,
    /// A JWT signed with the app's certificate key.
    JwtBearer,
}

/// `auth:` keys. (No `Debug`: it holds credentials.)
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthConfig {
    /// The flow.
    flow: FlowName,
    /// The connected app's consumer key.
    client_id: String,
    /// The consumer secret (`client_credentials`, `refresh_token`).
    #[serde(default)]
    client_secret: Option<String>,
    /// The refresh token (`refresh_token`).
    #[serde(default)]
    refresh_token: Option<String>,
    /// The user the token runs as (`jwt_bearer`).
    #[serde(default)]
    username: Option<String>,
    /// The PEM private key that signs the assertion (`jwt_bearer`).
    #[serde(default)]
    private_key: Option<String>,
    /// A file holding that PEM key, instead of `private_key`.
    #[serde(default)]
    private_key_file: Option<String>,
    /// The assertion's `aud`; by default the authorization server `login_url` belongs to
    /// (`https://login.salesforce.com`, `https://test.salesforce.com` for a sandbox, or an
    /// Experience Cloud site's URL), never a My Domain (see [`audience`]).
    #[serde(default)]
    audience: Option<String>,
}

fn default_login_url() -> String {
    "https://login.salesforce.com".to_owned()
}

fn default_api_version() -> String {
    "66.0".to_owned()
}

/// A built `type: salesforce` instance.
pub struct Salesforce {
    api_version: String,
    auth: Auth,
}

fn build(cx: &BuildContext<'_>) -> Result<Box<dyn Connector>, Vec<ConfigIssue>> {
    let cfg: SalesforceConfig = cx.parse()?;
    let mut issues: Vec<ConfigIssue> = cx
        .url_issue("login_url", &cfg.login_url)
        .into_iter()
        .collect();
    let version_ok = cfg.api_version.split_once('.').is_some_and(|(a, b)| {
        !a.is_empty() && !b.is_empty() && a.chars().chain(b.chars()).all(|c| c.is_ascii_digit())
    });
    if !version_ok {
        issues.push(cx.issue(
            "api_version",
            format!("`{}` is not an API version such as 66.0", cfg.api_version),
        ));
    }
    let login_url = cfg.login_url.trim_end_matches('/').to_owned();
    let a = cfg.auth;
    let mut need = |key: &str, value: Option<String>| -> String {
        match value.filter(|v| !v.trim().is_empty()) {
            Some(v) => v,
            None => {
                issues.push(cx.issue(
                    &format!("auth.{key}"),
                    format!("the {:?} flow needs `{key}` (is its variable set?)", a.flow),
                ));
                String::new()
            }
        }
    };
    let flow = match a.flow {
        FlowName::ClientCredentials => Flow::ClientCredentials {
            client_secret: need("client_secret", a.client_secret),
        },
        FlowName::RefreshToken => Flow::RefreshToken {
            client_secret: need("client_secret", a.client_secret),
            refresh_token: need("refresh_token", a.refresh_token),
        },
        FlowName::JwtBearer => {
            let username = need("username", a.username);
            let pem = match (a.private_key, a.private_key_file) {
                (Some(k), None) => Some(k),
                (None, Some(path)) => match std::fs::read_to_string(&path) {
                    Ok(k) => Some(k),
                    Err(e) => {
                        issues.push(
                            cx.issue("auth.private_key_file", format!("cannot read {path}: {e}")),
                        );
                        None
                    }
                },
                (Some(_), Some(_)) => {
                    issues.push(cx.issue(
                        "auth.private_key",
                        "give private_key or private_key_file, not both",
                    ));
                    None
                }
                (None, None) => {
                    issues.push(cx.issue(
                        "auth",
                        "the jwt_bearer flow needs `private_key` (PEM) or `private_key_file`",
                    ));
                    None
                }
            };
            let key = pem.and_then(|p| match EncodingKey::from_rsa_pem(p.as_bytes()) {
                Ok(k) => Some(k),
                Err(_) => {
                    issues.push(
                        cx.issue("auth.private_key", "is not an RSA private key in PEM form"),
                    );
                    None
                }
            });
            Flow::JwtBearer {
                username,
                key: Box::new(key.unwrap_or_else(|| EncodingKey::from_secret(b"unused"))),
                audience: a
                    .audience
                    .unwrap_or_else(|| audience::default_audience(&login_url)),
            }
        }
    };
    if a.client_id.trim().is_empty() {
        issues.push(cx.issue("auth.client_id", "is empty (is its variable set?)"));
    }
    if !issues.is_empty() {
        return Err(issues);
    }
    let auth = Auth {
        token_url: format!("{login_url}/services/oauth2/token"),
        client_id: a.client_id,
        flow,
        session: slatis_crm::token::TokenCache::default(),
        login_url,
    };
    Ok(Box::new(Salesforce {
        api_version: cfg.api_version,
        auth,
    }))
}

inventory::submit! {
    ConnectorFactory {
        kind: "salesforce",
        step_keys: &[],
        path_keys: &[],
        // An org's base allocation: 100,000 API requests per rolling 24 hours.
        default_rate_limit: Some(RateLimit::new(100_000, Duration::from_secs(24 * 3600))),
        default_search_rate_limit: None,
        build,
    }
}

#[async_trait]
impl Connector for Salesforce {
    fn check_step(&self, step: &Step) -> Vec<(String, String)> {
        let mut issues = Vec::new();
        if step.action == Action::Request {
            issues.push((
                "action".into(),
                "the salesforce connector takes create, update, upsert, delete or find".into(),
            ));
        }
        match step.object.as_deref() {
            Some(o) if soql::is_identifier(o) => {}
            Some(o) => issues.push((
                "object".into(),
                format!("`{o}` is not an sObject name (Contact, Event, Booking__c, …)"),
            )),
            None => issues.push((
                String::new(),
                "a salesforce step needs `object` (an sObject: Lead, Contact, Event, …)".into(),
            )),
        }
        if let Some(m) = &step.matcher
            && !soql::is_identifier(&m.property)
        {
            issues.push((
                "match.property".into(),
                format!("`{}` is not a field name", m.property),
            ));
        }
        for (key, _) in &step.properties {
            if !soql::is_identifier(key) {
                issues.push((format!("properties.{key}"), "is not a field name".into()));
            }
        }
        if !step.associate.is_empty() {
            issues.push((
                "associate".into(),
                "Salesforce links records through fields: set WhoId/WhatId in properties".into(),
            ));
        }
        if step.action == Action::Create && step.matcher.as_ref().is_some_and(|m| m.external_id) {
            issues.push((
                "match.external_id".into(),
                "`create` does not match; use `upsert` for an external id".into(),
            ));
        }
        issues
    }

    async fn execute(
        &self,
        step: &RenderedStep,
        cx: &StepContext<'_>,
    ) -> Result<StepOutput, DeliveryError> {
        let run = engine::Run {
            api: Api {
                sf: self,
                http: &cx.http,
            },
            step,
            object: step.object.as_deref().unwrap_or_default(),
        };
        slatis_crm::execute(&run, cx).await
    }
}
