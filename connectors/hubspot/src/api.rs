//! The HubSpot calls a step needs, one function each (CRM v3 objects, v4 associations,
//! the daily usage endpoint), over the step's rate-limited [`Outbound`].
//!
//! Invariants: every call carries the bearer token and, after a 401 on an OAuth app,
//! is sent once more with a fresh token; search calls also wait for the search limiter;
//! in dry run each call assumes the answer named at its call site; a list HubSpot pages
//! is read a bounded number of pages.

use crate::HubSpot;
use crate::error::HubSpotError;
use crate::links::created_property;
use chrono::{DateTime, Utc};
use reqwest::Method;
use serde_json::{Map, Value, json};
use slatis_core::DeliveryError;
use slatis_core::connector::{DryRunReply, Outbound, Reply, path_segment};
use slatis_crm::call::{Attempt, with_reauth};

/// One step's view of the API.
pub struct Api<'a> {
    /// The instance.
    pub hs: &'a HubSpot,
    /// The step's way out.
    pub http: &'a Outbound<'a>,
}

/// What HubSpot answered when a record was written.
pub struct Written {
    /// The record's id.
    pub id: String,
    /// Whether it was created.
    pub created: bool,
}

/// A record as read: its id, when it was created, the properties asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    /// The record's id.
    pub id: String,
    /// `createdAt`, if HubSpot said.
    pub created_at: Option<DateTime<Utc>>,
    /// The properties read (`null` when unset).
    pub properties: Map<String, Value>,
}

impl Found {
    fn from_json(body: &Value) -> Option<Self> {
        Some(Self {
            id: id_of(body)?,
            created_at: body
                .get("createdAt")
                .and_then(Value::as_str)
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&Utc)),
            properties: body
                .get("properties")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default(),
        })
    }
}

/// The ids of `found`, oldest first: by `createdAt`, ties (and records without one) by
/// id, numerically where ids are numbers.
pub fn oldest_first(mut found: Vec<Found>) -> Vec<String> {
    let by_id = |a: &str, b: &str| match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        _ => a.cmp(b),
    };
    found.sort_by(|a, b| {
        a.created_at
            .cmp(&b.created_at)
            .then_with(|| by_id(&a.id, &b.id))
    });
    found.into_iter().map(|f| f.id).collect()
}

type Result<T, E = HubSpotError> = std::result::Result<T, E>;

/// How many records a search asks for: enough to tell one from several, and to pick the
/// oldest or the newest (the search sorts by creation, that way first).
const SEARCH_LIMIT: usize = 10;

/// The most ids one batch read takes.
const BATCH: usize = 100;

/// The most pages of associations read (500 each): a contact's first 10,000 meetings.
const ASSOCIATION_PAGES: usize = 20;

