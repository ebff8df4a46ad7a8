//! The types of v2 body fields ([`Ty`]) and how a value is checked against one: JSON types
//! without coercion, formats (dates, `HH:MM` times and durations, emails, currency codes),
//! enums, address objects, contact lists, participants and attendees, links to records
//! that must exist.

use super::super::chassis::values::plausible_email;
use super::refusal::{PipedriveRefusal, Refused};
use super::schema::Kind;
use chrono::NaiveDate;
use serde_json::{Value, json};

/// `visible_to`.
const VISIBILITY: [i64; 4] = [1, 3, 5, 7];

/// The keys of an address or location object (`OrganizationItemAddress`,
/// `AddActivityRequestLocation`).
const ADDRESS_KEYS: [&str; 11] = [
    "value",
    "country",
    "admin_area_level_1",
    "admin_area_level_2",
    "locality",
    "sublocality",
    "route",
    "street_number",
    "subpremise",
    "postal_code",
    "formatted_address",
];

/// The keys of an activity attendee (`AddActivityRequestAttendeesInner`).
const ATTENDEE_KEYS: [&str; 6] = [
    "email",
    "name",
    "status",
    "is_organizer",
    "person_id",
    "user_id",
];

/// What a field takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ty {
    /// Text or `null`.
    Text,
    /// Non-empty text.
    Name,
    /// A positive integer (a user, pipeline, stage or project id).
    Id,
    /// The id of an existing record of this type, or `null`.
    Link(Kind),
    /// `[{value, primary, label}]`; emails are checked as addresses.
    Contacts { email: bool },
    /// One of 1, 3, 5, 7.
    Visibility,
    /// `[positive integer]`.
    LabelIds,
    /// An address object (`{value, country, …}`) or `null`.
    Address,
    /// A number.
    Number,
    /// A number or `null`.
    NumberOrNull,
    /// Three letters.
    Currency,
    /// One of these strings.
    OneOf(&'static [&'static str]),
    /// `YYYY-MM-DD`.
    Date,
    /// `HH:MM` (UTC) or `null`.
    Time,
    /// `HH:MM` or `null`.
    Duration,
    /// `true` / `false`.
    Bool,
    /// An integer or `null`.
    IntOrNull,
    /// RFC 3339 date-time text.
    Timestamp,
    /// `[{person_id, primary}]`, each person existing.
    Participants,
    /// `[{email, name, status, is_organizer, person_id, user_id}]`.
    Attendees,
    /// Set by Pipedrive: refused with this message.
    ReadOnly(&'static str),
}

pub(super) fn wrong(name: &str, expected: &str) -> Refused {
    Refused::new(
        PipedriveRefusal::WrongType,
        format!("Invalid value for field '{name}': expected {expected}"),
    )
}

fn format(name: &str, expected: &str) -> Refused {
    Refused::new(
        PipedriveRefusal::BadFormat,
        format!("Invalid value for field '{name}': expected {expected}"),
    )
}

fn positive_id(value: &Value) -> Option<i64> {
    value.as_i64().filter(|n| *n > 0)
}

/// `YYYY-MM-DD`.
fn is_date(text: &str) -> bool {
    text.len() == 10 && NaiveDate::parse_from_str(text, "%Y-%m-%d").is_ok()
}

/// `HH:MM`, hours at most `max_hours`.
fn is_hh_mm(text: &str, max_hours: u32) -> bool {
    let b = text.as_bytes();
    let [h1, h2, b':', m1, m2] = b else {
        return false;
    };
    let digits = [*h1, *h2, *m1, *m2];
    if !digits.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let n = |x: u8, y: u8| u32::from(x - b'0') * 10 + u32::from(y - b'0');
    n(*h1, *h2) <= max_hours && n(*m1, *m2) <= 59
}

