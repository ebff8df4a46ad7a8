//! The REST calls on records: create, read (`fields=` narrows it), update and delete by
//! id; read, upsert and delete by an external id; and SOQL queries.
//!
//! Invariants:
//! - upsert (`PATCH …/sobjects/{Object}/{Field}/{Value}`, the value matched ignoring
//!   case, <https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/dome_upsert.htm>):
//!   201 created; updated: 200 with `"created": false` from API version 46.0, 204 before
//!   it; the body must not name `Id` or the external-id field
//!   (<https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_sobject_upsert_patch.htm>);
//! - an external-id path on a field that is not an External ID field is 404;
//! - several records with the external id: 300 and a JSON list of their URLs, nothing
//!   changed. Salesforce documents no order for the list; the mock lists them newest
//!   first, so a client that wants the oldest must ask for it;
//! - a query answers every row in one page (`done: true`), sorted by its `ORDER BY` keys,
//!   then by id.

use super::super::reply::{Answer, Reply};
use super::super::wire::pair;
use super::answers::{COLUMN_HINT, invalid_field, malformed_query, not_found, record_url};
use super::routes::{ExternalId, Verb, Version};
use super::schema::parse_body;
use super::soql::{compare_by, parse_soql, query_error, test_matches};
use super::store::{Inner, record_json, value_of};
use serde_json::{Map, Value, json};
use std::cmp::Ordering;

impl Inner {
    pub(super) fn create(&mut self, version: &Version, object: &str, body: &[u8]) -> Answer {
        let def = self.object(object).cloned().ok_or_else(not_found)?;
        let body = parse_body(body)?;
        let fields = self.prepare(&version.text, &def, None, &body)?;
        let id = self.insert(&def, fields);
        Ok(Reply::json(
            201,
            json!({"id": id, "success": true, "errors": []}),
        ))
    }

    pub(super) fn read(
        &self,
        version: &Version,
        object: &str,
        id: &str,
        query: &[(String, String)],
    ) -> Answer {
        let def = self.object(object).ok_or_else(not_found)?;
        let rec = self.find_in(def, id)?;
        let fields = Self::asked_fields(def, query)?;
        Ok(Reply::json(
            200,
            record_json(def, rec, &version.text, fields.as_deref()),
        ))
    }

    pub(super) fn update(
        &mut self,
        version: &Version,
        object: &str,
        id: &str,
        body: &[u8],
    ) -> Answer {
        let def = self.object(object).cloned().ok_or_else(not_found)?;
        let rec = self.find_in(&def, id)?;
        let (id, current) = (rec.id.clone(), rec.fields.clone());
        let body = parse_body(body)?;
        let fields = self.prepare(&version.text, &def, Some((&id, &current)), &body)?;
        self.store(&id, fields);
        Ok(Reply::empty(204))
    }

    pub(super) fn delete(&mut self, object: &str, id: &str) -> Answer {
        let def = self.object(object).cloned().ok_or_else(not_found)?;
        let id = self.find_in(&def, id)?.id.clone();
        self.remove(&id);
        Ok(Reply::empty(204))
    }

