//! Who a request is: its credentials (`x-api-token`, a bearer token, Basic client
//! credentials, the legacy `?api_token=`), and the OAuth app's token endpoint, which
//! grants access tokens that expire.
//!
//! Invariant: the first present of the header, the bearer token and the query parameter
//! is the one checked; anything else is 401 `unauthorized access`.

use super::super::reply::Reply;
use super::super::wire::{base64_decode, pair, parse_pairs};
use super::PipedriveOptions;
use super::answers::{oauth_error, unauthorized};
use axum::http::{HeaderMap, Uri};
use serde_json::json;
use std::collections::HashMap;
use std::time::Instant;

/// The scope an OAuth grant answers.
const OAUTH_SCOPE: &str = "base,contacts:full,deals:full,activities:full";

/// The credentials a request carries.
#[derive(Debug, Default)]
pub(super) struct Credentials {
    /// `x-api-token`.
    pub(super) api_token: Option<String>,
    /// `Authorization: Bearer …`.
    pub(super) bearer: Option<String>,
    /// `Authorization: Basic …`, decoded: (user, password).
    pub(super) basic: Option<(String, String)>,
    /// `?api_token=` (possibly empty).
    pub(super) url_token: Option<String>,
}

impl Credentials {
    pub(super) fn of(headers: &HeaderMap, uri: &Uri) -> Self {
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        let authorization = header("authorization");
        let scheme = |wanted: &str| {
            let (scheme, value) = authorization.as_deref()?.split_once(' ')?;
            scheme
                .eq_ignore_ascii_case(wanted)
                .then(|| value.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let basic = scheme("basic")
            .and_then(|b| base64_decode(&b))
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .and_then(|text| {
                text.split_once(':')
                    .map(|(user, password)| (user.to_owned(), password.to_owned()))
            });
        let url_token = parse_pairs(uri.query().unwrap_or_default())
            .into_iter()
            .find(|(k, _)| k == "api_token")
            .map(|(_, v)| v);
        Self {
            api_token: header("x-api-token"),
            bearer: scheme("bearer"),
            basic,
            url_token,
        }
    }
}

/// The OAuth access tokens issued.
#[derive(Debug, Default)]
pub(super) struct OAuthTokens {
    /// Access token → when it expires.
    pub(super) tokens: HashMap<String, Instant>,
    /// How many were granted.
    pub(super) issued: usize,
}

impl OAuthTokens {
    /// The token a call is made with, if valid: the `x-api-token` header, else the bearer
    /// token, else the `api_token` query parameter.
    pub(super) fn authenticate(
        &self,
        options: &PipedriveOptions,
        credentials: &Credentials,
    ) -> Result<String, Reply> {
        let api_token = |token: &str| {
            if options.api_tokens.iter().any(|t| t == token) {
                Ok(token.to_owned())
            } else {
                Err(unauthorized())
            }
        };
        if let Some(token) = &credentials.api_token {
            return api_token(token);
        }
        if let Some(token) = &credentials.bearer {
            return match self.tokens.get(token) {
                Some(expires) if Instant::now() < *expires => Ok(token.clone()),
                _ => Err(unauthorized()),
            };
        }
        if let Some(token) = &credentials.url_token {
            return api_token(token);
        }
        Err(unauthorized())
    }

    /// `POST /oauth/token`.
    pub(super) fn grant(
        &mut self,
        options: &PipedriveOptions,
        base_url: &str,
        credentials: &Credentials,
        body: &[u8],
    ) -> Reply {
        let Some((id, secret, refresh)) = options.oauth.clone() else {
            return oauth_error(401, "invalid_client", "Invalid client");
        };
        let client_ok = credentials
            .basic
            .as_ref()
            .is_some_and(|(user, password)| *user == id && *password == secret);
        if !client_ok {
            return oauth_error(401, "invalid_client", "Invalid client");
        }
        let form = parse_pairs(&String::from_utf8_lossy(body));
        let field = |k: &str| pair(&form, k).unwrap_or_default();
        if field("grant_type") != "refresh_token" {
            return oauth_error(400, "unsupported_grant_type", "Unsupported grant type");
        }
        if field("refresh_token") != refresh {
            return oauth_error(400, "invalid_grant", "Invalid refresh token");
        }
        let token = format!("pd-oauth-{}", uuid::Uuid::now_v7().simple());
        let ttl = options.access_token_ttl;
        self.tokens.insert(token.clone(), Instant::now() + ttl);
        self.issued += 1;
        Reply::json(
            200,
            json!({
                "access_token": token,
                "token_type": "Bearer",
                "refresh_token": refresh,
                "scope": OAUTH_SCOPE,
                "expires_in": options.token_expires_in.clone().unwrap_or_else(|| json!(ttl.as_secs())),
                "api_domain": base_url,
            }),
        )
    }
}
