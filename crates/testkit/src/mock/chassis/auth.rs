//! Who may call a mock: the credentials a request carries ([`Credentials`]), the access
//! tokens a mock's token endpoint issued ([`AccessTokens`]), and the pieces of an OAuth
//! 2.0 token endpoint (RFC 6749) that each mock's own endpoint is built from: the request
//! ([`TokenRequest`]), the app it grants for ([`OAuthApp`]), why a grant is refused
//! ([`GrantError`]) and the `expires_in` it answers ([`expires_in`]). Each mock keeps its
//! own order of checks and answers a refusal in its vendor's shape.
//!
//! Invariants: an access token is valid from its grant until its lifetime passes or
//! [`AccessTokens::expire_all`]; a token the mock never issued is never valid.

use super::wire::{base64_decode, pair, parse_pairs};
use axum::http::{HeaderMap, Uri};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The credentials a request carries, wherever it carries them.
#[derive(Debug, Default, Clone)]
pub struct Credentials {
    /// `Authorization: Bearer …`.
    pub bearer: Option<String>,
    /// `Authorization: Basic …`, decoded: (user, password).
    pub basic: Option<(String, String)>,
    /// The `x-api-token` header.
    pub api_token: Option<String>,
    /// The `slatis-api-key` header, else the `x-api-key` header.
    pub api_key: Option<String>,
    /// The `api_token` query parameter (possibly empty).
    pub url_token: Option<String>,
}

impl Credentials {
    /// What `headers` and `uri` carry.
    pub fn of(headers: &HeaderMap, uri: &Uri) -> Self {
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
            bearer: scheme("bearer"),
            basic,
            api_token: header("x-api-token"),
            api_key: header("slatis-api-key").or_else(|| header("x-api-key")),
            url_token,
        }
    }
}

/// What a token is worth now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Issued and not expired.
    Valid,
    /// Issued, and expired this long ago.
    Expired(Duration),
    /// Never issued.
    Unknown,
}

/// The access tokens a mock issued.
#[derive(Debug, Default)]
pub struct AccessTokens {
    /// Token → when it expires (`None`: only by [`Self::expire_all`]).
    expires: HashMap<String, Option<Instant>>,
    /// The grant type of every token issued, in order.
    grants: Vec<String>,
}

impl AccessTokens {
    /// Issues a token (`prefix` and a unique suffix) for a `grant_type`, living `ttl`
    /// (`None`: until [`Self::expire_all`]).
    pub fn issue(&mut self, prefix: &str, grant_type: &str, ttl: Option<Duration>) -> String {
        let token = format!("{prefix}{}", uuid::Uuid::now_v7().simple());
        let now = Instant::now();
        self.expires.insert(token.clone(), ttl.map(|ttl| now + ttl));
        self.grants.push(grant_type.to_owned());
        token
    }

    /// What `token` is worth now.
    pub fn check(&self, token: &str) -> Access {
        match self.expires.get(token) {
            None => Access::Unknown,
            Some(None) => Access::Valid,
            Some(Some(expires)) => {
                let now = Instant::now();
                if now < *expires {
                    Access::Valid
                } else {
                    Access::Expired(now.duration_since(*expires))
                }
            }
        }
    }

    /// Makes every token issued so far expired.
    pub fn expire_all(&mut self) {
        let now = Instant::now();
        for expires in self.expires.values_mut() {
            *expires = Some(expires.map_or(now, |at| at.min(now)));
        }
    }

    /// How many tokens were issued.
    pub fn issued(&self) -> usize {
        self.grants.len()
    }

    /// How many tokens were issued for one grant type.
    pub fn issued_by(&self, grant_type: &str) -> usize {
        self.grants.iter().filter(|g| *g == grant_type).count()
    }
}

/// A token endpoint call: its form body (parameters in the body, never the query) and the
/// client credentials of its Basic header.
pub struct TokenRequest<'a> {
    form: Vec<(String, String)>,
    basic: Option<&'a (String, String)>,
}

impl<'a> TokenRequest<'a> {
    /// The token request a call makes.
    pub fn of(credentials: &'a Credentials, body: &[u8]) -> Self {
        Self {
            form: parse_pairs(&String::from_utf8_lossy(body)),
            basic: credentials.basic.as_ref(),
        }
    }

    /// A form field (`""` when absent).
    pub fn field(&self, name: &str) -> &str {
        pair(&self.form, name).unwrap_or_default()
    }

    /// The client's id and secret from the form body (RFC 6749 §2.3.1).
    pub fn form_client(&self) -> (&str, &str) {
        (self.field("client_id"), self.field("client_secret"))
    }

    /// The client's id and secret from HTTP Basic (RFC 6749 §2.3.1), if sent.
    pub fn basic_client(&self) -> Option<(&str, &str)> {
        self.basic
            .map(|(id, secret)| (id.as_str(), secret.as_str()))
    }

    /// `Ok` when `grant_type` is `wanted`.
    ///
    /// # Errors
    /// [`GrantError::MissingGrantType`] or [`GrantError::UnsupportedGrantType`].
    pub fn require_grant_type(&self, wanted: &str) -> Result<(), GrantError> {
        match self.field("grant_type") {
            "" => Err(GrantError::MissingGrantType),
            g if g == wanted => Ok(()),
            _ => Err(GrantError::UnsupportedGrantType),
        }
    }
}

/// Why a token endpoint refuses a grant (RFC 6749 §5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantError {
    /// No `grant_type`.
    MissingGrantType,
    /// A `grant_type` the endpoint does not grant.
    UnsupportedGrantType,
    /// No client credentials, or an unknown client id (or the mock has no app).
    UnknownClient,
    /// The client's secret is wrong.
    WrongSecret,
    /// The refresh token (or another grant credential) is wrong.
    BadGrant,
}

