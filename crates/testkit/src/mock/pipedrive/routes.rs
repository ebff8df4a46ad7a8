//! The mock's endpoints: which route a request is, and what each does to the store —
//! create, read, `PATCH`, `DELETE`, the list that reads the primary store, and search,
//! which sees only what its index has caught up with.
//!
//! Lists (`GET /api/v2/{type}`) take `ids`, `updated_since`, `updated_until`, the owner
//! and link filters, `sort_by` / `sort_direction`, `limit` and `cursor`
//! (<https://github.com/pipedrive/client-nodejs/blob/master/src/versions/v2/api/activities-api.ts>).
//! Search (`GET /api/v2/{persons|organizations|deals}/search`) takes `term`, `fields`,
//! `exact_match`, its filters, `limit` and `cursor`; it has no sort, and answers in its
//! own relevance order, which is not creation order: the mock puts the most recently
//! changed first.

use super::super::reply::Reply;
use super::super::wire::{base64_decode, base64_encode, decode_segment, pair};
use super::answers::{error, forbidden, not_found, ok, unknown_method};
use super::refusal::{Refused, bad_param};
use super::schema::{self, Kind};
use super::store::{Rec, Store};
use axum::http::Method;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// How many items a list or search answers unless `limit` says otherwise.
const DEFAULT_LIMIT: usize = 100;

/// The largest `limit`.
const MAX_LIMIT: usize = 500;

/// The most ids `ids` takes.
const MAX_IDS: usize = 100;

/// What a request is for.
#[derive(Debug)]
pub(super) enum Route {
    Token,
    Create(Kind),
    List(Kind),
    Search(Kind),
    Get(Kind, i64),
    Patch(Kind, i64),
    Delete(Kind, i64),
    /// A record path whose id is not a positive integer.
    BadId(String),
    /// No such endpoint; `api` when under `/api` (so auth applies).
    NotFound {
        api: bool,
    },
}

pub(super) fn route(method: &Method, path: &str) -> Route {
    let segments: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(decode_segment)
        .collect();
    let s: Vec<&str> = segments.iter().map(String::as_str).collect();
    let api = Route::NotFound { api: true };
    match (method.as_str(), s.as_slice()) {
        ("POST", ["oauth", "token"]) => Route::Token,
        (m, ["api", "v2", ty, rest @ ..]) => {
            let Some(kind) = Kind::from_path(ty) else {
                return api;
            };
            match (m, rest) {
                ("POST", []) => Route::Create(kind),
                ("GET", []) => Route::List(kind),
                ("GET", ["search"]) if !kind.search_fields().is_empty() => Route::Search(kind),
                (_, ["search"]) => api,
                ("GET" | "PATCH" | "DELETE", [id]) => {
                    let Some(id) = id.parse::<i64>().ok().filter(|id| *id > 0) else {
                        return Route::BadId((*id).to_owned());
                    };
                    match m {
                        "GET" => Route::Get(kind, id),
                        "PATCH" => Route::Patch(kind, id),
                        _ => Route::Delete(kind, id),
                    }
                }
                _ => api,
            }
        }
        (_, ["api", ..]) => api,
        _ => Route::NotFound { api: false },
    }
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
        Route::Token | Route::NotFound { .. } => Err(unknown_method().into()),
    }
}

fn answer(store: &Store, kind: Kind, id: i64) -> Handled {
    let rec = store.get(kind, id).ok_or_else(|| not_found(kind))?;
    Ok(ok(
        Value::Object(store.record_json(kind, id, rec)),
        Value::Null,
    ))
}

/// An opaque paging cursor: base64url of `{"offset": n}`.
fn make_cursor(n: usize) -> String {
    base64_encode(json!({ "offset": n }).to_string().as_bytes())
}

fn read_cursor(cursor: Option<&str>) -> Result<usize, Refused> {
    let Some(text) = cursor.filter(|c| !c.is_empty()) else {
        return Ok(0);
    };
    base64_decode(text)
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .and_then(|v| v.get("offset").and_then(Value::as_u64))
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| bad_param("cursor", "a cursor from an earlier answer"))
}

fn parse_limit(query: &[(String, String)]) -> Result<usize, Refused> {
    match pair(query, "limit") {
        None | Some("") => Ok(DEFAULT_LIMIT),
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|l| (1..=MAX_LIMIT).contains(l))
            .ok_or_else(|| bad_param("limit", &format!("a number from 1 to {MAX_LIMIT}"))),
    }
}

/// Whether a field's value is what a query parameter names.
fn same_as_param(value: Option<&Value>, param: &str) -> bool {
    match value {
        Some(Value::String(s)) => s == param,
        Some(Value::Number(n)) => n.to_string() == param,
        Some(Value::Bool(b)) => b.to_string() == param,
        _ => false,
    }
}

/// The filters of `params` that `query` sets, as (field, value).
fn filters<'a>(
    params: &'a [(&'a str, &'a str)],
    query: &'a [(String, String)],
) -> Vec<(&'a str, &'a str)> {
    params
        .iter()
        .filter_map(|(param, field)| {
            pair(query, param)
                .filter(|v| !v.is_empty())
                .map(|v| (*field, v))
        })
        .collect()
}

/// One page of `matching` from `offset`, with the next cursor.
fn page(matching: Vec<Value>, offset: usize, limit: usize) -> (Vec<Value>, Value) {
    let end = offset.saturating_add(limit);
    let next = if matching.len() > end {
        Value::String(make_cursor(end))
    } else {
        Value::Null
    };
    (
        matching.into_iter().skip(offset).take(limit).collect(),
        next,
    )
}

