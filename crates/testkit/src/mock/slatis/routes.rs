//! The mock's URL surface (v1; the paths the docs do not show are inferred, see the
//! reference's §5.3) and what each call does to the [`Org`].
//!
//! Invariants: a refused call changes nothing; every webhook create and update passes the
//! URL rule ([`check_url`]); a secret is in the answers of create and rotate-secret only.

use super::super::chassis::reply::Reply;
use super::super::chassis::wire::{base64_decode, base64_encode, pair, segments};
use super::model::{Bk, Hook, Job, Org};
use super::refusal::{Refused, SlatisRefusal, check_url, error};
use axum::http::Method;
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Map, Value, json};

/// The seven event types of v1 (<https://docs.slatis.com/webhooks>).
pub use slatis_core::config::EVENT_TYPES as EVENTS;

/// The body limit of POST/PATCH/PUT (OpenAPI description).
pub(super) const MAX_BODY: usize = 256 * 1024;

/// An API call.
#[derive(Debug, Clone)]
pub enum Route {
    /// `GET /v1/webhooks`.
    ListWebhooks,
    /// `POST /v1/webhooks`.
    CreateWebhook,
    /// `GET /v1/webhooks/{id}`.
    GetWebhook(String),
    /// `PATCH /v1/webhooks/{id}`.
    UpdateWebhook(String),
    /// `DELETE /v1/webhooks/{id}`.
    DeleteWebhook(String),
    /// `POST /v1/webhooks/{id}/test`.
    TestWebhook(String),
    /// `POST /v1/webhooks/{id}/rotate-secret`.
    RotateSecret(String),
    /// `GET /v1/webhooks/{id}/deliveries` (inferred path).
    Deliveries(String),
    /// `GET /v1/bookings`.
    ListBookings,
    /// `GET /v1/bookings/{id}`.
    GetBooking(String),
    /// Any other path under `/v1`.
    Unknown,
}

impl Route {
    /// The scopes any one of which allows the call (`webhooks:manage` includes read).
    pub(super) fn scopes(&self) -> &'static [&'static str] {
        match self {
            Self::ListWebhooks | Self::GetWebhook(_) | Self::Deliveries(_) => {
                &["webhooks:read", "webhooks:manage"]
            }
            Self::CreateWebhook
            | Self::UpdateWebhook(_)
            | Self::DeleteWebhook(_)
            | Self::TestWebhook(_)
            | Self::RotateSecret(_) => &["webhooks:manage"],
            Self::ListBookings | Self::GetBooking(_) => &["bookings:read"],
            Self::Unknown => &[],
        }
    }
}

/// The route of an API path (`None`: not under `/v1`).
pub(super) fn route(method: &Method, path: &str) -> Option<Route> {
    let parts = segments(path);
    let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
    let id = |s: &str| s.to_owned();
    Some(match (method.as_str(), parts.as_slice()) {
        (_, ["v1", ..]) => match (method.as_str(), &parts[1..]) {
            ("GET", ["webhooks"]) => Route::ListWebhooks,
            ("POST", ["webhooks"]) => Route::CreateWebhook,
            ("GET", ["webhooks", w]) => Route::GetWebhook(id(w)),
            ("PATCH", ["webhooks", w]) => Route::UpdateWebhook(id(w)),
            ("DELETE", ["webhooks", w]) => Route::DeleteWebhook(id(w)),
            ("POST", ["webhooks", w, "test"]) => Route::TestWebhook(id(w)),
            ("POST", ["webhooks", w, "rotate-secret"]) => Route::RotateSecret(id(w)),
            ("GET", ["webhooks", w, "deliveries"]) => Route::Deliveries(id(w)),
            ("GET", ["bookings"]) => Route::ListBookings,
            ("GET", ["bookings", b]) => Route::GetBooking(id(b)),
            _ => Route::Unknown,
        },
        _ => return None,
    })
}

/// Why a call failed: an answer as it is, or a refusal the log records.
pub(super) enum Fail {
    Answer(Reply),
    Refused(Refused),
}

impl From<Refused> for Fail {
    fn from(r: Refused) -> Self {
        Self::Refused(r)
    }
}

