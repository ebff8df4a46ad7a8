//! An in-memory CRM behind [`RecordApi`], as strict as the real ones: search lags writes
//! until [`Fake::index`], a record that is gone answers 404, a unique property refuses a
//! second record, and a create's answer can be lost after the record was made. The
//! engine's idempotency rules are tested against it (see `engine_tests`).
//!
//! Invariant: ids are never reused; "oldest first" is creation order.

use crate::record_api::{Created, Found, Lookup, RecordApi};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use slatis_core::DeliveryError;
use slatis_core::step::{RenderedMatch, RenderedStep};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// A fake CRM failure.
#[derive(Debug)]
pub enum FakeError {
    /// 404.
    NotFound,
    /// The record was made, the answer lost on the way back.
    Lost,
    /// Classed already.
    Delivery(DeliveryError),
}

impl From<DeliveryError> for FakeError {
    fn from(e: DeliveryError) -> Self {
        Self::Delivery(e)
    }
}

/// One stored record.
#[derive(Debug, Clone)]
pub struct Rec {
    pub id: String,
    pub fields: Map<String, Value>,
    pub created_at: DateTime<Utc>,
    pub indexed: bool,
    pub gone: bool,
}

/// The fake CRM.
#[derive(Default)]
pub struct Fake {
    pub recs: Mutex<Vec<Rec>>,
    /// The property that holds unique values, if any.
    pub unique: Option<&'static str>,
    /// Whether the CRM has a native upsert by the unique property.
    pub native: bool,
    /// The next create's answer is lost.
    pub lose_next_create: AtomicBool,
    /// Every call, in order (`create`, `update 3`, `search`, …).
    pub calls: Mutex<Vec<String>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn same(a: Option<&Value>, b: &str) -> bool {
    a.and_then(Value::as_str)
        .is_some_and(|a| a.eq_ignore_ascii_case(b))
}

impl Fake {
    /// Lets search see every record made so far.
    pub fn index(&self) {
        for r in lock(&self.recs).iter_mut() {
            r.indexed = true;
        }
    }

    /// Adds a record directly (already indexed); its id.
    pub fn seed(&self, fields: Value) -> String {
        let id = self.insert(fields.as_object().cloned().unwrap_or_default());
        self.index();
        id
    }

    fn insert(&self, fields: Map<String, Value>) -> String {
        let mut recs = lock(&self.recs);
        let id = (recs.len() + 1).to_string();
        recs.push(Rec {
            id: id.clone(),
            fields,
            created_at: Utc::now(),
            indexed: false,
            gone: false,
        });
        id
    }

    /// The records not deleted.
    pub fn live(&self) -> Vec<Rec> {
        lock(&self.recs)
            .iter()
            .filter(|r| !r.gone)
            .cloned()
            .collect()
    }

    /// Deletes record `id` behind the connector's back.
    pub fn remove(&self, id: &str) {
        for r in lock(&self.recs).iter_mut().filter(|r| r.id == id) {
            r.gone = true;
        }
    }

    /// The calls made of `kind`.
    pub fn count(&self, kind: &str) -> usize {
        lock(&self.calls)
            .iter()
            .filter(|c| c.split(' ').next() == Some(kind))
            .count()
    }

    fn log(&self, call: String) {
        lock(&self.calls).push(call);
    }

    fn holding(&self, m: &RenderedMatch, pred: impl Fn(&Rec) -> bool) -> Vec<Rec> {
        lock(&self.recs)
            .iter()
            .filter(|r| !r.gone && pred(r) && same(r.fields.get(&m.property), &m.value))
            .cloned()
            .collect()
    }
}

/// The fake's record API for one step.
pub struct FakeApi<'a> {
    pub crm: &'a Fake,
    pub step: RenderedStep,
    pub dry_run: bool,
}

fn found(r: &Rec) -> Found {
    Found {
        id: r.id.clone(),
        fields: Some(r.fields.clone()),
    }
}

