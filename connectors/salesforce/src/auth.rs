//! Getting an access token with no user present: client credentials, a refresh token, or
//! a JWT bearer assertion signed with the configured RSA key. The token answer names the
//! org's `instance_url`, which every REST call then uses.
//!
//! Invariants: one session per connector instance, minted when first needed and again
//! (once per failing call) after Salesforce answers `INVALID_SESSION_ID`; concurrent
//! deliveries share one mint; a dry run mints nothing; no credential is put in an error.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;
use serde_json::{Value, json};
use slatis_core::DeliveryError;
use slatis_core::connector::{DryRunReply, Outbound};
use slatis_crm::token::{Minted, TokenCache};

/// How the instance authenticates.
pub enum Flow {
    /// `grant_type=client_credentials` (the org's My Domain as `login_url`).
    ClientCredentials {
        /// The consumer secret.
        client_secret: String,
    },
    /// `grant_type=refresh_token`, from an earlier web-server install.
    RefreshToken {
        /// The consumer secret.
        client_secret: String,
        /// The refresh token.
        refresh_token: String,
    },
    /// `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`: an RS256 assertion with
    /// `iss` the consumer key, `sub` the username, `aud` the authorization server, `exp`
    /// two minutes ahead.
    JwtBearer {
        /// The user the token runs as.
        username: String,
        /// The RSA key the assertion is signed with.
        key: Box<EncodingKey>,
        /// The assertion's `aud`.
        audience: String,
    },
}

/// A minted session.
#[derive(Clone)]
pub struct Session {
    /// The bearer token.
    pub token: String,
    /// The org's REST host.
    pub instance_url: String,
}

/// Credentials and the current session.
pub struct Auth {
    /// `{login_url}/services/oauth2/token`.
    pub token_url: String,
    /// The connected app's consumer key.
    pub client_id: String,
    /// The flow.
    pub flow: Flow,
    /// The current session (used until Salesforce refuses it).
    pub session: TokenCache<Session>,
    /// Used as the instance in dry run.
    pub login_url: String,
}

/// How far ahead a JWT assertion's `exp` is, in seconds. Salesforce wants "the
/// expiration time of the assertion within 3 minutes"
/// (<https://help.salesforce.com/s/articleView?id=xcloud.remoteaccess_oauth_jwt_flow.htm&type=5>):
/// two minutes stays inside that with our clock up to a minute ahead of Salesforce's, and
/// still lets it run two minutes behind.
const JWT_LIFETIME_SECS: i64 = 120;

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    exp: i64,
}

impl Auth {
    /// The session to use; `stale` is a token Salesforce just refused (a new one is
    /// minted unless another delivery already did).
    ///
    /// # Errors
    /// Retryable when the token endpoint is unavailable; permanent when it refuses the
    /// credentials (with its `error` and `error_description`).
    pub async fn session(
        &self,
        http: &Outbound<'_>,
        stale: Option<&str>,
    ) -> Result<Session, DeliveryError> {
        if http.dry_run() {
            return Ok(Session {
                token: "dry-run-token".into(),
                instance_url: self.login_url.clone(),
            });
        }
        let secret: fn(&Session) -> &str = |s| &s.token;
        self.session.get(stale, secret, || self.mint(http)).await
    }

    /// Mints a session with the configured flow.
    async fn mint(&self, http: &Outbound<'_>) -> Result<Minted<Session>, DeliveryError> {
        let assertion;
        let form: Vec<(&str, &str)> = match &self.flow {
            Flow::ClientCredentials { client_secret } => vec![
                ("grant_type", "client_credentials"),
                ("client_id", &self.client_id),
                ("client_secret", client_secret),
            ],
            Flow::RefreshToken {
                client_secret,
                refresh_token,
            } => vec![
                ("grant_type", "refresh_token"),
                ("client_id", &self.client_id),
                ("client_secret", client_secret),
                ("refresh_token", refresh_token),
            ],
            Flow::JwtBearer {
                username,
                key,
                audience,
            } => {
                let claims = Claims {
                    iss: &self.client_id,
                    sub: username,
                    aud: audience,
                    exp: chrono::Utc::now().timestamp() + JWT_LIFETIME_SECS,
                };
                assertion = jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, key)
                    .map_err(|e| {
                        DeliveryError::permanent(format!("cannot sign the JWT assertion: {e}"))
                    })?;
                vec![
                    ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                    ("assertion", &assertion),
                ]
            }
        };
        let request = http
            .request(reqwest::Method::POST, &self.token_url)
            .form(&form);
        let reply = http.send(request, DryRunReply::json(json!({}))).await?;
        let body = reply.json();
        let text = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_owned);
        if !reply.status.is_success() {
            return Err(reply.token_refused(&format!(
                "Salesforce refused the {} token request",
                self.flow_name()
            )));
        }
        let (Some(token), Some(instance_url)) = (text("access_token"), text("instance_url")) else {
            return Err(DeliveryError::retryable(
                "Salesforce's token answer lacks access_token or instance_url",
            ));
        };
        let session = Session {
            token,
            instance_url: instance_url.trim_end_matches('/').to_owned(),
        };
        Ok(Minted {
            token: session,
            lifetime: None,
        })
    }

    fn flow_name(&self) -> &'static str {
        match self.flow {
            Flow::ClientCredentials { .. } => "client_credentials",
            Flow::RefreshToken { .. } => "refresh_token",
            Flow::JwtBearer { .. } => "jwt_bearer",
        }
    }
}