/// 404 `not_found`.
pub(super) fn not_found(what: &str) -> Fail {
    Fail::Answer(error(404, "not_found", &format!("{what} not found")))
}

fn ok(name: &str, value: Value) -> Reply {
    let mut body = Map::new();
    body.insert("success".to_owned(), true.into());
    body.insert(name.to_owned(), value);
    Reply::json(200, Value::Object(body))
}

fn bad(message: impl Into<String>) -> Refused {
    Refused::new(SlatisRefusal::BadBody, message)
}

/// The body as a JSON object with only `allowed` keys.
fn object(body: &[u8], allowed: &[&str]) -> Result<Map<String, Value>, Refused> {
    if body.len() > MAX_BODY {
        return Err(Refused::new(
            SlatisRefusal::TooLarge,
            "request body exceeds 256 KB",
        ));
    }
    let Ok(Value::Object(map)) = serde_json::from_slice(body) else {
        return Err(bad("body must be a JSON object"));
    };
    if let Some(k) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(bad(format!("unknown field {k:?}")));
    }
    Ok(map)
}

fn text(map: &Map<String, Value>, key: &str) -> Result<Option<String>, Refused> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(bad(format!("{key} must be a string"))),
    }
}

fn events(value: &Value) -> Result<Vec<String>, Refused> {
    let list = value
        .as_array()
        .ok_or_else(|| bad("events must be an array of event types"))?;
    if list.is_empty() {
        return Err(Refused::new(
            SlatisRefusal::NoEvents,
            "events must name at least one event type",
        ));
    }
    let mut out = Vec::new();
    for e in list {
        let name = e.as_str().ok_or_else(|| bad("events must be strings"))?;
        if !EVENTS.contains(&name) {
            return Err(Refused::new(
                SlatisRefusal::UnknownEvent,
                format!("unknown event type {name:?}"),
            ));
        }
        if !out.iter().any(|o| o == name) {
            out.push(name.to_owned());
        }
    }
    Ok(out)
}

/// Applies a call: its answer, and the delivery it started (test).
pub(super) fn apply(
    org: &mut Org,
    route: Route,
    query: &[(String, String)],
    body: &[u8],
) -> Result<(Reply, Option<Job>), Fail> {
    let hook = |org: &Org, id: &str| {
        org.hooks
            .get(id)
            .cloned()
            .ok_or_else(|| not_found("Webhook"))
    };
    let reply = match route {
        Route::ListWebhooks => ok(
            "webhooks",
            org.hooks
                .values()
                .map(Hook::json)
                .collect::<Vec<_>>()
                .into(),
        ),
        Route::CreateWebhook => {
            let map = object(body, &["url", "events", "description"])?;
            let url = text(&map, "url")?.ok_or_else(|| bad("url is required"))?;
            check_url(&url)?;
            let events = events(map.get("events").unwrap_or(&Value::Null))?;
            let hook = Hook {
                id: org.id("wh"),
                url,
                events,
                description: text(&map, "description")?,
                secret: org.secret(),
                is_active: true,
                failure_reason: None,
                disabled_at: None,
                created_at: Utc::now(),
                failures: 0,
            };
            let answer = hook.json_with_secret();
            org.hooks.insert(hook.id.clone(), hook);
            let mut reply = ok("webhook", answer);
            reply.status = 201;
            reply
        }
        Route::GetWebhook(id) => ok("webhook", hook(org, &id)?.json()),
        Route::UpdateWebhook(id) => {
            let mut h = hook(org, &id)?;
            let map = object(body, &["url", "events", "description", "is_active"])?;
            if let Some(url) = text(&map, "url")? {
                h.url = url;
            }
            check_url(&h.url)?;
            if let Some(e) = map.get("events") {
                h.events = events(e)?;
            }
            if map.contains_key("description") {
                h.description = text(&map, "description")?;
            }
            match map.get("is_active") {
                None => {}
                Some(Value::Bool(active)) => {
                    if *active && !h.is_active {
                        h.failures = 0;
                        h.failure_reason = None;
                        h.disabled_at = None;
                    }
                    h.is_active = *active;
                }
                Some(_) => return Err(bad("is_active must be a boolean").into()),
            }
            let answer = h.json();
            org.hooks.insert(id, h);
            ok("webhook", answer)
        }
        Route::DeleteWebhook(id) => {
            org.hooks.remove(&id).ok_or_else(|| not_found("Webhook"))?;
            ok("deleted", true.into())
        }
        Route::TestWebhook(id) => {
            hook(org, &id)?;
            let job = org.test_event(&id);
            let answer = org.deliveries[job.delivery].json();
            return Ok((ok("delivery", answer), Some(job)));
        }
        Route::RotateSecret(id) => {
            let mut h = hook(org, &id)?;
            h.secret = org.secret();
            let answer = h.json_with_secret();
            org.hooks.insert(id, h);
            ok("webhook", answer)
        }
        Route::Deliveries(id) => {
            hook(org, &id)?;
            let list: Vec<Value> = org
                .deliveries
                .iter()
                .rev()
                .filter(|d| d.webhook_id == id)
                .map(super::model::SlatisDelivery::json)
                .collect();
            ok("deliveries", list.into())
        }
        Route::ListBookings => return Ok((list_bookings(org, query)?, None)),
        Route::GetBooking(id) => ok(
            "booking",
            org.bookings
                .get(&id)
                .ok_or_else(|| not_found("Booking"))?
                .json(),
        ),
        Route::Unknown => return Err(not_found("Resource")),
    };
    Ok((reply, None))
}

