//! Who may call: static private-app tokens, and OAuth access tokens granted by the
//! date-versioned token endpoint `POST /oauth/2026-03/token` (parameters in the form
//! body, never the query) until they expire.
//!
//! Answers follow <https://developers.hubspot.com/docs/api-reference/latest/authentication/manage-oauth-tokens>:
//! a grant is `{access_token, refresh_token, expires_in, token_type: "bearer", hub_id,
//! scopes}`; a refusal carries RFC 6749's `error` / `error_description` beside the older
//! `status` / `message`
//! (<https://developers.hubspot.com/changelog/new-oauth-v3-api-endpoints-and-standardized-error-responses>:
//! `{"error": "invalid_grant", "error_description": "refresh token is invalid, expired or
//! revoked", "status": "BAD_REFRESH_TOKEN", "message": "…"}`).
//!
//! Invariant: the checks run in this order: `grant_type`, client id, client secret,
//! refresh token; a refused grant issues nothing.

use super::super::chassis::Call;
use super::super::chassis::auth::{
    Access, AccessTokens, GrantError, OAuthApp, TokenRequest, expires_in,
};
use super::super::chassis::reply::Reply;
use super::HubSpot;
use super::answers::error;
use serde_json::json;

/// The account id grants name.
const HUB_ID: u64 = 62_515;

pub(super) fn unauthenticated() -> Reply {
    error(
        401,
        "Authentication credentials not found.",
        Some("INVALID_AUTHENTICATION"),
    )
}

/// A token endpoint refusal: RFC 6749 §5.2 fields and HubSpot's own.
fn refused(why: GrantError, grant_type: &str) -> Reply {
    let (error, status, description) = match why {
        GrantError::MissingGrantType => (
            "invalid_request",
            "BAD_GRANT_TYPE",
            "missing grant_type in the request body".to_owned(),
        ),
        GrantError::UnsupportedGrantType => (
            "unsupported_grant_type",
            "BAD_GRANT_TYPE",
            format!("unsupported grant_type {grant_type}"),
        ),
        GrantError::UnknownClient => (
            "invalid_client",
            "BAD_CLIENT_ID",
            "missing or unknown client id".to_owned(),
        ),
        GrantError::WrongSecret => (
            "invalid_client",
            "BAD_CLIENT_SECRET",
            "missing or invalid client secret".to_owned(),
        ),
        GrantError::BadGrant => (
            "invalid_grant",
            "BAD_REFRESH_TOKEN",
            "refresh token is invalid, expired or revoked".to_owned(),
        ),
    };
    Reply::json(
        400,
        json!({
            "error": error,
            "error_description": description,
            "status": status,
            "message": description,
        }),
    )
}

impl HubSpot {
    /// The caller's token, unless 401: a private-app token or an unexpired access token.
    pub(super) fn check_token(
        &self,
        tokens: &AccessTokens,
        token: Option<&str>,
    ) -> Result<String, Reply> {
        let Some(token) = token else {
            return Err(unauthenticated());
        };
        if self.options.tokens.iter().any(|t| t == token) {
            return Ok(token.to_owned());
        }
        match tokens.check(token) {
            Access::Valid => Ok(token.to_owned()),
            Access::Expired(ago) => Err(error(
                401,
                &format!(
                    "The OAuth token used to make this call expired {} second(s) ago.",
                    ago.as_secs()
                ),
                Some("EXPIRED_AUTHENTICATION"),
            )),
            Access::Unknown => Err(unauthenticated()),
        }
    }

    /// `POST /oauth/2026-03/token` with `grant_type=refresh_token`.
    pub(super) fn grant_token(&self, tokens: &mut AccessTokens, call: &Call<'_>) -> Reply {
        let request = TokenRequest::of(call.credentials, call.body);
        let checked = request.require_grant_type("refresh_token").and_then(|()| {
            let app = OAuthApp::of(self.options.oauth.as_ref()).ok_or(GrantError::UnknownClient)?;
            app.check_client(Some(request.form_client()))?;
            app.check_refresh(&request)?;
            Ok(app)
        });
        let app = match checked {
            Ok(app) => app,
            Err(why) => return refused(why, request.field("grant_type")),
        };
        let ttl = self.options.access_token_ttl;
        let token = tokens.issue("oauth-", "refresh_token", Some(ttl));
        Reply::json(
            200,
            json!({
                "token_type": "bearer",
                "refresh_token": app.refresh_token,
                "hub_id": HUB_ID,
                "scopes": ["oauth", "crm.objects.contacts.read", "crm.objects.contacts.write"],
                "access_token": token,
                "expires_in": expires_in(ttl, self.options.token_expires_in.as_ref()),
            }),
        )
    }
}
