//! Salesforce's record API for the toolkit's action engine ([`slatis_crm::execute`]).
//!
//! What is Salesforce's own:
//! - `property: Id` (any case) is the record id;
//! - `external_id: true`: `GET /sobjects/{obj}/{field}/{value}`; a 300 (several records
//!   hold the value) lists them in no documented order, so they are searched again with
//!   SOQL ordered by creation and `match.on_many` picks one;
//! - search is SOQL (`… ORDER BY CreatedDate, Id`, asking only for the record `on_many`
//!   picks — `LIMIT 1` ascending for `oldest`, descending for `newest`; for `fail`, up to
//!   ten to name them), reading the step's `on: empty` fields along;
//! - an `upsert` on an external id is Salesforce's own (one `PATCH`, safe to repeat)
//!   while every property is `always`; the external id is set in a create's body;
//! - field names compare ignoring case.
//!
//! Invariant: a create refused as `DUPLICATES_DETECTED` updates the record Salesforce
//! names instead ([`Created::Exists`]).

use crate::SalesforceError;
use crate::api::Api;
use async_trait::async_trait;
use serde_json::{Map, Value};
use slatis_core::DeliveryError;
use slatis_core::connector::StepOutput;
use slatis_core::step::{RenderedMatch, RenderedStep, is_blank};
use slatis_crm::{Created, Found, Lookup, RecordApi, field_ignoring_case};

/// What a failure says when `on_many: fail` meets several records.
const ON_MANY_HINT: &str = "match on an external-id field, or use a duplicate rule";

/// One step's run.
pub struct Run<'a> {
    /// The record API.
    pub api: Api<'a>,
    /// The rendered step.
    pub step: &'a RenderedStep,
    /// Its sObject.
    pub object: &'a str,
}

fn found(f: crate::api::Found) -> Found {
    Found {
        id: f.id,
        fields: Some(f.fields),
    }
}

#[async_trait]
impl RecordApi for Run<'_> {
    type Error = SalesforceError;

    fn step(&self) -> &RenderedStep {
        self.step
    }

    fn object(&self) -> &str {
        self.object
    }

    fn is_not_found(&self, e: &SalesforceError) -> bool {
        matches!(e, SalesforceError::NotFound { .. })
    }

    async fn class(&self, e: SalesforceError) -> DeliveryError {
        e.into()
    }

    fn is_id(&self, property: &str) -> bool {
        property.eq_ignore_ascii_case("Id")
    }

    fn ambiguity(&self, _m: &RenderedMatch) -> (String, String) {
        (format!("{} records", self.object), ON_MANY_HINT.into())
    }

    async fn by_unique(
        &self,
        m: &RenderedMatch,
        fields: &[&str],
    ) -> Result<Lookup<Option<Found>>, SalesforceError> {
        match self
            .api
            .get_external(self.object, (&m.property, &m.value), fields)
            .await
        {
            Ok(f) => Ok(Lookup::Done(f.map(found))),
            Err(SalesforceError::Several(_)) => Ok(Lookup::Several),
            Err(e) => Err(e),
        }
    }

    async fn candidates(
        &self,
        m: &RenderedMatch,
        assume_found: bool,
    ) -> Result<Vec<Found>, SalesforceError> {
        let empty: Vec<&str> = self.step.empty_only().collect();
        let rows = self
            .api
            .search(
                self.object,
                (&m.property, &m.value),
                m.on_many,
                &empty,
                assume_found,
            )
            .await?;
        Ok(rows.into_iter().map(found).collect())
    }

    async fn create(&self, m: Option<&RenderedMatch>) -> Result<Created, SalesforceError> {
        let mut body = self.step.create_properties();
        if let Some(m) = m.filter(|m| m.external_id)
            && field_ignoring_case(&body, &m.property).is_none()
        {
            body.insert(m.property.clone(), Value::String(m.value.clone()));
        }
        match self.api.create(self.object, &body).await {
            Ok(w) => Ok(Created::New(w.id)),
            // An active duplicate rule names the record that already exists: use it.
            Err(SalesforceError::Api {
                code,
                duplicate_of: Some(id),
                ..
            }) if code == "DUPLICATES_DETECTED" => Ok(Created::Exists(id)),
            Err(e) => Err(e),
        }
    }

    async fn read(&self, id: &str, fields: &[&str]) -> Result<Map<String, Value>, SalesforceError> {
        self.api.read(self.object, id, fields).await
    }

    fn is_empty(&self, record: &Map<String, Value>, property: &str) -> bool {
        is_blank(field_ignoring_case(record, property))
    }

    async fn update(&self, id: &str, body: &Map<String, Value>) -> Result<(), SalesforceError> {
        self.api.update(self.object, id, body).await.map(drop)
    }

    async fn delete(&self, id: &str) -> Result<(), SalesforceError> {
        self.api.delete(self.object, id).await
    }

    async fn native_upsert(
        &self,
        m: &RenderedMatch,
    ) -> Result<Option<Lookup<StepOutput>>, SalesforceError> {
        match self
            .api
            .upsert_external(self.object, &m.property, &m.value, &self.step.properties)
            .await
        {
            Ok(w) => Ok(Some(Lookup::Done(StepOutput {
                id: Some(w.id),
                created: w.created,
            }))),
            Err(SalesforceError::Several(_)) => Ok(Some(Lookup::Several)),
            Err(e) => Err(e),
        }
    }
}
