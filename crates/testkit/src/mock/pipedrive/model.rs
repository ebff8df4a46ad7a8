//! The mock's records and custom field definitions: create and update through the
//! schema, the v2 record shape answers carry, and the fields Pipedrive derives itself (a
//! person's `first_name` / `last_name` from `name`, an activity's `person_id` from its
//! primary participant).
//!
//! Invariants: ids are integers from one counter per object type, starting at 1, never
//! reused; a write that fails changes nothing; `add_time` / `update_time` are whole
//! seconds; an update that changes nothing keeps `update_time` and the search lag.

use super::super::chassis::ids::Ids;
use super::refusal::Refused;
use super::schema::{self, Kind};
use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The owner of a record unless the body names one (the token's user).
const DEFAULT_OWNER: i64 = 1;

#[derive(Debug, Clone)]
pub(super) struct Rec {
    /// Every standard field, in the order answers show them.
    pub(super) fields: Map<String, Value>,
    /// The custom fields that are set (never `null`).
    pub(super) custom: Map<String, Value>,
    pub(super) add_time: DateTime<Utc>,
    pub(super) update_time: DateTime<Utc>,
    /// When search starts to see it.
    pub(super) searchable_at: Instant,
}

/// The records and the custom field definitions.
#[derive(Debug, Default)]
pub(super) struct Store {
    /// The ids of each type.
    ids: BTreeMap<Kind, Ids>,
    records: BTreeMap<Kind, BTreeMap<i64, Rec>>,
    /// Key → name, per type.
    pub(super) custom_fields: BTreeMap<Kind, BTreeMap<String, String>>,
}

/// The current time, in whole seconds (Pipedrive's precision).
fn now_secs() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(0)
}

