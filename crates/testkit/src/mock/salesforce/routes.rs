//! Which call a request is ([`route`]), and the REST calls on records: create, read
//! (`fields=` narrows it), update and delete by id; read, upsert and delete by an external
//! id (queries are [`super::search`]'s).
//!
//! Invariants:
//! - a path outside `/services/` is 404 without auth; any `vNN.N` version is accepted;
//! - upsert (`PATCH …/sobjects/{Object}/{Field}/{Value}`, the value matched ignoring
//!   case, <https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/dome_upsert.htm>):
//!   201 created; updated: 200 with `"created": false` from API version 46.0, 204 before
//!   it; the body must not name `Id` or the external-id field
//!   (<https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_sobject_upsert_patch.htm>);
//! - an external-id path on a field that is not an External ID field is 404;
//! - several records with the external id: 300 and a JSON list of their URLs, nothing
//!   changed. Salesforce documents no order for the list; the mock lists them newest
//!   first, so a client that wants the oldest must ask for it.

use super::super::chassis::Gate;
use super::super::chassis::reply::{Answer, Reply};
use super::super::chassis::wire::segments;
use super::Salesforce;
use super::answers::{api_error, invalid_field, not_found, record_url};
use super::model::record_json;
use super::values::parse_body;
use axum::http::Method;
use serde_json::{Map, Value, json};

/// An API version from a path (`v60.0`).
#[derive(Debug, Clone)]
pub struct Version {
    /// `60.0`.
    pub(super) text: String,
    major: u32,
}

impl Version {
    fn parse(segment: &str) -> Option<Self> {
        let text = segment.strip_prefix('v')?;
        let (major, minor) = text.split_once('.')?;
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(major) || !digits(minor) {
            return None;
        }
        Some(Self {
            text: text.to_owned(),
            major: major.parse().ok()?,
        })
    }

    /// The version [`super::MockSalesforce::seed`] acts as.
    pub(super) fn seed() -> Self {
        Self {
            text: "62.0".to_owned(),
            major: 62,
        }
    }

    /// Whether an upsert that updates answers 200 with a body (46.0 on) rather than 204.
    pub(super) fn upsert_answers_update(&self) -> bool {
        self.major >= 46
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Get,
    Patch,
    Delete,
}

/// A `/services/data/vXX.X/…` call.
#[derive(Debug)]
pub enum Route {
    Limits,
    Query,
    Create(String),
    Record {
        verb: Verb,
        object: String,
        id: String,
    },
    External {
        verb: Verb,
        object: String,
        field: String,
        value: String,
    },
    NotAllowed {
        method: String,
        allowed: &'static str,
    },
    NotFound,
}

/// Where a request goes: the token endpoint, an API call (answered once authenticated),
/// or, for any other path, a 404 without auth.
pub(super) fn route(method: &Method, path: &str) -> Gate<(Version, Route)> {
    let segments = segments(path);
    let s: Vec<&str> = segments.iter().map(String::as_str).collect();
    let verb = match method.as_str() {
        "GET" => Some(Verb::Get),
        "PATCH" => Some(Verb::Patch),
        "DELETE" => Some(Verb::Delete),
        _ => None,
    };
    let not_allowed = |allowed: &'static str| Route::NotAllowed {
        method: method.to_string(),
        allowed,
    };
    match s.as_slice() {
        ["services", "oauth2", "token"] if method == Method::POST => Gate::Token,
        ["services", "data", version, rest @ ..] => {
            let Some(version) = Version::parse(version) else {
                let version = Version {
                    text: (*version).to_owned(),
                    major: 0,
                };
                return Gate::Api((version, Route::NotFound));
            };
            let call = match (rest, verb) {
                (["limits"], Some(Verb::Get)) => Route::Limits,
                (["limits"], _) => not_allowed("GET"),
                (["query"], Some(Verb::Get)) => Route::Query,
                (["query"], _) => not_allowed("GET"),
                (["sobjects", object], _) if method == Method::POST => {
                    Route::Create((*object).to_owned())
                }
                (["sobjects", _], Some(Verb::Get)) => Route::NotFound,
                (["sobjects", _], _) => not_allowed("GET,POST"),
                (["sobjects", object, id], Some(verb)) => Route::Record {
                    verb,
                    object: (*object).to_owned(),
                    id: (*id).to_owned(),
                },
                (["sobjects", _, _], None) => not_allowed("GET,PATCH,DELETE"),
                (["sobjects", object, field, value], Some(verb)) => Route::External {
                    verb,
                    object: (*object).to_owned(),
                    field: (*field).to_owned(),
                    value: (*value).to_owned(),
                },
                (["sobjects", _, _, _], None) => not_allowed("GET,PATCH,DELETE"),
                _ => Route::NotFound,
            };
            Gate::Api((version, call))
        }
        _ => Gate::Answer(not_found()),
    }
}

/// The API version of a `/services/data/vXX.X/…` path.
pub(super) fn path_version(path: &str) -> Option<String> {
    let rest = path.strip_prefix("/services/data/")?;
    let segment = rest.split('/').next()?;
    Version::parse(segment).map(|v| v.text)
}

/// The record(s) an external-id path names: `…/sobjects/{object}/{field}/{value}`.
#[derive(Debug, Clone, Copy)]
pub(super) struct ExternalId<'a> {
    pub(super) object: &'a str,
    pub(super) field: &'a str,
    pub(super) value: &'a str,
}

