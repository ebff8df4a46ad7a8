//! The action engine: how `create`, `update`, `upsert`, `delete` and `find` locate their
//! record and write it, the same for every CRM.
//!
//! Locating a `match: {property, value}`: the id itself where the property names it; a
//! unique property's record read from the primary store (several: by `on_many`);
//! otherwise the record map, then the CRM's candidates (search), by `on_many`; in dry run
//! a write to a record that is not found shows the write to record `0`; on a later
//! attempt, the records the primary store holds since the event arrived.
//!
//! Writing: a create sends every property; a create the CRM refuses because the record
//! exists updates that record. An update sends what the write modes allow, reading the
//! record first only when an `on: empty` property (or the CRM) needs it, and sends
//! nothing when nothing is left (confirming the record exists, where the CRM wants).
//!
//! Invariants:
//! - upserts of one match value (ignoring case) run one at a time under the instance's
//!   locks, and each puts its record in the record map before the next looks (not in dry
//!   run);
//! - a record gone from the CRM (404 on update) is forgotten in the record map and looked
//!   up again (another record may hold the value); none found: an upsert creates, an
//!   update is a retryable "not yet";
//! - a unique-property upsert uses the CRM's own upsert only while every property is
//!   `always` (a native upsert cannot be conditional).

use crate::record_api::{Created, Found, Lookup, RecordApi};
use serde_json::{Map, Value};
use slatis_core::DeliveryError;
use slatis_core::connector::{StepContext, StepOutput};
use slatis_core::step::{Action, RenderedMatch};
use std::time::Duration;

/// How far before the event's arrival a lost create's record is looked for.
const RECENT_SLACK: Duration = Duration::from_secs(300);

/// The id a dry run shows for a record it assumes exists.
const DRY_RUN_ID: &str = "0";

/// Runs the step `api` was made for.
///
/// # Errors
/// Every failure, classed.
pub async fn execute<A: RecordApi>(
    api: &A,
    cx: &StepContext<'_>,
) -> Result<StepOutput, DeliveryError> {
    let engine = Engine { api, cx };
    let step = api.step();
    match (step.action, step.matcher.as_ref()) {
        (Action::Create, m) => engine.create(m).await,
        (Action::Upsert, Some(m)) => engine.upsert(m).await,
        (Action::Update, Some(m)) => engine.update(m).await,
        (Action::Delete, Some(m)) => {
            if let Some(found) = engine.locate(m, true).await? {
                engine.check(api.delete(&found.id).await).await?;
            }
            Ok(StepOutput::default())
        }
        (Action::Find, Some(m)) => match engine.locate(m, true).await? {
            Some(found) => Ok(existing(found.id)),
            None if step.optional => Ok(StepOutput::default()),
            None => Err(engine.not_found(m)),
        },
        (action, _) => Err(DeliveryError::permanent(format!(
            "`{action}` needs a `match`"
        ))),
    }
}

fn existing(id: String) -> StepOutput {
    StepOutput {
        id: Some(id),
        created: false,
    }
}

struct Engine<'a, A> {
    api: &'a A,
    cx: &'a StepContext<'a>,
}

