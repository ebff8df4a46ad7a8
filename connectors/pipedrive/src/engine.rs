//! The action engine: how `create`, `update`, `upsert`, `delete` and `find` find their
//! record and write it.
//!
//! Locating a `match: {property, value}`: `property: id` names the record; otherwise the
//! record map, then search (`exact_match`; persons, organizations and deals), every hit
//! ordered by creation from the primary store so `match.on_many` takes the oldest, the
//! newest, or fails. On a later attempt (the first may have made the record and lost the
//! answer) the records updated since the event arrived are read from the primary store —
//! for activities, the person's activities (`GET /api/v2/activities?person_id=…&updated_since=…`,
//! the person being the step's primary participant) whose note carries the `note_ref`.
//!
//! Writing: a create sends every property; an update sends what the write modes allow
//! (`on: empty` ones only where the record's field is empty, never `on: create` ones),
//! merges a person's `emails` / `phones` into the person's lists, and is skipped when
//! nothing is left to send. The record is read first only when an update needs it.
//!
//! Invariants:
//! - an upsert never makes a second record for the same match in one process: upserts of
//!   one match value run one at a time, and each remembers what it made before the next
//!   looks;
//! - a record that is gone (404 on update) is forgotten: an upsert creates it again, an
//!   update is retried (search may not see the new one yet).

use crate::api::{Api, by_creation};
use crate::error::PipedriveError;
use crate::{Pipedrive, fields, note_ref};
use serde_json::{Map, Value};
use slatis_core::DeliveryError;
use slatis_core::connector::{StepContext, StepOutput};
use slatis_core::step::{Action, RenderedMatch, RenderedStep, WriteMode, is_blank};
use std::sync::Arc;
use std::time::Duration;

/// How far before the event's arrival a lost create's record is looked for.
const RECENT_SLACK: Duration = Duration::from_secs(300);

/// The most pages of 500 a recent-records lookup reads.
const RECENT_PAGES: usize = 10;

/// One step against one instance.
struct Run<'a> {
    api: Api<'a>,
    cx: &'a StepContext<'a>,
    step: &'a RenderedStep,
    object: &'a str,
}

/// Runs a rendered step.
pub async fn execute(
    pd: &Pipedrive,
    step: &RenderedStep,
    cx: &StepContext<'_>,
) -> Result<StepOutput, DeliveryError> {
    let run = Run {
        api: Api { pd, http: &cx.http },
        cx,
        step,
        object: step.object.as_deref().unwrap_or_default(),
    };
    let found = |id: String| StepOutput {
        id: Some(id),
        created: false,
    };
    Ok(match (step.action, step.matcher.as_ref()) {
        (Action::Create, m) => run.create(m).await?,
        (Action::Upsert, Some(m)) => {
            let _held = pd.lock(run.object, m).await;
            let out = match run.locate(m, false).await? {
                Some(id) => match run.update(&id, m).await {
                    Ok(()) => found(id),
                    Err(PipedriveError::NotFound(_)) => {
                        cx.records.forget(run.object, &m.property, &m.value).await?;
                        run.create(Some(m)).await?
                    }
                    Err(e) => return Err(e.into()),
                },
                None => run.create(Some(m)).await?,
            };
            // Remembered before the next upsert of this value looks.
            if let Some(id) = &out.id
                && !cx.http.dry_run()
            {
                cx.records
                    .put(run.object, &m.property, &m.value, id)
                    .await?;
            }
            out
        }
        (Action::Update, Some(m)) => match run.locate(m, true).await? {
            Some(id) => match run.update(&id, m).await {
                Err(PipedriveError::NotFound(_)) => {
                    cx.records.forget(run.object, &m.property, &m.value).await?;
                    return Err(not_found(run.object, m));
                }
                other => {
                    other?;
                    found(id)
                }
            },
            None => return Err(not_found(run.object, m)),
        },
        (Action::Delete, Some(m)) => {
            if let Some(id) = run.locate(m, true).await? {
                run.api.delete(run.object, &id).await?;
            }
            StepOutput::default()
        }
        (Action::Find, Some(m)) => match run.locate(m, true).await? {
            Some(id) => found(id),
            None if step.optional => StepOutput::default(),
            None => return Err(not_found(run.object, m)),
        },
        (action, _) => {
            return Err(DeliveryError::permanent(format!(
                "`{action}` needs a `match`"
            )));
        }
    })
}

fn not_found(object: &str, m: &RenderedMatch) -> DeliveryError {
    DeliveryError::retryable(format!(
        "no {object} with {} = {:?} yet (search can lag; retried)",
        m.property, m.value
    ))
}

/// The `note_ref` of a match, if it is one.
fn reference(m: Option<&RenderedMatch>) -> Option<&str> {
    m.filter(|m| m.property == note_ref::PROPERTY)
        .map(|m| m.value.as_str())
}