pub(super) fn stamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The values of the standard fields a create does not set.
fn defaults(kind: Kind) -> Map<String, Value> {
    let defaults = match kind {
        Kind::Person => json!({
            "name": null, "first_name": null, "last_name": null, "owner_id": DEFAULT_OWNER,
            "org_id": null, "emails": [], "phones": [], "visible_to": 3, "label_ids": [],
        }),
        Kind::Organization => json!({
            "name": null, "owner_id": DEFAULT_OWNER, "address": null, "visible_to": 3,
            "label_ids": [],
        }),
        Kind::Deal => json!({
            "title": null, "value": 0, "currency": "USD", "person_id": null, "org_id": null,
            "pipeline_id": 1, "stage_id": 1, "status": "open", "expected_close_date": null,
            "owner_id": DEFAULT_OWNER, "visible_to": 3, "label_ids": [],
        }),
        Kind::Activity => json!({
            "subject": null, "type": "call", "owner_id": DEFAULT_OWNER, "deal_id": null,
            "person_id": null, "org_id": null, "due_date": null, "due_time": null,
            "duration": null, "busy": false, "done": false, "location": null,
            "participants": [], "public_description": null, "note": null, "priority": null,
        }),
    };
    match defaults {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// Sets what Pipedrive derives: a person's first and last name (the first word of
/// `name`, and the rest), an activity's `person_id` (its primary participant) and default
/// subject (its type, capitalised).
fn derive(kind: Kind, fields: &mut Map<String, Value>) {
    match kind {
        Kind::Person => {
            let name = fields
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .trim()
                .to_owned();
            let (first, last) = name
                .split_once(' ')
                .map_or((name.as_str(), ""), |(f, l)| (f, l.trim()));
            let text = |s: &str| {
                if s.is_empty() {
                    Value::Null
                } else {
                    Value::from(s)
                }
            };
            fields.insert("first_name".into(), text(first));
            fields.insert("last_name".into(), text(last));
        }
        Kind::Activity => {
            let primary = fields
                .get("participants")
                .and_then(Value::as_array)
                .and_then(|list| list.iter().find(|p| p["primary"] == true))
                .map_or(Value::Null, |p| p["person_id"].clone());
            fields.insert("person_id".into(), primary);
            if fields.get("subject").is_none_or(Value::is_null) {
                let t = fields.get("type").and_then(Value::as_str).unwrap_or("call");
                let mut chars = t.chars();
                let subject: String = chars
                    .next()
                    .map(|c| c.to_uppercase().chain(chars).collect())
                    .unwrap_or_default();
                fields.insert("subject".into(), subject.into());
            }
        }
        Kind::Organization | Kind::Deal => {}
    }
}

impl Store {
    pub(super) fn get(&self, kind: Kind, id: i64) -> Option<&Rec> {
        self.records.get(&kind)?.get(&id)
    }

    pub(super) fn exists(&self, kind: Kind, id: i64) -> bool {
        self.get(kind, id).is_some()
    }

    pub(super) fn records(&self, kind: Kind) -> impl Iterator<Item = (i64, &Rec)> {
        self.records
            .get(&kind)
            .into_iter()
            .flat_map(|records| records.iter().map(|(id, rec)| (*id, rec)))
    }

    /// Whether `key` is a custom field of `kind`.
    fn defined(&self, kind: Kind, key: &str) -> bool {
        self.custom_fields
            .get(&kind)
            .is_some_and(|d| d.contains_key(key))
    }

    fn validate(
        &self,
        kind: Kind,
        body: &Map<String, Value>,
        create: bool,
    ) -> Result<schema::Checked, Refused> {
        schema::validate(
            kind,
            body,
            &|key| self.defined(kind, key),
            &|k, id| self.exists(k, id),
            create,
        )
    }

    /// Creates a record, searchable `lag` from now; its id.
    pub(super) fn create(
        &mut self,
        kind: Kind,
        body: &Map<String, Value>,
        lag: Duration,
    ) -> Result<i64, Refused> {
        let (changes, custom) = self.validate(kind, body, true)?;
        let mut fields = defaults(kind);
        fields.extend(changes);
        derive(kind, &mut fields);
        let number = self.ids.entry(kind).or_insert(Ids::starting_at(1)).take();
        let id = i64::try_from(number).unwrap_or(i64::MAX);
        let now = now_secs();
        let rec = Rec {
            fields,
            custom: custom.into_iter().filter(|(_, v)| !v.is_null()).collect(),
            add_time: now,
            update_time: now,
            searchable_at: Instant::now() + lag,
        };
        self.records.entry(kind).or_default().insert(id, rec);
        Ok(id)
    }

    /// Changes an existing record (fields not sent are kept, custom fields merged, `null`
    /// clears); a change that changes something restarts its search lag.
    pub(super) fn update(
        &mut self,
        kind: Kind,
        id: i64,
        body: &Map<String, Value>,
        lag: Duration,
    ) -> Result<(), Refused> {
        let (changes, custom) = self.validate(kind, body, false)?;
        let Some(rec) = self
            .records
            .get_mut(&kind)
            .and_then(|records| records.get_mut(&id))
        else {
            return Ok(());
        };
        let before = (rec.fields.clone(), rec.custom.clone());
        rec.fields.extend(changes);
        derive(kind, &mut rec.fields);
        for (key, value) in custom {
            if value.is_null() {
                rec.custom.remove(&key);
            } else {
                rec.custom.insert(key, value);
            }
        }
        if before != (rec.fields.clone(), rec.custom.clone()) {
            rec.update_time = now_secs();
            rec.searchable_at = Instant::now() + lag;
        }
        Ok(())
    }

    /// Deletes a record; whether it existed.
    pub(super) fn delete(&mut self, kind: Kind, id: i64) -> bool {
        self.records
            .get_mut(&kind)
            .and_then(|records| records.remove(&id))
            .is_some()
    }

    /// A record as the API answers it.
    pub(super) fn record_json(&self, kind: Kind, id: i64, rec: &Rec) -> Map<String, Value> {
        let mut out = Map::new();
        out.insert("id".into(), id.into());
        out.extend(rec.fields.clone());
        out.insert("add_time".into(), stamp(rec.add_time).into());
        out.insert("update_time".into(), stamp(rec.update_time).into());
        out.insert("is_deleted".into(), false.into());
        if kind.has_custom_fields() {
            let custom: Map<String, Value> = self
                .custom_fields
                .get(&kind)
                .into_iter()
                .flat_map(|defined| defined.keys())
                .map(|key| {
                    (
                        key.clone(),
                        rec.custom.get(key).cloned().unwrap_or(Value::Null),
                    )
                })
                .collect();
            out.insert("custom_fields".into(), Value::Object(custom));
        }
        out
    }

    /// The values of a record's custom fields, as text, by key.
    fn custom_texts(&self, kind: Kind, rec: &Rec) -> Vec<String> {
        self.custom_fields
            .get(&kind)
            .into_iter()
            .flat_map(|defined| defined.keys())
            .filter_map(|key| rec.custom.get(key).and_then(value_text))
            .collect()
    }

    /// The texts a search field of a record matches against.
    pub(super) fn search_texts(&self, kind: Kind, rec: &Rec, field: &str) -> Vec<String> {
        match field {
            "name" | "title" => rec
                .fields
                .get(field)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .into_iter()
                .collect(),
            "email" => list_values(rec.fields.get("emails")),
            "phone" => list_values(rec.fields.get("phones")),
            "address" => place_text(rec.fields.get("address")).into_iter().collect(),
            "custom_fields" => self.custom_texts(kind, rec),
            _ => Vec::new(),
        }
    }

    /// `{"id", "name"}` of a linked person, or `null`.
    fn person_ref(&self, id: Option<&Value>) -> Value {
        let Some(id) = id.and_then(Value::as_i64) else {
            return Value::Null;
        };
        self.get(Kind::Person, id).map_or(
            Value::Null,
            |rec| json!({ "id": id, "name": rec.fields.get("name") }),
        )
    }

    /// `{"id", "name", "address"}` of a linked organization, or `null`.
    fn org_ref(&self, id: Option<&Value>) -> Value {
        let Some(id) = id.and_then(Value::as_i64) else {
            return Value::Null;
        };
        self.get(Kind::Organization, id).map_or(Value::Null, |rec| {
            json!({ "id": id, "name": rec.fields.get("name"), "address": place_text(rec.fields.get("address")) })
        })
    }

    /// A record as a search item shows it (emails and phones as plain strings, custom
    /// field values as strings).
    pub(super) fn search_item(&self, kind: Kind, id: i64, rec: &Rec) -> Value {
        let field = |name: &str| rec.fields.get(name).cloned().unwrap_or(Value::Null);
        let owner = json!({ "id": field("owner_id") });
        let custom = self.custom_texts(kind, rec);
        let update_time = stamp(rec.update_time);
        match kind {
            Kind::Person => json!({
                "id": id, "type": "person", "name": field("name"),
                "phones": list_values(rec.fields.get("phones")),
                "emails": list_values(rec.fields.get("emails")),
                "visible_to": field("visible_to"), "owner": owner,
                "organization": self.org_ref(rec.fields.get("org_id")),
                "custom_fields": custom, "notes": [], "update_time": update_time,
            }),
            Kind::Organization => json!({
                "id": id, "type": "organization", "name": field("name"),
                "address": place_text(rec.fields.get("address")),
                "visible_to": field("visible_to"), "owner": owner,
                "custom_fields": custom, "notes": [], "update_time": update_time,
            }),
            Kind::Deal | Kind::Activity => json!({
                "id": id, "type": "deal", "title": field("title"), "value": field("value"),
                "currency": field("currency"), "status": field("status"),
                "visible_to": field("visible_to"), "owner": owner,
                "person": self.person_ref(rec.fields.get("person_id")),
                "organization": self.org_ref(rec.fields.get("org_id")),
                "custom_fields": custom, "notes": [], "update_time": update_time,
            }),
        }
    }
}

/// A value as search and search items show it: text (`null` is none).
fn value_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// An address or location as text: an object's `value` (or a string).
fn place_text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("value").and_then(Value::as_str).map(str::to_owned),
        _ => None,
    }
}

/// The `value`s of an emails or phones list.
fn list_values(list: Option<&Value>) -> Vec<String> {
    list.and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|item| item.get("value").and_then(Value::as_str))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}
