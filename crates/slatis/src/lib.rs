//! A small typed client for the Slatis public API v1 (reference: the v1 docs at
//! <https://docs.slatis.com/>): webhooks (create, list, get, enable/disable, test,
//! rotate-secret, delivery history) and bookings (list by page, get).
//!
//! Invariants:
//! - every call is under `{base}/v1/…`, authenticated with `Authorization: Bearer <key>`,
//!   and bounded: 10 s to connect, 30 s for the whole call (the SDK's default);
//! - an answer is `{"success":true,"<name>":…}` or an [`Error`] that classes it; the API
//!   key is never part of an error, a log or a `Debug` of the client;
//! - path segments taken from callers (ids) are percent-encoded, never spliced.

mod error;
mod model;

pub use error::Error;
pub use model::{
    Attempt, Attendee, Booking, BookingQuery, Delivery, NewWebhook, Page, Secret, Webhook,
    WithSecret,
};

use error::transport;
use reqwest::{Method, Url};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::fmt;
use std::time::Duration;

/// Slatis's production base URL.
pub const DEFAULT_BASE_URL: &str = "https://api.slatis.com";

/// How long a call may take in all.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A client for one API key.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
    key: String,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base.as_str())
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client of the API at `base_url` (e.g. [`DEFAULT_BASE_URL`]) with `api_key`.
    ///
    /// # Errors
    /// [`Error::BaseUrl`] when the URL is not an absolute http(s) URL;
    /// [`Error::Transport`] when no HTTP client can be built.
    pub fn new(base_url: &str, api_key: &str) -> Result<Self, Error> {
        let base = Url::parse(base_url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && !u.cannot_be_a_base())
            .ok_or_else(|| Error::BaseUrl(base_url.to_owned()))?;
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(CALL_TIMEOUT)
            .user_agent(concat!("slatis-sync/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(transport)?;
        Ok(Self {
            http,
            base,
            key: api_key.to_owned(),
        })
    }

    /// `{base}/v1/{segments…}`, each segment percent-encoded.
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().push("v1").extend(segments);
        }
        url
    }

    /// One call: the whole 2xx answer.
    async fn send(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
        body: Option<Value>,
    ) -> Result<Value, Error> {
        let mut request = self
            .http
            .request(method, self.url(segments))
            .bearer_auth(&self.key)
            .query(query);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(transport)?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.map_err(transport)?;
        let body: Option<Value> = serde_json::from_slice(&bytes).ok();
        if !(200..300).contains(&status) {
            return Err(refusal(status, &headers, body.as_ref(), &bytes));
        }
        body.ok_or_else(|| Error::Decode {
            status,
            reason: "not JSON".to_owned(),
        })
    }

    /// One call: the answer's `field` as `T`.
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        body: Option<Value>,
        field: &str,
    ) -> Result<T, Error> {
        let mut answer = self.send(method, segments, &[], body).await?;
        take(&mut answer, field)
    }

    /// `POST /v1/webhooks` (`webhooks:manage`): the webhook and its secret.
    ///
    /// # Errors
    /// See [`Error`]; a URL that is not public HTTPS is a 400 `validation_error`.
    pub async fn create_webhook(&self, new: &NewWebhook) -> Result<WithSecret, Error> {
        let body = serde_json::to_value(new).map_err(|e| Error::Decode {
            status: 0,
            reason: e.to_string(),
        })?;
        let value: Value = self
            .call(Method::POST, &["webhooks"], Some(body), "webhook")
            .await?;
        with_secret(value)
    }

    /// `GET /v1/webhooks` (`webhooks:read`; path inferred).
    ///
    /// # Errors
    /// See [`Error`].
    pub async fn list_webhooks(&self) -> Result<Vec<Webhook>, Error> {
        self.call(Method::GET, &["webhooks"], None, "webhooks")
            .await
    }

    /// `GET /v1/webhooks/{id}` (`webhooks:read`; path inferred).
    ///
    /// # Errors
    /// See [`Error`]; an unknown id is a 404 `not_found`.
    pub async fn get_webhook(&self, id: &str) -> Result<Webhook, Error> {
        self.call(Method::GET, &["webhooks", id], None, "webhook")
            .await
    }

    /// `PATCH /v1/webhooks/{id}` with `{"is_active": …}` (`webhooks:manage`; path and
    /// body inferred from legacy's `PATCH /webhooks/{id}` `{"isActive":true}`).
    ///
    /// # Errors
    /// See [`Error`]; Slatis re-validates the URL on update.
    pub async fn set_active(&self, id: &str, active: bool) -> Result<Webhook, Error> {
        let body = json!({ "is_active": active });
        self.call(Method::PATCH, &["webhooks", id], Some(body), "webhook")
            .await
    }

    /// `POST /v1/webhooks/{id}/test` (`webhooks:manage`): Slatis sends a test
    /// `BOOKING_CREATED`; the answer names the delivery **(inferred: the v1 answer is not
    /// documented)**, whose attempts [`Self::deliveries`] shows.
    ///
    /// # Errors
    /// See [`Error`].
    pub async fn test_webhook(&self, id: &str) -> Result<Delivery, Error> {
        self.call(Method::POST, &["webhooks", id, "test"], None, "delivery")
            .await
    }

    /// The delivery history of a webhook, newest first (`webhooks:read`; path and shape
    /// inferred: `GET /v1/webhooks/{id}/deliveries` → `{"deliveries":[…]}`).
    ///
    /// # Errors
    /// See [`Error`].
    pub async fn deliveries(&self, id: &str) -> Result<Vec<Delivery>, Error> {
        self.call(
            Method::GET,
            &["webhooks", id, "deliveries"],
            None,
            "deliveries",
        )
        .await
    }

    /// `POST /v1/webhooks/{id}/rotate-secret` (`webhooks:manage`): the new secret, in use
    /// from this moment (no grace period is documented).
    ///
    /// # Errors
    /// See [`Error`].
    pub async fn rotate_secret(&self, id: &str) -> Result<WithSecret, Error> {
        let value: Value = self
            .call(
                Method::POST,
                &["webhooks", id, "rotate-secret"],
                None,
                "webhook",
            )
            .await?;
        with_secret(value)
    }

    /// `GET /v1/bookings` (`bookings:read`): one page; pass its `next_cursor` in
    /// [`BookingQuery::cursor`] for the next.
    ///
    /// # Errors
    /// See [`Error`]; a bad date or cursor is a 400 `validation_error`.
    pub async fn list_bookings(&self, query: &BookingQuery) -> Result<Page<Booking>, Error> {
        let mut answer = self
            .send(Method::GET, &["bookings"], &query.pairs(), None)
            .await?;
        let next_cursor = answer
            .pointer("/pagination/next_cursor")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let items = take(&mut answer, "bookings")?;
        Ok(Page { items, next_cursor })
    }

    /// `GET /v1/bookings/{id}` (`bookings:read`).
    ///
    /// # Errors
    /// See [`Error`]; an unknown id is a 404 `not_found`.
    pub async fn get_booking(&self, id: &str) -> Result<Booking, Error> {
        self.call(Method::GET, &["bookings", id], None, "booking")
            .await
    }
}