impl<A: RecordApi> Engine<'_, A> {
    fn object(&self) -> &str {
        self.api.object()
    }

    async fn check<T>(&self, r: Result<T, A::Error>) -> Result<T, DeliveryError> {
        match r {
            Ok(v) => Ok(v),
            Err(e) => Err(self.api.class(e).await),
        }
    }

    fn not_found(&self, m: &RenderedMatch) -> DeliveryError {
        DeliveryError::retryable(format!(
            "no {} with {} = {:?} yet (search can lag new records; retried)",
            self.object(),
            m.property,
            m.value
        ))
    }

    /// The record `on_many` picks among `found` (oldest first).
    fn choose(&self, m: &RenderedMatch, found: Vec<Found>) -> Result<Option<Found>, DeliveryError> {
        let (noun, hint) = self.api.ambiguity(m);
        let ids = found.iter().map(|f| f.id.clone()).collect();
        let chosen = m.choose(ids, &noun, &hint)?;
        Ok(chosen.and_then(|id| found.into_iter().find(|f| f.id == id)))
    }

    /// The record the CRM's candidates hold for `m`, by `on_many`.
    async fn candidate(
        &self,
        m: &RenderedMatch,
        assume_found: bool,
    ) -> Result<Option<Found>, DeliveryError> {
        let found = self
            .check(self.api.candidates(m, assume_found).await)
            .await?;
        self.choose(m, found)
    }

    /// The record a match names (see the module docs). `assume_found`: a dry run shows
    /// the write to an existing record.
    async fn locate(
        &self,
        m: &RenderedMatch,
        assume_found: bool,
    ) -> Result<Option<Found>, DeliveryError> {
        if self.api.is_id(&m.property) {
            return Ok(Some(Found::id(m.value.clone())));
        }
        let empty: Vec<&str> = self.api.step().empty_only().collect();
        if m.external_id {
            return match self.check(self.api.by_unique(m, &empty).await).await? {
                Lookup::Done(found) => Ok(found),
                Lookup::Several => self.candidate(m, true).await,
            };
        }
        let records = self.cx.records;
        if let Some(id) = records.get(self.object(), &m.property, &m.value).await? {
            return Ok(Some(Found::id(id)));
        }
        if let Some(found) = self.candidate(m, assume_found).await? {
            return Ok(Some(found));
        }
        if self.cx.http.dry_run() && assume_found {
            return Ok(Some(Found::id(DRY_RUN_ID)));
        }
        if self.cx.attempt > 1 {
            let since = slatis_core::time::sub(self.cx.received_at, RECENT_SLACK);
            let recent = self.check(self.api.recent(m, since).await).await?;
            return self.choose(m, recent.into_iter().map(Found::id).collect());
        }
        Ok(None)
    }

    /// Creates the record; one the CRM says exists already is updated instead.
    async fn create(&self, m: Option<&RenderedMatch>) -> Result<StepOutput, DeliveryError> {
        match self.check(self.api.create(m).await).await? {
            Created::New(id) => Ok(StepOutput {
                id: Some(id),
                created: true,
            }),
            Created::Exists(id) => {
                let done = self.write_existing(&id, None).await;
                self.check(done).await
            }
        }
    }

    /// Updates record `id` with what the write modes allow, reading it first (unless
    /// `fields` holds what was read) when an `on: empty` property or the CRM needs it.
    async fn write_existing(
        &self,
        id: &str,
        fields: Option<Map<String, Value>>,
    ) -> Result<StepOutput, A::Error> {
        let empty: Vec<&str> = self.api.step().empty_only().collect();
        let (record, confirmed) = match fields {
            Some(f) => (f, true),
            None if !empty.is_empty() || self.api.reads_before_update() => {
                (self.api.read(id, &empty).await?, true)
            }
            None => (Map::new(), false),
        };
        let body = self.api.update_body(&record);
        if body.is_empty() {
            if !confirmed && self.api.confirms_unchanged() {
                self.api.read(id, &[]).await?;
            }
        } else {
            self.api.update(id, &body).await?;
        }
        Ok(existing(id.to_owned()))
    }

    /// Updates `known`; when the CRM no longer has it, forgets it and updates what a
    /// lookup finds instead, if anything.
    async fn update_or_refind(
        &self,
        m: &RenderedMatch,
        known: Found,
        assume_found: bool,
    ) -> Result<Option<StepOutput>, DeliveryError> {
        let known_id = known.id.clone();
        match self.write_existing(&known.id, known.fields).await {
            Ok(out) => Ok(Some(out)),
            Err(e) if self.api.is_not_found(&e) => {
                if self.api.is_id(&m.property) || m.external_id {
                    return Ok(None);
                }
                let records = self.cx.records;
                records.forget(self.object(), &m.property, &m.value).await?;
                match self
                    .candidate(m, assume_found)
                    .await?
                    .filter(|f| f.id != known_id)
                {
                    Some(found) => {
                        let done = self.write_existing(&found.id, found.fields).await;
                        self.check(done).await.map(Some)
                    }
                    None => Ok(None),
                }
            }
            Err(e) => Err(self.api.class(e).await),
        }
    }

    async fn upsert(&self, m: &RenderedMatch) -> Result<StepOutput, DeliveryError> {
        let key = format!(
            "{}\u{0}{}\u{0}{}",
            self.object(),
            m.property,
            m.value.to_lowercase()
        );
        let _held = self.cx.locks.lock(&key).await?;
        let out = self.upsert_held(m).await?;
        // Remembered before the next upsert of this value looks.
        if let Some(id) = &out.id
            && !self.cx.http.dry_run()
        {
            let records = self.cx.records;
            records
                .put(self.object(), &m.property, &m.value, id)
                .await?;
        }
        Ok(out)
    }

    async fn upsert_held(&self, m: &RenderedMatch) -> Result<StepOutput, DeliveryError> {
        let native = m.external_id && self.api.step().write_modes.is_empty();
        let native = if native {
            self.check(self.api.native_upsert(m).await).await?
        } else {
            None
        };
        let known = match native {
            Some(Lookup::Done(out)) => return Ok(out),
            Some(Lookup::Several) => self.candidate(m, true).await?,
            None => self.locate(m, false).await?,
        };
        if let Some(known) = known
            && let Some(out) = self.update_or_refind(m, known, false).await?
        {
            return Ok(out);
        }
        self.create(Some(m)).await
    }

    async fn update(&self, m: &RenderedMatch) -> Result<StepOutput, DeliveryError> {
        let Some(known) = self.locate(m, true).await? else {
            return Err(self.not_found(m));
        };
        self.update_or_refind(m, known, true)
            .await?
            .ok_or_else(|| self.not_found(m))
    }
}
