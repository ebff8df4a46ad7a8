//! Who may call: an API token (`x-api-token`, or the legacy `?api_token=`) or an OAuth
//! access token (`Authorization: Bearer`), and the OAuth app's token endpoint
//! `POST /oauth/token`, which grants access tokens that expire
//! (<https://pipedrive.readme.io/docs/marketplace-oauth-authorization>).
//!
//! Invariants: the first present of the header, the bearer token and the query parameter
//! is the one checked; anything else is 401 `unauthorized access`. The token endpoint
//! checks the Basic client credentials first (401 `invalid_client`), then the grant type
//! and the refresh token (400); the refresh token stays the same.

use super::super::chassis::Call;
use super::super::chassis::auth::{
    Access, AccessTokens, Credentials, GrantError, OAuthApp, TokenRequest, expires_in,
};
use super::super::chassis::reply::Reply;
use super::Pipedrive;
use super::answers::{oauth_error, unauthorized};
use serde_json::json;

/// The scope an OAuth grant answers.
const OAUTH_SCOPE: &str = "base,contacts:full,deals:full,activities:full";

/// The token endpoint's refusal.
fn refused(why: GrantError) -> Reply {
    match why {
        GrantError::UnknownClient | GrantError::WrongSecret => {
            oauth_error(401, "invalid_client", "Invalid client")
        }
        GrantError::MissingGrantType | GrantError::UnsupportedGrantType => {
            oauth_error(400, "unsupported_grant_type", "Unsupported grant type")
        }
        GrantError::BadGrant => oauth_error(400, "invalid_grant", "Invalid refresh token"),
    }
}

impl Pipedrive {
    /// The token a call is made with, if valid: the `x-api-token` header, else the bearer
    /// token, else the `api_token` query parameter.
    pub(super) fn check_credentials(
        &self,
        tokens: &AccessTokens,
        credentials: &Credentials,
    ) -> Result<String, Reply> {
        let api_token = |token: &str| {
            if self.options.api_tokens.iter().any(|t| t == token) {
                Ok(token.to_owned())
            } else {
                Err(unauthorized())
            }
        };
        if let Some(token) = &credentials.api_token {
            return api_token(token);
        }
        if let Some(token) = &credentials.bearer {
            return match tokens.check(token) {
                Access::Valid => Ok(token.clone()),
                Access::Expired(_) | Access::Unknown => Err(unauthorized()),
            };
        }
        if let Some(token) = &credentials.url_token {
            return api_token(token);
        }
        Err(unauthorized())
    }

    /// `POST /oauth/token`.
    pub(super) fn grant_token(&self, tokens: &mut AccessTokens, call: &Call<'_>) -> Reply {
        let request = TokenRequest::of(call.credentials, call.body);
        let checked = OAuthApp::of(self.options.oauth.as_ref())
            .ok_or(GrantError::UnknownClient)
            .and_then(|app| {
                app.check_client(request.basic_client())?;
                request.require_grant_type("refresh_token")?;
                app.check_refresh(&request)?;
                Ok(app)
            });
        let app = match checked {
            Ok(app) => app,
            Err(why) => return refused(why),
        };
        let ttl = self.options.access_token_ttl;
        let token = tokens.issue("pd-oauth-", "refresh_token", Some(ttl));
        Reply::json(
            200,
            json!({
                "access_token": token,
                "token_type": "Bearer",
                "refresh_token": app.refresh_token,
                "scope": OAUTH_SCOPE,
                "expires_in": expires_in(ttl, self.options.token_expires_in.as_ref()),
                "api_domain": self.base_url,
            }),
        )
    }
}