#[async_trait]
impl RecordApi for FakeApi<'_> {
    type Error = FakeError;

    fn step(&self) -> &RenderedStep {
        &self.step
    }

    fn object(&self) -> &str {
        "contacts"
    }

    fn is_not_found(&self, e: &FakeError) -> bool {
        matches!(e, FakeError::NotFound)
    }

    async fn class(&self, e: FakeError) -> DeliveryError {
        match e {
            FakeError::NotFound => DeliveryError::permanent("HTTP 404"),
            FakeError::Lost => DeliveryError::retryable("the answer was lost"),
            FakeError::Delivery(e) => e,
        }
    }

    fn is_id(&self, property: &str) -> bool {
        property == "id"
    }

    fn ambiguity(&self, _m: &RenderedMatch) -> (String, String) {
        ("contacts".into(), "merge them".into())
    }

    async fn by_unique(
        &self,
        m: &RenderedMatch,
        _fields: &[&str],
    ) -> Result<Lookup<Option<Found>>, FakeError> {
        self.crm.log("read_unique".into());
        let hits = self.crm.holding(m, |_| true);
        Ok(match hits.as_slice() {
            [] => Lookup::Done(None),
            [one] => Lookup::Done(Some(found(one))),
            _ => Lookup::Several,
        })
    }

    async fn candidates(
        &self,
        m: &RenderedMatch,
        _assume_found: bool,
    ) -> Result<Vec<Found>, FakeError> {
        self.crm.log("search".into());
        if self.dry_run {
            return Ok(Vec::new());
        }
        Ok(self
            .crm
            .holding(m, |r| r.indexed)
            .iter()
            .map(found)
            .collect())
    }

    async fn recent(
        &self,
        m: &RenderedMatch,
        since: DateTime<Utc>,
    ) -> Result<Vec<String>, FakeError> {
        self.crm.log("recent".into());
        Ok(self
            .crm
            .holding(m, |r| r.created_at >= since)
            .into_iter()
            .map(|r| r.id)
            .collect())
    }

    async fn create(&self, _m: Option<&RenderedMatch>) -> Result<Created, FakeError> {
        self.crm.log("create".into());
        if self.dry_run {
            return Ok(Created::New("0".into()));
        }
        let body = self.step.create_properties();
        if let Some(unique) = self.crm.unique
            && let Some(v) = body.get(unique).and_then(Value::as_str)
        {
            let m = RenderedMatch {
                property: unique.into(),
                value: v.into(),
                external_id: true,
                on_many: Default::default(),
            };
            if let Some(r) = self.crm.holding(&m, |_| true).first() {
                return Ok(Created::Exists(r.id.clone()));
            }
        }
        // another delivery may run meanwhile
        tokio::time::sleep(Duration::from_millis(5)).await;
        let id = self.crm.insert(body);
        if self.crm.lose_next_create.swap(false, Ordering::SeqCst) {
            return Err(FakeError::Lost);
        }
        Ok(Created::New(id))
    }

    async fn read(&self, id: &str, _fields: &[&str]) -> Result<Map<String, Value>, FakeError> {
        self.crm.log(format!("read {id}"));
        if self.dry_run {
            return Ok(Map::new());
        }
        lock(&self.crm.recs)
            .iter()
            .find(|r| r.id == id && !r.gone)
            .map(|r| r.fields.clone())
            .ok_or(FakeError::NotFound)
    }

    async fn update(&self, id: &str, body: &Map<String, Value>) -> Result<(), FakeError> {
        self.crm.log(format!("update {id}"));
        if self.dry_run {
            return Ok(());
        }
        let mut recs = lock(&self.crm.recs);
        let r = recs
            .iter_mut()
            .find(|r| r.id == id && !r.gone)
            .ok_or(FakeError::NotFound)?;
        r.fields.extend(body.clone());
        Ok(())
    }

    async fn delete(&self, id: &str) -> Result<(), FakeError> {
        self.crm.log(format!("delete {id}"));
        if !self.dry_run {
            self.crm.remove(id);
        }
        Ok(())
    }

    async fn native_upsert(
        &self,
        m: &RenderedMatch,
    ) -> Result<Option<Lookup<slatis_core::connector::StepOutput>>, FakeError> {
        if !self.crm.native {
            return Ok(None);
        }
        self.crm.log("native_upsert".into());
        let hits = self.crm.holding(m, |_| true);
        let (id, created) = match hits.as_slice() {
            [] => (self.crm.insert(self.step.properties.clone()), true),
            [one] => {
                self.update(&one.id, &self.step.properties).await?;
                (one.id.clone(), false)
            }
            _ => return Ok(Some(Lookup::Several)),
        };
        Ok(Some(Lookup::Done(slatis_core::connector::StepOutput {
            id: Some(id),
            created,
        })))
    }
}
