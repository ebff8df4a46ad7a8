//! What the mock's HubSpot holds: records of every type (with what search sees of each,
//! `search_lag` behind) and the associations between them.
//!
//! Invariants: record ids come from one counter shared by every type, starting at 101, so
//! an id names one record of one type; values are kept as HubSpot returns them (text; `""`
//! or `null` clears); no two records of a type share a value of a unique property
//! (`email` of contacts compared case-insensitively, any other exactly).

use super::super::chassis::ids::Ids;
use super::super::chassis::reply::Reply;
use super::answers::{conflict, not_found, timestamp};
use super::schema::{Schema, date_properties};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// What search sees of a record: its state at one moment, visible from `visible_at`.
#[derive(Debug, Clone)]
struct Snapshot {
    visible_at: Instant,
    props: BTreeMap<String, String>,
    updated_at: DateTime<Utc>,
}

/// A record.
#[derive(Debug, Clone)]
pub(super) struct Rec {
    pub(super) props: BTreeMap<String, String>,
    pub(super) created_at: DateTime<Utc>,
    pub(super) updated_at: DateTime<Utc>,
    /// Oldest first; the last one visible now and any pending after it.
    index: Vec<Snapshot>,
}

impl Rec {
    /// Records the current state for search, visible `lag` from now.
    fn reindex(&mut self, now: Instant, lag: Duration) {
        if let Some(last_visible) = self.index.iter().rposition(|s| s.visible_at <= now) {
            self.index.drain(..last_visible);
        }
        self.index.push(Snapshot {
            visible_at: now + lag,
            props: self.props.clone(),
            updated_at: self.updated_at,
        });
    }

    /// What search sees of record `id` now, if anything.
    pub(super) fn indexed(&self, id: u64, now: Instant) -> Option<View<'_>> {
        self.index
            .iter()
            .rev()
            .find(|s| s.visible_at <= now)
            .map(|s| View {
                id,
                props: &s.props,
                created_at: self.created_at,
                updated_at: s.updated_at,
            })
    }
}

/// A record's fields as one answer shows them.
pub(super) struct View<'a> {
    pub(super) id: u64,
    pub(super) props: &'a BTreeMap<String, String>,
    pub(super) created_at: DateTime<Utc>,
    pub(super) updated_at: DateTime<Utc>,
}

/// Which properties an answer shows.
pub(super) enum Shown<'a> {
    /// Every property that is set.
    All,
    /// These (`null` when unset; unknown names are left out).
    Only(&'a [String]),
}

/// A link between two records.
#[derive(Debug, Clone)]
pub(super) struct Association {
    pub(super) from_type: String,
    pub(super) from_id: u64,
    pub(super) to_type: String,
    pub(super) to_id: u64,
    pub(super) category: String,
    pub(super) type_id: u32,
}

/// Whether two values of a property are the same value (emails ignore case).
pub(super) fn same_value(object_type: &str, property: &str, a: &str, b: &str) -> bool {
    if object_type == "contacts" && property == "email" {
        a.to_lowercase() == b.to_lowercase()
    } else {
        a == b
    }
}

/// The records of every type; cloned to apply a batch whole or not at all.
#[derive(Debug, Clone)]
pub(super) struct Objects {
    ids: Ids,
    by_type: BTreeMap<String, BTreeMap<u64, Rec>>,
}

impl Default for Objects {
    fn default() -> Self {
        Self {
            ids: Ids::starting_at(101),
            by_type: BTreeMap::new(),
        }
    }
}

impl Objects {
    pub(super) fn records(&self, object_type: &str) -> impl Iterator<Item = (u64, &Rec)> {
        self.by_type
            .get(object_type)
            .into_iter()
            .flat_map(|records| records.iter().map(|(id, rec)| (*id, rec)))
    }

    pub(super) fn get(&self, object_type: &str, id: u64) -> Option<&Rec> {
        self.by_type.get(object_type)?.get(&id)
    }

    /// The type of the record with this id.
    pub(super) fn type_of(&self, id: u64) -> Option<&str> {
        self.by_type
            .iter()
            .find(|(_, records)| records.contains_key(&id))
            .map(|(object_type, _)| object_type.as_str())
    }

    /// The record whose unique `property` is `value` (`hs_object_id`: the id).
    pub(super) fn find_unique(
        &self,
        object_type: &str,
        property: &str,
        value: &str,
    ) -> Option<u64> {
        if property == "hs_object_id" {
            let id = value.parse().ok()?;
            return self.get(object_type, id).map(|_| id);
        }
        self.records(object_type)
            .find(|(_, rec)| {
                rec.props
                    .get(property)
                    .is_some_and(|v| same_value(object_type, property, v, value))
            })
            .map(|(id, _)| id)
    }

