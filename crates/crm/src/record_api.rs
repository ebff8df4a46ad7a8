//! What a CRM supplies to the engine: its record calls and its error classes, for one
//! step (the implementing value knows the step, its object and the instance).
//!
//! Invariants an implementation keeps:
//! - [`RecordApi::candidates`] and [`RecordApi::recent`] answer ids oldest first (by
//!   creation, ties by id), so `match.on_many` picks the right end;
//! - a record that does not exist is an error [`RecordApi::is_not_found`] recognizes
//!   (the engine forgets it and looks again), never a success;
//! - in dry run each call answers what its call site assumes (nothing is sent).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use slatis_core::DeliveryError;
use slatis_core::connector::StepOutput;
use slatis_core::step::{RenderedMatch, RenderedStep, is_blank};

/// A record a lookup found: its id, and its fields when the lookup read them (then an
/// update need not read them again).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Found {
    /// The record's id.
    pub id: String,
    /// The fields read with it (at least the step's `on: empty` ones), if any.
    pub fields: Option<Map<String, Value>>,
}

impl Found {
    /// A record known by its id only.
    pub fn id(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            fields: None,
        }
    }
}

/// What a create did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    /// Made the record with this id.
    New(String),
    /// The CRM refused because the record exists already (a unique value is taken, a
    /// duplicate rule fired): it is this one, and is updated instead.
    Exists(String),
}

/// The answer of a lookup that may find several records where one was expected (a
/// unique-value read, a native upsert).
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup<T> {
    /// The answer.
    Done(T),
    /// Several records hold the value: they are found with [`RecordApi::candidates`] and
    /// chosen by `match.on_many`.
    Several,
}

/// A CRM's record API for one step.
#[async_trait]
pub trait RecordApi: Send + Sync {
    /// The CRM's failure.
    type Error: Send + From<DeliveryError>;

    /// The step being run.
    fn step(&self) -> &RenderedStep;

    /// The step's object (record type).
    fn object(&self) -> &str;

    /// Whether `e` says the record does not exist (404).
    fn is_not_found(&self, e: &Self::Error) -> bool;

    /// Classes a failure for the queue.
    async fn class(&self, e: Self::Error) -> DeliveryError;

    /// Whether a match on `property` names the record id itself.
    fn is_id(&self, property: &str) -> bool;

    /// The noun and the hint a `match.on_many: fail` error names for several records.
    fn ambiguity(&self, m: &RenderedMatch) -> (String, String);

    /// The record a unique property (`match.external_id: true`) names, read from the
    /// primary store with `fields`.
    ///
    /// # Errors
    /// A failed call.
    async fn by_unique(
        &self,
        m: &RenderedMatch,
        fields: &[&str],
    ) -> Result<Lookup<Option<Found>>, Self::Error>;

    /// The records that hold the match's value (search, or the CRM's own way), oldest
    /// first; `assume_found` is what a dry run pretends. Search may lag new records.
    ///
    /// # Errors
    /// A failed call.
    async fn candidates(
        &self,
        m: &RenderedMatch,
        assume_found: bool,
    ) -> Result<Vec<Found>, Self::Error>;

    /// On a later attempt: the ids of the records holding the match's value that the
    /// primary store has from `since` on, oldest first — what a create whose answer was
    /// lost made. By default none (a CRM whose lookups read the primary store already).
    ///
    /// # Errors
    /// A failed call.
    async fn recent(
        &self,
        _m: &RenderedMatch,
        _since: DateTime<Utc>,
    ) -> Result<Vec<String>, Self::Error> {
        Ok(Vec::new())
    }

    /// Creates the step's record with every property (`m`: the step's match, if any).
    ///
    /// # Errors
    /// A failed call.
    async fn create(&self, m: Option<&RenderedMatch>) -> Result<Created, Self::Error>;

    /// Reads `fields` of record `id` (every field the CRM answers by default).
    ///
    /// # Errors
    /// Not found when there is no such record; a failed call.
    async fn read(&self, id: &str, fields: &[&str]) -> Result<Map<String, Value>, Self::Error>;

    /// Whether an update reads the record first even without `on: empty` properties (to
    /// merge lists, say). Default: no.
    fn reads_before_update(&self) -> bool {
        false
    }

    /// Whether an update with nothing to send still confirms the record exists (a read).
    /// Default: yes.
    fn confirms_unchanged(&self) -> bool {
        true
    }

    /// Whether `property` is empty in `record` (as [`RecordApi::read`] answered it).
    fn is_empty(&self, record: &Map<String, Value>, property: &str) -> bool {
        is_blank(record.get(property))
    }

    /// The body an update of `record` sends: what the write modes allow (`always`, and
    /// `on: empty` where [`RecordApi::is_empty`]), in the CRM's shape. Nothing: no call.
    fn update_body(&self, record: &Map<String, Value>) -> Map<String, Value> {
        self.step().update_properties(|k| self.is_empty(record, k))
    }

    /// Updates record `id` with `body`.
    ///
    /// # Errors
    /// Not found when there is no such record; a failed call.
    async fn update(&self, id: &str, body: &Map<String, Value>) -> Result<(), Self::Error>;

    /// Deletes record `id`; one already gone is fine.
    ///
    /// # Errors
    /// A failed call.
    async fn delete(&self, id: &str) -> Result<(), Self::Error>;

    /// The CRM's own upsert by a unique property (one call, safe to repeat), used when
    /// every property is written `always`; `None` when the CRM has none.
    ///
    /// # Errors
    /// A failed call.
    async fn native_upsert(
        &self,
        _m: &RenderedMatch,
    ) -> Result<Option<Lookup<StepOutput>>, Self::Error> {
        Ok(None)
    }
}

/// A field of a record, its name compared ignoring ASCII case (Salesforce's field names).
pub fn field_ignoring_case<'v>(record: &'v Map<String, Value>, name: &str) -> Option<&'v Value> {
    record
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}
