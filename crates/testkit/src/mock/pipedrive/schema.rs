//! What Pipedrive's API v2 accepts in a write body, per object: one schema (fields and
//! their types, read-only and required fields, which objects take `custom_fields`),
//! checked on every create and update.
//!
//! Sources: the v2 request models of Pipedrive's official client
//! (<https://github.com/pipedrive/client-nodejs/tree/master/src/versions/v2/models>:
//! `add-person-request.ts`, `add-organization-request.ts`, `add-deal-request.ts`,
//! `add-activity-request.ts`), the v2 migration guide
//! (<https://pipedrive.readme.io/docs/pipedrive-api-v2-migration-guide>: "significantly
//! stricter input validation", booleans only `true`/`false`, "numeric fields no longer
//! coerce string input"), and the custom fields page
//! (<https://pipedrive.readme.io/docs/core-api-concepts-custom-fields>: custom fields exist
//! on deals, organizations, persons and products — activities have none).
//!
//! Invariants: every field a body may carry is listed in [`Kind::fields`] with its type
//! (checked by [`super::values`]); anything else is refused
//! ([`PipedriveRefusal::UnknownField`]).

use super::refusal::{PipedriveRefusal, Refused};
use super::values::{Ty, check, wrong};
use serde_json::{Map, Value};

/// An object type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Person,
    Organization,
    Deal,
    Activity,
}

/// The activity types the mock's company has (Pipedrive's defaults' `key_string`s).
pub(super) const ACTIVITY_TYPES: [&str; 6] =
    ["call", "meeting", "task", "deadline", "email", "lunch"];

/// A deal's `status` (v2 marks deletion with `is_deleted`, not a status).
const DEAL_STATUSES: [&str; 3] = ["open", "won", "lost"];

/// A person's `marketing_status` (`AddPersonRequestMarketingStatusConst`).
const MARKETING_STATUSES: [&str; 4] = ["no_consent", "unsubscribed", "subscribed", "archived"];

/// A field of a write body.
pub(super) type Field = (&'static str, Ty);

const PERSON: &[Field] = &[
    ("name", Ty::Name),
    ("owner_id", Ty::Id),
    ("org_id", Ty::Link(Kind::Organization)),
    ("add_time", Ty::Timestamp),
    ("update_time", Ty::Timestamp),
    ("emails", Ty::Contacts { email: true }),
    ("phones", Ty::Contacts { email: false }),
    ("visible_to", Ty::Visibility),
    ("label_ids", Ty::LabelIds),
    ("marketing_status", Ty::OneOf(&MARKETING_STATUSES)),
];

const ORGANIZATION: &[Field] = &[
    ("name", Ty::Name),
    ("owner_id", Ty::Id),
    ("add_time", Ty::Timestamp),
    ("update_time", Ty::Timestamp),
    ("visible_to", Ty::Visibility),
    ("label_ids", Ty::LabelIds),
    ("address", Ty::Address),
];

const DEAL: &[Field] = &[
    ("title", Ty::Name),
    ("owner_id", Ty::Id),
    ("person_id", Ty::Link(Kind::Person)),
    ("org_id", Ty::Link(Kind::Organization)),
    ("pipeline_id", Ty::Id),
    ("stage_id", Ty::Id),
    ("value", Ty::Number),
    ("currency", Ty::Currency),
    ("is_deleted", Ty::Bool),
    ("is_archived", Ty::Bool),
    ("archive_time", Ty::Text),
    ("status", Ty::OneOf(&DEAL_STATUSES)),
    ("probability", Ty::NumberOrNull),
    ("lost_reason", Ty::Text),
    ("visible_to", Ty::Visibility),
    ("close_time", Ty::Text),
    ("won_time", Ty::Text),
    ("lost_time", Ty::Text),
    ("expected_close_date", Ty::Date),
    ("label_ids", Ty::LabelIds),
];

const ACTIVITY: &[Field] = &[
    ("subject", Ty::Text),
    ("type", Ty::OneOf(&ACTIVITY_TYPES)),
    ("owner_id", Ty::Id),
    ("deal_id", Ty::Link(Kind::Deal)),
    ("lead_id", Ty::Text),
    (
        "person_id",
        Ty::ReadOnly(
            "'person_id' is a read-only field. Add a primary participant to set 'person_id' instead.",
        ),
    ),
    ("org_id", Ty::Link(Kind::Organization)),
    ("project_id", Ty::Id),
    ("due_date", Ty::Date),
    ("due_time", Ty::Time),
    ("duration", Ty::Duration),
    ("busy", Ty::Bool),
    ("done", Ty::Bool),
    ("location", Ty::Address),
    ("participants", Ty::Participants),
    ("attendees", Ty::Attendees),
    ("public_description", Ty::Text),
    ("priority", Ty::IntOrNull),
    ("note", Ty::Text),
];

impl Kind {
    /// The type a path segment names.
    pub(super) fn from_path(segment: &str) -> Option<Self> {
        Some(match segment {
            "persons" => Self::Person,
            "organizations" => Self::Organization,
            "deals" => Self::Deal,
            "activities" => Self::Activity,
            _ => return None,
        })
    }

    /// The type a test names: the path name or the singular, ignoring case.
    pub(super) fn named(name: &str) -> Option<Self> {
        Some(match name.to_ascii_lowercase().as_str() {
            "persons" | "person" => Self::Person,
            "organizations" | "organization" | "orgs" | "org" => Self::Organization,
            "deals" | "deal" => Self::Deal,
            "activities" | "activity" => Self::Activity,
            _ => return None,
        })
    }

    pub(super) fn plural(self) -> &'static str {
        match self {
            Self::Person => "persons",
            Self::Organization => "organizations",
            Self::Deal => "deals",
            Self::Activity => "activities",
        }
    }

    /// The noun of its "not found" message.
    pub(super) fn noun(self) -> &'static str {
        match self {
            Self::Person => "Person",
            Self::Organization => "Organization",
            Self::Deal => "Deal",
            Self::Activity => "Activity",
        }
    }

    /// The fields a write body may set.
    pub(super) fn fields(self) -> &'static [Field] {
        match self {
            Self::Person => PERSON,
            Self::Organization => ORGANIZATION,
            Self::Deal => DEAL,
            Self::Activity => ACTIVITY,
        }
    }

    /// Whether the object has custom fields (deals, organizations, persons — and products,
    /// which the mock does not model).
    pub(super) fn has_custom_fields(self) -> bool {
        self != Self::Activity
    }

    /// The field a create must set, if any (activities need none: subject and type
    /// default).
    pub(super) fn required(self) -> Option<&'static str> {
        match self {
            Self::Person | Self::Organization => Some("name"),
            Self::Deal => Some("title"),
            Self::Activity => None,
        }
    }

    /// The `fields` search takes (empty: no search).
    pub(super) fn search_fields(self) -> &'static [&'static str] {
        match self {
            Self::Person => &["name", "email", "phone", "notes", "custom_fields"],
            Self::Organization => &["name", "address", "notes", "custom_fields"],
            Self::Deal => &["title", "notes", "custom_fields"],
            Self::Activity => &[],
        }
    }

    /// The query parameters a list filters on, with the field each compares.
    pub(super) fn list_filters(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Self::Person => &[("owner_id", "owner_id"), ("org_id", "org_id")],
            Self::Organization => &[("owner_id", "owner_id")],
            Self::Deal => &[
                ("owner_id", "owner_id"),
                ("person_id", "person_id"),
                ("org_id", "org_id"),
                ("pipeline_id", "pipeline_id"),
                ("stage_id", "stage_id"),
                ("status", "status"),
            ],
            // `person_id`: "only activities whose primary participant is the given person".
            Self::Activity => &[
                ("owner_id", "owner_id"),
                ("deal_id", "deal_id"),
                ("person_id", "person_id"),
                ("org_id", "org_id"),
                ("done", "done"),
            ],
        }
    }

    /// The fields a list sorts by (`sort_by`).
    pub(super) fn sort_fields(self) -> &'static [&'static str] {
        match self {
            Self::Activity => &["id", "update_time", "add_time", "due_date"],
            _ => &["id", "update_time", "add_time"],
        }
    }

    /// The query parameters search filters on, with the field each compares.
    pub(super) fn search_filters(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Self::Person => &[("organization_id", "org_id")],
            Self::Deal => &[
                ("organization_id", "org_id"),
                ("person_id", "person_id"),
                ("status", "status"),
            ],
            Self::Organization | Self::Activity => &[],
        }
    }
}

