//! The values the REST API accepts for each field type, and the bodies it reads: a value
//! is checked against its field ([`check_value`]: writable, type, length, restricted
//! picklist, email, id) and stored normalised as Salesforce answers it; a body must be a
//! JSON object ([`parse_body`]).
//!
//! Invariants: date-times are kept as `2026-12-01T15:00:00.000+0000` in UTC, numbers and
//! booleans as JSON numbers and booleans; a refusal is Salesforce's, in its shape
//! (<https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/errorcodes.htm>).

use super::super::chassis::reply::Reply;
use super::super::chassis::values::{plausible_email, text_of};
use super::answers::{field_error, parser_error};
use super::schema::{FieldDef, Kind, Target};
use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use serde_json::{Map, Value};

/// The token name Salesforce's JSON parser gives a value, for its messages.
pub(super) fn json_token(value: &Value) -> &'static str {
    match value {
        Value::Null => "VALUE_NULL",
        Value::Bool(true) => "VALUE_TRUE",
        Value::Bool(false) => "VALUE_FALSE",
        Value::Number(n) if n.is_f64() => "VALUE_NUMBER_FLOAT",
        Value::Number(_) => "VALUE_NUMBER_INT",
        Value::String(_) => "VALUE_STRING",
        Value::Array(_) => "START_ARRAY",
        Value::Object(_) => "START_OBJECT",
    }
}

/// Whether a value clears a field: `null` or `""`.
pub(super) fn is_blank(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}

/// Whether a stored boolean is true.
pub(super) fn is_true(value: Option<&Value>) -> bool {
    matches!(value, Some(Value::Bool(true)))
}

/// A date-time as Salesforce's REST API reads one: ISO 8601 with a zone (`Z`, `+02:00`
/// or `+0000`), seconds and optional fractions.
pub(super) fn parse_datetime(text: &str) -> Option<DateTime<FixedOffset>> {
    DateTime::parse_from_rfc3339(text)
        .or_else(|_| DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .ok()
}

/// A date-time as Salesforce answers it: `2026-12-01T15:00:00.000+0000`.
pub(super) fn format_datetime(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string()
}

pub(super) fn is_id_shaped(text: &str) -> bool {
    (text.len() == 15 || text.len() == 18) && text.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Checks a (non-blank) value against its field and gives it as Salesforce stores it.
///
/// # Errors
/// Salesforce's refusal: a read-only field, a wrong type, text too long, a value a
/// restricted picklist lacks, a bad email address or id.
pub(super) fn check_value(field: &FieldDef, value: &Value) -> Result<Value, Reply> {
    if !field.writable {
        return Err(field_error(
            "INVALID_FIELD_FOR_INSERT_UPDATE",
            &format!(
                "Unable to create/update fields: {}. Please check the security settings of this field and verify that it is read/write for your profile or permission set.",
                field.name
            ),
            &field.name,
        ));
    }
    let shown = text_of(value).unwrap_or_else(|| value.to_string());
    let parse_failure = || {
        parser_error(&format!(
            "Cannot deserialize instance of {} from {} value {shown} or request may be missing a required field",
            field.kind.name(),
            json_token(value)
        ))
    };
    if matches!(value, Value::Array(_) | Value::Object(_)) {
        return Err(parse_failure());
    }
    let stored = match (field.kind, value) {
        (Kind::Any, v) => Some(v.clone()),
        (Kind::Text, v) => text_of(v).map(Value::String),
        (Kind::Email, Value::String(s)) if plausible_email(s) => Some(value.clone()),
        (Kind::Email, _) => {
            return Err(field_error(
                "INVALID_EMAIL_ADDRESS",
                &format!("{}: invalid email address: {shown}", field.label),
                &field.name,
            ));
        }
        (Kind::DateTime, Value::String(s)) => {
            parse_datetime(s).map(|at| Value::String(format_datetime(at.with_timezone(&Utc))))
        }
        (Kind::Date, Value::String(s)) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .ok()
            .map(|d| Value::String(d.to_string())),
        (Kind::Int, Value::Number(n)) => n.as_i64().map(Value::from),
        (Kind::Int, Value::String(s)) => s.parse::<i64>().ok().map(Value::from),
        (Kind::Number, Value::Number(_)) | (Kind::Bool, Value::Bool(_)) => Some(value.clone()),
        (Kind::Number, Value::String(s)) => s
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number),
        (Kind::Bool, Value::String(s)) if s.eq_ignore_ascii_case("true") => Some(Value::Bool(true)),
        (Kind::Bool, Value::String(s)) if s.eq_ignore_ascii_case("false") => {
            Some(Value::Bool(false))
        }
        (Kind::Ref(target), Value::String(s)) if is_id_shaped(s) => {
            if target == Target::User && !s.starts_with("005") {
                return Err(field_error(
                    "FIELD_INTEGRITY_EXCEPTION",
                    &format!("{}: id value of incorrect type: {s}", field.label),
                    &field.name,
                ));
            }
            Some(value.clone())
        }
        (Kind::Ref(_), _) => {
            return Err(field_error(
                "MALFORMED_ID",
                &format!("{}: id value of incorrect type: {shown}", field.label),
                &field.name,
            ));
        }
        _ => None,
    };
    let stored = stored.ok_or_else(parse_failure)?;
    if let (Some(max), Some(text)) = (field.max_len, stored.as_str())
        && text.chars().count() > max
    {
        return Err(field_error(
            "STRING_TOO_LONG",
            &format!(
                "{}: data value too large: {text} (max length={max})",
                field.label
            ),
            &field.name,
        ));
    }
    if let (Some(values), Some(text)) = (field.restricted, stored.as_str())
        && !values.contains(&text)
    {
        return Err(field_error(
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
            &format!(
                "{}: bad value for restricted picklist field: {text}",
                field.label
            ),
            &field.name,
        ));
    }
    Ok(stored)
}

/// A request body as a JSON object.
///
/// # Errors
/// `JSON_PARSER_ERROR` for no body, broken JSON or anything but an object.
pub(super) fn parse_body(body: &[u8]) -> Result<Map<String, Value>, Reply> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(parser_error("No content to map due to end-of-input"));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(parser_error(&format!(
            "Cannot deserialize instance of sobject from {} value",
            json_token(&other)
        ))),
        Err(e) => Err(parser_error(&format!(
            "Unexpected character at [line:{}, column:{}]: {e}",
            e.line(),
            e.column()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::super::schema::standard_objects;
    use super::*;
    use serde_json::json;

    #[test]
    fn values_are_stored_as_salesforce_answers_them() {
        let defs = standard_objects();
        let event = defs.iter().find(|d| d.name == "Event").expect("Event");
        let field = |n: &str| event.field(n).expect("field");
        assert_eq!(
            check_value(field("StartDateTime"), &json!("2026-12-01T16:00:00+01:00")).ok(),
            Some(json!("2026-12-01T15:00:00.000+0000"))
        );
        assert_eq!(
            check_value(field("IsPrivate"), &json!("TRUE")).ok(),
            Some(json!(true))
        );
        assert_eq!(
            check_value(field("DurationInMinutes"), &json!("30")).ok(),
            Some(json!(30))
        );
        assert!(check_value(field("ShowAs"), &json!("Tentative")).is_err());
        assert!(check_value(field("Subject"), &json!("x".repeat(256))).is_err());
        assert!(
            check_value(field("Subject"), &json!("é".repeat(255))).is_ok(),
            "characters, not bytes"
        );
        assert!(check_value(field("CreatedDate"), &json!("2026-12-01T15:00:00Z")).is_err());
    }
}
