//! From step properties to v2 bodies, and back from v2 records to what a step compares.
//!
//! - A key that is a custom field's 40-character hash goes under `custom_fields` (v2 keeps
//!   custom fields there: <https://pipedrive.readme.io/docs/pipedrive-api-v2-migration-guide>).
//! - On persons, `email` / `phone` (text) become `emails` / `phones`
//!   (`[{value, primary: true, label: work}]`).
//! - `…_id` values that are whole numbers in text (`"{{steps.person.id}}"`) are sent as
//!   numbers, in `participants` too: v2 no longer coerces text to numbers.
//! - An update of a person's `emails` / `phones` is merged into what the person has
//!   ([`merge_contacts`]): a value the person lacks is added, every other entry (and which
//!   one is primary) stays as the sales reps left it.
//!
//! Invariant: reading a record never fails: a field that is missing or of another shape
//! is simply empty or unequal.

use serde_json::{Map, Value, json};

/// A custom field's key: 40 lowercase hex characters.
pub fn is_custom_key(key: &str) -> bool {
    key.len() == 40
        && key
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The `fields` a search on `object` uses for `property`, if it can search on it.
pub fn search_field(object: &str, property: &str) -> Option<&'static str> {
    if is_custom_key(property) && object != "activities" {
        return Some("custom_fields");
    }
    match (object, property) {
        ("persons", "email") => Some("email"),
        ("persons", "phone") => Some("phone"),
        ("persons" | "organizations", "name") => Some("name"),
        ("organizations", "address") => Some("address"),
        ("deals", "title") => Some("title"),
        ("persons" | "organizations" | "deals", "notes") => Some("notes"),
        _ => None,
    }
}

/// The v2 body for `object` from rendered properties.
pub fn body(object: &str, properties: &Map<String, Value>) -> Map<String, Value> {
    let mut out = Map::new();
    let mut custom = Map::new();
    for (key, value) in properties {
        let value = numeric_ids(key, value.clone());
        if is_custom_key(key) {
            custom.insert(key.clone(), value);
        } else if object == "persons" && matches!(key.as_str(), "email" | "phone") {
            let list = match value {
                Value::String(s) if s.is_empty() => json!([]),
                Value::String(s) => json!([{ "value": s, "primary": true, "label": "work" }]),
                other => other,
            };
            out.insert(format!("{key}s"), list);
        } else {
            out.insert(key.clone(), value);
        }
    }
    if !custom.is_empty() {
        out.insert("custom_fields".to_owned(), Value::Object(custom));
    }
    out
}

/// `…_id` values that are whole numbers in text become numbers (Pipedrive's ids are
/// integers; a template renders text), also inside lists and objects (`participants`).
fn numeric_ids(key: &str, value: Value) -> Value {
    match value {
        Value::String(s)
            if key.ends_with("_id") && !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) =>
        {
            s.parse::<i64>().map_or(Value::String(s), Value::from)
        }
        Value::Array(items) => {
            Value::Array(items.into_iter().map(|v| numeric_ids(key, v)).collect())
        }
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let v = numeric_ids(&k, v);
                    (k, v)
                })
                .collect(),
        ),
        other => other,
    }
}

/// The value of a step's `property` in a record as v2 answers it: `email` / `phone` are
/// a person's lists, a custom field's key its value (the `value` of a composite one).
pub fn field<'a>(record: &'a Map<String, Value>, property: &str) -> Option<&'a Value> {
    match property {
        "email" => record.get("emails"),
        "phone" => record.get("phones"),
        p if is_custom_key(p) => {
            let v = record.get("custom_fields")?.get(p)?;
            Some(v.get("value").unwrap_or(v))
        }
        p => record.get(p),
    }
}

/// Whether a record has `property` equal to `value` (text ignoring case; in a list, any
/// entry).
pub fn has(record: &Value, property: &str, value: &str) -> bool {
    let same = |v: &Value| match v {
        Value::String(s) => s.eq_ignore_ascii_case(value),
        Value::Number(n) => n.to_string() == value,
        Value::Object(o) => o
            .get("value")
            .and_then(Value::as_str)
            .is_some_and(|s| s.eq_ignore_ascii_case(value)),
        _ => false,
    };
    match record.as_object().and_then(|r| field(r, property)) {
        Some(Value::Array(items)) => items.iter().any(same),
        Some(v) => same(v),
        None => false,
    }
}

/// How two list entries' values compare: emails ignoring case, phones by their digits
/// (and a leading `+`), so `+44 20 1234` and `+44201234` are one number.
fn contact_key(value: &str, email: bool) -> String {
    if email {
        value.trim().to_lowercase()
    } else {
        value
            .trim()
            .chars()
            .enumerate()
            .filter(|(i, c)| c.is_ascii_digit() || (*i == 0 && *c == '+'))
            .map(|(_, c)| c)
            .collect()
    }
}

