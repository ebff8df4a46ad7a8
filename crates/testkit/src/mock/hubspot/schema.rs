//! The one schema of what the mock's HubSpot accepts: object types, their properties
//! (type, options, unique values, read-only), the properties a create needs, which
//! objects may have unique-value properties, and the association types between two
//! object types. Every request is checked against it; a refusal answers HubSpot's 400 in
//! HubSpot's shape.
//!
//! Sources:
//! - property types and values:
//!   <https://developers.hubspot.com/docs/api/crm/properties> (`type`: string, number,
//!   date, datetime, enumeration, bool; date values at midnight UTC, datetimes as epoch
//!   milliseconds or ISO 8601);
//! - unique values ("require unique values", `hasUniqueValue`) exist on contacts,
//!   companies, deals, tickets and custom objects only, not on activities (calls, emails,
//!   meetings, notes, tasks): <https://knowledge.hubspot.com/properties/set-validation-rules-for-properties>;
//! - meetings: `hs_timestamp` required, `hs_meeting_outcome` options:
//!   <https://developers.hubspot.com/docs/api-reference/latest/crm/activities/meetings/guide>;
//! - association type ids:
//!   <https://developers.hubspot.com/docs/api-reference/latest/crm/associations/overview>.

use super::super::chassis::reply::Reply;
use super::answers::{
    bad_request, error, invalid, invalid_properties, non_unique_id_property, unknown_type,
};
use super::values::{Kind, scalar_text, value_error};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// One property of an object type.
#[derive(Debug, Clone)]
pub(super) struct Property {
    kind: Kind,
    unique: bool,
}

/// Object type name → property name → definition, and the custom association labels.
#[derive(Debug, Clone)]
pub(super) struct Schema {
    objects: BTreeMap<String, BTreeMap<String, Property>>,
    /// USER_DEFINED association labels: (from type, to type, type id).
    labels: Vec<(String, String, u32)>,
}

/// The standard object types and their type ids.
const TYPE_IDS: [(&str, &str); 9] = [
    ("contacts", "0-1"),
    ("companies", "0-2"),
    ("deals", "0-3"),
    ("tickets", "0-5"),
    ("tasks", "0-27"),
    ("notes", "0-46"),
    ("meetings", "0-47"),
    ("calls", "0-48"),
    ("emails", "0-49"),
];

/// Activities: they cannot have unique-value properties.
const ACTIVITIES: [&str; 5] = ["calls", "emails", "meetings", "notes", "tasks"];

/// The allowed values of `hs_meeting_outcome`.
const MEETING_OUTCOMES: [&str; 5] = [
    "SCHEDULED",
    "COMPLETED",
    "RESCHEDULED",
    "NO_SHOW",
    "CANCELED",
];

/// `lifecyclestage`'s default options.
const LIFECYCLE_STAGES: [&str; 8] = [
    "subscriber",
    "lead",
    "marketingqualifiedlead",
    "salesqualifiedlead",
    "opportunity",
    "customer",
    "evangelist",
    "other",
];

/// HubSpot-defined association type ids: (from type, to type, id). The first entry of a
/// pair is the unlabelled ("default") one; a second is the "primary" label.
const ASSOCIATION_TYPES: [(&str, &str, u32); 16] = [
    ("meetings", "contacts", 200),
    ("contacts", "meetings", 199),
    ("meetings", "companies", 188),
    ("companies", "meetings", 187),
    ("meetings", "deals", 212),
    ("deals", "meetings", 211),
    ("contacts", "companies", 279),
    ("contacts", "companies", 1),
    ("companies", "contacts", 280),
    ("companies", "contacts", 2),
    ("deals", "contacts", 3),
    ("contacts", "deals", 4),
    ("deals", "companies", 341),
    ("deals", "companies", 5),
    ("companies", "deals", 342),
    ("companies", "deals", 6),
];

/// The canonical name of an object type: HubSpot's singular names and type ids of the
/// standard objects are accepted for the plural names.
pub(super) fn canonical_type(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    let singular = |plural: &'static str| match plural {
        "companies" => "company",
        p => p.strip_suffix('s').unwrap_or(p),
    };
    TYPE_IDS
        .iter()
        .find(|(plural, id)| lower == *plural || lower == *id || lower == singular(plural))
        .map_or_else(|| name.to_owned(), |(plural, _)| (*plural).to_owned())
}

