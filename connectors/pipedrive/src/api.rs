//! The Pipedrive v2 calls a step needs (`/api/v2/{persons|organizations|deals|activities}`),
//! over the step's rate-limited [`Outbound`].
//!
//! Invariants: the API token travels only in the `x-api-token` header; after a 401 on an
//! OAuth app the token is refreshed and the call sent once more; search calls also wait
//! for the search limit; in dry run each call assumes the answer named at its call site.

use crate::Pipedrive;
use crate::error::PipedriveError;
use chrono::{DateTime, Utc};
use reqwest::Method;
use serde_json::{Map, Value, json};
use slatis_core::connector::{DryRunReply, Outbound, Reply, path_segment};
use slatis_crm::call::{Attempt, with_reauth};

type Result<T, E = PipedriveError> = std::result::Result<T, E>;

/// The most search hits read for one match (and the most ids one list takes).
const SEARCH_LIMIT: usize = 100;

/// One step's view of the API.
pub struct Api<'a> {
    /// The instance.
    pub pd: &'a Pipedrive,
    /// The step's way out.
    pub http: &'a Outbound<'a>,
}

/// The ids of `records`, oldest first: by `add_time`, ties by id (records without a
/// readable `add_time` first).
pub fn by_creation(records: &[Value]) -> Vec<String> {
    let mut keyed: Vec<(Option<DateTime<Utc>>, i64)> = records
        .iter()
        .filter_map(|r| {
            let id = r.get("id").and_then(Value::as_i64)?;
            let added = r
                .get("add_time")
                .and_then(Value::as_str)
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&Utc));
            Some((added, id))
        })
        .collect();
    keyed.sort_unstable();
    keyed.into_iter().map(|(_, id)| id.to_string()).collect()
}

fn id_of(v: &Value) -> Option<String> {
    match v.get("id") {
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(Value::String(s)) => Some(s.clone()),
        _ => None,
    }
}

