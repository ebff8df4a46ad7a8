//! Salesforce's answer bodies, as the mock sends them: the REST error list
//! (`[{"message", "errorCode", "fields"}]`), the OAuth error object
//! (`{"error", "error_description"}`), record URLs and the `DUPLICATES_DETECTED` body.
//!
//! Invariant: every refusal the mock sends goes through one of these, so its shape is
//! Salesforce's (<https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/errorcodes.htm>).

use super::super::chassis::reply::{Payload, Reply};
use serde_json::{Map, Value, json};

/// The message tail Salesforce adds to an unknown column in a query or `fields=`.
pub(super) const COLUMN_HINT: &str = "If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names.";

/// Salesforce's REST error list with one entry; `fields` when the error names some.
pub(super) fn api_error(status: u16, code: &str, message: &str, fields: Option<&[&str]>) -> Reply {
    let mut entry = Map::new();
    entry.insert("message".into(), message.into());
    entry.insert("errorCode".into(), code.into());
    if let Some(fields) = fields {
        entry.insert("fields".into(), json!(fields));
    }
    Reply::json(status, Value::Array(vec![Value::Object(entry)]))
}

/// A 400 naming one field.
pub(super) fn field_error(code: &str, message: &str, field: &str) -> Reply {
    api_error(400, code, message, Some(&[field]))
}

pub(super) fn not_found() -> Reply {
    api_error(
        404,
        "NOT_FOUND",
        "The requested resource does not exist",
        None,
    )
}

pub(super) fn entity_deleted() -> Reply {
    api_error(404, "ENTITY_IS_DELETED", "entity is deleted", None)
}

pub(super) fn invalid_session() -> Reply {
    api_error(
        401,
        "INVALID_SESSION_ID",
        "Session expired or invalid",
        None,
    )
}

pub(super) fn invalid_field(message: &str) -> Reply {
    api_error(400, "INVALID_FIELD", message, None)
}

pub(super) fn malformed_query(message: &str) -> Reply {
    api_error(400, "MALFORMED_QUERY", message, None)
}

pub(super) fn parser_error(message: &str) -> Reply {
    api_error(400, "JSON_PARSER_ERROR", message, None)
}

pub(super) fn no_such_column(name: &str, object: &str) -> Reply {
    invalid_field(&format!(
        "No such column '{name}' on entity '{object}'. {COLUMN_HINT}"
    ))
}

/// The token endpoint's error: `{"error", "error_description"}`, status 400.
pub(super) fn oauth_error(error: &str, description: &str) -> Reply {
    Reply::json(
        400,
        json!({"error": error, "error_description": description}),
    )
}

pub(super) fn invalid_grant(description: &str) -> Reply {
    oauth_error("invalid_grant", description)
}

pub(super) fn invalid_client_id() -> Reply {
    oauth_error("invalid_client_id", "client identifier invalid")
}

/// The URL path of a record, as `attributes.url` and 300 answers give it.
pub(super) fn record_url(version: &str, object: &str, id: &str) -> String {
    format!("/services/data/v{version}/sobjects/{object}/{id}")
}

/// Salesforce's `DUPLICATES_DETECTED` answer for a save that matches the records `ids`.
pub(super) fn duplicates_detected(version: &str, object: &str, ids: &[String]) -> Reply {
    let records: Vec<Value> = ids
        .iter()
        .map(|id| {
            json!({
                "additionalInformation": [],
                "fieldDiffs": [],
                "matchConfidence": 100.0,
                "record": {
                    "attributes": {"type": object, "url": record_url(version, object, id)},
                    "Id": id,
                },
            })
        })
        .collect();
    Reply::json(
        400,
        json!([{
            "message": "Use one of these records?",
            "errorCode": "DUPLICATES_DETECTED",
            "fields": [],
            "duplicateResult": {
                "allowSave": false,
                "duplicateRule": format!("Standard_{object}_Duplicate_Rule"),
                "duplicateRuleEntityType": object,
                "errorMessage": "You're creating a duplicate record. We recommend you use an existing record instead.",
                "matchResults": [{
                    "entityType": object,
                    "errors": [],
                    "matchEngine": "FuzzyMatchEngine",
                    "matchRecords": records,
                    "rule": format!("Standard_{object}_Match_Rule_v1_0"),
                    "size": ids.len(),
                    "success": true,
                }],
            },
        }]),
    )
}

/// Why the mock refused a call, for the request log: the `errorCode` of a 400.
pub(super) fn refusal(reply: &Reply) -> Option<String> {
    match (&reply.body, reply.status) {
        (Payload::Json(body), 400) => body[0]["errorCode"].as_str().map(str::to_owned),
        _ => None,
    }
}