/// Checks one value against its type; `exists` says whether a linked record exists.
/// Returns the value as kept.
pub(super) fn check(
    name: &str,
    ty: Ty,
    value: &Value,
    exists: &dyn Fn(Kind, i64) -> bool,
) -> Result<Value, Refused> {
    let text_or_null = |what: &str| match value {
        Value::Null | Value::String(_) => Ok(value.clone()),
        _ => Err(wrong(name, what)),
    };
    match ty {
        Ty::Text => text_or_null("a string or null"),
        Ty::Name => match value {
            Value::String(s) if !s.trim().is_empty() => Ok(value.clone()),
            Value::String(_) => Err(format(name, "a non-empty string")),
            _ => Err(wrong(name, "a non-empty string")),
        },
        Ty::Id => positive_id(value)
            .map(Value::from)
            .ok_or_else(|| wrong(name, "a positive integer")),
        Ty::Link(target) => {
            if value.is_null() {
                return Ok(Value::Null);
            }
            let id =
                positive_id(value).ok_or_else(|| wrong(name, "a positive integer id or null"))?;
            if exists(target, id) {
                Ok(id.into())
            } else {
                Err(Refused::new(
                    PipedriveRefusal::MissingLink,
                    format!(
                        "Invalid value for field '{name}': {} {id} not found",
                        target.noun()
                    ),
                ))
            }
        }
        Ty::Contacts { email } => contacts(name, value, email),
        Ty::Visibility => match value.as_i64() {
            Some(v) if VISIBILITY.contains(&v) => Ok(value.clone()),
            Some(_) => Err(Refused::new(
                PipedriveRefusal::BadEnum,
                format!("Invalid value for field '{name}': expected one of 1, 3, 5, 7"),
            )),
            None => Err(wrong(name, "an integer")),
        },
        Ty::LabelIds => match value {
            Value::Array(ids) if ids.iter().all(|id| positive_id(id).is_some()) => {
                Ok(value.clone())
            }
            _ => Err(wrong(name, "an array of positive integers")),
        },
        Ty::Address => match value {
            Value::Null => Ok(Value::Null),
            Value::Object(o) => {
                if let Some(k) = o.keys().find(|k| !ADDRESS_KEYS.contains(&k.as_str())) {
                    return Err(Refused::new(
                        PipedriveRefusal::UnknownField,
                        format!("Unknown field '{name}.{k}'"),
                    ));
                }
                if o.values().all(|v| v.is_string() || v.is_null()) {
                    Ok(value.clone())
                } else {
                    Err(wrong(name, "an object of strings"))
                }
            }
            _ => Err(wrong(name, "an object ({\"value\": …}) or null")),
        },
        Ty::Number => match value {
            Value::Number(_) => Ok(value.clone()),
            _ => Err(wrong(name, "a number")),
        },
        Ty::NumberOrNull => match value {
            Value::Number(_) | Value::Null => Ok(value.clone()),
            _ => Err(wrong(name, "a number or null")),
        },
        Ty::Currency => match value.as_str() {
            Some(c) if c.len() == 3 && c.bytes().all(|b| b.is_ascii_alphabetic()) => {
                Ok(value.clone())
            }
            Some(_) => Err(format(name, "a 3-letter currency code")),
            None => Err(wrong(name, "a 3-letter currency code")),
        },
        Ty::OneOf(allowed) => match value.as_str() {
            Some(v) if allowed.contains(&v) => Ok(value.clone()),
            Some(_) => Err(Refused::new(
                PipedriveRefusal::BadEnum,
                format!(
                    "Invalid value for field '{name}': expected one of {}",
                    allowed.join(", ")
                ),
            )),
            None => Err(wrong(name, "a string")),
        },
        Ty::Date => match value {
            Value::Null => Ok(Value::Null),
            Value::String(s) if is_date(s) => Ok(value.clone()),
            Value::String(_) => Err(format(name, "a date (YYYY-MM-DD)")),
            _ => Err(wrong(name, "a date (YYYY-MM-DD)")),
        },
        Ty::Time | Ty::Duration => {
            let (max, what) = if ty == Ty::Time {
                (23, "a time (HH:MM)")
            } else {
                (99, "a duration (HH:MM)")
            };
            match value {
                Value::Null => Ok(Value::Null),
                Value::String(s) if is_hh_mm(s, max) => Ok(value.clone()),
                Value::String(_) => Err(format(name, what)),
                _ => Err(wrong(name, what)),
            }
        }
        Ty::Bool => match value {
            Value::Bool(_) => Ok(value.clone()),
            _ => Err(wrong(name, "a boolean (true or false)")),
        },
        Ty::IntOrNull => match value {
            Value::Null => Ok(Value::Null),
            Value::Number(n) if n.is_i64() || n.is_u64() => Ok(value.clone()),
            _ => Err(wrong(name, "an integer or null")),
        },
        Ty::Timestamp => match value.as_str() {
            Some(t) if chrono::DateTime::parse_from_rfc3339(t).is_ok() => Ok(value.clone()),
            Some(_) => Err(format(name, "an RFC 3339 date-time")),
            None => Err(wrong(name, "an RFC 3339 date-time")),
        },
        Ty::Participants => participants(value, exists),
        Ty::Attendees => attendees(value),
        Ty::ReadOnly(message) => Err(Refused::new(PipedriveRefusal::ReadOnlyField, message)),
    }
}

