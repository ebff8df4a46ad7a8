//! The admin listener: `/metrics`, `/healthz`, `/readyz` (open), and behind
//! `admin.token`: the dashboard (`/admin`) and the admin API (`/admin/api/…`).
//!
//! Invariants: who may call what is decided in [`auth`] (bearer token, or a sign-in
//! [`session`] with CSRF and Origin checks, throttled guesses); every answer carries the
//! security headers of [`page`]; answers never hold a secret (errors stored with jobs
//! were redacted before they were stored, dry-run records mask credentials).

mod auth;
mod page;
mod rotation;
mod session;
mod throttle;

use crate::Shared;
use auth::Guard;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::middleware;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;
use slatis_store::{JobFilter, JobStatus, Replay};
use std::sync::Arc;

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
    let api = Router::new()
        .route("/admin/api/stats", get(stats))
        .route("/admin/api/events", get(events))
        .route("/admin/api/jobs", get(jobs))
        .route("/admin/api/jobs/{id}", get(job))
        .route("/admin/api/dead-letters", get(dead_letters))
        .route("/admin/api/dead-letters/replay", post(replay_all))
        .route("/admin/api/dead-letters/{id}/replay", post(replay_one))
        .route("/admin/api/reload", post(reload))
        .merge(rotation::routes())
        .with_state(Arc::clone(&shared));
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

fn unavailable(e: &slatis_store::StoreError) -> Response {
    tracing::error!(error = %e, "admin API: storage unavailable");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        axum::Json(json!({ "error": "storage unavailable" })),
    )
        .into_response()
}

async fn stats(State(shared): State<Arc<Shared>>) -> Response {
    let config = shared.config();
    let tenants: Vec<_> = config
        .tenants
        .values()
        .map(|t| {
            json!({
                "name": t.name,
                "connectors": t.connectors.values().map(|c| json!({"name": c.name, "type": c.kind, "dry_run": c.dry_run})).collect::<Vec<_>>(),
                "routes": t.routes.keys().collect::<Vec<_>>(),
            })
        })
        .collect();
    match shared.store.stats().await {
        Ok(s) => axum::Json(json!({ "queue": s, "tenants": tenants })).into_response(),
        Err(e) => unavailable(&e),
    }
}

#[derive(Deserialize)]
struct ListQuery {
    tenant: Option<String>,
    status: Option<String>,
    event_id: Option<String>,
    limit: Option<u32>,
}

async fn events(State(shared): State<Arc<Shared>>, Query(q): Query<ListQuery>) -> Response {
    match shared
        .store
        .events(q.tenant.as_deref(), q.limit.unwrap_or(100).min(1000))
        .await
    {
        Ok(list) => axum::Json(json!({ "events": list })).into_response(),
        Err(e) => unavailable(&e),
    }
}

async fn list(shared: &Shared, q: ListQuery, status: Option<JobStatus>) -> Response {
    let filter = JobFilter {
        status,
        tenant: q.tenant,
        event_id: q.event_id,
        limit: Some(q.limit.unwrap_or(100).min(1000)),
    };
    match shared.store.jobs(&filter).await {
        Ok(list) => axum::Json(json!({ "jobs": list })).into_response(),
        Err(e) => unavailable(&e),
    }
}

async fn jobs(State(shared): State<Arc<Shared>>, Query(q): Query<ListQuery>) -> Response {
    let status = match q.status.as_deref() {
        None | Some("") => None,
        Some(s) => match JobStatus::parse(s) {
            Some(s) => Some(s),
            None => {
                return (
                    StatusCode::BAD_REQUEST,
                    axum::Json(json!({ "error": "status is pending, running, done or dead" })),
                )
                    .into_response();
            }
        },
    };
    list(&shared, q, status).await
}

async fn dead_letters(State(shared): State<Arc<Shared>>, Query(q): Query<ListQuery>) -> Response {
    list(&shared, q, Some(JobStatus::Dead)).await
}

async fn job(State(shared): State<Arc<Shared>>, Path(id): Path<i64>) -> Response {
    match shared.store.job(id).await {
        Ok(Some(j)) => axum::Json(j).into_response(),
        Ok(None) => (
            StatusCode::NOT_FOUND,
            axum::Json(json!({ "error": format!("no job {id}") })),
        )
            .into_response(),
        Err(e) => unavailable(&e),
    }
}

async fn replay(shared: &Shared, which: Replay) -> Response {
    match shared.store.replay(which).await {
        Ok(ids) => {
            if !ids.is_empty() {
                shared.wake.notify_one();
            }
            tracing::info!(jobs = ids.len(), "dead letters replayed from the admin API");
            axum::Json(json!({ "replayed": ids })).into_response()
        }
        Err(e) => unavailable(&e),
    }
}

async fn replay_one(State(shared): State<Arc<Shared>>, Path(id): Path<i64>) -> Response {
    replay(&shared, Replay::Ids(vec![id])).await
}

async fn replay_all(State(shared): State<Arc<Shared>>, Query(q): Query<ListQuery>) -> Response {
    replay(&shared, Replay::All { tenant: q.tenant }).await
}

async fn reload(State(shared): State<Arc<Shared>>) -> Response {
    match shared.reload() {
        Ok(notes) => axum::Json(json!({ "reloaded": true, "notes": notes })).into_response(),
        Err(e) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            axum::Json(json!({ "reloaded": false, "errors": e.issues.iter().map(ToString::to_string).collect::<Vec<_>>() })),
        )
            .into_response(),
    }
}
