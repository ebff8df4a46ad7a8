//! `POST /webhooks/{tenant}`, `/healthz` and `/readyz` (DESIGN §4).
//!
//! Invariants:
//! - the signature is checked on the raw bytes before anything is parsed;
//! - an unknown tenant and a bad signature get the same 401 after the same work: as many
//!   HMACs as the largest secret count of any tenant ([`Config::max_signing_secrets`]);
//!   only during a secret rotation ([`crate::rotation`]) does a known tenant's bad
//!   signature cost more: its runtime secrets, and a hold of at most 3 s while its
//!   window is open;
//! - a signed envelope whose `timestamp` is older than `storage.retention` (the dedupe
//!   window) is refused: a captured body cannot be replayed once its dedupe key is gone;
//! - 200 is sent only after the event and all its jobs are committed; a storage failure
//!   is a 503, never a 2xx;
//! - answers never carry internals: errors are logged, the client gets a short reason;
//! - refusals are logged at debug only (they are counted, see [`tally`]), and every value
//!   that came from a request is [`escaped`] before it reaches a log.
//!
//! [`Config::max_signing_secrets`]: slatis_core::Config::max_signing_secrets

mod escape;
mod tally;

pub use escape::escaped;
pub use tally::UNAUTHENTICATED;

use crate::{Shared, serve};
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http_body_util::LengthLimitError;
use serde_json::json;
use slatis_core::config::Tenant;
use slatis_core::envelope::EnvelopeError;
use slatis_core::{Envelope, envelope, signature};
use slatis_store::{Ingested, NewEvent};
use std::sync::Arc;
use tally::Tally;

/// The ingress routes.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/webhooks/{tenant}", post(webhook))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(shared)
}

fn answer(status: StatusCode, body: serde_json::Value) -> Response {
    (status, axum::Json(body)).into_response()
}

fn too_large(limit: usize) -> Response {
    answer(
        StatusCode::PAYLOAD_TOO_LARGE,
        json!({ "error": format!("body over {limit} bytes") }),
    )
}

/// The one `x-slatis-signature` value; none when it is absent, repeated or not text.
fn signature_header(headers: &HeaderMap) -> Option<&str> {
    let mut values = headers.get_all(signature::HEADER).iter();
    let first = values.next()?;
    if values.next().is_some() {
        return None;
    }
    first.to_str().ok()
}