    /// `…/sobjects/{object}/{field}/{value}`: read, upsert or delete by an external id.
    pub(super) fn external(
        &mut self,
        version: &Version,
        verb: Verb,
        key: &ExternalId<'_>,
        query: &[(String, String)],
        body: &[u8],
    ) -> Answer {
        let ExternalId {
            object,
            field,
            value,
        } = *key;
        let def = self.object(object).cloned().ok_or_else(not_found)?;
        let field = def
            .field(field)
            .filter(|f| f.external_id)
            .map(|f| f.name.clone())
            .ok_or_else(|| {
                super::answers::api_error(
                    404,
                    "NOT_FOUND",
                    &format!(
                        "Provided external ID field does not exist or is not accessible: {field}"
                    ),
                    None,
                )
            })?;
        let mut matching: Vec<(String, Map<String, Value>, chrono::DateTime<chrono::Utc>)> = self
            .by_value(&def.name, &field, value)
            .into_iter()
            .map(|rec| (rec.id.clone(), rec.fields.clone(), rec.created_at))
            .collect();
        if matching.len() > 1 {
            matching.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| b.0.cmp(&a.0)));
            let urls: Vec<Value> = matching
                .iter()
                .map(|(id, _, _)| Value::String(record_url(&version.text, &def.name, id)))
                .collect();
            return Ok(Reply::json(300, Value::Array(urls)));
        }
        let found = matching
            .into_iter()
            .next()
            .map(|(id, fields, _)| (id, fields));
        match verb {
            Verb::Get => {
                let (id, _) = found.ok_or_else(not_found)?;
                self.read(version, &def.name, &id, query)
            }
            Verb::Delete => {
                let (id, _) = found.ok_or_else(not_found)?;
                self.remove(&id);
                Ok(Reply::empty(204))
            }
            Verb::Patch => {
                let mut body = parse_body(body)?;
                if body.keys().any(|k| k.eq_ignore_ascii_case(&field)) {
                    return Err(invalid_field(&format!(
                        "{field}: the external ID field is named in the URL; don't specify it in the request body"
                    )));
                }
                match found {
                    None => {
                        body.insert(field, Value::String(value.to_owned()));
                        let fields = self.prepare(&version.text, &def, None, &body)?;
                        let id = self.insert(&def, fields);
                        let mut answer = json!({"id": id, "success": true, "errors": []});
                        if version.upsert_answers_update() {
                            answer["created"] = Value::Bool(true);
                        }
                        Ok(Reply::json(201, answer))
                    }
                    Some((id, current)) => {
                        let fields =
                            self.prepare(&version.text, &def, Some((&id, &current)), &body)?;
                        self.store(&id, fields);
                        if version.upsert_answers_update() {
                            Ok(Reply::json(
                                200,
                                json!({"id": id, "success": true, "errors": [], "created": false}),
                            ))
                        } else {
                            Ok(Reply::empty(204))
                        }
                    }
                }
            }
        }
    }

    /// `GET …/query?q=`.
    pub(super) fn query(&self, version: &Version, query: &[(String, String)]) -> Answer {
        let soql = pair(query, "q")
            .filter(|q| !q.trim().is_empty())
            .ok_or_else(|| malformed_query("A query string has to be specified"))?;
        let parsed = parse_soql(soql)?;
        let def = self
            .object(&parsed.object)
            .ok_or_else(|| Self::unknown_type(&parsed.object))?;
        let column = |name: &str, at: usize| {
            def.column(name).ok_or_else(|| {
                query_error(
                    "INVALID_FIELD",
                    soql,
                    at,
                    &format!(
                        "No such column '{name}' on entity '{}'. {COLUMN_HINT}",
                        def.name
                    ),
                )
            })
        };
        let mut selected = Vec::new();
        for (name, at) in &parsed.fields {
            let name = column(name, *at)?;
            if selected.contains(&name) {
                return Err(malformed_query(&format!(
                    "duplicate field selected: {name}"
                )));
            }
            selected.push(name);
        }
        let mut conds = Vec::new();
        for c in &parsed.conds {
            let name = column(&c.field, c.column)?;
            if def.field(&name).is_some_and(|f| !f.filterable) {
                return Err(query_error(
                    "INVALID_FIELD",
                    soql,
                    c.column,
                    &format!("field '{name}' can not be filtered in a query call"),
                ));
            }
            conds.push((name, &c.test));
        }
        let order = parsed
            .order
            .iter()
            .map(|o| Ok((column(&o.field, o.column)?, o)))
            .collect::<Result<Vec<_>, Reply>>()?;
        let mut rows: Vec<_> = self
            .live(&def.name)
            .filter(|rec| {
                conds
                    .iter()
                    .all(|(name, test)| test_matches(&value_of(def, rec, name), test))
            })
            .collect();
        rows.sort_by(|a, b| {
            order
                .iter()
                .map(|(name, o)| compare_by(&value_of(def, a, name), &value_of(def, b, name), o))
                .find(|o| o.is_ne())
                .unwrap_or(Ordering::Equal)
                .then_with(|| a.id.cmp(&b.id))
        });
        if let Some(limit) = parsed.limit {
            rows.truncate(limit);
        }
        let records: Vec<Value> = rows
            .iter()
            .map(|rec| record_json(def, rec, &version.text, Some(&selected)))
            .collect();
        Ok(Reply::json(
            200,
            json!({"totalSize": records.len(), "done": true, "records": records}),
        ))
    }
}
