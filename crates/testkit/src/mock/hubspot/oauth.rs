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

use super::super::reply::Reply;
use super::super::wire::{pair, parse_pairs};
use super::Inner;
use super::errors::error;
use serde_json::json;
use std::time::Instant;

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
fn refused(error: &str, status: &str, description: &str) -> Reply {
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

impl Inner {
    /// 401 unless `token` is a private-app token or an unexpired access token.
    pub(super) fn authenticate(&self, token: Option<&str>) -> Result<(), Reply> {
        let Some(token) = token else {
            return Err(unauthenticated());
        };
        if self.options.tokens.iter().any(|t| t == token) {
            return Ok(());
        }
        match self.access_tokens.get(token) {
            Some(expires) => {
                let now = Instant::now();
                if now < *expires {
                    Ok(())
                } else {
                    let ago = now.duration_since(*expires).as_secs();
                    Err(error(
                        401,
                        &format!(
                            "The OAuth token used to make this call expired {ago} second(s) ago."
                        ),
                        Some("EXPIRED_AUTHENTICATION"),
                    ))
                }
            }
            None => Err(unauthenticated()),
        }
    }

    /// `POST /oauth/2026-03/token` with `grant_type=refresh_token`.
    pub(super) fn grant(&mut self, body: &[u8]) -> Reply {
        let form = parse_pairs(&String::from_utf8_lossy(body));
        let field = |k: &str| pair(&form, k).unwrap_or_default();
        match field("grant_type") {
            "refresh_token" => {}
            "" => {
                return refused(
                    "invalid_request",
                    "BAD_GRANT_TYPE",
                    "missing grant_type in the request body",
                );
            }
            other => {
                return refused(
                    "unsupported_grant_type",
                    "BAD_GRANT_TYPE",
                    &format!("unsupported grant_type {other}"),
                );
            }
        }
        let Some((id, secret, refresh)) = self.options.oauth.as_ref() else {
            return refused(
                "invalid_client",
                "BAD_CLIENT_ID",
                "missing or unknown client id",
            );
        };
        if field("client_id") != id {
            return refused(
                "invalid_client",
                "BAD_CLIENT_ID",
                "missing or unknown client id",
            );
        }
        if field("client_secret") != secret {
            return refused(
                "invalid_client",
                "BAD_CLIENT_SECRET",
                "missing or invalid client secret",
            );
        }
        if field("refresh_token") != refresh {
            return refused(
                "invalid_grant",
                "BAD_REFRESH_TOKEN",
                "refresh token is invalid, expired or revoked",
            );
        }
        let token = format!("oauth-{}", uuid::Uuid::now_v7().simple());
        let ttl = self.options.access_token_ttl;
        self.access_tokens
            .insert(token.clone(), Instant::now() + ttl);
        self.tokens_issued += 1;
        Reply::json(
            200,
            json!({
                "token_type": "bearer",
                "refresh_token": refresh,
                "hub_id": HUB_ID,
                "scopes": ["oauth", "crm.objects.contacts.read", "crm.objects.contacts.write"],
                "access_token": token,
                "expires_in": self.options.token_expires_in.clone().unwrap_or_else(|| json!(ttl.as_secs())),
            }),
        )
    }
}
