//! The HubSpot calls a step needs, one function each (CRM v3 objects, v4 associations,
//! the daily usage endpoint), over the step's rate-limited [`Outbound`].
//!
//! Invariants: every call carries the bearer token and, after a 401 on an OAuth app,
//! is sent once more with a fresh token; search calls also wait for the search limiter;
//! in dry run each call assumes the answer named at its call site.

use crate::HubSpot;
use crate::error::HubSpotError;
use reqwest::Method;
use serde_json::{Map, Value, json};
use slatis_core::connector::{DryRunReply, Limiter, Outbound, Reply, path_segment};

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

type Result<T, E = HubSpotError> = std::result::Result<T, E>;

fn id_of(body: &Value) -> Option<String> {
    match body.get("id") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
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
        self.call_within(method, path, query, body, assume, None)
            .await
    }

    /// [`Api::call`], also within `extra`'s limit (HubSpot's search limit).
    async fn call_within(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
        assume: DryRunReply,
        extra: Option<&Limiter>,
    ) -> Result<Reply> {
        let mut stale: Option<String> = None;
        loop {
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
            let reply = self
                .http
                .send_limited(request, assume.clone(), extra)
                .await?;
            if reply.status.is_success() {
                return Ok(reply);
            }
            if reply.status == reqwest::StatusCode::UNAUTHORIZED
                && stale.is_none()
                && self.hs.auth.refreshable()
            {
                stale = Some(token);
                continue;
            }
            return Err(HubSpotError::from_reply(&reply));
        }
    }

    /// The ids of `object` records whose `property` equals `value` (search, EQ), oldest
    /// first. Search results lag new writes by seconds.
    pub async fn search(
        &self,
        object: &str,
        property: &str,
        value: &str,
        assume_found: bool,
    ) -> Result<Vec<String>> {
        let body = json!({
            "filterGroups": [{ "filters": [{ "propertyName": property, "operator": "EQ", "value": value }] }],
            "properties": [property],
            "sorts": ["hs_object_id"],
            "limit": 10,
        });
        let assume = if assume_found {
            json!({ "total": 1, "results": [{ "id": "dry-run" }] })
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
                Some(&self.hs.search_limiter),
            )
            .await?;
        let answer = reply.json();
        Ok(answer
            .get("results")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(id_of)
            .collect())
    }

    /// The id of the `object` record whose unique `property` is `value` (read from the
    /// primary store: no search lag), or `None`.
    pub async fn get_by(
        &self,
        object: &str,
        property: &str,
        value: &str,
    ) -> Result<Option<String>> {
        let path = format!("/crm/v3/objects/{object}/{}", path_segment(value)?);
        match self
            .call(
                Method::GET,
                &path,
                &[("idProperty", property)],
                None,
                DryRunReply::json(json!({"id": "dry-run"})),
            )
            .await
        {
            Ok(reply) => Ok(id_of(&reply.json())),
            Err(HubSpotError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Creates a record.
    pub async fn create(&self, object: &str, properties: &Map<String, Value>) -> Result<Written> {
        let body = json!({ "properties": properties });
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

    /// Updates a record by id, or by a unique property when `id_property` is given.
    pub async fn update(
        &self,
        object: &str,
        id: &str,
        id_property: Option<&str>,
        properties: &Map<String, Value>,
    ) -> Result<Written> {
        let body = json!({ "properties": properties });
        let query: Vec<(&str, &str)> = id_property.map(|p| ("idProperty", p)).into_iter().collect();
        let reply = self
            .call(
                Method::PATCH,
                &format!("/crm/v3/objects/{object}/{}", path_segment(id)?),
                &query,
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
        let first = answer
            .get("results")
            .and_then(Value::as_array)
            .and_then(|r| r.first())
            .cloned()
            .unwrap_or_default();
        if first.is_null() {
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
        }
        let id = id_of(&first).ok_or_else(|| missing_id(object))?;
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
    pub async fn daily_reset(&self) -> Option<chrono::DateTime<chrono::Utc>> {
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
        let at = answer
            .get("results")?
            .as_array()?
            .first()?
            .get("resetsAt")?
            .as_str()?
            .to_owned();
        chrono::DateTime::parse_from_rfc3339(&at)
            .ok()
            .map(|t| t.with_timezone(&chrono::Utc))
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
