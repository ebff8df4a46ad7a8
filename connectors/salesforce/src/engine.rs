//! The action engine: how a rendered step becomes calls of the record API.
//!
//! How a `match: {property, value}` finds its record:
//! - `property: Id`: the value is the record id;
//! - `external_id: true`: `GET /sobjects/{obj}/{field}/{value}`; a 300 (several records
//!   hold the value) lists them in no documented order, so they are searched again with
//!   SOQL ordered by creation and `match.on_many` picks one;
//! - otherwise: the record map, then SOQL (`… ORDER BY CreatedDate, Id`, asking only for
//!   the record `on_many` picks — `LIMIT 1` ascending for `oldest`, descending for
//!   `newest`; for `fail`, up to ten to name them).
//!
//! Write modes: a create sends every property; an update sends the `always` ones and the
//! `on: empty` ones whose field Salesforce holds empty (read first, with the lookup's
//! SOQL where there is one, else `GET …?fields=`), never the `on: create` ones. An
//! `upsert` on an external id is Salesforce's own (one `PATCH`, safe to repeat) while
//! every property is `always`; a native upsert cannot be conditional, so with any other
//! write mode the record is looked up first and then updated or created (the external id
//! set in the create's body).
//!
//! Invariants: a create refused as `DUPLICATES_DETECTED` updates the record Salesforce
//! names instead; an update of a record Salesforce no longer has (404) forgets it in the
//! record map and updates what a search finds instead, if anything; an update with
//! nothing to send still confirms the record exists.

use crate::SalesforceError;
use crate::api::{Api, Found, Written};
use serde_json::{Map, Value};
use slatis_core::DeliveryError;
use slatis_core::connector::StepContext;
use slatis_core::step::{Action, RenderedMatch, RenderedStep, is_blank};

/// What a failure says when `on_many: fail` meets several records.
const ON_MANY_HINT: &str = "match on an external-id field, or use a duplicate rule";

/// A record a lookup located: its id, and its `on: empty` fields when the lookup read
/// them.
struct Located {
    id: String,
    fields: Option<Map<String, Value>>,
}

impl From<Found> for Located {
    fn from(f: Found) -> Self {
        Self {
            id: f.id,
            fields: Some(f.fields),
        }
    }
}

/// One step's run.
pub struct Run<'a> {
    /// The record API.
    pub api: Api<'a>,
    /// The record map and the rest of the step's context.
    pub cx: &'a StepContext<'a>,
    /// The rendered step.
    pub step: &'a RenderedStep,
    /// Its sObject.
    pub object: &'a str,
}

fn is_id(field: &str) -> bool {
    field.eq_ignore_ascii_case("Id")
}

fn not_found(object: &str, m: &RenderedMatch) -> DeliveryError {
    DeliveryError::retryable(format!(
        "no {object} with {} = {:?} yet (retried)",
        m.property, m.value
    ))
}

/// A field of a record Salesforce answered, its name ignoring case.
fn field<'v>(fields: &'v Map<String, Value>, name: &str) -> Option<&'v Value> {
    fields
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