/// `emails` / `phones`: `[{"value", "primary", "label"}]`, as kept (a `label` of `work`
/// and the first one primary unless given).
fn contacts(name: &str, value: &Value, email: bool) -> Result<Value, Refused> {
    let bad = || {
        wrong(
            name,
            "an array of {\"value\": string, \"primary\": boolean, \"label\": string}",
        )
    };
    let list = value.as_array().ok_or_else(bad)?;
    let mut out = Vec::new();
    for item in list {
        let item = item.as_object().ok_or_else(bad)?;
        if let Some(k) = item
            .keys()
            .find(|k| !["value", "primary", "label"].contains(&k.as_str()))
        {
            return Err(Refused::new(
                PipedriveRefusal::UnknownField,
                format!("Unknown field '{name}.{k}'"),
            ));
        }
        let text = item.get("value").and_then(Value::as_str).ok_or_else(bad)?;
        if text.trim().is_empty() {
            return Err(format(name, "a non-empty value"));
        }
        if email && !plausible_email(text) {
            return Err(Refused::new(
                PipedriveRefusal::BadFormat,
                format!("Invalid value for field '{name}': {text} is not a valid email address"),
            ));
        }
        let primary = match item.get("primary") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(bad()),
        };
        let label = match item.get("label") {
            None | Some(Value::Null) => "work",
            Some(Value::String(l)) => l.as_str(),
            Some(_) => return Err(bad()),
        };
        out.push(json!({ "value": text, "primary": primary, "label": label }));
    }
    if !out.iter().any(|e| e["primary"] == true)
        && let Some(first) = out.first_mut()
    {
        first["primary"] = true.into();
    }
    Ok(Value::Array(out))
}

/// `participants`: `[{"person_id", "primary"}]`, each person existing.
fn participants(value: &Value, exists: &dyn Fn(Kind, i64) -> bool) -> Result<Value, Refused> {
    let bad = || {
        wrong(
            "participants",
            "an array of {\"person_id\": integer, \"primary\": boolean}",
        )
    };
    let list = value.as_array().ok_or_else(bad)?;
    let mut out = Vec::new();
    for item in list {
        let item = item.as_object().ok_or_else(bad)?;
        if let Some(k) = item.keys().find(|k| *k != "person_id" && *k != "primary") {
            return Err(Refused::new(
                PipedriveRefusal::UnknownField,
                format!("Unknown field 'participants.{k}'"),
            ));
        }
        let id = item
            .get("person_id")
            .and_then(positive_id)
            .ok_or_else(bad)?;
        if !exists(Kind::Person, id) {
            return Err(Refused::new(
                PipedriveRefusal::MissingLink,
                format!("Invalid value for field 'participants': Person {id} not found"),
            ));
        }
        let primary = match item.get("primary") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(bad()),
        };
        out.push(json!({ "person_id": id, "primary": primary }));
    }
    Ok(Value::Array(out))
}

/// `attendees`: objects of the known keys.
fn attendees(value: &Value) -> Result<Value, Refused> {
    let bad = || wrong("attendees", "an array of attendee objects");
    for item in value.as_array().ok_or_else(bad)? {
        let item = item.as_object().ok_or_else(bad)?;
        if let Some(k) = item.keys().find(|k| !ATTENDEE_KEYS.contains(&k.as_str())) {
            return Err(Refused::new(
                PipedriveRefusal::UnknownField,
                format!("Unknown field 'attendees.{k}'"),
            ));
        }
    }
    Ok(value.clone())
}
