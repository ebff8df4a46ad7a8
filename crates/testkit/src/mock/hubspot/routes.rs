//! The endpoints: which request is which call, and each call on records applied to the
//! model under the schema (associations are [`super::associations`]', search
//! [`super::search`]'s). A request that fails changes nothing; a batch is applied whole or
//! not at all.

use super::super::chassis::Gate;
use super::super::chassis::reply::{Answer, Reply};
use super::super::chassis::wire::{pair, segments};
use super::HubSpot;
use super::answers::{bad_request, not_found, now_text, parse_json};
use super::model::{Shown, object_json, same_value};
use super::schema::canonical_type;
use super::search::{asked_properties, body_properties, default_shown, parse_after, search};
use super::values::scalar_text;
use axum::http::Method;
use serde_json::{Map, Value, json};

/// The most inputs a batch call takes.
const BATCH_MAX: usize = 100;

/// What a request is for.
#[derive(Debug)]
pub enum Route {
    Create(String),
    List(String),
    Search(String),
    Upsert(String),
    BatchRead(String),
    Get(String, String),
    Patch(String, String),
    Delete(String, String),
    Associate {
        from_type: String,
        from_id: String,
        to_type: String,
        to_id: String,
        labelled: bool,
    },
    /// `GET /crm/v4/objects/{type}/{id}/associations/{toType}`.
    Associations {
        from_type: String,
        from_id: String,
        to_type: String,
    },
    /// `POST /crm/v3/properties/{type}`.
    DefineProperty(String),
    Usage,
    /// No such endpoint under `/crm` or `/account-info`.
    NotFound,
}

impl Route {
    /// Whether the call counts against the search limit.
    pub(super) fn is_search(&self) -> bool {
        matches!(self, Self::Search(_))
    }
}

/// Where a request goes: the token endpoint (parameters in the body only: the query is
/// not read), an API call (under `/crm` or `/account-info`: authenticated even when no
/// such endpoint exists), or, for any other path (the retired `/oauth/v1/token` among
/// them), a 404 without auth.
pub(super) fn route(method: &Method, path: &str) -> Gate<Route> {
    let segments = segments(path);
    let s: Vec<&str> = segments.iter().map(String::as_str).collect();
    let t = |name: &str| canonical_type(name);
    let associate =
        |from: &str, from_id: &str, to: &str, to_id: &str, labelled: bool| Route::Associate {
            from_type: t(from),
            from_id: from_id.to_owned(),
            to_type: t(to),
            to_id: to_id.to_owned(),
            labelled,
        };
    let api = match (method.as_str(), s.as_slice()) {
        // OAuth v1 (`/oauth/v1/token`) is retired on 2027-02-16; the mock stands for
        // HubSpot after that date: https://developers.hubspot.com/changelog/v1-oauth-api-deprecation
        ("POST", ["oauth", "2026-03", "token"]) => return Gate::Token,
        ("POST", ["crm", "v3", "objects", ty]) => Route::Create(t(ty)),
        ("GET", ["crm", "v3", "objects", ty]) => Route::List(t(ty)),
        ("POST", ["crm", "v3", "objects", ty, "search"]) => Route::Search(t(ty)),
        ("POST", ["crm", "v3", "objects", ty, "batch", "upsert"]) => Route::Upsert(t(ty)),
        ("POST", ["crm", "v3", "objects", ty, "batch", "read"]) => Route::BatchRead(t(ty)),
        ("GET", ["crm", "v3", "objects", ty, id]) => Route::Get(t(ty), (*id).to_owned()),
        ("PATCH", ["crm", "v3", "objects", ty, id]) => Route::Patch(t(ty), (*id).to_owned()),
        ("DELETE", ["crm", "v3", "objects", ty, id]) => Route::Delete(t(ty), (*id).to_owned()),
        ("POST", ["crm", "v3", "properties", ty]) => Route::DefineProperty(t(ty)),
        ("GET", ["crm", "v4", "objects", from, from_id, "associations", to]) => {
            Route::Associations {
                from_type: t(from),
                from_id: (*from_id).to_owned(),
                to_type: t(to),
            }
        }
        (
            "PUT",
            [
                "crm",
                "v4",
                "objects",
                from,
                from_id,
                "associations",
                "default",
                to,
                to_id,
            ],
        ) => associate(from, from_id, to, to_id, false),
        (
            "PUT",
            [
                "crm",
                "v4",
                "objects",
                from,
                from_id,
                "associations",
                to,
                to_id,
            ],
        ) => associate(from, from_id, to, to_id, true),
        ("GET", ["account-info", "v3", "api-usage", "daily", "private-apps"]) => Route::Usage,
        (_, ["crm", ..] | ["account-info", ..]) => Route::NotFound,
        _ => return Gate::Answer(not_found()),
    };
    Gate::Api(api)
}

