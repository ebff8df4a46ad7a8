//! Pipedrive's record API for the toolkit's action engine ([`slatis_crm::execute`]): what
//! is Pipedrive's own in finding and writing a record.
//!
//! Finding: search with `exact_match` (persons, organizations, deals), several hits
//! ordered by creation from the primary store; on a later attempt the records updated
//! since the event arrived — for activities, the person's activities
//! (`GET /api/v2/activities?person_id=…&updated_since=…`, the person being the step's
//! primary participant) whose note carries the `note_ref`.
//!
//! Writing: bodies are shaped by [`fields`]; a `note_ref` match tags the note; an update
//! merges a person's `emails` / `phones` into the person's lists (the person is read
//! first), a note is empty when it holds only the tag, and an update with nothing to send
//! makes no call.
//!
//! Invariant: Pipedrive has no unique properties (`external_id` is refused at load) and no
//! native upsert.

use crate::api::{Api, by_creation};
use crate::error::PipedriveError;
use crate::{fields, note_ref};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use slatis_core::DeliveryError;
use slatis_core::step::{RenderedMatch, RenderedStep, WriteMode, is_blank};
use slatis_crm::{Created, Found, Lookup, RecordApi};

/// The most pages of 500 a recent-records lookup reads.
const RECENT_PAGES: usize = 10;

/// One step against one instance.
pub struct Run<'a> {
    /// The calls.
    pub api: Api<'a>,
    /// The step.
    pub step: &'a RenderedStep,
    /// Its object.
    pub object: &'a str,
}

/// The `note_ref` of a match, if it is one.
fn reference(m: Option<&RenderedMatch>) -> Option<&str> {
    m.filter(|m| m.property == note_ref::PROPERTY)
        .map(|m| m.value.as_str())
}

impl Run<'_> {
    /// Whether an update touches a person's email or phone lists (merged, so read first).
    fn contacts(&self) -> bool {
        self.object == "persons"
            && self.step.properties.keys().any(|k| {
                matches!(k.as_str(), "email" | "phone" | "emails" | "phones")
                    && self.step.write_mode(k) != WriteMode::Create
            })
    }

    /// For activities: the person id of the step's primary participant (the person the
    /// activity's `person_id` filter finds it by).
    fn primary_participant(&self) -> Option<String> {
        if self.object != "activities" {
            return None;
        }
        let participants = self.step.properties.get("participants")?.as_array()?;
        let primary = participants
            .iter()
            .find(|p| p.get("primary") == Some(&Value::Bool(true)))?;
        match primary.get("person_id")? {
            Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
                Some(s.clone())
            }
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }
}

#[async_trait]
impl RecordApi for Run<'_> {
    type Error = PipedriveError;

    fn step(&self) -> &RenderedStep {
        self.step
    }

    fn object(&self) -> &str {
        self.object
    }

    fn is_not_found(&self, e: &PipedriveError) -> bool {
        matches!(e, PipedriveError::NotFound(_))
    }

    async fn class(&self, e: PipedriveError) -> DeliveryError {
        e.into_delivery()
    }

    fn is_id(&self, property: &str) -> bool {
        property == "id"
    }

    fn ambiguity(&self, _m: &RenderedMatch) -> (String, String) {
        (
            self.object.to_owned(),
            "merge the duplicates in Pipedrive".into(),
        )
    }

    async fn by_unique(
        &self,
        _m: &RenderedMatch,
        _fields: &[&str],
    ) -> Result<Lookup<Option<Found>>, PipedriveError> {
        Err(DeliveryError::permanent("Pipedrive has no external ids").into())
    }

    async fn candidates(
        &self,
        m: &RenderedMatch,
        assume_found: bool,
    ) -> Result<Vec<Found>, PipedriveError> {
        let Some(field) = fields::search_field(self.object, &m.property) else {
            return Ok(Vec::new());
        };
        if m.value.trim().is_empty() {
            return Ok(Vec::new());
        }
        let ids = self
            .api
            .search(self.object, field, &m.value, assume_found)
            .await?;
        let ordered = if ids.len() > 1 && !self.api.http.dry_run() {
            self.api.oldest_first(self.object, &ids).await?
        } else {
            ids.iter().map(ToString::to_string).collect()
        };
        Ok(ordered.into_iter().map(Found::id).collect())
    }

    async fn recent(
        &self,
        m: &RenderedMatch,
        since: DateTime<Utc>,
    ) -> Result<Vec<String>, PipedriveError> {
        let mut filters = vec![(
            "updated_since",
            since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        )];
        if let Some(person) = self.primary_participant() {
            filters.push(("person_id", person));
        }
        let records = self.api.list(self.object, filters, RECENT_PAGES).await?;
        let matching: Vec<Value> = records
            .into_iter()
            .filter(|r| match reference(Some(m)) {
                Some(value) => r
                    .get("note")
                    .and_then(Value::as_str)
                    .is_some_and(|note| note_ref::carries(note, value)),
                None => fields::has(r, &m.property, &m.value),
            })
            .collect();
        Ok(by_creation(&matching))
    }

    async fn create(&self, m: Option<&RenderedMatch>) -> Result<Created, PipedriveError> {
        let mut body = fields::body(self.object, &self.step.create_properties());
        if let Some(value) = reference(m) {
            let note = body.get("note").and_then(Value::as_str).unwrap_or_default();
            let tagged = note_ref::with_tag(note, value);
            body.insert("note".into(), tagged.into());
        }
        Ok(Created::New(self.api.create(self.object, &body).await?))
    }

    async fn read(&self, id: &str, _fields: &[&str]) -> Result<Map<String, Value>, PipedriveError> {
        let record = self.api.get(self.object, id).await?;
        Ok(match record {
            Value::Object(o) => o,
            _ => Map::new(),
        })
    }

    fn reads_before_update(&self) -> bool {
        self.contacts()
    }

    fn confirms_unchanged(&self) -> bool {
        false
    }

    fn is_empty(&self, record: &Map<String, Value>, property: &str) -> bool {
        match (property, reference(self.step.matcher.as_ref())) {
            ("note", Some(value)) => {
                let note = record
                    .get("note")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                note_ref::without_tag(note, value).trim().is_empty()
            }
            _ => is_blank(fields::field(record, property)),
        }
    }

    fn update_body(&self, record: &Map<String, Value>) -> Map<String, Value> {
        let mut body = fields::body(
            self.object,
            &self.step.update_properties(|k| self.is_empty(record, k)),
        );
        if self.contacts() {
            for (list, email) in [("emails", true), ("phones", false)] {
                if let Some(new) = body.remove(list)
                    && let Some(merged) = fields::merge_contacts(record.get(list), &new, email)
                {
                    body.insert(list.into(), merged);
                }
            }
        }
        if let (Some(value), Some(Value::String(note))) =
            (reference(self.step.matcher.as_ref()), body.get("note"))
        {
            let tagged = note_ref::with_tag(note, value);
            body.insert("note".into(), tagged.into());
        }
        body
    }

    async fn update(&self, id: &str, body: &Map<String, Value>) -> Result<(), PipedriveError> {
        self.api.update(self.object, id, body).await
    }

    async fn delete(&self, id: &str) -> Result<(), PipedriveError> {
        self.api.delete(self.object, id).await
    }
}
