//! The Salesforce record API a step needs (`/services/data/vXX.X/…`): create, update,
//! delete and read by id, get by an external id, search (SOQL), and the native upsert by
//! an external id — over the step's rate-limited [`Outbound`].
//!
//! Invariants: every call uses the session's `instance_url` and bearer token; after
//! `INVALID_SESSION_ID` the session is minted again and the call sent once more; in dry
//! run each call assumes the answer named at its call site.

use crate::Salesforce;
use crate::error::SalesforceError;
use crate::soql;
use reqwest::Method;
use serde_json::{Map, Value, json};
use slatis_core::connector::{DryRunReply, Outbound, Reply, path_segment};
use slatis_core::step::OnMany;
use slatis_crm::call::{Attempt, with_reauth};

/// How many records a search names when `on_many: fail` refuses several: enough to name
/// them in the error, few enough to stay one small page.
const FAIL_PAGE: u32 = 10;

type Result<T, E = SalesforceError> = std::result::Result<T, E>;

/// One step's view of the API.
pub struct Api<'a> {
    /// The instance.
    pub sf: &'a Salesforce,
    /// The step's way out.
    pub http: &'a Outbound<'a>,
}

/// A record a call wrote.
pub struct Written {
    /// Its id.
    pub id: String,
    /// Whether the call created it.
    pub created: bool,
}

/// A record a lookup found: its id and the fields it was asked for (as Salesforce
/// names them).
pub struct Found {
    /// Its id.
    pub id: String,
    /// The fields asked for.
    pub fields: Map<String, Value>,
}

impl Found {
    fn from_json(body: &Value) -> Option<Self> {
        Some(Self {
            id: id_of(body)?,
            fields: body.as_object().cloned().unwrap_or_default(),
        })
    }
}

/// `?fields=Id,a,b`.
fn field_list(fields: &[&str]) -> String {
    std::iter::once("Id")
        .chain(
            fields
                .iter()
                .copied()
                .filter(|f| !f.eq_ignore_ascii_case("Id")),
        )
        .collect::<Vec<_>>()
        .join(",")
}