impl Run<'_> {
    /// Creates the record with every property.
    async fn create(&self, m: Option<&RenderedMatch>) -> Result<StepOutput, DeliveryError> {
        let mut body = fields::body(self.object, &self.step.create_properties());
        if let Some(value) = reference(m) {
            let note = body.get("note").and_then(Value::as_str).unwrap_or_default();
            let tagged = note_ref::with_tag(note, value);
            body.insert("note".into(), tagged.into());
        }
        Ok(StepOutput {
            id: Some(self.api.create(self.object, &body).await?),
            created: true,
        })
    }

    /// Updates record `id` with what the write modes allow; nothing to send, no call.
    async fn update(&self, id: &str, m: &RenderedMatch) -> Result<(), PipedriveError> {
        let contacts = self.object == "persons"
            && self.step.properties.keys().any(|k| {
                matches!(k.as_str(), "email" | "phone" | "emails" | "phones")
                    && self.step.write_mode(k) != WriteMode::Create
            });
        let record = if contacts || self.step.empty_only().next().is_some() {
            Some(self.api.get(self.object, id).await?)
        } else {
            None
        };
        let record = record.unwrap_or_default();
        let reference = reference(Some(m));
        let empty = |property: &str| match (property, reference) {
            ("note", Some(value)) => {
                let note = record
                    .get("note")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                note_ref::without_tag(note, value).trim().is_empty()
            }
            _ => is_blank(fields::field(&record, property)),
        };
        let mut body = fields::body(self.object, &self.step.update_properties(empty));
        if contacts {
            merge(&mut body, &record);
        }
        if let (Some(value), Some(Value::String(note))) = (reference, body.get("note")) {
            let tagged = note_ref::with_tag(note, value);
            body.insert("note".into(), tagged.into());
        }
        if body.is_empty() {
            return Ok(());
        }
        self.api.update(self.object, id, &body).await
    }

    /// The record a match names: by id, the record map, search, and on a later attempt
    /// the records updated since the event arrived. `assume_found`: a dry run shows the
    /// write to an existing record.
    async fn locate(
        &self,
        m: &RenderedMatch,
        assume_found: bool,
    ) -> Result<Option<String>, DeliveryError> {
        if m.property == "id" {
            return Ok(Some(m.value.clone()));
        }
        if let Some(id) = self
            .cx
            .records
            .get(self.object, &m.property, &m.value)
            .await?
        {
            return Ok(Some(id));
        }
        let hint = "merge the duplicates in Pipedrive";
        if let Some(field) = fields::search_field(self.object, &m.property)
            && !m.value.trim().is_empty()
        {
            let ids = self
                .api
                .search(self.object, field, &m.value, assume_found)
                .await?;
            let ordered = if ids.len() > 1 && !self.cx.http.dry_run() {
                self.api.oldest_first(self.object, &ids).await?
            } else {
                ids.iter().map(ToString::to_string).collect()
            };
            if let Some(id) = m.choose(ordered, self.object, hint)? {
                return Ok(Some(id));
            }
        }
        if self.cx.http.dry_run() && assume_found {
            // A dry run has no record map entries to show: assume the record exists, so the
            // run shows the write it would make.
            return Ok(Some("0".to_owned()));
        }
        if self.cx.attempt > 1 {
            let recent = self.recent(m).await?;
            return m.choose(recent, self.object, hint);
        }
        Ok(None)
    }

    /// The records an earlier attempt may have made (and lost the answer of): updated
    /// since the event arrived, holding the match's value, oldest first. Read from the
    /// primary store: search may not see them yet.
    async fn recent(&self, m: &RenderedMatch) -> Result<Vec<String>, DeliveryError> {
        let since = slatis_core::time::sub(self.cx.received_at, RECENT_SLACK);
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

/// Replaces the body's `emails` / `phones` with the person's lists and what they lack
/// added, or drops them when nothing is to be added.
fn merge(body: &mut Map<String, Value>, record: &Value) {
    for (list, email) in [("emails", true), ("phones", false)] {
        if let Some(new) = body.remove(list)
            && let Some(merged) = fields::merge_contacts(record.get(list), &new, email)
        {
            body.insert(list.into(), merged);
        }
    }
}

/// Held while an upsert of one match value runs; the last holder removes the entry.
struct KeyLock<'a> {
    pd: &'a Pipedrive,
    key: String,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Drop for KeyLock<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut locks = self
            .pd
            .locks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if locks
            .get(&self.key)
            .is_some_and(|l| Arc::strong_count(l) == 1)
        {
            locks.remove(&self.key);
        }
    }
}

impl Pipedrive {
    fn lock_key(object: &str, m: &RenderedMatch) -> String {
        format!("{object}\u{0}{}\u{0}{}", m.property, m.value.to_lowercase())
    }

    /// Waits for the upserts of this match value that came first.
    async fn lock(&self, object: &str, m: &RenderedMatch) -> KeyLock<'_> {
        let key = Self::lock_key(object, m);
        let mutex = {
            let mut locks = self
                .locks
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            Arc::clone(locks.entry(key.clone()).or_default())
        };
        KeyLock {
            pd: self,
            key,
            guard: Some(mutex.lock_owned().await),
        }
    }
}
