//! The mock's endpoints: which route a request is, and what each does to the store —
//! create, read, `PATCH`, `DELETE`, and the list and search of [`super::search`].
//!
//! Invariant: a refused write changes nothing; a write of a forbidden type is 403 before
//! its body is read.

use super::super::chassis::Gate;
use super::super::chassis::reply::Reply;
use super::super::chassis::wire::segments;
use super::answers::{forbidden, not_found, ok, unknown_method};
use super::model::Store;
use super::refusal::{Refused, bad_param};
use super::schema::{self, Kind};
use super::search::{list, search};
use axum::http::Method;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::Duration;

/// What a request is for.
#[derive(Debug)]
pub enum Route {
    Create(Kind),
    List(Kind),
    Search(Kind),
    Get(Kind, i64),
    Patch(Kind, i64),
    Delete(Kind, i64),
    /// A record path whose id is not a positive integer.
    BadId(String),
    /// No such endpoint under `/api`.
    NotFound,
}

/// Where a request goes: the token endpoint, an API call (`/api/…`: authenticated even
/// when no such endpoint exists), or, for any other path, a 404 without auth.
pub(super) fn route(method: &Method, path: &str) -> Gate<Route> {
    let segments = segments(path);
    let s: Vec<&str> = segments.iter().map(String::as_str).collect();
    let api = match (method.as_str(), s.as_slice()) {
        ("POST", ["oauth", "token"]) => return Gate::Token,
        (m, ["api", "v2", ty, rest @ ..]) => {
            let Some(kind) = Kind::from_path(ty) else {
                return Gate::Api(Route::NotFound);
            };
            match (m, rest) {
                ("POST", []) => Route::Create(kind),
                ("GET", []) => Route::List(kind),
                ("GET", ["search"]) if !kind.search_fields().is_empty() => Route::Search(kind),
                (_, ["search"]) => Route::NotFound,
                ("GET" | "PATCH" | "DELETE", [id]) => {
                    let Some(id) = id.parse::<i64>().ok().filter(|id| *id > 0) else {
                        return Gate::Api(Route::BadId((*id).to_owned()));
                    };
                    match m {
                        "GET" => Route::Get(kind, id),
                        "PATCH" => Route::Patch(kind, id),
                        _ => Route::Delete(kind, id),
                    }
                }
                _ => Route::NotFound,
            }
        }
        (_, ["api", ..]) => Route::NotFound,
        _ => return Gate::Answer(unknown_method()),
    };
    Gate::Api(api)
}

/// A failed request: refused by the schema (a 400 that names why), or another answer.
#[derive(Debug)]
pub(super) enum Fail {
    Refused(Refused),
    Answer(Reply),
}

impl From<Refused> for Fail {
    fn from(r: Refused) -> Self {
        Self::Refused(r)
    }
}

impl From<Reply> for Fail {
    fn from(r: Reply) -> Self {
        Self::Answer(r)
    }
}

/// A route's answer.
pub(super) type Handled = Result<Reply, Fail>;

/// What a route may write: the search lag of changes, and the object types whose writes
/// are 403.
pub(super) struct Writes<'a> {
    pub(super) lag: Duration,
    pub(super) forbidden: &'a BTreeSet<Kind>,
}

impl Writes<'_> {
    fn allowed(&self, kind: Kind) -> Result<(), Fail> {
        if self.forbidden.contains(&kind) {
            Err(forbidden().into())
        } else {
            Ok(())
        }
    }
}

/// Runs a route against the store.
pub(super) fn apply(
    store: &mut Store,
    route: Route,
    query: &[(String, String)],
    body: &[u8],
    writes: &Writes<'_>,
) -> Handled {
    match route {
        Route::Create(kind) => {
            writes.allowed(kind)?;
            let body = schema::parse_object(body)?;
            let id = store.create(kind, &body, writes.lag)?;
            answer(store, kind, id)
        }
        Route::Patch(kind, id) => {
            writes.allowed(kind)?;
            if !store.exists(kind, id) {
                return Err(not_found(kind).into());
            }
            let body = schema::parse_object(body)?;
            store.update(kind, id, &body, writes.lag)?;
            answer(store, kind, id)
        }
        Route::Delete(kind, id) => {
            writes.allowed(kind)?;
            if !store.delete(kind, id) {
                return Err(not_found(kind).into());
            }
            Ok(Reply::json(
                200,
                json!({ "success": true, "data": { "id": id } }),
            ))
        }
        Route::Get(kind, id) => answer(store, kind, id),
        Route::List(kind) => list(store, kind, query),
        Route::Search(kind) => search(store, kind, query),
        Route::BadId(id) => Err(bad_param("id", &format!("a positive integer, got {id}")).into()),
        Route::NotFound => Err(unknown_method().into()),
    }
}

fn answer(store: &Store, kind: Kind, id: i64) -> Handled {
    let rec = store.get(kind, id).ok_or_else(|| not_found(kind))?;
    Ok(ok(
        Value::Object(store.record_json(kind, id, rec)),
        Value::Null,
    ))
}