/// Whether a custom field key is shaped like Pipedrive's: 40 lowercase hex digits.
pub(super) fn is_field_key(key: &str) -> bool {
    key.len() == 40
        && key
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A checked write body: (standard fields, custom fields), as kept.
pub(super) type Checked = (Map<String, Value>, Map<String, Value>);

/// Checks a write body against the schema: (standard fields, custom fields), as kept.
/// `defined` holds the custom field keys of the object; a create also needs the
/// object's required field.
pub(super) fn validate(
    kind: Kind,
    body: &Map<String, Value>,
    defined: &dyn Fn(&str) -> bool,
    exists: &dyn Fn(Kind, i64) -> bool,
    create: bool,
) -> Result<Checked, Refused> {
    let mut fields = Map::new();
    let mut custom = Map::new();
    for (name, value) in body {
        if name == "custom_fields" {
            if !kind.has_custom_fields() {
                return Err(Refused::new(
                    PipedriveRefusal::NoCustomFields,
                    format!(
                        "Unknown field 'custom_fields': {} have no custom fields",
                        kind.plural()
                    ),
                ));
            }
            let Value::Object(values) = value else {
                return Err(wrong(name, "an object"));
            };
            for (key, value) in values {
                if !defined(key) {
                    return Err(Refused::new(
                        PipedriveRefusal::UnknownCustomField,
                        format!("Custom field {key} does not exist"),
                    ));
                }
                custom.insert(key.clone(), value.clone());
            }
        } else if let Some((_, ty)) = kind.fields().iter().find(|(n, _)| n == name) {
            fields.insert(name.clone(), check(name, *ty, value, exists)?);
        } else {
            return Err(Refused::new(
                PipedriveRefusal::UnknownField,
                format!("Unknown field '{name}'"),
            ));
        }
    }
    if create
        && let Some(required) = kind.required()
        && !fields.contains_key(required)
    {
        return Err(Refused::new(
            PipedriveRefusal::Required,
            format!("Field '{required}' is required"),
        ));
    }
    Ok((fields, custom))
}

/// A JSON body that must be an object.
pub(super) fn parse_object(body: &[u8]) -> Result<Map<String, Value>, Refused> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(Refused::new(
            PipedriveRefusal::NotAnObject,
            "The request body must be a JSON object",
        )),
        Err(e) => Err(Refused::new(
            PipedriveRefusal::NotAnObject,
            format!("Invalid JSON in request body: {e}"),
        )),
    }
}