impl Salesforce {
    /// Applies an authenticated API call.
    pub(super) fn apply_route(
        &mut self,
        version: &Version,
        route: Route,
        query: &[(String, String)],
        body: &[u8],
    ) -> Answer {
        match route {
            Route::Limits => Ok(self.limits()),
            Route::Query => self.query(version, query),
            Route::Create(object) => self.create(version, &object, body),
            Route::Record { verb, object, id } => match verb {
                Verb::Get => self.read(version, &object, &id, query),
                Verb::Patch => self.update(version, &object, &id, body),
                Verb::Delete => self.delete(&object, &id),
            },
            Route::External {
                verb,
                object,
                field,
                value,
            } => {
                let key = ExternalId {
                    object: &object,
                    field: &field,
                    value: &value,
                };
                self.external(version, verb, &key, query, body)
            }
            Route::NotAllowed { method, allowed } => Err(api_error(
                405,
                "METHOD_NOT_ALLOWED",
                &format!("HTTP Method '{method}' not allowed. Allowed are {allowed}"),
                None,
            )),
            Route::NotFound => Err(not_found()),
        }
    }

    pub(super) fn create(&mut self, version: &Version, object: &str, body: &[u8]) -> Answer {
        let def = self.object(object).cloned().ok_or_else(not_found)?;
        let body = parse_body(body)?;
        let fields = self.prepare(&version.text, &def, None, &body)?;
        let id = self.insert(&def, fields);
        Ok(Reply::json(
            201,
            json!({"id": id, "success": true, "errors": []}),
        ))
    }

    pub(super) fn read(
        &self,
        version: &Version,
        object: &str,
        id: &str,
        query: &[(String, String)],
    ) -> Answer {
        let def = self.object(object).ok_or_else(not_found)?;
        let rec = self.find_in(def, id)?;
        let fields = Self::asked_fields(def, query)?;
        Ok(Reply::json(
            200,
            record_json(def, rec, &version.text, fields.as_deref()),
        ))
    }

    pub(super) fn update(
        &mut self,
        version: &Version,
        object: &str,
        id: &str,
        body: &[u8],
    ) -> Answer {
        let def = self.object(object).cloned().ok_or_else(not_found)?;
        let rec = self.find_in(&def, id)?;
        let (id, current) = (rec.id.clone(), rec.fields.clone());
        let body = parse_body(body)?;
        let fields = self.prepare(&version.text, &def, Some((&id, &current)), &body)?;
        self.store(&id, fields);
        Ok(Reply::empty(204))
    }

    pub(super) fn delete(&mut self, object: &str, id: &str) -> Answer {
        let def = self.object(object).cloned().ok_or_else(not_found)?;
        let id = self.find_in(&def, id)?.id.clone();
        self.remove(&id);
        Ok(Reply::empty(204))
    }

    /// `…/sobjects/{object}/{field}/{value}`: read, upsert or delete by an external id.
    pub(super) fn external(
        &mut self,
        version: &Version,
        verb: Verb,
        key: &ExternalId<'_>,
        query: &[(String, String)],
        body: &[u8],
    ) -> Answer {
        let ExternalId {
            object,
            field,
            value,
        } = *key;
        let def = self.object(object).cloned().ok_or_else(not_found)?;
        let field = def
            .field(field)
            .filter(|f| f.external_id)
            .map(|f| f.name.clone())
            .ok_or_else(|| {
                api_error(
                    404,
                    "NOT_FOUND",
                    &format!(
                        "Provided external ID field does not exist or is not accessible: {field}"
                    ),
                    None,
                )
            })?;
        let mut matching: Vec<(String, Map<String, Value>, chrono::DateTime<chrono::Utc>)> = self
            .by_value(&def.name, &field, value)
            .into_iter()
            .map(|rec| (rec.id.clone(), rec.fields.clone(), rec.created_at))
            .collect();
        if matching.len() > 1 {
            matching.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| b.0.cmp(&a.0)));
            let urls: Vec<Value> = matching
                .iter()
                .map(|(id, _, _)| Value::String(record_url(&version.text, &def.name, id)))
                .collect();
            return Ok(Reply::json(300, Value::Array(urls)));
        }
        let found = matching
            .into_iter()
            .next()
            .map(|(id, fields, _)| (id, fields));
        match verb {
            Verb::Get => {
                let (id, _) = found.ok_or_else(not_found)?;
                self.read(version, &def.name, &id, query)
            }
            Verb::Delete => {
                let (id, _) = found.ok_or_else(not_found)?;
                self.remove(&id);
                Ok(Reply::empty(204))
            }
            Verb::Patch => {
                let mut body = parse_body(body)?;
                if body.keys().any(|k| k.eq_ignore_ascii_case(&field)) {
                    return Err(invalid_field(&format!(
                        "{field}: the external ID field is named in the URL; don't specify it in the request body"
                    )));
                }
                match found {
                    None => {
                        body.insert(field, Value::String(value.to_owned()));
                        let fields = self.prepare(&version.text, &def, None, &body)?;
                        let id = self.insert(&def, fields);
                        let mut answer = json!({"id": id, "success": true, "errors": []});
                        if version.upsert_answers_update() {
                            answer["created"] = Value::Bool(true);
                        }
                        Ok(Reply::json(201, answer))
                    }
                    Some((id, current)) => {
                        let fields =
                            self.prepare(&version.text, &def, Some((&id, &current)), &body)?;
                        self.store(&id, fields);
                        if version.upsert_answers_update() {
                            Ok(Reply::json(
                                200,
                                json!({"id": id, "success": true, "errors": [], "created": false}),
                            ))
                        } else {
                            Ok(Reply::empty(204))
                        }
                    }
                }
            }
        }
    }
}