impl Run<'_> {
    /// Runs the step; the record it wrote or found, if any.
    ///
    /// # Errors
    /// Every failure, classed.
    pub async fn execute(&self) -> Result<Option<Written>, DeliveryError> {
        let (object, step) = (self.object, self.step);
        Ok(match (step.action, step.matcher.as_ref()) {
            (Action::Create, _) => Some(self.create(None).await?),
            (Action::Upsert, Some(m)) => Some(self.upsert(m).await?),
            (Action::Update, Some(m)) => Some(self.update(m).await?),
            (Action::Delete, Some(m)) => {
                if let Some(found) = self.locate(m, true).await? {
                    self.api.delete(object, &found.id).await?;
                }
                None
            }
            (Action::Find, Some(m)) => match self.locate(m, true).await? {
                Some(found) => Some(Written {
                    id: found.id,
                    created: false,
                }),
                None if step.optional => None,
                None => return Err(not_found(object, m)),
            },
            (action, _) => {
                return Err(DeliveryError::permanent(format!(
                    "`{action}` needs a `match`"
                )));
            }
        })
    }

    /// The fields an update must read before it writes (`on: empty`).
    fn empty_fields(&self) -> Vec<&str> {
        self.step.empty_only().collect()
    }

    /// The record a match names: by id, by external id, by the record map, then SOQL.
    async fn locate(
        &self,
        m: &RenderedMatch,
        assume_found: bool,
    ) -> Result<Option<Located>, DeliveryError> {
        if is_id(&m.property) {
            return Ok(Some(Located {
                id: m.value.clone(),
                fields: None,
            }));
        }
        if m.external_id {
            return Ok(self.by_external(m).await?.map(Located::from));
        }
        if let Some(id) = self
            .cx
            .records
            .get(self.object, &m.property, &m.value)
            .await?
        {
            return Ok(Some(Located { id, fields: None }));
        }
        Ok(self.search(m, assume_found).await?.map(Located::from))
    }

    /// The record SOQL finds for a match, as `on_many` picks it.
    async fn search(
        &self,
        m: &RenderedMatch,
        assume_found: bool,
    ) -> Result<Option<Found>, DeliveryError> {
        let rows = self
            .api
            .search(
                self.object,
                (&m.property, &m.value),
                m.on_many,
                &self.empty_fields(),
                assume_found,
            )
            .await?;
        let ids = rows.iter().map(|r| r.id.clone()).collect();
        let chosen = m.choose(ids, &format!("{} records", self.object), ON_MANY_HINT)?;
        Ok(chosen.and_then(|id| rows.into_iter().find(|r| r.id == id)))
    }

    /// The record an external id names; several (300) are searched again by creation.
    async fn by_external(&self, m: &RenderedMatch) -> Result<Option<Found>, DeliveryError> {
        match self
            .api
            .get_external(self.object, (&m.property, &m.value), &self.empty_fields())
            .await
        {
            Ok(found) => Ok(found),
            Err(SalesforceError::Several(_)) => self.search(m, true).await,
            Err(e) => Err(e.into()),
        }
    }

    /// Creates the record (with `external`'s value when the match is an external id the
    /// body lacks).
    async fn create(&self, external: Option<&RenderedMatch>) -> Result<Written, DeliveryError> {
        let mut body = self.step.create_properties();
        if let Some(m) = external
            && field(&body, &m.property).is_none()
        {
            body.insert(m.property.clone(), Value::String(m.value.clone()));
        }
        match self.api.create(self.object, &body).await {
            Ok(w) => Ok(w),
            // An active duplicate rule names the record that already exists: use it.
            Err(SalesforceError::Api {
                code,
                duplicate_of: Some(id),
                ..
            }) if code == "DUPLICATES_DETECTED" => Ok(self.write_existing(&id, None).await?),
            Err(e) => Err(e.into()),
        }
    }

    /// Updates an existing record with what its write modes allow, reading its
    /// `on: empty` fields first unless `fields` holds them.
    async fn write_existing(
        &self,
        id: &str,
        fields: Option<Map<String, Value>>,
    ) -> Result<Written, SalesforceError> {
        let empty = self.empty_fields();
        let (fields, confirmed) = match fields {
            Some(f) => (f, true),
            None if !empty.is_empty() => (self.api.read(self.object, id, &empty).await?, true),
            None => (Map::new(), false),
        };
        let body = self.step.update_properties(|k| is_blank(field(&fields, k)));
        if body.is_empty() {
            if !confirmed {
                self.api.read(self.object, id, &[]).await?;
            }
            return Ok(Written {
                id: id.to_owned(),
                created: false,
            });
        }
        self.api.update(self.object, id, &body).await
    }

    async fn upsert(&self, m: &RenderedMatch) -> Result<Written, DeliveryError> {
        let known = if m.external_id && self.step.write_modes.is_empty() {
            // Salesforce's own upsert: one call, safe to repeat after a lost answer.
            match self
                .api
                .upsert_external(self.object, &m.property, &m.value, &self.step.properties)
                .await
            {
                Err(SalesforceError::Several(_)) => self.search(m, true).await?.map(Located::from),
                done => return Ok(done?),
            }
        } else {
            self.locate(m, false).await?
        };
        if let Some(known) = known
            && let Some(w) = self.update_or_refind(m, known, false).await?
        {
            return Ok(w);
        }
        self.create(m.external_id.then_some(m)).await
    }

    async fn update(&self, m: &RenderedMatch) -> Result<Written, DeliveryError> {
        let Some(known) = self.locate(m, true).await? else {
            return Err(not_found(self.object, m));
        };
        self.update_or_refind(m, known, true)
            .await?
            .ok_or_else(|| not_found(self.object, m))
    }

    /// Updates `known`; if Salesforce no longer has it (deleted since), forgets it and
    /// updates what SOQL finds instead, if anything.
    async fn update_or_refind(
        &self,
        m: &RenderedMatch,
        known: Located,
        assume_found: bool,
    ) -> Result<Option<Written>, DeliveryError> {
        let known_id = known.id.clone();
        match self.write_existing(&known.id, known.fields).await {
            Ok(w) => Ok(Some(w)),
            Err(SalesforceError::NotFound { .. }) if !is_id(&m.property) && !m.external_id => {
                self.cx
                    .records
                    .forget(self.object, &m.property, &m.value)
                    .await?;
                match self
                    .search(m, assume_found)
                    .await?
                    .filter(|f| f.id != known_id)
                {
                    Some(found) => Ok(Some(
                        self.write_existing(&found.id, Some(found.fields)).await?,
                    )),
                    None => Ok(None),
                }
            }
            Err(SalesforceError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}