/// The OAuth app a mock grants tokens to.
#[derive(Debug, Clone, Copy)]
pub struct OAuthApp<'a> {
    /// The client id.
    pub client_id: &'a str,
    /// The client secret.
    pub client_secret: &'a str,
    /// The one refresh token it accepts.
    pub refresh_token: &'a str,
}

impl<'a> OAuthApp<'a> {
    /// The app of a mock's `oauth: Option<(client_id, client_secret, refresh_token)>`.
    pub fn of(oauth: Option<&'a (String, String, String)>) -> Option<Self> {
        oauth.map(|(client_id, client_secret, refresh_token)| Self {
            client_id,
            client_secret,
            refresh_token,
        })
    }

    /// `Ok` when the client is this app.
    ///
    /// # Errors
    /// [`GrantError::UnknownClient`] or [`GrantError::WrongSecret`].
    pub fn check_client(&self, client: Option<(&str, &str)>) -> Result<(), GrantError> {
        match client {
            Some((id, _)) if id != self.client_id => Err(GrantError::UnknownClient),
            None => Err(GrantError::UnknownClient),
            Some((_, secret)) if secret != self.client_secret => Err(GrantError::WrongSecret),
            Some(_) => Ok(()),
        }
    }

    /// `Ok` when the request's `refresh_token` is the app's.
    ///
    /// # Errors
    /// [`GrantError::BadGrant`].
    pub fn check_refresh(&self, request: &TokenRequest<'_>) -> Result<(), GrantError> {
        if request.field("refresh_token") == self.refresh_token {
            Ok(())
        } else {
            Err(GrantError::BadGrant)
        }
    }
}

/// The `expires_in` of a token answer: the lifetime's seconds, or what a broken or hostile
/// endpoint says in its place (`shown`).
pub fn expires_in(ttl: Duration, shown: Option<&Value>) -> Value {
    shown.cloned().unwrap_or_else(|| json!(ttl.as_secs()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn credentials(authorization: &str, uri: &str) -> Credentials {
        let mut headers = HeaderMap::new();
        if let Ok(value) = HeaderValue::from_str(authorization) {
            headers.insert("authorization", value);
        }
        headers.insert("x-api-token", HeaderValue::from_static(" key "));
        Credentials::of(&headers, &uri.parse().expect("uri"))
    }

    #[test]
    fn credentials_are_read_wherever_they_are() {
        let bearer = credentials("bearer tok", "/x?api_token=");
        assert_eq!(bearer.bearer.as_deref(), Some("tok"));
        assert_eq!(bearer.api_token.as_deref(), Some("key"));
        assert_eq!(
            bearer.url_token.as_deref(),
            Some(""),
            "present, though empty"
        );
        // base64("id:s:ecret"): the password keeps its colons
        let basic = credentials("Basic aWQ6czplY3JldA==", "/x");
        assert_eq!(basic.basic, Some(("id".to_owned(), "s:ecret".to_owned())));
        assert_eq!(basic.bearer, None);
        assert_eq!(credentials("Bearer ", "/x").bearer, None);
    }

    #[test]
    fn tokens_live_their_lifetime_or_until_expired() {
        let mut tokens = AccessTokens::default();
        let short = tokens.issue("t-", "refresh_token", Some(Duration::ZERO));
        let long = tokens.issue("t-", "refresh_token", Some(Duration::from_secs(60)));
        let session = tokens.issue("s-", "client_credentials", None);
        assert!(short.starts_with("t-") && short != long);
        assert!(matches!(tokens.check(&short), Access::Expired(_)));
        assert_eq!(tokens.check(&long), Access::Valid);
        assert_eq!(tokens.check(&session), Access::Valid);
        assert_eq!(tokens.check("forged"), Access::Unknown);
        assert_eq!((tokens.issued(), tokens.issued_by("refresh_token")), (3, 2));
        tokens.expire_all();
        assert!(matches!(tokens.check(&long), Access::Expired(_)));
        assert!(matches!(tokens.check(&session), Access::Expired(_)));
    }

    #[test]
    fn a_grant_names_what_is_wrong() {
        let oauth = ("id".to_owned(), "secret".to_owned(), "refresh".to_owned());
        let app = OAuthApp::of(Some(&oauth)).expect("app");
        let none = Credentials::default();
        let request = TokenRequest::of(&none, b"grant_type=refresh_token&refresh_token=old");
        assert_eq!(request.require_grant_type("refresh_token"), Ok(()));
        assert_eq!(
            request.require_grant_type("client_credentials"),
            Err(GrantError::UnsupportedGrantType)
        );
        assert_eq!(
            TokenRequest::of(&none, b"").require_grant_type("refresh_token"),
            Err(GrantError::MissingGrantType)
        );
        assert_eq!(app.check_refresh(&request), Err(GrantError::BadGrant));
        assert_eq!(app.check_client(None), Err(GrantError::UnknownClient));
        assert_eq!(
            app.check_client(Some(("other", "secret"))),
            Err(GrantError::UnknownClient)
        );
        assert_eq!(
            app.check_client(Some(("id", "wrong"))),
            Err(GrantError::WrongSecret)
        );
        assert_eq!(app.check_client(Some(("id", "secret"))), Ok(()));
        assert_eq!(expires_in(Duration::from_secs(30), None), json!(30));
        assert_eq!(
            expires_in(Duration::from_secs(30), Some(&json!("soon"))),
            json!("soon")
        );
    }
}
