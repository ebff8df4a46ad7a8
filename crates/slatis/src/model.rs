//! The API's resources as this client reads them (v1, snake_case). Where the reference
//! does not show a shape, the field is marked **(inferred)** and read tolerantly
//! (`#[serde(default)]`), so a real answer without it still parses.
//!
//! Invariant: a [`Secret`] never shows its value through `Debug` or `Display`; only
//! [`Secret::expose`] gives it, for the one place that prints it.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;

/// A webhook signing secret, as the create and rotate-secret answers carry it (the only
/// two places Slatis shows it).
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// The value, for the one place that prints it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// A webhook subscription (`wh_…`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Webhook {
    /// `wh_…`.
    pub id: String,
    /// Where Slatis delivers.
    pub url: String,
    /// The event types it is subscribed to.
    pub events: Vec<String>,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
    /// False once auto-disabled after 10 consecutive failures, or turned off.
    pub is_active: bool,
    /// Why it was auto-disabled.
    #[serde(default)]
    pub failure_reason: Option<String>,
    /// When it was auto-disabled, RFC 3339 **(inferred: the docs name no such field)**.
    #[serde(default)]
    pub disabled_at: Option<String>,
    /// When it was created, RFC 3339 **(inferred)**.
    #[serde(default)]
    pub created_at: Option<String>,
}

/// A webhook with its secret: the answer to create and to rotate-secret.
#[derive(Debug, Clone)]
pub struct WithSecret {
    /// The webhook.
    pub webhook: Webhook,
    /// Its (new) signing secret, shown this once.
    pub secret: Secret,
}

/// `POST /v1/webhooks`'s body.
#[derive(Debug, Clone, Serialize)]
pub struct NewWebhook {
    /// A public HTTPS URL.
    pub url: String,
    /// Event types, e.g. `BOOKING_CREATED`.
    pub events: Vec<String>,
    /// Free text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// One attempt at a delivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    /// 1 for the first.
    pub attempt: u32,
    /// The status the endpoint answered; `None` when it did not answer in time.
    #[serde(default)]
    pub response_status: Option<u16>,
    /// Why it failed without a status (timeout, connection refused).
    #[serde(default)]
    pub error: Option<String>,
    /// When it was made, RFC 3339.
    pub at: String,
}

/// A delivery of one event to one webhook, with its attempts **(inferred: the docs name a
/// delivery history under `webhooks:read` but show neither its path nor its shape)**.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    /// `dlv_…`.
    pub id: String,
    /// The webhook it went to.
    pub webhook_id: String,
    /// The event type.
    pub event: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    /// Every attempt so far, oldest first.
    #[serde(default)]
    pub attempts: Vec<Attempt>,
    /// When the event was raised, RFC 3339.
    pub created_at: String,
}

/// A booking's attendee.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attendee {
    /// The name.
    pub name: String,
    /// The email address.
    pub email: String,
}

/// A booking (`bkg_…`); the fields the docs show typed, every other one kept as sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Booking {
    /// `bkg_…`.
    pub id: String,
    /// `SCHEDULED`, `CANCELLED`, `RESCHEDULED`, `COMPLETED`, `NO_SHOW`, …
    pub status: String,
    /// RFC 3339, UTC.
    pub start_time: String,
    /// RFC 3339, UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<String>,
    /// Who booked.
    pub attendee: Attendee,
    /// Every other field, as sent.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// The filters and page of `GET /v1/bookings`. Dates are ISO 8601 or `YYYY-MM-DD`.
#[derive(Debug, Clone, Default)]
pub struct BookingQuery {
    /// `start_date`: bookings starting at or after.
    pub start_date: Option<String>,
    /// `end_date`: bookings starting before.
    pub end_date: Option<String>,
    /// `status`.
    pub status: Option<String>,
    /// `limit` (the SDK's example uses 100).
    pub limit: Option<u32>,
    /// `cursor`: the `next_cursor` of the page before **(the query name is inferred)**.
    pub cursor: Option<String>,
}

impl BookingQuery {
    /// The query pairs, in a fixed order.
    pub(crate) fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut pairs = Vec::new();
        let mut add = |k, v: Option<String>| {
            if let Some(v) = v {
                pairs.push((k, v));
            }
        };
        add("start_date", self.start_date.clone());
        add("end_date", self.end_date.clone());
        add("status", self.status.clone());
        add("limit", self.limit.map(|l| l.to_string()));
        add("cursor", self.cursor.clone());
        pairs
    }
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Where the next page starts; `None` on the last.
    pub next_cursor: Option<String>,
}