fn id_of(body: &Value) -> Option<String> {
    body.get("id")
        .or_else(|| body.get("Id"))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

impl Api<'_> {
    async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
        assume: DryRunReply,
    ) -> Result<Reply> {
        let (method, assume) = (&method, &assume);
        with_reauth(true, |stale| async move {
            let session = self.sf.auth.session(self.http, stale.as_deref()).await?;
            let url = format!(
                "{}/services/data/v{}{path}",
                session.instance_url, self.sf.api_version
            );
            let mut request = self
                .http
                .request(method.clone(), &url)
                .bearer_auth(&session.token);
            if !query.is_empty() {
                request = request.query(query);
            }
            if let Some(b) = body {
                request = request.json(b);
            }
            let reply = self.http.send(request, assume.clone()).await?;
            if reply.status.is_success() {
                return Ok(Attempt::Done(reply));
            }
            let error = SalesforceError::from_reply(&reply);
            if !error.invalid_session() {
                return Err(error);
            }
            Ok(Attempt::Refused {
                secret: session.token,
                error,
            })
        })
        .await
    }

    /// The `object` records whose `field` equals `value`, with `fields`, ordered by
    /// creation as `on_many` needs them (SOQL): `oldest` the oldest one, `newest` the
    /// newest one, `fail` up to [`FAIL_PAGE`] oldest first — so a list of several is always
    /// oldest first and its ends are the records `on_many` picks.
    pub async fn search(
        &self,
        object: &str,
        (field, value): (&str, &str),
        on_many: OnMany,
        fields: &[&str],
        assume_found: bool,
    ) -> Result<Vec<Found>> {
        let (newest_first, limit) = match on_many {
            OnMany::Oldest => (false, 1),
            OnMany::Newest => (true, 1),
            OnMany::Fail => (false, FAIL_PAGE),
        };
        let q = soql::select_matching(object, fields, (field, value), newest_first, limit);
        let assume = if assume_found {
            json!({"totalSize": 1, "done": true, "records": [{"Id": "dry-run"}]})
        } else {
            json!({"totalSize": 0, "done": true, "records": []})
        };
        let reply = self
            .call(
                Method::GET,
                "/query",
                &[("q", &q)],
                None,
                DryRunReply::json(assume),
            )
            .await?;
        let answer = reply.json();
        Ok(answer
            .get("records")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Found::from_json)
            .collect())
    }

    /// A record's `fields`, by id.
    pub async fn read(
        &self,
        object: &str,
        id: &str,
        fields: &[&str],
    ) -> Result<Map<String, Value>> {
        let path = format!("/sobjects/{object}/{}", path_segment(id)?);
        let list = field_list(fields);
        let reply = self
            .call(
                Method::GET,
                &path,
                &[("fields", &list)],
                None,
                DryRunReply::json(json!({"Id": id})),
            )
            .await?;
        Ok(reply.json().as_object().cloned().unwrap_or_default())
    }

    /// Creates a record.
    pub async fn create(&self, object: &str, fields: &Map<String, Value>) -> Result<Written> {
        let body = Value::Object(fields.clone());
        let assume =
            DryRunReply::status(201, json!({"id": "dry-run", "success": true, "errors": []}));
        let reply = self
            .call(
                Method::POST,
                &format!("/sobjects/{object}/"),
                &[],
                Some(&body),
                assume,
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
        fields: &Map<String, Value>,
    ) -> Result<Written> {
        let body = Value::Object(fields.clone());
        let path = format!("/sobjects/{object}/{}", path_segment(id)?);
        self.call(
            Method::PATCH,
            &path,
            &[],
            Some(&body),
            DryRunReply::status(204, Value::Null),
        )
        .await?;
        Ok(Written {
            id: id.to_owned(),
            created: false,
        })
    }

    /// Salesforce's own upsert on an external-id field: 201 created, 200 or 204 updated,
    /// 300 ([`SalesforceError::Several`]) when several records have the value.
    pub async fn upsert_external(
        &self,
        object: &str,
        field: &str,
        value: &str,
        fields: &Map<String, Value>,
    ) -> Result<Written> {
        // The URL names the external id; the body must not set it to anything else.
        let body: Map<String, Value> = fields
            .iter()
            .filter(|(k, _)| !k.eq_ignore_ascii_case(field))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let path = format!("/sobjects/{object}/{field}/{}", path_segment(value)?);
        let assume = DryRunReply::status(
            201,
            json!({"id": "dry-run", "success": true, "errors": [], "created": true}),
        );
        let reply = self
            .call(
                Method::PATCH,
                &path,
                &[],
                Some(&Value::Object(body)),
                assume,
            )
            .await?;
        let answer = reply.json();
        match id_of(&answer) {
            Some(id) => Ok(Written {
                id,
                created: answer
                    .get("created")
                    .and_then(Value::as_bool)
                    .unwrap_or(reply.status.as_u16() == 201),
            }),
            // 204 (API versions before 46.0): updated, and the answer names nothing.
            None => {
                let found = self
                    .get_external(object, (field, value), &[])
                    .await?
                    .ok_or_else(|| missing_id(object))?;
                Ok(Written {
                    id: found.id,
                    created: false,
                })
            }
        }
    }

    /// The record whose external-id `field` is `value`, with `fields`.
    ///
    /// # Errors
    /// [`SalesforceError::Several`] when Salesforce answers 300 (several records hold it);
    /// [`SalesforceError::NotFound`] when the field is no External ID field.
    pub async fn get_external(
        &self,
        object: &str,
        (field, value): (&str, &str),
        fields: &[&str],
    ) -> Result<Option<Found>> {
        let path = format!("/sobjects/{object}/{field}/{}", path_segment(value)?);
        let list = field_list(fields);
        match self
            .call(
                Method::GET,
                &path,
                &[("fields", &list)],
                None,
                DryRunReply::json(json!({"Id": "dry-run"})),
            )
            .await
        {
            Ok(reply) => Ok(Found::from_json(&reply.json())),
            // 404 is also the answer for a field that is no External ID ("Provided external
            // ID field does not exist or is not accessible"): that one is no "not found".
            Err(SalesforceError::NotFound { message, .. })
                if !message.contains("external ID field") =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Deletes a record; one already gone is fine.
    pub async fn delete(&self, object: &str, id: &str) -> Result<()> {
        let path = format!("/sobjects/{object}/{}", path_segment(id)?);
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
            Ok(_) | Err(SalesforceError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

fn missing_id(object: &str) -> SalesforceError {
    SalesforceError::Api {
        status: 200,
        code: "NO_ID".into(),
        message: format!("Salesforce's answer for {object} names no record id"),
        duplicate_of: None,
        retry_after: None,
    }
}