/// The type id HubSpot's messages name a type by (`0-47` for meetings); a custom type by
/// its name.
pub(super) fn type_id(object_type: &str) -> &str {
    TYPE_IDS
        .iter()
        .find(|(plural, _)| *plural == object_type)
        .map_or(object_type, |(_, id)| id)
}

/// Whether a type may have unique-value properties (not an activity).
pub(super) fn takes_unique(object_type: &str) -> bool {
    !ACTIVITIES.contains(&object_type)
}

/// The read-only date properties of a type: (created, last modified).
pub(super) fn date_properties(object_type: &str) -> (&'static str, &'static str) {
    match object_type {
        "contacts" => ("createdate", "lastmodifieddate"),
        "deals" | "companies" | "tickets" => ("createdate", "hs_lastmodifieddate"),
        _ => ("hs_createdate", "hs_lastmodifieddate"),
    }
}

pub(super) fn is_read_only(object_type: &str, name: &str) -> bool {
    let (created, modified) = date_properties(object_type);
    name == "hs_object_id" || name == created || name == modified
}

/// The properties GET and search show when none are asked for (besides the read-only
/// id and dates).
pub(super) fn default_properties(object_type: &str) -> &'static [&'static str] {
    match object_type {
        "contacts" => &["email", "firstname", "lastname"],
        "deals" => &["amount", "closedate", "dealname", "dealstage", "pipeline"],
        "companies" => &["domain", "name"],
        _ => &[],
    }
}

fn text_props(names: &[&str]) -> Vec<(String, Kind)> {
    names
        .iter()
        .map(|n| ((*n).to_owned(), Kind::Text))
        .collect()
}

fn options(values: &[&str]) -> Kind {
    Kind::Enumeration(values.iter().map(|v| (*v).to_owned()).collect())
}

impl Schema {
    /// The standard objects (contacts, companies, deals, meetings) with HubSpot's
    /// default properties that bookings use.
    pub(super) fn standard() -> Self {
        let mut contacts = text_props(&[
            "email",
            "firstname",
            "lastname",
            "phone",
            "mobilephone",
            "company",
            "website",
            "jobtitle",
            "city",
            "country",
            "hubspot_owner_id",
        ]);
        contacts.push(("lifecyclestage".into(), options(&LIFECYCLE_STAGES)));
        let mut meetings = text_props(&[
            "hs_meeting_title",
            "hs_meeting_body",
            "hs_internal_meeting_notes",
            "hs_meeting_external_url",
            "hs_meeting_location",
            "hs_activity_type",
            "hubspot_owner_id",
        ]);
        for name in [
            "hs_timestamp",
            "hs_meeting_start_time",
            "hs_meeting_end_time",
        ] {
            meetings.push((name.into(), Kind::DateTime));
        }
        meetings.push(("hs_meeting_outcome".into(), options(&MEETING_OUTCOMES)));
        let mut deals = text_props(&[
            "dealname",
            "dealstage",
            "pipeline",
            "description",
            "hubspot_owner_id",
        ]);
        deals.push(("amount".into(), Kind::Number));
        deals.push(("closedate".into(), Kind::DateTime));
        let companies = text_props(&[
            "name",
            "domain",
            "phone",
            "website",
            "city",
            "country",
            "industry",
            "hubspot_owner_id",
        ]);
        let objects = [
            ("contacts", contacts),
            ("meetings", meetings),
            ("deals", deals),
            ("companies", companies),
        ]
        .into_iter()
        .map(|(object_type, props)| {
            let props = props
                .into_iter()
                .map(|(name, kind)| {
                    let unique = object_type == "contacts" && name == "email";
                    (name, Property { kind, unique })
                })
                .collect();
            (object_type.to_owned(), props)
        })
        .collect();
        Self {
            objects,
            labels: Vec::new(),
        }
    }

    /// 400 unless the type is known (a custom type is known once it has a property).
    pub(super) fn known_type(&self, object_type: &str) -> Result<(), Reply> {
        if self.objects.get(object_type).is_some_and(|p| !p.is_empty()) {
            Ok(())
        } else {
            Err(unknown_type(object_type))
        }
    }

