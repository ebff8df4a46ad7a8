//! Why the mock refuses a request, each reason with the doc that says the real API does
//! ([`PipedriveRefusal::doc`]), and the one answer a refusal gets: a 400 in v2's error
//! shape ([`Refused::reply`]).

use super::super::chassis::reply::Reply;
use serde_json::json;

/// Why the mock refused a request, each with the doc that says the real API does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PipedriveRefusal {
    /// The body is not a JSON object.
    NotAnObject,
    /// A field the object does not have in v2: a v1 name (`email`, `user_id`,
    /// `busy_flag`), a custom field's key at the top level, a typo.
    UnknownField,
    /// `custom_fields` on an object that has no custom fields (activities).
    NoCustomFields,
    /// A custom field key that is not defined for the object.
    UnknownCustomField,
    /// A field that v2 sets itself: an activity's `person_id` (set through its primary
    /// participant).
    ReadOnlyField,
    /// A value of the wrong JSON type: text for a number or id (no coercion), `1` for a
    /// boolean, text for an address object.
    WrongType,
    /// Text in the wrong format: a date, time, duration, email or currency code.
    BadFormat,
    /// A value outside the field's set: `visible_to`, a deal's `status`, an activity
    /// `type` the company does not have, `marketing_status`.
    BadEnum,
    /// A create without the field the object needs (`name`, a deal's `title`).
    Required,
    /// A link (`org_id`, `person_id`, `deal_id`, a participant) to a record that does not
    /// exist.
    MissingLink,
    /// A query parameter out of its range or set (`limit`, `sort_by`, `term`, a cursor).
    BadQuery,
}

impl PipedriveRefusal {
    /// Every refusal the mock implements.
    pub const ALL: [Self; 11] = [
        Self::NotAnObject,
        Self::UnknownField,
        Self::NoCustomFields,
        Self::UnknownCustomField,
        Self::ReadOnlyField,
        Self::WrongType,
        Self::BadFormat,
        Self::BadEnum,
        Self::Required,
        Self::MissingLink,
        Self::BadQuery,
    ];

    /// The page that documents it.
    pub fn doc(self) -> &'static str {
        match self {
            Self::NotAnObject | Self::UnknownField | Self::WrongType | Self::MissingLink => {
                "https://pipedrive.readme.io/docs/pipedrive-api-v2-migration-guide"
            }
            Self::NoCustomFields | Self::UnknownCustomField => {
                "https://pipedrive.readme.io/docs/core-api-concepts-custom-fields"
            }
            Self::ReadOnlyField => {
                "https://devcommunity.pipedrive.com/t/api-v1-to-v2-upgrade-post-activities-http-400-responses/19734"
            }
            Self::BadFormat => {
                "https://developers.pipedrive.com/docs/api/v1/Activities#addActivity"
            }
            Self::BadEnum => "https://developers.pipedrive.com/docs/api/v1/ActivityTypes",
            Self::Required => {
                "https://github.com/pipedrive/client-nodejs/blob/master/src/versions/v2/models/add-deal-request.ts"
            }
            Self::BadQuery => {
                "https://github.com/pipedrive/client-nodejs/blob/master/src/versions/v2/api/persons-api.ts"
            }
        }
    }
}

/// A refused request: why, and the message the answer carries.
#[derive(Debug, Clone)]
pub(super) struct Refused {
    pub(super) why: PipedriveRefusal,
    pub(super) message: String,
}

impl Refused {
    pub(super) fn new(why: PipedriveRefusal, message: impl Into<String>) -> Self {
        Self {
            why,
            message: message.into(),
        }
    }

    /// v2's validation error: 400 `{"success": false, "error": …, "code":
    /// "ERR_BAD_REQUEST"}` (as answered to a read-only `person_id`, see
    /// [`PipedriveRefusal::ReadOnlyField`]'s doc).
    pub(super) fn reply(&self) -> Reply {
        Reply::json(
            400,
            json!({ "success": false, "error": self.message, "code": "ERR_BAD_REQUEST" }),
        )
    }
}

/// A query parameter out of its range or set.
pub(super) fn bad_param(name: &str, expected: &str) -> Refused {
    Refused::new(
        PipedriveRefusal::BadQuery,
        format!("Invalid value for parameter '{name}': expected {expected}"),
    )
}