/// `GET /api/v2/{type}`: from the primary store, sorted as asked (by id by default).
fn list(store: &Store, kind: Kind, query: &[(String, String)]) -> Handled {
    let limit = parse_limit(query)?;
    let offset = read_cursor(pair(query, "cursor"))?;
    let time = |name: &str| -> Result<Option<DateTime<Utc>>, Refused> {
        match pair(query, name) {
            None | Some("") => Ok(None),
            Some(text) => DateTime::parse_from_rfc3339(text)
                .map(|t| Some(t.with_timezone(&Utc)))
                .map_err(|_| bad_param(name, "an RFC 3339 date-time")),
        }
    };
    let since = time("updated_since")?;
    let until = time("updated_until")?;
    let ids: Option<BTreeSet<i64>> = match pair(query, "ids").filter(|v| !v.is_empty()) {
        None => None,
        Some(list) => {
            let ids: Option<BTreeSet<i64>> = list
                .split(',')
                .map(|i| i.trim().parse::<i64>().ok().filter(|i| *i > 0))
                .collect();
            match ids {
                Some(ids) if ids.len() <= MAX_IDS => Some(ids),
                _ => {
                    return Err(
                        bad_param("ids", &format!("up to {MAX_IDS} comma-separated ids")).into(),
                    );
                }
            }
        }
    };
    let sort_by = pair(query, "sort_by")
        .filter(|v| !v.is_empty())
        .unwrap_or("id");
    if !kind.sort_fields().contains(&sort_by) {
        return Err(bad_param("sort_by", &kind.sort_fields().join(", ")).into());
    }
    let descending = match pair(query, "sort_direction").filter(|v| !v.is_empty()) {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(_) => return Err(bad_param("sort_direction", "asc or desc").into()),
    };
    let filters = filters(kind.list_filters(), query);
    let mut matching: Vec<(i64, &Rec)> = store
        .records(kind)
        .filter(|(id, _)| ids.as_ref().is_none_or(|ids| ids.contains(id)))
        .filter(|(_, rec)| since.is_none_or(|s| rec.update_time >= s))
        .filter(|(_, rec)| until.is_none_or(|u| rec.update_time < u))
        .filter(|(_, rec)| {
            filters
                .iter()
                .all(|(field, v)| same_as_param(rec.fields.get(*field), v))
        })
        .collect();
    let key = |(id, rec): &(i64, &Rec)| -> (String, i64) {
        let at = match sort_by {
            "add_time" => super::store::stamp(rec.add_time),
            "update_time" => super::store::stamp(rec.update_time),
            "due_date" => rec
                .fields
                .get("due_date")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            _ => String::new(),
        };
        (at, *id)
    };
    matching.sort_by_key(key);
    if descending {
        matching.reverse();
    }
    let all = matching
        .iter()
        .map(|(id, rec)| Value::Object(store.record_json(kind, *id, rec)))
        .collect();
    let (data, next) = page(all, offset, limit);
    Ok(ok(Value::Array(data), json!({ "next_cursor": next })))
}

/// `GET /api/v2/{type}/search`: what the index sees now, the most recently changed first.
fn search(store: &Store, kind: Kind, query: &[(String, String)]) -> Handled {
    let exact = match pair(query, "exact_match") {
        None | Some("" | "false") => false,
        Some("true") => true,
        Some(_) => return Err(bad_param("exact_match", "true or false").into()),
    };
    let term = pair(query, "term")
        .unwrap_or_default()
        .trim()
        .to_lowercase();
    let length = term.chars().count();
    if length < 2 && !(exact && length == 1) {
        return Err(bad_param("term", "at least 2 characters (1 with exact_match)").into());
    }
    let allowed = kind.search_fields();
    let fields: Vec<&str> = match pair(query, "fields").filter(|f| !f.trim().is_empty()) {
        None => allowed.to_vec(),
        Some(list) => {
            let mut fields = Vec::new();
            for field in list.split(',').map(str::trim).filter(|f| !f.is_empty()) {
                let known = allowed.iter().find(|a| **a == field).ok_or_else(|| {
                    bad_param("fields", &format!("any of {}", allowed.join(", ")))
                })?;
                fields.push(*known);
            }
            fields
        }
    };
    let limit = parse_limit(query)?;
    let offset = read_cursor(pair(query, "cursor"))?;
    let filters = filters(kind.search_filters(), query);
    let now = Instant::now();
    let hits = |value: &String| {
        let value = value.to_lowercase();
        if exact {
            value == term
        } else {
            value.contains(&term)
        }
    };
    let mut matching: Vec<(i64, &Rec)> = store
        .records(kind)
        .filter(|(_, rec)| rec.searchable_at <= now)
        .filter(|(_, rec)| {
            filters
                .iter()
                .all(|(field, v)| same_as_param(rec.fields.get(*field), v))
        })
        .filter(|(_, rec)| {
            fields
                .iter()
                .any(|field| store.search_texts(kind, rec, field).iter().any(hits))
        })
        .collect();
    matching.sort_by_key(|(id, rec)| std::cmp::Reverse((rec.update_time, *id)));
    let items = matching
        .iter()
        .map(|(id, rec)| json!({ "result_score": 1.0, "item": store.search_item(kind, *id, rec) }))
        .collect();
    let (items, next) = page(items, offset, limit);
    Ok(ok(
        json!({ "items": items }),
        json!({ "next_cursor": next }),
    ))
}

/// The mock's own answer for a fault's status.
pub(super) fn fault_answer(status: u16) -> Reply {
    error(status, "Internal server error")
}