async fn webhook(
    State(shared): State<Arc<Shared>>,
    Path(tenant_name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let mut tally = Tally::new();
    let config = shared.config();
    let limit = config.server.max_body_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        tally.count("too_large");
        tracing::debug!(tenant = %escaped(&tenant_name), "webhook refused: declared body too large");
        return too_large(limit);
    }
    let raw = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(e) if serve::caused_by::<serve::BodyTimeout>(&e) => {
            tally.count("timeout");
            tracing::debug!(tenant = %escaped(&tenant_name), "webhook refused: body not received in time");
            return serve::body_timeout_answer();
        }
        Err(e) if serve::caused_by::<LengthLimitError>(&e) => {
            tally.count("too_large");
            tracing::debug!(tenant = %escaped(&tenant_name), "webhook refused: body too large");
            return too_large(limit);
        }
        Err(e) => {
            tally.count("bad_request");
            tracing::debug!(tenant = %escaped(&tenant_name), error = %escaped(&e.to_string()), "webhook refused: body could not be read");
            return answer(
                StatusCode::BAD_REQUEST,
                json!({ "error": "body could not be read" }),
            );
        }
    };
    let tenant = config.tenants.get(&tenant_name);
    let secrets = tenant.map_or(&[][..], |t| t.signing_secrets.as_slice());
    let header = signature_header(&headers);
    let mut verified = signature::verify(header, secrets, &raw, config.max_signing_secrets);
    if let (false, Some(t)) = (verified, tenant) {
        // a rotation in progress: runtime secrets, and a delivery held while a window is open
        verified = shared
            .rotation
            .verify(&t.name, |extra| {
                signature::verify(header, extra, &raw, extra.len())
            })
            .await;
    }
    let Some(tenant) = tenant.filter(|_| verified) else {
        tally.count("invalid_signature");
        tracing::debug!(tenant = %escaped(&tenant_name), "webhook refused: invalid signature or unknown tenant");
        return answer(
            StatusCode::UNAUTHORIZED,
            json!({ "error": "invalid signature" }),
        );
    };
    tally.authenticated(&tenant.name);
    let label = tenant.name.as_str();
    let envelope = match Envelope::parse(&raw).and_then(|e| {
        e.check_fresh(chrono::Utc::now(), config.storage.retention)
            .map(|()| e)
    }) {
        Ok(e) => e,
        Err(e) => {
            let outcome = if matches!(e, EnvelopeError::Stale { .. }) {
                "stale"
            } else {
                "bad_request"
            };
            tally.count(outcome);
            tracing::debug!(tenant = label, error = %escaped(&e.to_string()), "webhook refused: {outcome}");
            return answer(StatusCode::BAD_REQUEST, json!({ "error": e.to_string() }));
        }
    };
    // check_fresh read the timestamp: it is readable or absent
    let dedupe_key = envelope::dedupe_key(envelope.timestamp().ok().flatten(), &raw);
    let new = new_event(tenant, &envelope, raw.to_vec(), dedupe_key);
    let routed = new.connectors.len();
    match shared.store.ingest(new).await {
        Ok(Ingested::New { event_id, jobs }) => {
            tally.count(if jobs == 0 { "unrouted" } else { "accepted" });
            tracing::info!(
                tenant = label,
                event_id,
                event = %escaped(&envelope.event),
                booking = %escaped(envelope.booking_id.as_deref().unwrap_or("")),
                jobs,
                "webhook accepted"
            );
            if jobs > 0 {
                shared.wake.notify_one();
            }
            answer(
                StatusCode::OK,
                json!({ "received": true, "event_id": event_id, "routed": routed }),
            )
        }
        Ok(Ingested::Duplicate { event_id }) => {
            tally.count("duplicate");
            tracing::debug!(
                tenant = label,
                event_id,
                "webhook is a duplicate of an earlier delivery"
            );
            answer(
                StatusCode::OK,
                json!({ "received": true, "duplicate": true, "event_id": event_id }),
            )
        }
        Err(e) => {
            tally.count("unavailable");
            tracing::error!(tenant = label, error = %e, "webhook not stored: storage unavailable");
            answer(
                StatusCode::SERVICE_UNAVAILABLE,
                json!({ "error": "storage unavailable, retry later" }),
            )
        }
    }
}

/// The event `envelope` (parsed from `raw`, the body as signed) makes for `tenant`, to
/// [`Store::ingest`](slatis_store::Store::ingest): one job per connector instance its
/// route names, received now. The one way an event is built for the store, whether a
/// webhook delivered it or `slatis-sync backfill` fed it (with its own `dedupe_key`).
pub fn new_event(
    tenant: &Tenant,
    envelope: &Envelope,
    raw: Vec<u8>,
    dedupe_key: Vec<u8>,
) -> NewEvent {
    NewEvent {
        id: format!("evt_{}", uuid::Uuid::now_v7().simple()),
        tenant: tenant.name.clone(),
        event_type: envelope.event.clone(),
        booking_id: envelope.booking_id.clone(),
        attendee_email: envelope.attendee_email.clone(),
        dedupe_key,
        body: raw,
        received_at: chrono::Utc::now(),
        connectors: tenant
            .route(&envelope.event)
            .into_iter()
            .map(str::to_owned)
            .collect(),
    }
}

/// Liveness: the process answers.
pub async fn healthz() -> Response {
    answer(StatusCode::OK, json!({ "status": "ok" }))
}

/// Readiness: storage answers, its writes go through (reads alone cannot tell a full
/// disk), and every background task of the worker runs. Otherwise 503
/// `{"status":"not ready","reasons":[…]}` with short reasons; the log has the details.
pub async fn readyz(State(shared): State<Arc<Shared>>) -> Response {
    let mut reasons = Vec::new();
    if let Err(e) = shared.store.stats().await {
        tracing::warn!(error = %e, "not ready: storage unavailable");
        reasons.push("storage unavailable".to_owned());
    }
    if let Some(why) = shared.store.write_failure() {
        tracing::warn!(error = %why, "not ready: storage writes are failing");
        reasons.push("storage writes are failing".to_owned());
    }
    for task in shared.health.failures() {
        tracing::warn!(task = %task, "not ready: a background task stopped");
        reasons.push(format!("background task {task}"));
    }
    if reasons.is_empty() {
        answer(StatusCode::OK, json!({ "status": "ready" }))
    } else {
        answer(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({ "status": "not ready", "reasons": reasons }),
        )
    }
}
