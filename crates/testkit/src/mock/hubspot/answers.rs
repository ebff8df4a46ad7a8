//! HubSpot's answers to a refused request, in the shapes its API sends them.
//!
//! The envelope is `{status: "error", message, correlationId, category?}`
//! (<https://developers.hubspot.com/docs/faq/api-error-responses>); a property
//! refusal embeds `[{isValid, message, error, name, localizedErrorMessage}]` as JSON text in
//! `message` ("Property values were not valid: […]").
//!
//! Invariant: every refusal of an API call is built here (but the 429, [`super::limits`]'),
//! so its shape is HubSpot's; the token endpoint's are [`super::auth`]'s.

use super::super::chassis::reply::{Payload, Reply};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

pub(super) fn correlation_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

pub(super) fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub(super) fn now_text() -> String {
    timestamp(Utc::now())
}

/// HubSpot's error envelope.
pub(super) fn error(status: u16, message: &str, category: Option<&str>) -> Reply {
    let mut body = json!({
        "status": "error",
        "message": message,
        "correlationId": correlation_id(),
    });
    if let (Some(category), Some(map)) = (category, body.as_object_mut()) {
        map.insert("category".into(), category.into());
    }
    Reply::json(status, body)
}

pub(super) fn not_found() -> Reply {
    error(404, "resource not found", None)
}

pub(super) fn bad_request(message: &str) -> Reply {
    error(400, message, Some("VALIDATION_ERROR"))
}

/// One entry of a "Property values were not valid" answer.
pub(super) fn invalid(name: &str, error: &str, message: &str) -> Value {
    json!({
        "isValid": false,
        "message": message,
        "error": error,
        "name": name,
        "localizedErrorMessage": message,
    })
}

/// The 400 for invalid property values: the message embeds the entries as JSON text.
pub(super) fn invalid_properties(items: &[Value]) -> Reply {
    let list = serde_json::to_string(items).unwrap_or_default();
    bad_request(&format!("Property values were not valid: {list}"))
}

/// The 409 for a unique value another record holds.
pub(super) fn conflict(object_type: &str, property: &str, value: &str, existing: u64) -> Reply {
    let message = if object_type == "contacts" && property == "email" {
        format!("Contact already exists. Existing ID: {existing}")
    } else {
        format!(
            "An object with the unique value \"{value}\" for property \"{property}\" already exists. Existing ID: {existing}"
        )
    };
    error(409, &message, Some("CONFLICT"))
}

pub(super) fn unknown_type(object_type: &str) -> Reply {
    bad_request(&format!("Unable to infer object type from: {object_type}"))
}

/// The 400 for an `idProperty` (batch upsert, `?idProperty=`) that is not a unique
/// property of the type. HubSpot names the type by its id: "Unable to perform
/// update/upsert by non-unique 0-3 property dealname" (quoted from live answers in
/// public integrations, e.g. segmentio/action-destinations#3957).
pub(super) fn non_unique_id_property(type_id: &str, property: &str) -> Reply {
    bad_request(&format!(
        "Unable to perform update/upsert by non-unique {type_id} property {property}"
    ))
}

pub(super) fn parse_json(body: &[u8]) -> Result<Value, Reply> {
    serde_json::from_slice(body).map_err(|e| {
        bad_request(&format!(
            "Invalid input JSON on line {}, column {}: {e}",
            e.line(),
            e.column()
        ))
    })
}

/// Why the mock refused a call, for the request log: the message of a 400.
pub(super) fn refusal(reply: &Reply) -> Option<String> {
    match (&reply.body, reply.status) {
        (Payload::Json(body), 400) => body["message"].as_str().map(str::to_owned),
        _ => None,
    }
}