/// The answer's `field` as `T`.
fn take<T: DeserializeOwned>(answer: &mut Value, field: &str) -> Result<T, Error> {
    let decode = |reason: String| Error::Decode {
        status: 200,
        reason,
    };
    let value = answer
        .get_mut(field)
        .map(Value::take)
        .ok_or_else(|| decode(format!("no {field:?} field")))?;
    serde_json::from_value(value).map_err(|e| decode(format!("{field}: {e}")))
}

/// A create or rotate-secret answer's webhook and secret. The secret is read from
/// `webhook.secret` **(inferred: the docs say the answer "contains a secret field" but do
/// not show where)**.
fn with_secret(mut value: Value) -> Result<WithSecret, Error> {
    let decode = |reason: String| Error::Decode {
        status: 200,
        reason,
    };
    let secret = value
        .as_object_mut()
        .and_then(|w| w.remove("secret"))
        .ok_or_else(|| decode("no webhook.secret".to_owned()))?;
    Ok(WithSecret {
        secret: serde_json::from_value(secret).map_err(|e| decode(format!("secret: {e}")))?,
        webhook: serde_json::from_value(value).map_err(|e| decode(format!("webhook: {e}")))?,
    })
}

/// A non-2xx answer as an [`Error`].
fn refusal(
    status: u16,
    headers: &reqwest::header::HeaderMap,
    body: Option<&Value>,
    bytes: &[u8],
) -> Error {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    if status == 429 {
        return Error::RateLimited {
            retry_after: header("retry-after")
                .and_then(|v| v.trim().parse().ok())
                .map(Duration::from_secs),
        };
    }
    let text = |p: &str| body.and_then(|b| b.pointer(p)).and_then(Value::as_str);
    Error::Api {
        status,
        code: text("/error/code").unwrap_or_default().to_owned(),
        message: text("/error/message").map_or_else(
            || String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into_owned(),
            str::to_owned,
        ),
        request_id: header("x-request-id"),
    }
}