    /// Whether a property exists on a type (the read-only ones included).
    pub(super) fn has(&self, object_type: &str, name: &str) -> bool {
        is_read_only(object_type, name)
            || self
                .objects
                .get(object_type)
                .is_some_and(|p| p.contains_key(name))
    }

    /// Whether a property holds unique values (`hs_object_id` does).
    pub(super) fn is_unique(&self, object_type: &str, name: &str) -> bool {
        name == "hs_object_id"
            || self
                .objects
                .get(object_type)
                .and_then(|p| p.get(name))
                .is_some_and(|p| p.unique)
    }

    /// 400 unless `property` can be an `idProperty` of the type.
    pub(super) fn check_id_property(&self, object_type: &str, property: &str) -> Result<(), Reply> {
        if self.is_unique(object_type, property) {
            Ok(())
        } else {
            Err(non_unique_id_property(type_id(object_type), property))
        }
    }

    /// Checks property values sent for a type, and returns them as text ("" clears).
    pub(super) fn validate(
        &self,
        object_type: &str,
        props: &Map<String, Value>,
    ) -> Result<BTreeMap<String, String>, Reply> {
        let known = self.objects.get(object_type);
        let mut items = Vec::new();
        let mut out = BTreeMap::new();
        for (name, value) in props {
            if is_read_only(object_type, name) {
                items.push(invalid(
                    name,
                    "READ_ONLY_VALUE",
                    &format!("\"{name}\" is a read only property; its value cannot be set."),
                ));
                continue;
            }
            let Some(property) = known.and_then(|k| k.get(name)) else {
                let message = format!("Property \"{name}\" does not exist");
                items.push(invalid(name, "PROPERTY_DOESNT_EXIST", &message));
                continue;
            };
            let Some(text) = scalar_text(value) else {
                items.push(invalid(
                    name,
                    "INVALID_VALUE",
                    &format!("{value} is not a valid value for \"{name}\": expected text"),
                ));
                continue;
            };
            if !text.is_empty() {
                let refused = value_error(object_type, name, &property.kind, &text);
                if let Some((code, message)) = refused {
                    items.push(invalid(name, code, &message));
                    continue;
                }
            }
            out.insert(name.clone(), text);
        }
        if items.is_empty() {
            Ok(out)
        } else {
            Err(invalid_properties(&items))
        }
    }

    /// The properties a new record of a type must have.
    pub(super) fn check_required(
        object_type: &str,
        props: &BTreeMap<String, String>,
    ) -> Result<(), Reply> {
        let needs = |all: &[&str]| -> Option<String> {
            all.iter()
                .find(|p| !props.contains_key(**p))
                .map(|p| (*p).to_owned())
        };
        let any = |some: &[&str]| some.iter().any(|p| props.contains_key(*p));
        let missing = match object_type {
            "meetings" => needs(&["hs_timestamp"])
                .map(|p| (p.clone(), format!("Property \"{p}\" is required"))),
            "deals" => needs(&["dealname", "dealstage"])
                .map(|p| (p.clone(), format!("Property \"{p}\" is required"))),
            "contacts" if !any(&["email", "firstname", "lastname"]) => Some((
                "email".to_owned(),
                "A contact needs at least one of \"email\", \"firstname\" or \"lastname\""
                    .to_owned(),
            )),
            "companies" if !any(&["name", "domain"]) => Some((
                "name".to_owned(),
                "A company needs at least one of \"name\" or \"domain\"".to_owned(),
            )),
            _ => None,
        };
        match missing {
            Some((name, message)) => Err(invalid_properties(&[invalid(
                &name,
                "REQUIRED_PROPERTY",
                &message,
            )])),
            None => Ok(()),
        }
    }