impl Api<'_> {
    async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Map<String, Value>>,
        assume: DryRunReply,
        search: bool,
    ) -> Result<Reply> {
        let (method, assume) = (&method, &assume);
        with_reauth(self.pd.auth.refreshable(), |stale| async move {
            let creds = self
                .pd
                .auth
                .credentials(self.http, stale.as_deref(), &self.pd.dry_base)
                .await?;
            let mut request = self
                .http
                .request(method.clone(), &format!("{}/api/v2{path}", creds.base))
                .header(creds.header, creds.header_value()?);
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
            if reply.status.is_success()
                && reply.json().get("success").and_then(Value::as_bool) != Some(false)
            {
                return Ok(Attempt::Done(reply));
            }
            let error = PipedriveError::from_reply(&reply, self.pd.budget);
            if reply.status != reqwest::StatusCode::UNAUTHORIZED {
                return Err(error);
            }
            Ok(Attempt::Refused {
                secret: creds.value,
                error,
            })
        })
        .await
    }

    /// Ids of `object` records whose `fields` equal `term` exactly (ignoring case), as
    /// search answers them: in its relevance order, which is not creation order (v2
    /// search has no sort: <https://github.com/pipedrive/client-nodejs/blob/master/src/versions/v2/api/persons-api.ts>).
    /// At most [`SEARCH_LIMIT`]. Search lags writes.
    pub async fn search(
        &self,
        object: &str,
        fields: &str,
        term: &str,
        assume_found: bool,
    ) -> Result<Vec<i64>> {
        let query = [
            ("term", term.to_owned()),
            ("fields", fields.to_owned()),
            ("exact_match", "true".to_owned()),
            ("limit", SEARCH_LIMIT.to_string()),
        ];
        let items = if assume_found {
            json!([{"item": {"id": 0}}])
        } else {
            json!([])
        };
        let assume = DryRunReply::json(json!({"success": true, "data": {"items": items}}));
        let reply = self
            .call(
                Method::GET,
                &format!("/{object}/search"),
                &query,
                None,
                assume,
                true,
            )
            .await?;
        Ok(reply
            .json()
            .pointer("/data/items")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|i| i.pointer("/item/id").and_then(Value::as_i64))
            .collect())
    }

    /// The records of `ids` that still exist, from the primary store, oldest first (by
    /// `add_time`, ties by id): what `match.on_many` chooses among.
    pub async fn oldest_first(&self, object: &str, ids: &[i64]) -> Result<Vec<String>> {
        let list: Vec<String> = ids.iter().map(ToString::to_string).collect();
        let records = self.list(object, vec![("ids", list.join(","))], 1).await?;
        Ok(by_creation(&records))
    }

    /// `object` records from the primary store (no search lag) that match `filters`,
    /// oldest first, at most `pages` pages of 500.
    pub async fn list(
        &self,
        object: &str,
        filters: Vec<(&str, String)>,
        pages: usize,
    ) -> Result<Vec<Value>> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..pages {
            let mut query = filters.clone();
            query.extend([
                ("sort_by", "add_time".to_owned()),
                ("sort_direction", "asc".to_owned()),
                ("limit", "500".to_owned()),
            ]);
            if let Some(c) = &cursor {
                query.push(("cursor", c.clone()));
            }
            let assume = DryRunReply::json(
                json!({"success": true, "data": [], "additional_data": {"next_cursor": null}}),
            );
            let answer = self
                .call(
                    Method::GET,
                    &format!("/{object}"),
                    &query,
                    None,
                    assume,
                    false,
                )
                .await?
                .json();
            out.extend(
                answer
                    .get("data")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default(),
            );
            cursor = answer
                .pointer("/additional_data/next_cursor")
                .and_then(Value::as_str)
                .map(str::to_owned);
            if cursor.is_none() {
                break;
            }
        }
        Ok(out)
    }

    /// One record, as v2 answers it (`data`).
    pub async fn get(&self, object: &str, id: &str) -> Result<Value> {
        let assume = DryRunReply::json(json!({"success": true, "data": {"id": 0}}));
        let answer = self
            .call(
                Method::GET,
                &format!("/{object}/{}", path_segment(id)?),
                &[],
                None,
                assume,
                false,
            )
            .await?
            .json();
        Ok(answer.get("data").cloned().unwrap_or_default())
    }

    /// Creates a record.
    pub async fn create(&self, object: &str, body: &Map<String, Value>) -> Result<String> {
        let assume = DryRunReply::json(json!({"success": true, "data": {"id": 0}}));
        let answer = self
            .call(
                Method::POST,
                &format!("/{object}"),
                &[],
                Some(body),
                assume,
                false,
            )
            .await?
            .json();
        answer
            .get("data")
            .and_then(id_of)
            .ok_or_else(|| PipedriveError::Api {
                status: 200,
                message: format!("Pipedrive's answer for {object} names no id"),
                retry_at: None,
            })
    }

    /// Updates a record.
    pub async fn update(&self, object: &str, id: &str, body: &Map<String, Value>) -> Result<()> {
        let assume = DryRunReply::json(json!({"success": true, "data": {"id": 0}}));
        self.call(
            Method::PATCH,
            &format!("/{object}/{}", path_segment(id)?),
            &[],
            Some(body),
            assume,
            false,
        )
        .await?;
        Ok(())
    }

    /// Deletes a record; one already gone is fine.
    pub async fn delete(&self, object: &str, id: &str) -> Result<()> {
        let assume = DryRunReply::json(json!({"success": true, "data": {"id": 0}}));
        match self
            .call(
                Method::DELETE,
                &format!("/{object}/{}", path_segment(id)?),
                &[],
                None,
                assume,
                false,
            )
            .await
        {
            Ok(_) | Err(PipedriveError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_ordered_by_creation_then_id_whatever_order_they_came_in() {
        let records = json!([
            {"id": 3, "add_time": "2026-01-01T10:00:00Z"},
            {"id": 9, "add_time": "2025-12-31T23:59:59Z"},
            {"id": 2, "add_time": "2026-01-01T10:00:00Z"},
            {"id": 5, "add_time": "garbage"},
            {"name": "no id"}
        ]);
        let records = records.as_array().cloned().unwrap_or_default();
        assert_eq!(by_creation(&records), ["5", "9", "2", "3"]);
    }
}