/// The `emails` / `phones` an update sends: `existing` (the person's list) with each entry
/// of `new` whose value it lacks appended, not primary; every existing entry as it is.
/// `None` when there is nothing to add (the update leaves the list alone). A person
/// with no entries gets `new` as it is.
pub fn merge_contacts(existing: Option<&Value>, new: &Value, email: bool) -> Option<Value> {
    let new = new.as_array().filter(|n| !n.is_empty())?;
    let existing: Vec<Value> = existing
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let value = e.get("value")?.as_str()?;
            let mut kept = Map::new();
            kept.insert("value".into(), value.into());
            for key in ["primary", "label"] {
                if let Some(v) = e.get(key).filter(|v| !v.is_null()) {
                    kept.insert(key.into(), v.clone());
                }
            }
            Some(Value::Object(kept))
        })
        .collect();
    if existing.is_empty() {
        return Some(Value::Array(new.clone()));
    }
    let mut keys: Vec<String> = existing
        .iter()
        .filter_map(|e| e["value"].as_str().map(|v| contact_key(v, email)))
        .collect();
    let mut out = existing;
    let before = out.len();
    for entry in new {
        let Some(value) = entry.get("value").and_then(Value::as_str) else {
            continue;
        };
        let key = contact_key(value, email);
        if key.is_empty() || keys.contains(&key) {
            continue;
        }
        keys.push(key);
        let mut added = entry.clone();
        if let Some(o) = added.as_object_mut() {
            o.insert("primary".into(), false.into());
        }
        out.push(added);
    }
    (out.len() > before).then_some(Value::Array(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "dcf558aac1ae4e8c4f849ba5e668430d8df9be12";

    #[test]
    fn bodies_take_v2_shape() {
        let props: Map<String, Value> = serde_json::from_value(json!({
            "name": "Ada Lovelace", "email": "ada@example.com", "phone": "", "org_id": "45", HASH: "bkg_1",
            "participants": [{"person_id": "77", "primary": true}]
        }))
        .unwrap_or_default();
        assert_eq!(
            Value::Object(body("persons", &props)),
            json!({
                "name": "Ada Lovelace",
                "emails": [{"value": "ada@example.com", "primary": true, "label": "work"}],
                "phones": [],
                "org_id": 45,
                "participants": [{"person_id": 77, "primary": true}],
                "custom_fields": {HASH: "bkg_1"}
            })
        );
        assert_eq!(
            body("activities", &props)["email"],
            "ada@example.com",
            "only persons reshape email"
        );
    }

    #[test]
    fn records_match_by_emails_custom_fields_and_plain_fields() {
        let record = json!({"id": 3, "name": "Ada", "emails": [{"value": "Ada@Example.com"}], "custom_fields": {HASH: "bkg_1"}, "subject": "Intro"});
        assert!(has(&record, "email", "ada@example.com"));
        assert!(has(&record, HASH, "bkg_1"));
        assert!(has(&record, "subject", "intro"));
        assert!(!has(&record, "email", "other@example.com"));
        assert!(!has(&record, "phone", "1"));
        let composite = json!({"custom_fields": {HASH: {"value": 2300, "currency": "EUR"}}});
        let object = |v: Value| v.as_object().cloned().unwrap_or_default();
        assert_eq!(field(&object(composite), HASH), Some(&json!(2300)));
        assert_eq!(field(&object(json!({"id": 1})), HASH), None);
    }

    #[test]
    fn search_fields() {
        assert_eq!(search_field("persons", "email"), Some("email"));
        assert_eq!(search_field("deals", HASH), Some("custom_fields"));
        assert_eq!(search_field("activities", "subject"), None);
        assert_eq!(search_field("activities", HASH), None);
        assert_eq!(search_field("deals", "email"), None);
    }

    #[test]
    fn a_new_email_is_added_and_the_reps_entries_stay_as_they_are() {
        let existing = json!([
            {"value": "ada@work.example", "primary": true, "label": "work"},
            {"value": "ada@home.example", "primary": false, "label": "home"}
        ]);
        let new = json!([{"value": "ada@example.com", "primary": true, "label": "work"}]);
        assert_eq!(
            merge_contacts(Some(&existing), &new, true),
            Some(json!([
                {"value": "ada@work.example", "primary": true, "label": "work"},
                {"value": "ada@home.example", "primary": false, "label": "home"},
                {"value": "ada@example.com", "primary": false, "label": "work"}
            ]))
        );
    }

    #[test]
    fn a_value_the_person_has_leaves_the_list_alone() {
        let existing = json!([{"value": "Ada@Example.com", "primary": false, "label": "home"}, {"value": "x@example.com", "primary": true, "label": "work"}]);
        let new = json!([{"value": "ada@example.com", "primary": true, "label": "work"}]);
        assert_eq!(merge_contacts(Some(&existing), &new, true), None);
        let phones = json!([{"value": "+44 20 7946 0958", "primary": true, "label": "mobile"}]);
        let same = json!([{"value": "+442079460958", "primary": true, "label": "work"}]);
        assert_eq!(merge_contacts(Some(&phones), &same, false), None);
        assert_eq!(merge_contacts(Some(&phones), &json!([]), false), None);
    }

    #[test]
    fn a_person_without_entries_gets_the_new_list_as_it_is() {
        let new = json!([{"value": "ada@example.com", "primary": true, "label": "work"}]);
        assert_eq!(
            merge_contacts(Some(&json!([])), &new, true),
            Some(new.clone())
        );
        assert_eq!(merge_contacts(None, &new, true), Some(new));
    }
}
