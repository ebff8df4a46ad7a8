//! The admin API of a signing-secret rotation ([`crate::rotation`]), used by
//! `slatis-sync webhooks rotate --admin-url …`:
//! - `POST /admin/api/tenants/{tenant}/rotation` `{"seconds": 60}` (optional, at most
//!   60): opens the tenant's window → `{"tenant", "window_seconds"}`;
//! - `POST /admin/api/tenants/{tenant}/signing-secrets` `{"secret": "…"}`: adds a runtime
//!   secret (in memory until the config names it) → `{"tenant", "added"}`.
//!
//! Invariants: both are behind the admin token like all of `/admin/api` and in its
//! OpenAPI document; an unknown tenant is a 404; no answer or log line holds the secret
//! (a body that does not parse is answered without serde's message, which could quote it).

// `#[utoipa::path]` expands `params(…)` into fully qualified paths.
#![allow(unused_qualifications)]

use crate::Shared;
use crate::ops::model::ApiError;
use crate::rotation::MAX_WINDOW;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use utoipa::ToSchema;

/// How long a rotation window stays open.
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct Window {
    /// Seconds (at most 60, the default).
    seconds: Option<u64>,
}

/// The window opened.
#[derive(Serialize, ToSchema)]
pub(super) struct WindowOpened {
    tenant: String,
    /// How long it stays open.
    window_seconds: u64,
}

/// The secret Slatis now signs with.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewSecret {
    secret: String,
}

/// The secret was taken.
#[derive(Serialize, ToSchema)]
pub(super) struct SecretAdded {
    tenant: String,
    /// False when the tenant already accepted it.
    added: bool,
}

fn refuse(status: StatusCode, error: impl Into<String>) -> Response {
    (
        status,
        Json(ApiError {
            error: error.into(),
        }),
    )
        .into_response()
}

/// The 404 to answer unless `tenant` is in the current config.
fn unknown(shared: &Shared, tenant: &str) -> Option<Response> {
    (!shared.config().tenants.contains_key(tenant))
        .then(|| refuse(StatusCode::NOT_FOUND, format!("no tenant {tenant:?}")))
}

/// Opens the tenant's rotation window: for its length, a delivery whose signature matches
/// none of the tenant's secrets is held (at most 3 s) instead of answered 401, and checked
/// again when a secret is added.
#[utoipa::path(post, path = "/admin/api/tenants/{tenant}/rotation", tag = "signing secrets",
    params(("tenant" = String, Path, description = "The tenant")),
    request_body(content = Option<Window>, description = "Optional; empty opens 60 s"),
    responses((status = 200, body = WindowOpened), (status = 400, body = ApiError), (status = 404, body = ApiError)))]
pub(super) async fn open_window(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    body: Bytes,
) -> Response {
    if let Some(answer) = unknown(&shared, &tenant) {
        return answer;
    }
    let window: Window = if body.is_empty() {
        Window::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(w) => w,
            Err(e) => return refuse(StatusCode::BAD_REQUEST, e.to_string()),
        }
    };
    let length = window.seconds.map_or(MAX_WINDOW, Duration::from_secs);
    let got = shared.rotation.open(&tenant, length);
    Json(WindowOpened {
        tenant,
        window_seconds: got.as_secs(),
    })
    .into_response()
}

/// Adds a signing secret to the tenant at run time (kept across reloads until the config
/// names it, gone at a restart); deliveries held by the window are checked against it.
#[utoipa::path(post, path = "/admin/api/tenants/{tenant}/signing-secrets", tag = "signing secrets",
    params(("tenant" = String, Path, description = "The tenant")),
    request_body = NewSecret,
    responses((status = 200, body = SecretAdded), (status = 400, body = ApiError), (status = 404, body = ApiError)))]
pub(super) async fn add_secret(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    body: Bytes,
) -> Response {
    if let Some(answer) = unknown(&shared, &tenant) {
        return answer;
    }
    let Ok(NewSecret { secret }) = serde_json::from_slice(&body) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "the body is {\"secret\": \"<the new signing secret>\"}",
        );
    };
    if secret.trim().is_empty() {
        return refuse(StatusCode::BAD_REQUEST, "the secret is empty");
    }
    let added = shared.rotation.add(&tenant, &secret);
    Json(SecretAdded { tenant, added }).into_response()
}
