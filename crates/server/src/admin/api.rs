//! The admin API (`/admin/api/…`): thin handlers over [`crate::ops::Operations`], each
//! documented with `#[utoipa::path]`, and the OpenAPI 3.1 document made from them.
//!
//! Invariants: every API route is registered through [`routes`] with `routes!(…)`, which
//! takes its path and method from the handler's documentation, so a route cannot be
//! served without being in the document (and `tests/it/admin_api.rs` checks the list);
//! a wrong filter, cursor or limit answers 400 with `{"error": …}`, a missing job 404, a
//! store failure 503 (logged, never detailed to the caller).

// `#[utoipa::path]` expands `params(Type)` into fully qualified paths.
#![allow(unused_qualifications)]

use crate::Shared;
use crate::ops::model::{
    Activity, ApiError, DeadLetters, Events, JobDetail, Jobs, Reloaded, Replayed, Stats, Timeline,
};
use crate::ops::params::{Filters, Paging};
use crate::ops::{Operations, OpsError};
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::sync::{Arc, OnceLock};
use utoipa::{IntoParams, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The document's frame; the paths come from [`routes`].
#[derive(OpenApi)]
#[openapi(
    info(
        title = "slatis-sync admin API",
        description = "Events, jobs with their attempts, dead letters and replay, per-tenant counts, \
                       booking timelines, config reload. Lists are newest first and cursor-paged. \
                       Authorization: `Bearer <admin.token>`, or a dashboard session cookie \
                       (state-changing calls then need the X-CSRF-Token header)."
    ),
    components(schemas(ApiError)),
    modifiers(&Bearer)
)]
struct Doc;

/// Declares the bearer scheme and requires it on every operation.
struct Bearer;

impl utoipa::Modify for Bearer {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
        };
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "admin_token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        doc.security = Some(vec![SecurityRequirement::new(
            "admin_token",
            Vec::<String>::new(),
        )]);
    }
}

/// Every API route, documented.
pub(super) fn routes() -> OpenApiRouter<Arc<Shared>> {
    OpenApiRouter::with_openapi(Doc::openapi())
        .routes(routes!(stats))
        .routes(routes!(last_hour))
        .routes(routes!(events))
        .routes(routes!(jobs))
        .routes(routes!(job))
        .routes(routes!(dead_letters))
        .routes(routes!(replay_matching))
        .routes(routes!(replay_one))
        .routes(routes!(timeline))
        .routes(routes!(reload))
        .routes(routes!(super::rotation::open_window))
        .routes(routes!(super::rotation::add_secret))
        .routes(routes!(openapi_json))
}

/// The OpenAPI document of the admin API (made once).
pub fn openapi() -> &'static utoipa::openapi::OpenApi {
    static DOC: OnceLock<utoipa::openapi::OpenApi> = OnceLock::new();
    DOC.get_or_init(|| routes().split_for_parts().1)
}

impl IntoResponse for OpsError {
    fn into_response(self) -> Response {
        let status = match &self {
            Self::Invalid(_) => StatusCode::BAD_REQUEST,
            Self::NoJob(_) => StatusCode::NOT_FOUND,
            Self::Store(e) => {
                tracing::error!(error = %e, "admin API: storage unavailable");
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Json(ApiError {
                        error: "storage unavailable".to_owned(),
                    }),
                )
                    .into_response();
            }
        };
        (
            status,
            Json(ApiError {
                error: self.to_string(),
            }),
        )
            .into_response()
    }
}

/// A query string that could not be read: 400 with a JSON error like every other.
fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, OpsError> {
    q.map(|Query(t)| t)
        .map_err(|e| OpsError::Invalid(e.body_text()))
}

fn ops(shared: &Shared) -> Operations<'_> {
    Operations::new(&*shared.store, Some(&shared.wake))
}

/// The queue, each tenant with its counts, and every tenant's last hour.
#[utoipa::path(get, path = "/admin/api/stats", tag = "stats",
    responses((status = 200, body = Stats), (status = 503, body = ApiError)))]
async fn stats(State(shared): State<Arc<Shared>>) -> Result<Json<Stats>, OpsError> {
    Ok(Json(ops(&shared).stats(&shared.config()).await?))
}

/// Only one tenant.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(default)]
struct TenantParam {
    /// The tenant (all when absent).
    tenant: Option<String>,
}

/// The last hour per minute (received, delivered, failed), of one tenant or all.
#[utoipa::path(get, path = "/admin/api/stats/last-hour", tag = "stats", params(TenantParam),
    responses((status = 200, body = Activity), (status = 400, body = ApiError), (status = 503, body = ApiError)))]
async fn last_hour(
    State(shared): State<Arc<Shared>>,
    q: Result<Query<TenantParam>, QueryRejection>,
) -> Result<Json<Activity>, OpsError> {
    let q = query(q)?;
    let tenant = q.tenant.filter(|t| !t.is_empty());
    Ok(Json(ops(&shared).last_hour(tenant.as_deref()).await?))
}

/// Events, newest first.
#[utoipa::path(get, path = "/admin/api/events", tag = "events", params(Filters, Paging),
    responses((status = 200, body = Events), (status = 400, body = ApiError), (status = 503, body = ApiError)))]
async fn events(
    State(shared): State<Arc<Shared>>,
    f: Result<Query<Filters>, QueryRejection>,
    p: Result<Query<Paging>, QueryRejection>,
) -> Result<Json<Events>, OpsError> {
    Ok(Json(
        ops(&shared).events(&query(f)?, &query(p)?).await?.into(),
    ))
}