    /// 409 if a changed unique property takes a value another record has.
    fn check_unique(
        &self,
        schema: &Schema,
        object_type: &str,
        id: Option<u64>,
        changes: &BTreeMap<String, String>,
    ) -> Result<(), Reply> {
        for (name, value) in changes {
            if value.is_empty() || !schema.is_unique(object_type, name) {
                continue;
            }
            if let Some(existing) = self.find_unique(object_type, name, value)
                && Some(existing) != id
            {
                return Err(conflict(object_type, name, value, existing));
            }
        }
        Ok(())
    }

    /// Creates a record: validated, required properties present, unique values free.
    pub(super) fn create(
        &mut self,
        schema: &Schema,
        object_type: &str,
        props: &Map<String, Value>,
        lag: Duration,
    ) -> Result<u64, Reply> {
        let changes = schema.validate(object_type, props)?;
        let props: BTreeMap<String, String> =
            changes.into_iter().filter(|(_, v)| !v.is_empty()).collect();
        Schema::check_required(object_type, &props)?;
        self.check_unique(schema, object_type, None, &props)?;
        let id = self.ids.take();
        let now = Utc::now();
        let mut rec = Rec {
            props,
            created_at: now,
            updated_at: now,
            index: Vec::new(),
        };
        rec.reindex(Instant::now(), lag);
        self.by_type
            .entry(object_type.to_owned())
            .or_default()
            .insert(id, rec);
        Ok(id)
    }

    /// Changes a record's properties (`""` clears one).
    pub(super) fn update(
        &mut self,
        schema: &Schema,
        object_type: &str,
        id: u64,
        props: &Map<String, Value>,
        lag: Duration,
    ) -> Result<(), Reply> {
        let changes = schema.validate(object_type, props)?;
        if self.get(object_type, id).is_none() {
            return Err(not_found());
        }
        self.check_unique(schema, object_type, Some(id), &changes)?;
        let rec = self
            .by_type
            .get_mut(object_type)
            .and_then(|records| records.get_mut(&id))
            .ok_or_else(not_found)?;
        for (name, value) in changes {
            if value.is_empty() {
                rec.props.remove(&name);
            } else {
                rec.props.insert(name, value);
            }
        }
        rec.updated_at = Utc::now();
        rec.reindex(Instant::now(), lag);
        Ok(())
    }

    /// Removes a record; whether it was there.
    pub(super) fn remove(&mut self, object_type: &str, id: u64) -> bool {
        self.by_type
            .get_mut(object_type)
            .and_then(|records| records.remove(&id))
            .is_some()
    }

    pub(super) fn view(&self, object_type: &str, id: u64) -> Option<View<'_>> {
        self.get(object_type, id).map(|rec| View {
            id,
            props: &rec.props,
            created_at: rec.created_at,
            updated_at: rec.updated_at,
        })
    }
}

/// A record as HubSpot answers it.
pub(super) fn object_json(
    schema: &Schema,
    object_type: &str,
    view: &View<'_>,
    shown: &Shown<'_>,
) -> Value {
    let (created, modified) = date_properties(object_type);
    let mut props: BTreeMap<String, Value> = BTreeMap::new();
    match shown {
        Shown::All => {
            for (name, value) in view.props {
                props.insert(name.clone(), Value::String(value.clone()));
            }
        }
        Shown::Only(names) => {
            for name in *names {
                if schema.has(object_type, name) {
                    let value = view
                        .props
                        .get(name)
                        .map_or(Value::Null, |v| Value::String(v.clone()));
                    props.insert(name.clone(), value);
                }
            }
        }
    }
    props.insert("hs_object_id".into(), Value::String(view.id.to_string()));
    props.insert(created.into(), Value::String(timestamp(view.created_at)));
    props.insert(modified.into(), Value::String(timestamp(view.updated_at)));
    json!({
        "id": view.id.to_string(),
        "properties": props.into_iter().collect::<Map<String, Value>>(),
        "createdAt": timestamp(view.created_at),
        "updatedAt": timestamp(view.updated_at),
        "archived": false,
    })
}

/// The value of a property as search compares it (the read-only ones included).
pub(super) fn search_value(object_type: &str, view: &View<'_>, name: &str) -> Option<String> {
    let (created, modified) = date_properties(object_type);
    if name == "hs_object_id" {
        Some(view.id.to_string())
    } else if name == created {
        Some(timestamp(view.created_at))
    } else if name == modified {
        Some(timestamp(view.updated_at))
    } else {
        view.props.get(name).cloned()
    }
}