/// `properties` of a body (absent: none).
fn properties_of(body: &Value) -> Result<Map<String, Value>, Reply> {
    match body.get("properties") {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(props)) => Ok(props.clone()),
        Some(_) => Err(bad_request("\"properties\" must be an object")),
    }
}

/// A batch's `inputs`, at most [`BATCH_MAX`].
fn inputs(body: &Value) -> Result<&Vec<Value>, Reply> {
    let inputs = body
        .get("inputs")
        .and_then(Value::as_array)
        .ok_or_else(|| bad_request("A batch needs \"inputs\""))?;
    if inputs.len() > BATCH_MAX {
        return Err(bad_request(&format!(
            "Batch input is limited to {BATCH_MAX} inputs"
        )));
    }
    Ok(inputs)
}

impl HubSpot {
    /// Applies an authenticated API call.
    pub(super) fn apply_route(
        &mut self,
        route: Route,
        query: &[(String, String)],
        body: &[u8],
    ) -> Reply {
        let answer = match route {
            Route::Create(ty) => self.create(&ty, body),
            Route::List(ty) => self.list(&ty, query),
            Route::Search(ty) => search(&self.schema, &self.objects, &ty, body),
            Route::Upsert(ty) => self.upsert(&ty, body),
            Route::BatchRead(ty) => self.batch_read(&ty, body),
            Route::Get(ty, id) => self.read(&ty, &id, query),
            Route::Patch(ty, id) => self.patch(&ty, &id, query, body),
            Route::Delete(ty, id) => self.delete(&ty, &id),
            Route::Associate {
                from_type,
                from_id,
                to_type,
                to_id,
                labelled,
            } => self.associate(
                (&from_type, &from_id),
                (&to_type, &to_id),
                labelled.then_some(body),
            ),
            Route::Associations {
                from_type,
                from_id,
                to_type,
            } => self.associations_of(&from_type, &from_id, &to_type, query),
            Route::DefineProperty(ty) => parse_json(body)
                .and_then(|b| self.schema.define(&ty, &b, false))
                .map(|definition| Reply::json(201, definition)),
            Route::Usage => Ok(self.usage()),
            Route::NotFound => Err(not_found()),
        };
        answer.unwrap_or_else(|reply| reply)
    }

    fn record_json(&self, object_type: &str, id: u64, shown: &Shown<'_>) -> Result<Value, Reply> {
        let view = self.objects.view(object_type, id).ok_or_else(not_found)?;
        Ok(object_json(&self.schema, object_type, &view, shown))
    }

    /// The id a path segment names, by id or by a unique `idProperty`.
    fn resolve(
        &self,
        object_type: &str,
        segment: &str,
        query: &[(String, String)],
    ) -> Result<u64, Reply> {
        let property = pair(query, "idProperty").unwrap_or("hs_object_id");
        self.schema.check_id_property(object_type, property)?;
        self.objects
            .find_unique(object_type, property, segment)
            .ok_or_else(not_found)
    }

    fn create(&mut self, object_type: &str, body: &[u8]) -> Answer {
        self.schema.known_type(object_type)?;
        let body = parse_json(body)?;
        let props = properties_of(&body)?;
        let links = self.create_associations(object_type, &body)?;
        let lag = self.options.search_lag;
        let id = self
            .objects
            .create(&self.schema, object_type, &props, lag)?;
        for (to_type, to_id, category, type_id) in links {
            self.link((object_type, id), (&to_type, to_id), &category, type_id);
        }
        Ok(Reply::json(
            201,
            self.record_json(object_type, id, &Shown::All)?,
        ))
    }

    fn read(&self, object_type: &str, segment: &str, query: &[(String, String)]) -> Answer {
        self.schema.known_type(object_type)?;
        let id = self.resolve(object_type, segment, query)?;
        let names = asked_properties(query).unwrap_or_else(|| default_shown(object_type));
        Ok(Reply::json(
            200,
            self.record_json(object_type, id, &Shown::Only(&names))?,
        ))
    }

    fn list(&self, object_type: &str, query: &[(String, String)]) -> Answer {
        self.schema.known_type(object_type)?;
        let limit = match pair(query, "limit") {
            None => 10,
            Some(text) => text
                .parse::<usize>()
                .ok()
                .filter(|l| (1..=100).contains(l))
                .ok_or_else(|| bad_request("limit must be a number from 1 to 100"))?,
        };
        let offset = parse_after(pair(query, "after"))?;
        let names = asked_properties(query).unwrap_or_else(|| default_shown(object_type));
        let shown = Shown::Only(&names);
        let ids: Vec<u64> = self
            .objects
            .records(object_type)
            .map(|(id, _)| id)
            .collect();
        let results = ids
            .iter()
            .skip(offset)
            .take(limit)
            .map(|id| self.record_json(object_type, *id, &shown))
            .collect::<Result<Vec<_>, _>>()?;
        let mut answer = json!({ "results": results });
        if offset + limit < ids.len() {
            answer["paging"] = json!({ "next": { "after": (offset + limit).to_string() } });
        }
        Ok(Reply::json(200, answer))
    }