/// Jobs, newest first.
#[utoipa::path(get, path = "/admin/api/jobs", tag = "jobs", params(Filters, Paging),
    responses((status = 200, body = Jobs), (status = 400, body = ApiError), (status = 503, body = ApiError)))]
async fn jobs(
    State(shared): State<Arc<Shared>>,
    f: Result<Query<Filters>, QueryRejection>,
    p: Result<Query<Paging>, QueryRejection>,
) -> Result<Json<Jobs>, OpsError> {
    Ok(Json(
        ops(&shared).jobs(&query(f)?, &query(p)?).await?.into(),
    ))
}

/// One job with its event, every attempt and what a dry run recorded.
#[utoipa::path(get, path = "/admin/api/jobs/{id}", tag = "jobs",
    params(("id" = i64, Path, description = "The job's id")),
    responses((status = 200, body = JobDetail), (status = 404, body = ApiError), (status = 503, body = ApiError)))]
async fn job(
    State(shared): State<Arc<Shared>>,
    id: Result<Path<i64>, axum::extract::rejection::PathRejection>,
) -> Result<Json<JobDetail>, OpsError> {
    let Path(id) = id.map_err(|e| OpsError::Invalid(e.body_text()))?;
    Ok(Json(ops(&shared).job(id).await?))
}

/// Dead letters, newest first (`status`, if given, must be `dead`).
#[utoipa::path(get, path = "/admin/api/dead-letters", tag = "dead letters", params(Filters, Paging),
    responses((status = 200, body = DeadLetters), (status = 400, body = ApiError), (status = 503, body = ApiError)))]
async fn dead_letters(
    State(shared): State<Arc<Shared>>,
    f: Result<Query<Filters>, QueryRejection>,
    p: Result<Query<Paging>, QueryRejection>,
) -> Result<Json<DeadLetters>, OpsError> {
    Ok(Json(
        ops(&shared)
            .dead_letters(&query(f)?, &query(p)?)
            .await?
            .into(),
    ))
}

/// Replays every dead letter the filters (in the query string, as for the list) take;
/// no filter replays them all.
#[utoipa::path(post, path = "/admin/api/dead-letters/replay", tag = "dead letters", params(Filters),
    responses((status = 200, body = Replayed), (status = 400, body = ApiError), (status = 503, body = ApiError)))]
async fn replay_matching(
    State(shared): State<Arc<Shared>>,
    f: Result<Query<Filters>, QueryRejection>,
) -> Result<Json<Replayed>, OpsError> {
    let replayed = ops(&shared).replay_matching(&query(f)?).await?;
    tracing::info!(
        jobs = replayed.count,
        "dead letters replayed from the admin API"
    );
    Ok(Json(replayed))
}

/// Replays one dead letter (a job that is not dead is left alone: `count` 0).
#[utoipa::path(post, path = "/admin/api/dead-letters/{id}/replay", tag = "dead letters",
    params(("id" = i64, Path, description = "The job's id")),
    responses((status = 200, body = Replayed), (status = 400, body = ApiError), (status = 503, body = ApiError)))]
async fn replay_one(
    State(shared): State<Arc<Shared>>,
    id: Result<Path<i64>, axum::extract::rejection::PathRejection>,
) -> Result<Json<Replayed>, OpsError> {
    let Path(id) = id.map_err(|e| OpsError::Invalid(e.body_text()))?;
    let replayed = ops(&shared).replay_ids(vec![id]).await?;
    tracing::info!(
        jobs = replayed.count,
        "dead letters replayed from the admin API"
    );
    Ok(Json(replayed))
}

/// Every event of a booking and every attempt of their jobs, across connectors, in time
/// order.
#[utoipa::path(get, path = "/admin/api/bookings/{booking_id}/timeline", tag = "bookings",
    params(("booking_id" = String, Path, description = "The booking (`data.id`)"), TenantParam),
    responses((status = 200, body = Timeline), (status = 400, body = ApiError), (status = 503, body = ApiError)))]
async fn timeline(
    State(shared): State<Arc<Shared>>,
    Path(booking_id): Path<String>,
    q: Result<Query<TenantParam>, QueryRejection>,
) -> Result<Json<Timeline>, OpsError> {
    let tenant = query(q)?.tenant.filter(|t| !t.is_empty());
    Ok(Json(
        ops(&shared)
            .timeline(&booking_id, tenant.as_deref())
            .await?,
    ))
}

/// Reloads the config file (as SIGHUP does); a config with errors is refused and the
/// running one stays.
#[utoipa::path(post, path = "/admin/api/reload", tag = "config",
    responses((status = 200, body = Reloaded), (status = 422, body = Reloaded)))]
async fn reload(State(shared): State<Arc<Shared>>) -> Response {
    // thousands of tenants take a while to check: off the async threads
    let done = tokio::task::spawn_blocking(move || shared.reload()).await;
    let Ok(done) = done else {
        let error = "the reload failed unexpectedly; the running config stays".to_owned();
        return (StatusCode::INTERNAL_SERVER_ERROR, Json(ApiError { error })).into_response();
    };
    match done {
        Ok(notes) => Json(Reloaded {
            reloaded: true,
            notes: Some(notes),
            errors: None,
        })
        .into_response(),
        Err(e) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(Reloaded {
                reloaded: false,
                notes: None,
                errors: Some(e.issues.iter().map(ToString::to_string).collect()),
            }),
        )
            .into_response(),
    }
}

/// This document (OpenAPI 3.1).
#[utoipa::path(get, path = "/admin/api/openapi.json", tag = "meta",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json")))]
async fn openapi_json() -> Json<&'static utoipa::openapi::OpenApi> {
    Json(openapi())
}
