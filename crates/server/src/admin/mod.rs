//! The admin listener: `/metrics`, `/healthz`, `/readyz` (open), and behind
//! `admin.token`: the dashboard (`/admin`) and the admin API (`/admin/api/…`).
//!
//! Invariants: who may call what is decided in [`auth`] (bearer token, or a sign-in
//! [`session`] with CSRF and Origin checks, throttled guesses); every answer carries the
//! security headers of [`page`]; answers never hold a secret (errors stored with jobs
//! were redacted before they were stored, dry-run records mask credentials).

mod api;
mod auth;
mod page;
mod rotation;
mod session;
mod throttle;

use crate::Shared;
use auth::Guard;
use axum::Router;
use axum::http::header;
use axum::middleware;
use axum::response::Html;
use axum::routing::{get, post};
use std::sync::Arc;

pub use api::openapi;
pub use auth::CSRF_HEADER;
pub use page::CSP;
pub use session::COOKIE;
pub use throttle::PER_CLIENT as THROTTLE_PER_CLIENT;

/// The admin routes. Sessions and throttle counts live as long as the router (one per
/// listener): they end at a restart.
pub fn router(shared: Arc<Shared>) -> Router {
    let guard = Arc::new(Guard {
        shared: Arc::clone(&shared),
        sessions: session::Sessions::default(),
        throttle: throttle::Throttle::default(),
    });
    // The API's routes and its OpenAPI document are made together (see `api`).
    let (api, _) = api::routes().split_for_parts();
    let api = api.with_state(Arc::clone(&shared));
    let pages = Router::new()
        .route("/admin", get(dashboard))
        .route("/admin/logout", post(auth::logout))
        .with_state(Arc::clone(&guard));
    let guarded = api.merge(pages).route_layer(middleware::from_fn_with_state(
        Arc::clone(&guard),
        auth::authorize,
    ));
    Router::new()
        .merge(guarded)
        .merge(
            Router::new()
                .route("/admin/login", post(auth::login))
                .with_state(guard),
        )
        .merge(page::assets())
        .route(
            "/metrics",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                    crate::metrics::render(),
                )
            }),
        )
        .route("/healthz", get(crate::ingress::healthz))
        .route("/readyz", get(crate::ingress::readyz))
        .with_state(shared)
        .layer(middleware::map_response(page::secure))
}

async fn dashboard(live: Option<axum::Extension<session::Live>>) -> Html<String> {
    page::dashboard(live.as_ref().map_or("", |l| l.csrf.as_str()))
}