fn id_of(body: &Value) -> Option<String> {
    match body.get("id") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

fn results(answer: &Value) -> impl Iterator<Item = &Value> {
    answer
        .get("results")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

impl Api<'_> {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.hs.base_url)
    }

    /// Sends a call; a non-2xx answer is a [`HubSpotError`].
    async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
        assume: DryRunReply,
    ) -> Result<Reply> {
        self.call_within(method, path, query, body, assume, false)
            .await
    }

    /// [`Api::call`]; a `search` call also waits for the instance's `search_rate_limit`
    /// (HubSpot's search limit).
    async fn call_within(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
        assume: DryRunReply,
        search: bool,
    ) -> Result<Reply> {
        let (method, assume) = (&method, &assume);
        with_reauth(self.hs.auth.refreshable(), |stale| async move {
            let token = self.hs.auth.token(self.http, stale.as_deref()).await?;
            let mut request = self
                .http
                .request(method.clone(), &self.url(path))
                .bearer_auth(&token);
            if !query.is_empty() {
                request = request.query(query);
            }
            if let Some(b) = body {
                request = request.json(b);
            }
            let reply = if search {
                self.http.send_search(request, assume.clone()).await?
            } else {
                self.http.send(request, assume.clone()).await?
            };
            if reply.status.is_success() {
                return Ok(Attempt::Done(reply));
            }
            let error = HubSpotError::from_reply(&reply);
            if reply.status != reqwest::StatusCode::UNAUTHORIZED {
                return Err(error);
            }
            Ok(Attempt::Refused {
                secret: token,
                error,
            })
        })
        .await
    }

    /// Classes a call's failure for the queue; a `DAILY` limit waits for the reset
    /// HubSpot reports (an hour if it does not say).
    pub async fn class(&self, e: HubSpotError) -> DeliveryError {
        match e {
            e @ HubSpotError::RateLimited { .. } if e.is_daily() => {
                let until = match self.daily_reset().await {
                    Some(at) if at > Utc::now() => at,
                    _ => slatis_core::time::in_seconds(3600),
                };
                DeliveryError::rate_limited(
                    format!("{e} (paused until HubSpot's daily reset)"),
                    until,
                )
            }
            e => e.into_delivery(),
        }
    }

    /// The `object` records whose `property` equals `value` (search, `EQ`), sorted by
    /// creation: the oldest first, or the newest first when `newest_first` (HubSpot
    /// takes one sort rule; the caller orders ties by id). Search results lag new writes
    /// by seconds.
    pub async fn search(
        &self,
        object: &str,
        property: &str,
        value: &str,
        newest_first: bool,
        assume_found: bool,
    ) -> Result<Vec<Found>> {
        let direction = if newest_first {
            "DESCENDING"
        } else {
            "ASCENDING"
        };
        let body = json!({
            "filterGroups": [{ "filters": [{ "propertyName": property, "operator": "EQ", "value": value }] }],
            "properties": [property],
            "sorts": [{ "propertyName": created_property(object), "direction": direction }],
            "limit": SEARCH_LIMIT,
        });
        let assume = if assume_found {
            json!({ "total": 1, "results": [{ "id": "dry-run", "properties": { property: value } }] })
        } else {
            json!({ "total": 0, "results": [] })
        };
        let reply = self
            .call_within(
                Method::POST,
                &format!("/crm/v3/objects/{object}/search"),
                &[],
                Some(&body),
                DryRunReply::json(assume),
                true,
            )
            .await?;
        Ok(results(&reply.json())
            .filter_map(Found::from_json)
            .collect())
    }

    /// The record `key` names — its id, or the value of its unique `id_property` — with
    /// `properties`, read from HubSpot's primary store (no search lag); `None` if there is
    /// none.
    pub async fn read(
        &self,
        object: &str,
        key: &str,
        id_property: Option<&str>,
        properties: &[&str],
    ) -> Result<Option<Found>> {
        let path = format!("/crm/v3/objects/{object}/{}", path_segment(key)?);
        let names = properties.join(",");
        let mut query: Vec<(&str, &str)> =
            id_property.map(|p| ("idProperty", p)).into_iter().collect();
        if !names.is_empty() {
            query.push(("properties", names.as_str()));
        }
        let assume =
            json!({ "id": if id_property.is_some() { "dry-run" } else { key }, "properties": {} });
        match self
            .call(Method::GET, &path, &query, None, DryRunReply::json(assume))
            .await
        {
            Ok(reply) => Ok(Found::from_json(&reply.json())),
            Err(HubSpotError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The records of `ids` with `properties` (batch read, 100 a call); ids HubSpot no
    /// longer has are left out. `assume` is a dry run's answer to each call.
    pub async fn batch_read(
        &self,
        object: &str,
        ids: &[String],
        properties: &[&str],
        assume: &Value,
    ) -> Result<Vec<Found>> {
        let mut found = Vec::new();
        for chunk in ids.chunks(BATCH) {
            let inputs: Vec<Value> = chunk.iter().map(|id| json!({ "id": id })).collect();
            let body = json!({ "inputs": inputs, "properties": properties });
            // 207 (some ids not found) is a success with `errors`.
            let reply = self
                .call(
                    Method::POST,
                    &format!("/crm/v3/objects/{object}/batch/read"),
                    &[],
                    Some(&body),
                    DryRunReply::json(assume.clone()),
                )
                .await?;
            found.extend(results(&reply.json()).filter_map(Found::from_json));
        }
        Ok(found)
    }

    /// The ids of the `to_object` records associated with `from_object` record
    /// `from_id` (v4 associations read: HubSpot's primary store, not the lagging search
    /// index; <https://developers.hubspot.com/docs/api-reference/latest/crm/associations/associate-records/get-associations>).
    pub async fn associated(
        &self,
        from_object: &str,
        from_id: &str,
        to_object: &str,
        assume_found: bool,
    ) -> Result<Vec<String>> {
        let path = format!(
            "/crm/v4/objects/{}/{}/associations/{}",
            path_segment(from_object)?,
            path_segment(from_id)?,
            path_segment(to_object)?
        );
        let assume = if assume_found {
            json!({ "results": [{ "toObjectId": "dry-run", "associationTypes": [] }] })
        } else {
            json!({ "results": [] })
        };
        let mut ids = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..ASSOCIATION_PAGES {
            let mut query = vec![("limit", "500")];
            query.extend(after.as_deref().map(|a| ("after", a)));
            let reply = self
                .call(
                    Method::GET,
                    &path,
                    &query,
                    None,
                    DryRunReply::json(assume.clone()),
                )
                .await?;
            let answer = reply.json();
            ids.extend(results(&answer).filter_map(|r| match r.get("toObjectId") {
                Some(Value::Number(n)) => Some(n.to_string()),
                Some(Value::String(s)) => Some(s.clone()),
                _ => None,
            }));
            after = answer
                .pointer("/paging/next/after")
                .and_then(Value::as_str)
                .map(str::to_owned);
            if after.is_none() {
                break;
            }
        }
        Ok(ids)
    }

    /// Creates a record, with `associations` (create-body items) made in the same call.
    pub async fn create(
        &self,
        object: &str,
        properties: &Map<String, Value>,
        associations: &[Value],
    ) -> Result<Written> {
        let mut body = json!({ "properties": properties });
        if !associations.is_empty() {
            body["associations"] = Value::from(associations.to_vec());
        }
        let reply = self
            .call(
                Method::POST,
                &format!("/crm/v3/objects/{object}"),
                &[],
                Some(&body),
                DryRunReply::status(201, json!({"id": "dry-run"})),
            )
            .await?;
        let id = id_of(&reply.json()).ok_or_else(|| missing_id(object))?;
        Ok(Written { id, created: true })
    }

    /// Updates a record by id.
    pub async fn update(
        &self,
        object: &str,
        id: &str,
        properties: &Map<String, Value>,
    ) -> Result<Written> {
        let body = json!({ "properties": properties });
        let reply = self
            .call(
                Method::PATCH,
                &format!("/crm/v3/objects/{object}/{}", path_segment(id)?),
                &[],
                Some(&body),
                DryRunReply::json(json!({"id": id})),
            )
            .await?;
        let id = id_of(&reply.json()).unwrap_or_else(|| id.to_owned());
        Ok(Written { id, created: false })
    }

    /// Creates or updates the record whose unique `id_property` is `value`, in one call
    /// (`batch/upsert`): safe to repeat after a lost answer.
    pub async fn upsert_unique(
        &self,
        object: &str,
        id_property: &str,
        value: &str,
        properties: &Map<String, Value>,
    ) -> Result<Written> {
        let body = json!({ "inputs": [{ "id": value, "idProperty": id_property, "properties": properties }] });
        let reply = self
            .call(
                Method::POST,
                &format!("/crm/v3/objects/{object}/batch/upsert"),
                &[],
                Some(&body),
                DryRunReply::json(
                    json!({"status": "COMPLETE", "results": [{"id": "dry-run", "new": true}]}),
                ),
            )
            .await?;
        let answer = reply.json();
        let Some(first) = results(&answer).next() else {
            let why = answer
                .get("errors")
                .map(Value::to_string)
                .unwrap_or_else(|| answer.to_string());
            return Err(HubSpotError::Api {
                status: reply.status.as_u16(),
                category: None,
                message: format!("batch upsert wrote nothing: {why}"),
                retry_after: None,
            });
        };
        let id = id_of(first).ok_or_else(|| missing_id(object))?;
        Ok(Written {
            id,
            created: first.get("new").and_then(Value::as_bool).unwrap_or(false),
        })
    }

    /// Deletes (archives) a record; one already gone is fine.
    pub async fn delete(&self, object: &str, id: &str) -> Result<()> {
        let path = format!("/crm/v3/objects/{object}/{}", path_segment(id)?);
        match self
            .call(
                Method::DELETE,
                &path,
                &[],
                None,
                DryRunReply::status(204, Value::Null),
            )
            .await
        {
            Ok(_) | Err(HubSpotError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Links `object/id` to `to/to_id`: the default association, or the labelled one
    /// `type_id` names (v4).
    pub async fn associate(
        &self,
        object: &str,
        id: &str,
        to: &str,
        to_id: &str,
        label: Option<(&str, u64)>,
    ) -> Result<()> {
        let base = format!(
            "/crm/v4/objects/{object}/{}/associations",
            path_segment(id)?
        );
        // `to` is rendered (an object type may come from the booking) like the ids.
        let (to, to_id) = (path_segment(to)?, path_segment(to_id)?);
        let assume = DryRunReply::json(json!({"status": "COMPLETE"}));
        match label {
            None => {
                let path = format!("{base}/default/{to}/{to_id}");
                self.call(Method::PUT, &path, &[], None, assume).await?;
            }
            Some((category, type_id)) => {
                let path = format!("{base}/{to}/{to_id}");
                let body =
                    json!([{ "associationCategory": category, "associationTypeId": type_id }]);
                self.call(Method::PUT, &path, &[], Some(&body), assume)
                    .await?;
            }
        }
        Ok(())
    }

    /// When the daily limit resets, as HubSpot reports it.
    async fn daily_reset(&self) -> Option<DateTime<Utc>> {
        let reply = self
            .call(
                Method::GET,
                "/account-info/v3/api-usage/daily/private-apps",
                &[],
                None,
                DryRunReply::json(json!({})),
            )
            .await
            .ok()?;
        let answer = reply.json();
        let at = results(&answer)
            .next()?
            .get("resetsAt")?
            .as_str()?
            .to_owned();
        DateTime::parse_from_rfc3339(&at)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }
}

fn missing_id(object: &str) -> HubSpotError {
    HubSpotError::Api {
        status: 200,
        category: None,
        message: format!("HubSpot's answer for {object} has no id"),
        retry_after: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(id: &str, at: Option<&str>) -> Found {
        Found {
            id: id.into(),
            created_at: at.map(|t| {
                DateTime::parse_from_rfc3339(t)
                    .expect("time")
                    .with_timezone(&Utc)
            }),
            properties: Map::new(),
        }
    }

    #[test]
    fn oldest_first_goes_by_creation_then_by_id() {
        let ids = oldest_first(vec![
            found("900", Some("2026-01-02T00:00:00Z")),
            found("12", Some("2026-01-03T00:00:00Z")),
            found("101", Some("2026-01-01T00:00:00.000Z")),
            found("99", Some("2026-01-01T00:00:00Z")),
        ]);
        assert_eq!(
            ids,
            ["99", "101", "900", "12"],
            "same instant: by id, numerically"
        );
        let cmp = |a: &str, b: &str| oldest_first(vec![found(a, None), found(b, None)]);
        assert_eq!(cmp("10", "9"), ["9", "10"]);
        assert_eq!(cmp("b", "a"), ["a", "b"]);
    }
}
