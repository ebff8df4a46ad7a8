//! Pipedrive's answer envelopes (<https://pipedrive.readme.io/docs/core-api-concepts-responses>):
//! `{"success": true, "data": …, "additional_data": …}`, and errors
//! `{"success": false, "error": …, "error_info": …, "data": null, "additional_data": null}`
//! (v2's validation errors have their own shape: see `refusal::Refused::reply`).

use super::super::chassis::reply::Reply;
use super::schema::Kind;
use serde_json::{Value, json};

/// The `error_info` of most errors.
pub(super) const ERROR_INFO: &str =
    "Please check developers.pipedrive.com for more information about Pipedrive API.";

/// A success envelope.
pub(super) fn ok(data: Value, additional: Value) -> Reply {
    Reply::json(
        200,
        json!({ "success": true, "data": data, "additional_data": additional }),
    )
}

/// The error envelope.
pub(super) fn error_with(status: u16, message: &str, info: &str) -> Reply {
    Reply::json(
        status,
        json!({
            "success": false,
            "error": message,
            "error_info": info,
            "data": null,
            "additional_data": null,
        }),
    )
}

pub(super) fn error(status: u16, message: &str) -> Reply {
    error_with(status, message, ERROR_INFO)
}

pub(super) fn unauthorized() -> Reply {
    Reply::json(
        401,
        json!({
            "success": false,
            "error": "unauthorized access",
            "errorCode": 401,
            "error_info": ERROR_INFO,
            "data": null,
            "additional_data": null,
        }),
    )
}

pub(super) fn account_closed() -> Reply {
    error_with(
        402,
        "Company account is not open",
        "Please check that you have an active subscription.",
    )
}

pub(super) fn forbidden() -> Reply {
    error(403, "You do not have permission to perform this action")
}

pub(super) fn not_found(kind: Kind) -> Reply {
    error(404, &format!("{} not found", kind.noun()))
}

pub(super) fn unknown_method() -> Reply {
    error(404, "Unknown method .")
}

/// 429, for a burst window and for the spent daily budget alike (the headers tell
/// which).
pub(super) fn over_limit() -> Reply {
    error_with(
        429,
        "Request over limit",
        "Please check developers.pipedrive.com",
    )
}

pub(super) fn oauth_error(status: u16, error: &str, description: &str) -> Reply {
    Reply::json(
        status,
        json!({ "error": error, "error_description": description }),
    )
}
