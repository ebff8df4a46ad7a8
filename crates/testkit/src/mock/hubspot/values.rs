//! The values a HubSpot property takes, by its type ([`Kind`]): text, numbers, dates at
//! midnight UTC, date-times (epoch milliseconds or ISO 8601), booleans, enumeration
//! options, and contacts' emails
//! (<https://developers.hubspot.com/docs/api/crm/properties>).
//!
//! Invariant: a value is kept as HubSpot returns it, as text; `null` is the empty,
//! clearing value.

use super::super::chassis::values::{plausible_email, text_of};
use chrono::{DateTime, NaiveDate, NaiveTime, Timelike};
use serde_json::Value;

/// A property's type (the properties API's `type`).
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Kind {
    /// Text.
    Text,
    /// A number.
    Number,
    /// A day: midnight UTC.
    Date,
    /// A moment.
    DateTime,
    /// `true` / `false`.
    Bool,
    /// One of these option values.
    Enumeration(Vec<String>),
}

impl Kind {
    pub(super) fn name(&self) -> &'static str {
        match self {
            Self::Text => "string",
            Self::Number => "number",
            Self::Date => "date",
            Self::DateTime => "datetime",
            Self::Bool => "bool",
            Self::Enumeration(_) => "enumeration",
        }
    }
}

/// A date-time as epoch milliseconds: digits, RFC 3339, or a bare date (midnight UTC).
pub(super) fn datetime_millis(text: &str) -> Option<i64> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().ok();
    }
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Some(at.timestamp_millis());
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .map(|d| d.and_time(NaiveTime::MIN).and_utc().timestamp_millis())
}

/// A JSON scalar as HubSpot keeps it: text (`null` is the empty, clearing value).
pub(super) fn scalar_text(value: &Value) -> Option<String> {
    if value.is_null() {
        Some(String::new())
    } else {
        text_of(value)
    }
}
/// Why a non-empty value is refused for a property of this kind: (HubSpot's error code,
/// message), or `None`.
pub(super) fn value_error(
    object_type: &str,
    name: &str,
    kind: &Kind,
    text: &str,
) -> Option<(&'static str, String)> {
    match kind {
        Kind::Enumeration(values) if !values.iter().any(|v| v == text) => Some((
            "INVALID_OPTION",
            format!(
                "{text} was not one of the allowed options: [{}]",
                values.join(", ")
            ),
        )),
        Kind::DateTime if datetime_millis(text).is_none() => Some((
            "INVALID_DATE",
            format!(
                "{text} is not a valid date-time for \"{name}\": expected epoch milliseconds or ISO 8601"
            ),
        )),
        Kind::Date => match datetime_millis(text).and_then(DateTime::from_timestamp_millis) {
            None => Some((
                "INVALID_DATE",
                format!("{text} is not a valid date for \"{name}\""),
            )),
            Some(at)
                if at.num_seconds_from_midnight() != 0 || at.timestamp_subsec_millis() != 0 =>
            {
                Some((
                    "INVALID_DATE",
                    format!(
                        "{text} is at {} UTC, not midnight!",
                        at.format("%H:%M:%S%.3f")
                    ),
                ))
            }
            Some(_) => None,
        },
        Kind::Number if text.trim() != text || text.parse::<f64>().is_err() => Some((
            "INVALID_FLOAT",
            format!("{text} is not a valid number for \"{name}\""),
        )),
        Kind::Bool if !matches!(text, "true" | "false") => Some((
            "INVALID_BOOLEAN",
            format!("{text} is not a valid boolean for \"{name}\": expected true or false"),
        )),
        Kind::Text if object_type == "contacts" && name == "email" && !plausible_email(text) => {
            Some(("INVALID_EMAIL", format!("Email address {text} is invalid")))
        }
        _ => None,
    }
}