fn bad_query(message: impl Into<String>) -> Refused {
    Refused::new(SlatisRefusal::BadQuery, message)
}

/// An ISO 8601 time or a `YYYY-MM-DD` date (the day's start, or with `end` its end:
/// the SDK's `end_date: '2026-05-31'` reads as the whole month, inferred).
fn date(name: &str, value: &str, end: bool) -> Result<DateTime<Utc>, Refused> {
    if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        return Ok(t.with_timezone(&Utc));
    }
    let day = NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .map_err(|_| bad_query(format!("{name} must be an ISO 8601 date or time")))?;
    let day = if end {
        day.succ_opt().unwrap_or(day)
    } else {
        day
    };
    Ok(day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc())
}

/// `GET /v1/bookings`: filters on the start time (inferred), ordered by start time then
/// id, `limit` 1–100 (default 25; the maximum is inferred), `cursor` opaque.
fn list_bookings(org: &Org, query: &[(String, String)]) -> Result<Reply, Refused> {
    let from = pair(query, "start_date")
        .map(|v| date("start_date", v, false))
        .transpose()?;
    let until = pair(query, "end_date")
        .map(|v| date("end_date", v, true))
        .transpose()?;
    let status = pair(query, "status");
    let limit = match pair(query, "limit") {
        None => 25,
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|l| (1..=100).contains(l))
            .ok_or_else(|| bad_query("limit must be an integer from 1 to 100"))?,
    };
    let after = pair(query, "cursor")
        .map(|c| {
            base64_decode(c)
                .and_then(|b| String::from_utf8(b).ok())
                .and_then(|t| {
                    let (at, id) = t.split_once('|')?;
                    Some((
                        DateTime::parse_from_rfc3339(at).ok()?.with_timezone(&Utc),
                        id.to_owned(),
                    ))
                })
                .ok_or_else(|| bad_query("cursor is not one this API gave"))
        })
        .transpose()?;
    let mut matching: Vec<&Bk> = org
        .bookings
        .values()
        .filter(|b| from.is_none_or(|f| b.start >= f))
        .filter(|b| until.is_none_or(|u| b.start < u))
        .filter(|b| status.is_none_or(|s| b.status == s))
        .filter(|b| {
            after
                .as_ref()
                .is_none_or(|(at, id)| (b.start, b.id.as_str()) > (*at, id.as_str()))
        })
        .collect();
    matching.sort_by(|a, b| (a.start, &a.id).cmp(&(b.start, &b.id)));
    let more = matching.len() > limit;
    matching.truncate(limit);
    let next = more
        .then(|| matching.last())
        .flatten()
        .map(|b| base64_encode(format!("{}|{}", b.start.to_rfc3339(), b.id).as_bytes()));
    Ok(Reply::json(
        200,
        json!({
            "success": true,
            "bookings": matching.iter().map(|b| b.json()).collect::<Vec<_>>(),
            "pagination": { "next_cursor": next, "has_more": more },
        }),
    ))
}