    fn patch(
        &mut self,
        object_type: &str,
        segment: &str,
        query: &[(String, String)],
        body: &[u8],
    ) -> Answer {
        self.schema.known_type(object_type)?;
        let id = self.resolve(object_type, segment, query)?;
        let body = parse_json(body)?;
        let props = properties_of(&body)?;
        let lag = self.options.search_lag;
        self.objects
            .update(&self.schema, object_type, id, &props, lag)?;
        Ok(Reply::json(
            200,
            self.record_json(object_type, id, &Shown::All)?,
        ))
    }

    fn delete(&mut self, object_type: &str, segment: &str) -> Answer {
        self.schema.known_type(object_type)?;
        let id = segment.parse::<u64>().map_err(|_| not_found())?;
        if !self.objects.remove(object_type, id) {
            return Err(not_found());
        }
        self.associations
            .retain(|a| a.from_id != id && a.to_id != id);
        Ok(Reply::empty(204))
    }

    /// `POST …/batch/upsert`: each input by its unique `idProperty`.
    fn upsert(&mut self, object_type: &str, body: &[u8]) -> Answer {
        self.schema.known_type(object_type)?;
        let requested_at = now_text();
        let body = parse_json(body)?;
        let mut parsed: Vec<(String, String, Map<String, Value>)> = Vec::new();
        for input in inputs(&body)? {
            let value = input
                .get("id")
                .and_then(scalar_text)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| bad_request("Each upsert input needs an \"id\""))?;
            let property = input
                .get("idProperty")
                .and_then(Value::as_str)
                .ok_or_else(|| bad_request("Each upsert input needs an \"idProperty\""))?;
            self.schema.check_id_property(object_type, property)?;
            let props = properties_of(input)?;
            if parsed
                .iter()
                .any(|(p, v, _)| p == property && same_value(object_type, p, v, &value))
            {
                return Err(bad_request(&format!(
                    "Duplicate IDs found in batch input: [{value}]"
                )));
            }
            parsed.push((property.to_owned(), value, props));
        }
        let started_at = now_text();
        let lag = self.options.search_lag;
        let mut scratch = self.objects.clone();
        let mut done = Vec::new();
        for (property, value, mut props) in parsed {
            match scratch.find_unique(object_type, &property, &value) {
                Some(id) => {
                    scratch.update(&self.schema, object_type, id, &props, lag)?;
                    done.push((id, false));
                }
                None => {
                    props.insert(property, Value::String(value));
                    let id = scratch.create(&self.schema, object_type, &props, lag)?;
                    done.push((id, true));
                }
            }
        }
        self.objects = scratch;
        let mut results = Vec::new();
        for (id, new) in done {
            let mut object = self.record_json(object_type, id, &Shown::All)?;
            object["new"] = Value::Bool(new);
            results.push(object);
        }
        Ok(Reply::json(
            200,
            json!({
                "status": "COMPLETE",
                "results": results,
                "requestedAt": requested_at,
                "startedAt": started_at,
                "completedAt": now_text(),
            }),
        ))
    }

    /// `POST …/batch/read`: `{inputs: [{id}], properties, idProperty?}`. Ids that name no
    /// record are reported in `errors` with a 207, as HubSpot does.
    fn batch_read(&self, object_type: &str, body: &[u8]) -> Answer {
        self.schema.known_type(object_type)?;
        let started_at = now_text();
        let body = parse_json(body)?;
        let property = body
            .get("idProperty")
            .and_then(Value::as_str)
            .unwrap_or("hs_object_id");
        self.schema.check_id_property(object_type, property)?;
        let names = body_properties(&body, object_type);
        let mut results = Vec::new();
        let mut missing = Vec::new();
        for input in inputs(&body)? {
            let key = input
                .get("id")
                .and_then(scalar_text)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| bad_request("Each read input needs an \"id\""))?;
            match self.objects.find_unique(object_type, property, &key) {
                Some(id) => {
                    results.push(self.record_json(object_type, id, &Shown::Only(&names))?)
                }
                None => missing.push(key),
            }
        }
        let mut answer = json!({
            "status": "COMPLETE",
            "results": results,
            "startedAt": started_at,
            "completedAt": now_text(),
        });
        if missing.is_empty() {
            return Ok(Reply::json(200, answer));
        }
        answer["numErrors"] = json!(1);
        answer["errors"] = json!([{
            "status": "error",
            "category": "OBJECT_NOT_FOUND",
            "message": format!("Could not get some {} objects, they may be deleted or not exist. Check that ids are valid.", object_type.to_uppercase()),
            "context": { "ids": missing },
        }]);
        Ok(Reply::json(207, answer))
    }
}
