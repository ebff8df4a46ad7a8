//! Credentials: a private-app token, or an OAuth app whose access token is refreshed
//! before it expires and once more on a 401.
//!
//! Invariants: a token is never logged or put in an error; refreshes are single-flight
//! (concurrent deliveries wait for one refresh); a dry run asks for no token; how long a
//! token is used comes from `slatis_core::connector::token` (bounded, whatever
//! `expires_in` says).

use serde_json::{Value, json};
use slatis_core::DeliveryError;
use slatis_core::connector::{DryRunReply, Outbound, token};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// How the connector authenticates.
pub enum Auth {
    /// A private-app access token.
    Static(String),
    /// An OAuth app.
    OAuth(OAuth),
}

/// An OAuth app's credentials and its current access token.
pub struct OAuth {
    /// `POST {base_url}/oauth/v1/token`.
    pub token_url: String,
    /// The app's client id.
    pub client_id: String,
    /// The app's client secret.
    pub client_secret: String,
    /// The refresh token (HubSpot may hand out a new one with each grant).
    pub refresh_token: Mutex<String>,
    /// The access token and when it stops being used.
    pub current: Mutex<Option<(String, Instant)>>,
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
        let mut current = oauth.current.lock().await;
        if let Some((token, until)) = current.as_ref()
            && Instant::now() < *until
            && Some(token.as_str()) != stale
        {
            return Ok(token.clone());
        }
        let refresh_token = oauth.refresh_token.lock().await.clone();
        let request = http
            .request(reqwest::Method::POST, &oauth.token_url)
            .form(&[
                ("grant_type", "refresh_token"),
                ("client_id", oauth.client_id.as_str()),
                ("client_secret", oauth.client_secret.as_str()),
                ("refresh_token", refresh_token.as_str()),
            ]);
        let reply = http.send(request, DryRunReply::json(json!({}))).await?;
        let body = reply.json();
        if !reply.status.is_success() {
            return Err(reply.token_refused("HubSpot refused to refresh the OAuth token"));
        }
        let token = body
            .get("access_token")
            .and_then(Value::as_str)
            .ok_or_else(|| DeliveryError::retryable("HubSpot's token answer has no access_token"))?
            .to_owned();
        let lifetime = token::lifetime(&body, Duration::from_secs(1800));
        if let Some(new_refresh) = body.get("refresh_token").and_then(Value::as_str) {
            *oauth.refresh_token.lock().await = new_refresh.to_owned();
        }
        *current = Some((token.clone(), token::use_until(lifetime)));
        Ok(token)
    }

    /// Whether a 401 can be cured by a new token.
    pub fn refreshable(&self) -> bool {
        matches!(self, Self::OAuth(_))
    }
}