    /// Defines a property from a properties-API body (`POST /crm/v3/properties/{type}`:
    /// `{name, label, type, fieldType, groupName?, hasUniqueValue?, options?}`); a custom
    /// object type exists once it has a property (`custom`: the type may be new).
    /// Returns the definition as HubSpot answers it.
    pub(super) fn define(
        &mut self,
        object_type: &str,
        body: &Value,
        custom: bool,
    ) -> Result<Value, Reply> {
        if !custom {
            self.known_type(object_type)?;
        }
        let text = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or_default();
        let name = text("name");
        let valid_name = name.starts_with(|c: char| c.is_ascii_lowercase())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !valid_name {
            return Err(bad_request(&format!(
                "Property name \"{name}\" is invalid: use lower-case letters, digits and underscores, starting with a letter"
            )));
        }
        if text("label").is_empty() || text("fieldType").is_empty() {
            return Err(bad_request("A property needs \"label\" and \"fieldType\""));
        }
        let kind = match text("type") {
            "string" => Kind::Text,
            "number" => Kind::Number,
            "date" => Kind::Date,
            "datetime" => Kind::DateTime,
            "bool" => Kind::Bool,
            "enumeration" => {
                let values: Vec<String> = body
                    .get("options")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|o| o.get("value").and_then(Value::as_str))
                    .map(str::to_owned)
                    .collect();
                if values.is_empty() {
                    return Err(bad_request("An enumeration property needs \"options\""));
                }
                Kind::Enumeration(values)
            }
            other => {
                return Err(bad_request(&format!(
                    "Invalid property type \"{other}\": expected string, number, date, datetime, enumeration or bool"
                )));
            }
        };
        let unique = body
            .get("hasUniqueValue")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if unique && !takes_unique(object_type) {
            return Err(bad_request(&format!(
                "Unique value properties are not supported on {object_type} ({}): only contacts, companies, deals, tickets and custom objects can require unique values",
                type_id(object_type)
            )));
        }
        if unique && !matches!(kind, Kind::Text | Kind::Number) {
            return Err(bad_request(
                "Only single-line text and number properties can require unique values",
            ));
        }
        if self.has(object_type, name) {
            return Err(error(
                409,
                &format!("A property named \"{name}\" already exists on {object_type}."),
                Some("CONFLICT"),
            ));
        }
        let answer = json!({
            "name": name,
            "label": text("label"),
            "type": kind.name(),
            "fieldType": text("fieldType"),
            "groupName": text("groupName"),
            "hasUniqueValue": unique,
        });
        self.objects
            .entry(object_type.to_owned())
            .or_default()
            .insert(name.to_owned(), Property { kind, unique });
        Ok(answer)
    }

    /// Defines a USER_DEFINED association label between two types.
    pub(super) fn define_label(&mut self, from: &str, to: &str, type_id: u32) {
        self.labels.push((from.to_owned(), to.to_owned(), type_id));
    }

    /// The unlabelled association type id from one type to another, if HubSpot defines one.
    pub(super) fn default_association(from_type: &str, to_type: &str) -> Option<u32> {
        ASSOCIATION_TYPES
            .iter()
            .find(|(f, t, _)| *f == from_type && *t == to_type)
            .map(|(_, _, id)| *id)
    }

    /// Association specs (`[{"associationCategory", "associationTypeId"}]`) as type ids:
    /// each must be defined from `from_type` to `to_type` (HubSpot's own, or a label
    /// defined in the account).
    pub(super) fn association_specs(
        &self,
        from_type: &str,
        to_type: &str,
        specs: &Value,
    ) -> Result<Vec<(String, u32)>, Reply> {
        let specs = specs
            .as_array()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| bad_request("Association types must be a non-empty array"))?;
        let mut ids = Vec::new();
        for spec in specs {
            let category = spec
                .get("associationCategory")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let id = spec
                .get("associationTypeId")
                .and_then(Value::as_u64)
                .and_then(|id| u32::try_from(id).ok())
                .ok_or_else(|| {
                    bad_request("An association type needs a numeric \"associationTypeId\"")
                })?;
            let defined = match category {
                "HUBSPOT_DEFINED" => ASSOCIATION_TYPES
                    .iter()
                    .any(|(f, t, i)| *f == from_type && *t == to_type && *i == id),
                "USER_DEFINED" | "INTEGRATOR_DEFINED" => self
                    .labels
                    .iter()
                    .any(|(f, t, i)| f == from_type && t == to_type && *i == id),
                other => {
                    return Err(bad_request(&format!(
                        "Invalid associationCategory \"{other}\": expected HUBSPOT_DEFINED, USER_DEFINED or INTEGRATOR_DEFINED"
                    )));
                }
            };
            if !defined {
                return Err(bad_request(&format!(
                    "Association type {category} {id} is not defined from {from_type} to {to_type}"
                )));
            }
            ids.push((category.to_owned(), id));
        }
        Ok(ids)
    }
}
