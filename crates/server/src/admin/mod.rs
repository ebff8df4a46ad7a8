//! The admin listener: `/metrics`, `/healthz`, `/readyz` (open), and behind
//! `admin.token`: the dashboard (`/admin`) and the admin API (`/admin/api/…`).
//!
//! Invariants: without a token the admin API is off (404); the token is compared in
//! constant time; answers never hold a secret (errors stored with jobs were redacted
//! before they were stored, dry-run records mask credentials).

use crate::Shared;
use axum::Router;
use axum::extract::{Form, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;
use slatis_store::{JobFilter, JobStatus, Replay};
use std::sync::Arc;
use subtle::ConstantTimeEq;

const COOKIE: &str = "slatis_admin";

/// The admin routes.
pub fn router(shared: Arc<Shared>) -> Router {
    let api = Router::new()
        .route("/admin", get(dashboard))
        .route("/admin/api/stats", get(stats))
        .route("/admin/api/events", get(events))
        .route("/admin/api/jobs", get(jobs))
        .route("/admin/api/jobs/{id}", get(job))
        .route("/admin/api/dead-letters", get(dead_letters))
        .route("/admin/api/dead-letters/replay", post(replay_all))
        .route("/admin/api/dead-letters/{id}/replay", post(replay_one))
        .route("/admin/api/reload", post(reload))
        .route_layer(middleware::from_fn_with_state(
            Arc::clone(&shared),
            authorize,
        ));
    Router::new()
        .merge(api)
        .route("/admin/login", post(login))
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
}

fn token_matches(shared: &Shared, given: Option<&str>) -> Option<bool> {
    let config = shared.config();
    let want = config.admin.as_ref()?.token.as_deref()?;
    Some(given.is_some_and(|g| bool::from(g.as_bytes().ct_eq(want.as_bytes()))))
}

fn presented_token(headers: &HeaderMap) -> Option<String> {
    if let Some(v) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        && let Some(t) = v.strip_prefix("Bearer ")
    {
        return Some(t.trim().to_owned());
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| {
            c.trim()
                .strip_prefix(&format!("{COOKIE}="))
                .map(str::to_owned)
        })
}

async fn authorize(State(shared): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let given = presented_token(req.headers());
    match token_matches(&shared, given.as_deref()) {
        None => (
            StatusCode::NOT_FOUND,
            axum::Json(json!({ "error": "the admin API is off: set admin.token" })),
        )
            .into_response(),
        Some(true) => next.run(req).await,
        Some(false) if req.uri().path() == "/admin" => {
            (StatusCode::UNAUTHORIZED, Html(LOGIN)).into_response()
        }
        Some(false) => (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({ "error": "missing or wrong admin token" })),
        )
            .into_response(),
    }
}

#[derive(Deserialize)]
struct LoginForm {
    token: String,
}

async fn login(State(shared): State<Arc<Shared>>, Form(form): Form<LoginForm>) -> Response {
    match token_matches(&shared, Some(&form.token)) {
        Some(true) => (
            [(
                header::SET_COOKIE,
                format!(
                    "{COOKIE}={}; HttpOnly; SameSite=Strict; Path=/admin",
                    form.token
                ),
            )],
            Redirect::to("/admin"),
        )
            .into_response(),
        Some(false) => (StatusCode::UNAUTHORIZED, Html(LOGIN)).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

const DASHBOARD: &str = include_str!("dashboard.html");
const LOGIN: &str = include_str!("login.html");

async fn dashboard() -> Html<&'static str> {
    Html(DASHBOARD)
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
