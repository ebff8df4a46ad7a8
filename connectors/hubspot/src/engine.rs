//! HubSpot's record API for the toolkit's action engine ([`slatis_crm::execute`]).
//!
//! What is HubSpot's own:
//! - `property: hs_object_id` (or `id`) is the record id;
//! - `external_id: true` is a unique property, read from the primary store with
//!   `idProperty`, and an `upsert` is HubSpot's own `batch/upsert` while every property
//!   is `always`;
//! - candidates: a step with `associate:` looks among the records its first association
//!   names (`associate[0]`, e.g. the contact's meetings), read through the v4
//!   associations and a batch read of `property` — HubSpot's primary store, so a record
//!   created a moment ago (with its association, in the same call) is found; any other
//!   step searches (`EQ`), which lags new records by seconds. Several are ordered oldest
//!   first by `createdAt`, ties by id;
//! - a create sends its links inline where their type id is known; a create answered 409
//!   "… Existing ID: N" (a unique value is taken) updates N instead.
//!
//! Invariant: the links a create did not make inline, and every link of a record that
//! was found or updated, are made afterwards ([`Run::pending`]).

use crate::api::{Api, Found as HsFound, oldest_first};
use crate::error::HubSpotError;
use crate::links::Link;
use async_trait::async_trait;
use serde_json::{Map, Value, json};
use slatis_core::DeliveryError;
use slatis_core::connector::StepOutput;
use slatis_core::step::{OnMany, RenderedMatch, RenderedStep};
use slatis_crm::{Created, Found, Lookup, RecordApi};
use std::sync::atomic::{AtomicBool, Ordering};

/// One step's run.
pub struct Run<'a> {
    /// The calls.
    pub api: Api<'a>,
    /// The step.
    pub step: &'a RenderedStep,
    /// Its object type.
    pub object: &'a str,
    /// Its `associate` items.
    pub links: &'a [Link<'a>],
    /// Whether a create made the inline links.
    pub inlined: AtomicBool,
}

/// Whether a match's property is the record id.
pub fn is_id(property: &str) -> bool {
    matches!(property, "hs_object_id" | "id")
}

fn same(object: &str, property: &str, a: &str, b: &str) -> bool {
    // contacts' email is kept as typed and compared ignoring case
    if property == "email" && crate::links::canonical(object) == "contacts" {
        a.eq_ignore_ascii_case(b)
    } else {
        a == b
    }
}

fn gone(object: &str, key: &str) -> HubSpotError {
    HubSpotError::NotFound {
        message: format!("no {object} {key}"),
    }
}

impl Run<'_> {
    /// The links still to make after the engine wrote `out`.
    pub fn pending(&self, out: &StepOutput) -> Vec<&Link<'_>> {
        let inlined = out.created && self.inlined.load(Ordering::SeqCst);
        self.links
            .iter()
            .filter(|l| !inlined || l.inline(self.object).is_none())
            .collect()
    }

    /// The records of the object linked to `link`'s record whose match property is the
    /// match's value.
    async fn among_associated(
        &self,
        m: &RenderedMatch,
        link: &Link<'_>,
        assume_found: bool,
    ) -> Result<Vec<HsFound>, HubSpotError> {
        let object = self.object;
        let ids = self
            .api
            .associated(link.to, link.id, object, assume_found)
            .await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let assume = json!({ "status": "COMPLETE",
            "results": [{ "id": "dry-run", "properties": { &m.property: &m.value } }] });
        let records = self
            .api
            .batch_read(object, &ids, &[m.property.as_str()], &assume)
            .await?;
        Ok(records
            .into_iter()
            .filter(|r| {
                r.properties
                    .get(&m.property)
                    .and_then(Value::as_str)
                    .is_some_and(|v| same(object, &m.property, v, &m.value))
            })
            .collect())
    }
}

#[async_trait]
impl RecordApi for Run<'_> {
    type Error = HubSpotError;

    fn step(&self) -> &RenderedStep {
        self.step
    }

    fn object(&self) -> &str {
        self.object
    }

    fn is_not_found(&self, e: &HubSpotError) -> bool {
        matches!(e, HubSpotError::NotFound { .. })
    }

    async fn class(&self, e: HubSpotError) -> DeliveryError {
        self.api.class(e).await
    }

    fn is_id(&self, property: &str) -> bool {
        is_id(property)
    }

    fn ambiguity(&self, _m: &RenderedMatch) -> (String, String) {
        let hint = match self.links.first() {
            Some(link) => format!(
                "the {} linked to {} {} hold it more than once; delete the duplicates in HubSpot",
                self.object, link.to, link.id
            ),
            None => "match on a unique property (external_id)".to_owned(),
        };
        (self.object.to_owned(), hint)
    }

    async fn by_unique(
        &self,
        m: &RenderedMatch,
        fields: &[&str],
    ) -> Result<Lookup<Option<Found>>, HubSpotError> {
        let found = self
            .api
            .read(self.object, &m.value, Some(&m.property), fields)
            .await?;
        Ok(Lookup::Done(found.map(|f| Found {
            id: f.id,
            fields: Some(f.properties),
        })))
    }

    async fn candidates(
        &self,
        m: &RenderedMatch,
        assume_found: bool,
    ) -> Result<Vec<Found>, HubSpotError> {
        let found = match self.links.first() {
            Some(link) => self.among_associated(m, link, assume_found).await?,
            None => {
                let newest_first = m.on_many == OnMany::Newest;
                self.api
                    .search(
                        self.object,
                        &m.property,
                        &m.value,
                        newest_first,
                        assume_found,
                    )
                    .await?
            }
        };
        Ok(oldest_first(found).into_iter().map(Found::id).collect())
    }

    async fn create(&self, _m: Option<&RenderedMatch>) -> Result<Created, HubSpotError> {
        let inline: Vec<Value> = self
            .links
            .iter()
            .filter_map(|l| l.inline(self.object))
            .collect();
        let properties = self.step.create_properties();
        match self.api.create(self.object, &properties, &inline).await {
            Ok(written) => {
                self.inlined.store(true, Ordering::SeqCst);
                Ok(Created::New(written.id))
            }
            // A unique value is taken (a contact's email): the record exists, so this
            // create — typically a retry whose first answer was lost — updates it.
            Err(HubSpotError::Conflict {
                existing_id: Some(id),
                ..
            }) => Ok(Created::Exists(id)),
            Err(e) => Err(e),
        }
    }

    async fn read(&self, id: &str, fields: &[&str]) -> Result<Map<String, Value>, HubSpotError> {
        let found = self.api.read(self.object, id, None, fields).await?;
        found
            .map(|f| f.properties)
            .ok_or_else(|| gone(self.object, id))
    }

    async fn update(&self, id: &str, body: &Map<String, Value>) -> Result<(), HubSpotError> {
        self.api.update(self.object, id, body).await.map(drop)
    }

    async fn delete(&self, id: &str) -> Result<(), HubSpotError> {
        self.api.delete(self.object, id).await
    }

    async fn native_upsert(
        &self,
        m: &RenderedMatch,
    ) -> Result<Option<Lookup<StepOutput>>, HubSpotError> {
        let w = self
            .api
            .upsert_unique(self.object, &m.property, &m.value, &self.step.properties)
            .await?;
        Ok(Some(Lookup::Done(StepOutput {
            id: Some(w.id),
            created: w.created,
        })))
    }
}
