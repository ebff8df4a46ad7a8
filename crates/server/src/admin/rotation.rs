//! The admin API of a signing-secret rotation ([`crate::rotation`]), used by
//! `slatis-sync webhooks rotate --admin-url …`:
//! - `POST /admin/api/tenants/{tenant}/rotation` `{"seconds": 60}` (optional, at most
//!   60): opens the tenant's window → `{"tenant", "window_seconds"}`;
//! - `POST /admin/api/tenants/{tenant}/signing-secrets` `{"secret": "…"}`: adds a runtime
//!   secret (in memory until the config names it) → `{"tenant", "added"}`.
//!
//! Invariants: both are behind the admin token like all of `/admin/api`; an unknown
//! tenant is a 404; no answer or log line holds the secret.

use crate::Shared;
use crate::rotation::MAX_WINDOW;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// The rotation routes (their state is the admin API's).
pub fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route(
            "/admin/api/tenants/{tenant}/rotation",
            post(|s: State<Arc<Shared>>, t: Path<String>, b: Bytes| known(s, t, b, open)),
        )
        .route(
            "/admin/api/tenants/{tenant}/signing-secrets",
            post(|s: State<Arc<Shared>>, t: Path<String>, b: Bytes| known(s, t, b, add)),
        )
}

fn answer(status: StatusCode, body: serde_json::Value) -> Response {
    (status, axum::Json(body)).into_response()
}

/// `handler`'s answer for a tenant of the current config; 404 for another.
async fn known(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    body: Bytes,
    handler: fn(&Shared, &str, &[u8]) -> Response,
) -> Response {
    if shared.config().tenants.contains_key(&tenant) {
        handler(&shared, &tenant, &body)
    } else {
        answer(
            StatusCode::NOT_FOUND,
            json!({ "error": format!("no tenant {tenant:?}") }),
        )
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Window {
    seconds: Option<u64>,
}

fn open(shared: &Shared, tenant: &str, body: &[u8]) -> Response {
    let window: Window = if body.is_empty() {
        Window::default()
    } else {
        match serde_json::from_slice(body) {
            Ok(w) => w,
            Err(e) => return answer(StatusCode::BAD_REQUEST, json!({ "error": e.to_string() })),
        }
    };
    let length = window.seconds.map_or(MAX_WINDOW, Duration::from_secs);
    let got = shared.rotation.open(tenant, length);
    answer(
        StatusCode::OK,
        json!({ "tenant": tenant, "window_seconds": got.as_secs() }),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewSecret {
    secret: String,
}

fn add(shared: &Shared, tenant: &str, body: &[u8]) -> Response {
    // the error names no value: serde's message for a bad body could quote it
    let Ok(NewSecret { secret }) = serde_json::from_slice(body) else {
        return answer(
            StatusCode::BAD_REQUEST,
            json!({ "error": "the body is {\"secret\": \"<the new signing secret>\"}" }),
        );
    };
    if secret.trim().is_empty() {
        return answer(
            StatusCode::BAD_REQUEST,
            json!({ "error": "the secret is empty" }),
        );
    }
    let added = shared.rotation.add(tenant, &secret);
    answer(StatusCode::OK, json!({ "tenant": tenant, "added": added }))
}
