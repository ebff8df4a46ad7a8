//! The mock's OAuth 2.0 token endpoint (`POST /services/oauth2/token`, form-urlencoded):
//! the client-credentials, refresh-token and JWT bearer grants, each refused as
//! Salesforce does, with `{"error", "error_description"}` and status 400.
//!
//! The JWT bearer assertion, per "OAuth 2.0 JWT Bearer Flow for Server-to-Server
//! Integration" (<https://help.salesforce.com/s/articleView?id=xcloud.remoteaccess_oauth_jwt_flow.htm&type=5>):
//! RS256-signed; `iss` the consumer key (else `invalid_client_id`); `sub` the username;
//! `aud` one string, the authorization server's URL — `https://login.salesforce.com` for
//! a production org, `https://test.salesforce.com` for a sandbox, or an Experience Cloud
//! site's URL — never the org's My Domain (else `invalid_grant` "audience is invalid",
//! the answer clients report, e.g. omniphx/forrest#302); `exp` "within 3 minutes": in
//! the future (else `invalid_grant` "expired authorization code", as simple-salesforce#491
//! shows) and at most 3 minutes ahead.
//!
//! Invariant: a refused grant issues no token; the claims of every assertion whose
//! signature checks out are kept for tests, accepted or not.

use super::super::reply::Reply;
use super::super::wire::{pair, parse_pairs};
use super::Inner;
use super::answers::{invalid_client_id, invalid_grant, oauth_error};
use chrono::Utc;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Value, json};
use std::collections::HashSet;

/// The JWT bearer flow's `grant_type`.
pub(super) const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// How far ahead an assertion's `exp` may be, in seconds: the documented 3 minutes.
/// (Salesforce's own CLI has been seen sending an `exp` in milliseconds and being
/// accepted, so the real server may allow more; the mock holds clients to the document.)
pub(super) const JWT_MAX_AHEAD: i64 = 180;

/// The description of a failed credential check.
const AUTHENTICATION_FAILURE: &str = "authentication failure";

impl Inner {
    /// `POST /services/oauth2/token`.
    pub(super) fn grant(&mut self, body: &[u8]) -> Reply {
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
                        Err(invalid_grant(AUTHENTICATION_FAILURE))
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
            Err(invalid_grant(AUTHENTICATION_FAILURE))
        } else {
            Ok(())
        }
    }

    /// Checks a JWT bearer assertion; records its claims once its signature checks out.
    fn check_assertion(&mut self, assertion: &str) -> Result<(), Reply> {
        let key = self
            .jwt_key
            .as_ref()
            .ok_or_else(|| invalid_grant(AUTHENTICATION_FAILURE))?;
        let mut validation = Validation::new(Algorithm::RS256);
        // The claims are checked below, with Salesforce's rules.
        validation.required_spec_claims = HashSet::new();
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.leeway = 0;
        let claims = jsonwebtoken::decode::<Value>(assertion, key, &validation)
            .map_err(|_| invalid_grant(AUTHENTICATION_FAILURE))?
            .claims;
        self.jwt_claims.push(claims.clone());
        let text = |name: &str| claims.get(name).and_then(Value::as_str);
        if text("iss") != Some(self.options.client_id.as_str()) {
            return Err(invalid_client_id());
        }
        if text("aud") != Some(self.options.audience.as_str()) {
            return Err(invalid_grant("audience is invalid"));
        }
        if text("sub") != Some(self.options.username.as_str()) {
            return Err(invalid_grant(AUTHENTICATION_FAILURE));
        }
        let exp = claims
            .get("exp")
            .and_then(Value::as_i64)
            .ok_or_else(|| invalid_grant(AUTHENTICATION_FAILURE))?;
        let now = Utc::now().timestamp();
        if exp <= now {
            return Err(invalid_grant("expired authorization code"));
        }
        if exp > now + JWT_MAX_AHEAD {
            return Err(invalid_grant(
                "the assertion's exp must be within 3 minutes (the mock's wording)",
            ));
        }
        Ok(())
    }
}
