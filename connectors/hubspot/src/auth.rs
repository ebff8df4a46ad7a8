//! Credentials: a private-app token, or an OAuth app whose access token is refreshed
//! before it expires and once more on a 401.
//!
//! The token endpoint is HubSpot's date-versioned `POST /oauth/2026-03/token`, its
//! parameters in the form body (never the URL): the v1 endpoint (`/oauth/v1/token`) is
//! retired on 2027-02-16
//! (<https://developers.hubspot.com/docs/api-reference/legacy/authentication/oauth-tokens/v1/migration-guide>).
//! Its refusals carry RFC 6749's `error` / `error_description` (and HubSpot's older
//! `status` / `message`), which are read in that order.
//!
//! Invariants: a token is never logged or put in an error (nor is anything sent to the
//! token endpoint); refreshes are single-flight (concurrent deliveries wait for one
//! refresh); a dry run asks for no token; how long a token is used comes from
//! `slatis_core::connector::token` (bounded, whatever `expires_in` says).

use serde_json::{Value, json};
use slatis_core::DeliveryError;
use slatis_core::connector::{DryRunReply, Outbound, Reply};
use slatis_crm::token::{Minted, RefreshToken, TokenCache};
use std::time::Duration;

/// The token endpoint's path under the base URL.
pub const TOKEN_PATH: &str = "/oauth/2026-03/token";

/// How the connector authenticates.
pub enum Auth {
    /// A private-app access token.
    Static(String),
    /// An OAuth app.
    OAuth(OAuth),
}

/// An OAuth app's credentials and its current access token.
pub struct OAuth {
    /// `POST {base_url}/oauth/2026-03/token`, unless configured.
    pub token_url: String,
    /// The app's client id.
    pub client_id: String,
    /// The app's client secret.
    pub client_secret: String,
    /// The refresh token (HubSpot may hand out a new one with each grant).
    pub refresh_token: RefreshToken,
    /// The access token in use.
    pub current: TokenCache<String>,
}

/// The failure of a token request: 5xx and 408 retryable, 429 rate-limited (until
/// `Retry-After`, else a minute), anything else permanent (the credentials were
/// refused). The message names RFC 6749's `error` and `error_description`, else
/// HubSpot's `status` and `message`; it never holds what was sent.
fn refused(reply: &Reply) -> DeliveryError {
    let body = reply.json();
    let text = |k: &str| {
        body.get(k)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|t| !t.is_empty())
    };
    let reason = match (text("error"), text("error_description")) {
        (Some(e), Some(d)) => format!("{e}: {d}"),
        (Some(e), None) => e.to_owned(),
        _ => [text("status"), text("message")]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(": "),
    };
    let status = reply.status;
    let message = format!(
        "HubSpot refused to refresh the OAuth token: HTTP {} {reason}",
        status.as_u16()
    )
    .trim_end()
    .to_owned();
    if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        let until = reply
            .retry_after()
            .unwrap_or_else(|| slatis_core::time::in_seconds(60));
        DeliveryError::rate_limited(message, until)
    } else if status.is_server_error() || status == reqwest::StatusCode::REQUEST_TIMEOUT {
        DeliveryError::retry_after(message, reply.retry_after())
    } else {
        DeliveryError::permanent(message)
    }
}

impl Auth {
    /// A bearer token to use now; `stale` is the token a 401 just rejected (it is
    /// refreshed unless another delivery already did).
    ///
    /// # Errors
    /// When the token endpoint fails: retryable for 5xx and timeouts, permanent when it
    /// refuses the credentials.
    pub async fn token(
        &self,
        http: &Outbound<'_>,
        stale: Option<&str>,
    ) -> Result<String, DeliveryError> {
        let oauth = match self {
            Self::Static(t) => return Ok(t.clone()),
            Self::OAuth(o) => o,
        };
        if http.dry_run() {
            return Ok("dry-run-token".to_owned());
        }
        let secret: fn(&String) -> &str = |t| t;
        oauth.current.get(stale, secret, || oauth.grant(http)).await
    }

    /// Whether a 401 can be cured by a new token.
    pub fn refreshable(&self) -> bool {
        matches!(self, Self::OAuth(_))
    }
}

impl OAuth {
    /// Mints an access token with the refresh token (keeping a rotated one).
    async fn grant(&self, http: &Outbound<'_>) -> Result<Minted<String>, DeliveryError> {
        let refresh_token = self.refresh_token.current().await;
        let request = http.request(reqwest::Method::POST, &self.token_url).form(&[
            ("grant_type", "refresh_token"),
            ("client_id", self.client_id.as_str()),
            ("client_secret", self.client_secret.as_str()),
            ("refresh_token", refresh_token.as_str()),
        ]);
        let reply = http.send(request, DryRunReply::json(json!({}))).await?;
        if !reply.status.is_success() {
            return Err(refused(&reply));
        }
        let body = reply.json();
        let token = body
            .get("access_token")
            .and_then(Value::as_str)
            .ok_or_else(|| DeliveryError::retryable("HubSpot's token answer has no access_token"))?
            .to_owned();
        self.refresh_token.rotate(&body).await;
        Ok(Minted::from_answer(token, &body, Duration::from_secs(1800)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::StatusCode;
    use reqwest::header::HeaderMap;

    fn reply(status: u16, body: &Value) -> Reply {
        Reply {
            status: StatusCode::from_u16(status).expect("status"),
            headers: HeaderMap::new(),
            body: body.to_string().into(),
        }
    }

    #[test]
    fn refusals_read_rfc_6749_fields_first() {
        let e = refused(&reply(
            400,
            &json!({"error": "invalid_grant", "error_description": "refresh token is invalid, expired or revoked",
                    "status": "BAD_REFRESH_TOKEN", "message": "refresh token is invalid, expired or revoked"}),
        ));
        assert_eq!(e.class(), "permanent");
        assert_eq!(
            e.message(),
            "HubSpot refused to refresh the OAuth token: HTTP 400 invalid_grant: refresh token is invalid, expired or revoked"
        );
        let e = refused(&reply(
            400,
            &json!({"status": "BAD_CLIENT_ID", "message": "missing or unknown client id"}),
        ));
        assert!(
            e.message()
                .ends_with("HTTP 400 BAD_CLIENT_ID: missing or unknown client id"),
            "{e}"
        );
        assert_eq!(refused(&reply(503, &json!({}))).class(), "retryable");
        assert_eq!(refused(&reply(429, &json!({}))).class(), "rate_limited");
    }
}
