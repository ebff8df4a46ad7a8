//! Credentials: an API token sent as the `x-api-token` header (never in a URL that could be
//! logged), or an OAuth app whose access token is refreshed before it expires and once
//! after a 401; the token answer's `api_domain` is then the API's base.
//!
//! Invariants: refreshes are single-flight ([`TokenCache`]); a dry run asks for no token; how long a token
//! is used comes from `slatis_core::connector::token` (bounded, whatever `expires_in`
//! says); the header value is marked sensitive (masked in dry-run records, `Sensitive`
//! in `Debug`), and [`Credentials`] has no `Debug`.

use reqwest::header::HeaderValue;
use serde_json::{Value, json};
use slatis_core::DeliveryError;
use slatis_core::connector::{DryRunReply, Outbound};
use slatis_crm::token::{Minted, RefreshToken, TokenCache};
use std::time::Duration;

/// How a request is authenticated, and where it goes.
#[derive(Clone)]
pub struct Credentials {
    /// The header name.
    pub header: &'static str,
    /// Its value.
    pub value: String,
    /// The API's base (company domain, or the OAuth `api_domain`).
    pub base: String,
}

impl Credentials {
    /// The header value to send, marked sensitive.
    ///
    /// # Errors
    /// Permanent when the token cannot be a header value (a control character in it).
    pub fn header_value(&self) -> Result<HeaderValue, DeliveryError> {
        let mut value = HeaderValue::from_str(&self.value).map_err(|_| {
            DeliveryError::permanent(format!(
                "the {} credential holds a character a header cannot carry",
                self.header
            ))
        })?;
        value.set_sensitive(true);
        Ok(value)
    }
}

/// An OAuth app.
pub struct OAuth {
    /// The token endpoint.
    pub token_url: String,
    /// The app's client id.
    pub client_id: String,
    /// The app's client secret.
    pub client_secret: String,
    /// The refresh token (a new one may come with each grant).
    pub refresh_token: RefreshToken,
    /// The current access token and its base.
    pub current: TokenCache<Credentials>,
}

/// The instance's authentication.
pub enum Auth {
    /// An API token for `base_url`.
    Token {
        /// The token.
        token: String,
        /// The company domain.
        base: String,
    },
    /// An OAuth app.
    OAuth(Box<OAuth>),
}

impl Auth {
    /// What to send now; `stale` is a value a 401 just rejected.
    ///
    /// # Errors
    /// Retryable when the token endpoint is unavailable, permanent when it refuses.
    pub async fn credentials(
        &self,
        http: &Outbound<'_>,
        stale: Option<&str>,
        dry_base: &str,
    ) -> Result<Credentials, DeliveryError> {
        let oauth = match self {
            Self::Token { token, base } => {
                return Ok(Credentials {
                    header: "x-api-token",
                    value: token.clone(),
                    base: base.clone(),
                });
            }
            Self::OAuth(o) => o,
        };
        if http.dry_run() {
            return Ok(Credentials {
                header: "authorization",
                value: "Bearer dry-run-token".into(),
                base: dry_base.to_owned(),
            });
        }
        let secret: fn(&Credentials) -> &str = |c| &c.value;
        oauth.current.get(stale, secret, || oauth.grant(http)).await
    }

    /// Whether a 401 can be cured by a new token.
    pub fn refreshable(&self) -> bool {
        matches!(self, Self::OAuth(_))
    }
}

impl OAuth {
    /// Mints an access token with the refresh token (keeping a rotated one).
    async fn grant(&self, http: &Outbound<'_>) -> Result<Minted<Credentials>, DeliveryError> {
        let refresh_token = self.refresh_token.current().await;
        let request = http
            .request(reqwest::Method::POST, &self.token_url)
            .basic_auth(&self.client_id, Some(&self.client_secret))
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token.as_str()),
            ]);
        let reply = http.send(request, DryRunReply::json(json!({}))).await?;
        let body = reply.json();
        let text = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_owned);
        if !reply.status.is_success() {
            return Err(reply.token_refused("Pipedrive refused to refresh the OAuth token"));
        }
        let (Some(token), Some(base)) = (text("access_token"), text("api_domain")) else {
            return Err(DeliveryError::retryable(
                "Pipedrive's token answer lacks access_token or api_domain",
            ));
        };
        self.refresh_token.rotate(&body).await;
        let creds = Credentials {
            header: "authorization",
            value: format!("Bearer {token}"),
            base: base.trim_end_matches('/').to_owned(),
        };
        Ok(Minted::from_answer(creds, &body, Duration::from_secs(3599)))
    }
}
