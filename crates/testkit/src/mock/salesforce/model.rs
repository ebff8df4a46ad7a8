//! The mock org's records, their duplicate and validation rules, and the save path every
//! write takes ([`Salesforce::prepare`]); a record as reads show it ([`record_json`]).
//!
//! Invariants:
//! - record ids are 18 characters: the object's key prefix, `Mock`, and 11 digits of one
//!   counter shared by every object, so an id names one record of one object; ids match
//!   ignoring case;
//! - a save is checked in Salesforce's order: each field against the schema, required
//!   fields, lookups, an Event's times, validation rules, then duplicate rules; a refused
//!   save changes nothing;
//! - a deleted record stays known (reads and writes of it are 404 `ENTITY_IS_DELETED`)
//!   but is invisible to queries, upserts and duplicate rules.

use super::super::chassis::reply::Reply;
use super::super::chassis::values::text_of;
use super::super::chassis::wire::pair;
use super::answers::{
    api_error, duplicates_detected, entity_deleted, field_error, invalid_field, no_such_column,
    not_found, record_url,
};
use super::rules::{event_times, missing_fields, required_missing};
use super::schema::{Kind, MOCK_USER, ObjectDef, Target};
use super::values::{check_value, format_datetime, is_blank};
use super::{Salesforce, SalesforceRecord};
use chrono::{DateTime, SubsecRound, Utc};
use serde_json::{Map, Value, json};

#[derive(Debug, Clone)]
pub(super) struct Rec {
    pub(super) id: String,
    pub(super) object: String,
    pub(super) fields: Map<String, Value>,
    pub(super) deleted: bool,
    pub(super) created_at: DateTime<Utc>,
    pub(super) updated_at: DateTime<Utc>,
}

