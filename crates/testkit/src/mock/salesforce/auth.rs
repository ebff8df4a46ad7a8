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
//! Sessions: every REST call needs `Authorization: Bearer <token>` with a token issued
//! and not expired ([`super::super::Mock::expire_sessions`]); otherwise 401
//! `INVALID_SESSION_ID`.
//!
//! Invariant: a refused grant issues no token; the claims of every assertion whose
//! signature checks out are kept for tests, accepted or not.

use super::super::chassis::Call;
use super::super::chassis::auth::{Access, AccessTokens, GrantError, OAuthApp, TokenRequest};
use super::super::chassis::reply::Reply;
use super::Salesforce;
use super::answers::{invalid_client_id, invalid_grant, invalid_session, oauth_error};
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

/// The refusal of a client's credentials or refresh token.
fn refused(why: GrantError) -> Reply {
    match why {
        GrantError::UnknownClient => invalid_client_id(),
        GrantError::MissingGrantType | GrantError::UnsupportedGrantType => {
            oauth_error("unsupported_grant_type", "grant type not supported")
        }
        GrantError::WrongSecret | GrantError::BadGrant => invalid_grant(AUTHENTICATION_FAILURE),
    }
}

impl Salesforce {
    /// The caller's session, unless 401 `INVALID_SESSION_ID`.
    pub(super) fn check_session(
        tokens: &AccessTokens,
        token: Option<&str>,
    ) -> Result<String, Reply> {
        match token {
            Some(token) if tokens.check(token) == Access::Valid => Ok(token.to_owned()),
            _ => Err(invalid_session()),
        }
    }

    /// `POST /services/oauth2/token`.
    pub(super) fn grant_token(&mut self, tokens: &mut AccessTokens, call: &Call<'_>) -> Reply {
        let request = TokenRequest::of(call.credentials, call.body);
        let grant_type = request.field("grant_type");
        let app = OAuthApp {
            client_id: &self.options.client_id,
            client_secret: &self.options.client_secret,
            refresh_token: &self.options.refresh_token,
        };
        let client = Some(request.form_client());
        let checked = match grant_type {
            "client_credentials" => app.check_client(client).map_err(refused),
            "refresh_token" => app
                .check_client(client)
                .and_then(|()| app.check_refresh(&request))
                .map_err(refused),
            JWT_BEARER => self.check_assertion(request.field("assertion")),
            _ => Err(refused(GrantError::UnsupportedGrantType)),
        };
        if let Err(reply) = checked {
            return reply;
        }
        // Salesforce's sessions have no lifetime a client is told of: they end when revoked.
        let token = tokens.issue("00Dmock!", grant_type, None);
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
