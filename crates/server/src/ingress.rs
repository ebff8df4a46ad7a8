//! `POST /webhooks/{tenant}`, `/healthz` and `/readyz` (DESIGN §4).
//!
//! Invariants:
//! - the signature is checked on the raw bytes before anything is parsed;
//! - an unknown tenant and a bad signature get the same 401 after the same work;
//! - 200 is sent only after the event and all its jobs are committed; a storage failure
//!   is a 503, never a 2xx;
//! - answers never carry internals: errors are logged, the client gets a short reason.

use crate::Shared;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use slatis_core::{Envelope, envelope, signature};
use slatis_store::{Ingested, NewEvent};
use std::sync::Arc;

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

fn count(tenant: &str, outcome: &'static str) {
    metrics::counter!("slatis_webhooks_received_total", "tenant" => tenant.to_owned(), "outcome" => outcome).increment(1);
}

async fn webhook(
    State(shared): State<Arc<Shared>>,
    Path(tenant_name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let config = shared.config();
    let limit = config.server.max_body_bytes;
    let tenant = config.tenants.get(&tenant_name);
    let label = tenant.map_or("unknown", |t| t.name.as_str());
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        count(label, "too_large");
        return answer(
            StatusCode::PAYLOAD_TOO_LARGE,
            json!({ "error": format!("body over {limit} bytes") }),
        );
    }
    let raw = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(_) => {
            count(label, "too_large");
            return answer(
                StatusCode::PAYLOAD_TOO_LARGE,
                json!({ "error": format!("body over {limit} bytes") }),
            );
        }
    };
    let sig = headers.get(signature::HEADER).and_then(|v| v.to_str().ok());
    let verified = match tenant {
        Some(t) => signature::verify(sig, &t.signing_secrets, &raw),
        None => signature::verify_decoy(sig, &raw),
    };
    let Some(tenant) = tenant.filter(|_| verified) else {
        count(label, "invalid_signature");
        tracing::info!(
            tenant = label,
            "webhook refused: invalid signature or unknown tenant"
        );
        return answer(
            StatusCode::UNAUTHORIZED,
            json!({ "error": "invalid signature" }),
        );
    };
    let envelope = match Envelope::parse(&raw) {
        Ok(e) => e,
        Err(e) => {
            count(label, "bad_request");
            tracing::info!(tenant = label, error = %e, "webhook refused: not an event");
            return answer(StatusCode::BAD_REQUEST, json!({ "error": e.to_string() }));
        }
    };
    let connectors: Vec<String> = tenant
        .route(&envelope.event)
        .into_iter()
        .map(str::to_owned)
        .collect();
    let routed = connectors.len();
    let event_id = format!("evt_{}", uuid::Uuid::now_v7().simple());
    let new = NewEvent {
        id: event_id,
        tenant: tenant.name.clone(),
        event_type: envelope.event.clone(),
        booking_id: envelope.booking_id.clone(),
        dedupe_key: envelope::dedupe_key(&raw),
        body: raw.to_vec(),
        received_at: chrono::Utc::now(),
        connectors,
    };
    match shared.store.ingest(new).await {
        Ok(Ingested::New { event_id, jobs }) => {
            count(label, if jobs == 0 { "unrouted" } else { "accepted" });
            tracing::info!(tenant = label, event_id, event = %envelope.event, booking = envelope.booking_id.as_deref().unwrap_or(""), jobs, "webhook accepted");
            if jobs > 0 {
                shared.wake.notify_one();
            }
            answer(
                StatusCode::OK,
                json!({ "received": true, "event_id": event_id, "routed": routed }),
            )
        }
        Ok(Ingested::Duplicate { event_id }) => {
            count(label, "duplicate");
            tracing::info!(
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
            count(label, "unavailable");
            tracing::error!(tenant = label, error = %e, "webhook not stored: storage unavailable");
            answer(
                StatusCode::SERVICE_UNAVAILABLE,
                json!({ "error": "storage unavailable, retry later" }),
            )
        }
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
