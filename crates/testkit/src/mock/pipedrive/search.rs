//! Reading many records: the list (`GET /api/v2/{type}`), which reads the primary store,
//! and search (`GET /api/v2/{persons|organizations|deals}/search`), which sees only what
//! its index has caught up with.
//!
//! Lists take `ids`, `updated_since`, `updated_until`, the owner and link filters,
//! `sort_by` / `sort_direction`, `limit` and `cursor`
//! (<https://github.com/pipedrive/client-nodejs/blob/master/src/versions/v2/api/activities-api.ts>).
//! Search takes `term`, `fields`, `exact_match`, its filters, `limit` and `cursor`; it
//! has no sort, and answers in its own relevance order, which is not creation order: the
//! mock puts the most recently changed first.
//!
//! Invariant: a parameter out of its range or set is refused
//! ([`super::PipedriveRefusal::BadQuery`]); paging cursors are opaque.

use super::super::chassis::wire::{base64_decode, base64_encode, pair};
use super::answers::ok;
use super::model::{Rec, Store};
use super::refusal::{Refused, bad_param};
use super::routes::Handled;
use super::schema::Kind;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::Instant;

/// How many items a list or search answers unless `limit` says otherwise.
const DEFAULT_LIMIT: usize = 100;

/// The largest `limit`.
const MAX_LIMIT: usize = 500;

/// The most ids `ids` takes.
const MAX_IDS: usize = 100;

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
pub(super) fn list(store: &Store, kind: Kind, query: &[(String, String)]) -> Handled {
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
            "add_time" => super::model::stamp(rec.add_time),
            "update_time" => super::model::stamp(rec.update_time),
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
pub(super) fn search(store: &Store, kind: Kind, query: &[(String, String)]) -> Handled {
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