impl Rec {
    pub(super) fn public(&self) -> SalesforceRecord {
        SalesforceRecord {
            object: self.object.clone(),
            id: self.id.clone(),
            fields: self.fields.clone(),
            deleted: self.deleted,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

#[derive(Debug, Clone)]
pub(super) struct DuplicateRule {
    pub(super) object: String,
    pub(super) field: String,
}

#[derive(Debug, Clone)]
pub(super) struct ValidationRule {
    pub(super) object: String,
    pub(super) field: String,
    pub(super) forbidden: Value,
    pub(super) message: String,
}

impl Salesforce {
    pub(super) fn object(&self, name: &str) -> Option<&ObjectDef> {
        self.objects.get(&name.to_ascii_lowercase())
    }

    fn find(&self, id: &str) -> Option<&Rec> {
        self.records.get(&id.to_ascii_lowercase())
    }

    /// The record of `object` with this id: 404 when unknown, or deleted.
    pub(super) fn find_in(&self, def: &ObjectDef, id: &str) -> Result<&Rec, Reply> {
        match self.find(id) {
            Some(rec) if rec.object == def.name => {
                if rec.deleted {
                    Err(entity_deleted())
                } else {
                    Ok(rec)
                }
            }
            _ => Err(not_found()),
        }
    }

    pub(super) fn live(&self, object: &str) -> impl Iterator<Item = &Rec> {
        self.records
            .values()
            .filter(move |rec| rec.object == object && !rec.deleted)
    }

    /// The live records of `object` whose `field` is `value`, ignoring case.
    pub(super) fn by_value(&self, object: &str, field: &str, value: &str) -> Vec<&Rec> {
        let wanted = value.to_lowercase();
        self.live(object)
            .filter(|rec| {
                rec.fields
                    .get(field)
                    .and_then(text_of)
                    .is_some_and(|t| t.to_lowercase() == wanted)
            })
            .collect()
    }

    /// The fields a record would have once `body` is applied to `current` (`None` for a
    /// new record, which gets the fields' defaults), if Salesforce would save it.
    pub(super) fn prepare(
        &self,
        version: &str,
        def: &ObjectDef,
        current: Option<(&str, &Map<String, Value>)>,
        body: &Map<String, Value>,
    ) -> Result<Map<String, Value>, Reply> {
        let mut merged = current.map(|(_, f)| f.clone()).unwrap_or_default();
        let mut lookups = Vec::new();
        for (name, value) in body {
            if name == "attributes" {
                continue;
            }
            if name.eq_ignore_ascii_case("Id") {
                return Err(invalid_field(
                    "The Id field should not be specified in the sobject data.",
                ));
            }
            let field = def.field(name).ok_or_else(|| {
                invalid_field(&format!(
                    "No such column '{name}' on sobject of type {}",
                    def.name
                ))
            })?;
            if field.writable && is_blank(value) {
                merged.remove(&field.name);
                continue;
            }
            let stored = check_value(field, value)?;
            if let (Kind::Ref(target), Some(id)) = (field.kind, stored.as_str())
                && target != Target::User
            {
                lookups.push((
                    field.name.clone(),
                    field.label.clone(),
                    target,
                    id.to_owned(),
                ));
            }
            merged.insert(field.name.clone(), stored);
        }
        if current.is_none() {
            for field in &def.fields {
                if let Some(default) = &field.default
                    && !merged.contains_key(&field.name)
                {
                    merged.insert(field.name.clone(), default.clone());
                }
            }
        }
        let missing = missing_fields(def, &merged);
        if !missing.is_empty() {
            return Err(required_missing(&missing));
        }
        for (name, label, target, id) in lookups {
            self.check_lookup((&name, &label), target, &id)?;
        }
        if def.name == "Event" {
            event_times(&mut merged, body)?;
            self.check_event_links(&merged)?;
        }
        self.check_rules(version, def, current.map(|(id, _)| id), &merged)?;
        Ok(merged)
    }

    /// A lookup's record must exist, be live and be of an object the field points at.
    fn check_lookup(
        &self,
        (name, label): (&str, &str),
        target: Target,
        id: &str,
    ) -> Result<(), Reply> {
        match self.find(id) {
            None => Err(field_error(
                "INVALID_CROSS_REFERENCE_KEY",
                "invalid cross reference id",
                name,
            )),
            Some(rec) if rec.deleted => {
                Err(field_error("ENTITY_IS_DELETED", "entity is deleted", name))
            }
            Some(rec) if !target.accepts(&rec.object) => Err(field_error(
                "FIELD_INTEGRITY_EXCEPTION",
                &format!("{label}: id value of incorrect type: {id}"),
                name,
            )),
            Some(_) => Ok(()),
        }
    }

    /// A Lead's event relates to nothing: `WhatId` must be empty when `WhoId` is a Lead.
    fn check_event_links(&self, merged: &Map<String, Value>) -> Result<(), Reply> {
        let who_is_lead = merged
            .get("WhoId")
            .and_then(Value::as_str)
            .and_then(|id| self.find(id))
            .is_some_and(|rec| rec.object == "Lead");
        if who_is_lead && merged.contains_key("WhatId") {
            return Err(field_error(
                "FIELD_INTEGRITY_EXCEPTION",
                "Related To ID: an activity whose Name is a lead cannot be related to a record.",
                "WhatId",
            ));
        }
        Ok(())
    }

    /// Validation rules, then duplicate rules, on the record as it would be saved.
    fn check_rules(
        &self,
        version: &str,
        def: &ObjectDef,
        own_id: Option<&str>,
        merged: &Map<String, Value>,
    ) -> Result<(), Reply> {
        for rule in self
            .validation_rules
            .iter()
            .filter(|r| r.object == def.name)
        {
            if merged.get(&rule.field) == Some(&rule.forbidden) {
                return Err(field_error(
                    "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                    &rule.message,
                    &rule.field,
                ));
            }
        }
        for rule in self.duplicate_rules.iter().filter(|r| r.object == def.name) {
            let Some(value) = merged.get(&rule.field).and_then(text_of) else {
                continue;
            };
            let matches: Vec<String> = self
                .by_value(&def.name, &rule.field, &value)
                .into_iter()
                .filter(|rec| own_id.is_none_or(|own| !rec.id.eq_ignore_ascii_case(own)))
                .map(|rec| rec.id.clone())
                .collect();
            if !matches.is_empty() {
                return Err(duplicates_detected(version, &def.name, &matches));
            }
        }
        Ok(())
    }

    pub(super) fn insert(&mut self, def: &ObjectDef, fields: Map<String, Value>) -> String {
        let id = format!("{}Mock{:011}", def.prefix, self.ids.take());
        let now = Utc::now();
        self.records.insert(
            id.to_ascii_lowercase(),
            Rec {
                id: id.clone(),
                object: def.name.clone(),
                fields,
                deleted: false,
                created_at: now,
                updated_at: now,
            },
        );
        id
    }

    pub(super) fn store(&mut self, id: &str, fields: Map<String, Value>) {
        if let Some(rec) = self.records.get_mut(&id.to_ascii_lowercase()) {
            rec.fields = fields;
            rec.updated_at = Utc::now();
        }
    }

    pub(super) fn remove(&mut self, id: &str) {
        if let Some(rec) = self.records.get_mut(&id.to_ascii_lowercase()) {
            rec.deleted = true;
            rec.updated_at = Utc::now();
        }
    }

    /// The canonical names `fields=a,b` asks for (`None`: every field).
    pub(super) fn asked_fields(
        def: &ObjectDef,
        query: &[(String, String)],
    ) -> Result<Option<Vec<String>>, Reply> {
        let Some(list) = pair(query, "fields") else {
            return Ok(None);
        };
        list.split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(|n| def.column(n).ok_or_else(|| no_such_column(n, &def.name)))
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    /// A refusal for an unknown object's create.
    pub(super) fn unknown_type(name: &str) -> Reply {
        api_error(
            400,
            "INVALID_TYPE",
            &format!(
                "sObject type '{name}' is not supported. If you are attempting to use a custom object, be sure to append the '__c' after the entity name. Please reference your WSDL or the describe call for the appropriate names."
            ),
            None,
        )
    }
}

/// A field's value as reads and queries see it: `Id`, the audit fields (date-times to the
/// second, as Salesforce keeps them), a Contact's or Lead's `Name`, the stored value,
/// `false` for an unset boolean, else `null`.
pub(super) fn value_of(def: &ObjectDef, rec: &Rec, name: &str) -> Value {
    let stamp = |at: DateTime<Utc>| Value::String(format_datetime(at.trunc_subsecs(0)));
    match name {
        "Id" => return Value::String(rec.id.clone()),
        "CreatedDate" => return stamp(rec.created_at),
        "LastModifiedDate" | "SystemModstamp" => return stamp(rec.updated_at),
        "CreatedById" | "LastModifiedById" => return Value::String(MOCK_USER.to_owned()),
        "IsDeleted" => return Value::Bool(rec.deleted),
        "Name" if def.name == "Contact" || def.name == "Lead" => {
            let part = |n: &str| {
                rec.fields
                    .get(n)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
            };
            let full = format!("{} {}", part("FirstName"), part("LastName"));
            return Value::String(full.trim().to_owned());
        }
        _ => {}
    }
    match rec.fields.get(name) {
        Some(value) => value.clone(),
        None if def.field(name).is_some_and(|f| f.kind == Kind::Bool) => Value::Bool(false),
        None => Value::Null,
    }
}

/// A record as Salesforce answers it: `attributes`, then `fields` (`None`: `Id` and every
/// field of the object).
pub(super) fn record_json(
    def: &ObjectDef,
    rec: &Rec,
    version: &str,
    fields: Option<&[String]>,
) -> Value {
    let mut out = Map::new();
    out.insert(
        "attributes".into(),
        json!({"type": def.name, "url": record_url(version, &def.name, &rec.id)}),
    );
    match fields {
        Some(names) => {
            for name in names {
                out.insert(name.clone(), value_of(def, rec, name));
            }
        }
        None => {
            out.insert("Id".into(), Value::String(rec.id.clone()));
            for field in &def.fields {
                out.insert(field.name.clone(), value_of(def, rec, &field.name));
            }
        }
    }
    Value::Object(out)
}
