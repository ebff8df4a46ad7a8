//! A step's `associate:` items: read at run time, sent inline with a create where
//! HubSpot's unlabelled type id for the pair is known, and which object types are
//! activities (they cannot have unique-value properties).
//!
//! Invariant: a link is never dropped: what cannot go inline with the create is made
//! afterwards with the v4 default (or labelled) association call.

use serde_json::{Value, json};
use slatis_core::DeliveryError;
use slatis_core::step::RenderedStep;

/// One `associate:` item, rendered.
pub struct Link<'a> {
    /// The other record's object type (`contacts`, …).
    pub to: &'a str,
    /// The other record's id.
    pub id: &'a str,
    /// A label: (category, type id); `None` for HubSpot's unlabelled association.
    pub label: Option<(&'a str, u64)>,
}

/// HubSpot's unlabelled (default) association type ids, from → to
/// (<https://developers.hubspot.com/docs/api-reference/latest/crm/associations/overview>).
const DEFAULT_TYPES: [(&str, &str, u64); 20] = [
    ("meetings", "contacts", 200),
    ("contacts", "meetings", 199),
    ("meetings", "companies", 188),
    ("companies", "meetings", 187),
    ("meetings", "deals", 212),
    ("deals", "meetings", 211),
    ("calls", "contacts", 194),
    ("contacts", "calls", 193),
    ("emails", "contacts", 198),
    ("contacts", "emails", 197),
    ("notes", "contacts", 202),
    ("contacts", "notes", 201),
    ("tasks", "contacts", 204),
    ("contacts", "tasks", 203),
    ("contacts", "companies", 279),
    ("companies", "contacts", 280),
    ("deals", "contacts", 3),
    ("contacts", "deals", 4),
    ("deals", "companies", 341),
    ("companies", "deals", 342),
];

/// Object types and their ids: (plural, singular, type id); the activities first.
const TYPES: [(&str, &str, &str); 11] = [
    ("meetings", "meeting", "0-47"),
    ("calls", "call", "0-48"),
    ("emails", "email", "0-49"),
    ("notes", "note", "0-46"),
    ("tasks", "task", "0-27"),
    ("communications", "communication", "0-18"),
    ("postal_mail", "postal_mail", "0-116"),
    ("contacts", "contact", "0-1"),
    ("companies", "company", "0-2"),
    ("deals", "deal", "0-3"),
    ("tickets", "ticket", "0-5"),
];

/// How many of [`TYPES`] are activities.
const ACTIVITIES: usize = 7;

/// The plural name of a standard type given any of its names (`meeting`, `0-47`); other
/// types as written.
pub fn canonical(object: &str) -> String {
    let lower = object.to_ascii_lowercase();
    TYPES
        .iter()
        .find(|(p, s, id)| [*p, *s, *id].contains(&lower.as_str()))
        .map_or_else(|| object.to_owned(), |(p, _, _)| (*p).to_owned())
}

/// Whether an object type is an activity (meetings, calls, emails, notes, tasks, …):
/// HubSpot allows "require unique values" on contacts, companies, deals, tickets and
/// custom objects only
/// (<https://knowledge.hubspot.com/properties/set-validation-rules-for-properties>).
pub fn is_activity(object: &str) -> bool {
    let name = canonical(object);
    TYPES[..ACTIVITIES].iter().any(|(p, _, _)| *p == name)
}

/// The property that holds a type's creation time, for sorting a search by it.
pub fn created_property(object: &str) -> &'static str {
    match canonical(object).as_str() {
        "contacts" | "companies" | "deals" | "tickets" => "createdate",
        _ => "hs_createdate",
    }
}

/// Reads the step's rendered `associate` items.
///
/// # Errors
/// Permanent, for an empty id (the step it reads from found nothing) or a `type_id`
/// that is not a number.
pub fn links(step: &RenderedStep) -> Result<Vec<Link<'_>>, DeliveryError> {
    step.associate
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let text = |k: &str| {
                a.get(k)
                    .and_then(Value::as_str)
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
            };
            let id = text("id").ok_or_else(|| {
                DeliveryError::permanent(format!(
                    "associate[{i}].id is empty: the step it reads from found no record"
                ))
            })?;
            let label = match a.get("type_id") {
                None | Some(Value::Null) => None,
                Some(v) => {
                    let n = v
                        .as_u64()
                        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                        .ok_or_else(|| {
                            DeliveryError::permanent(format!(
                                "associate[{i}].type_id must be a number"
                            ))
                        })?;
                    Some((text("category").unwrap_or("HUBSPOT_DEFINED"), n))
                }
            };
            Ok(Link {
                to: text("to").unwrap_or_default(),
                id,
                label,
            })
        })
        .collect()
}

impl Link<'_> {
    /// This link as an item of a create body's `associations`
    /// (`{to: {id}, types: [{associationCategory, associationTypeId}]}`), when its type
    /// id is known: its label's, or HubSpot's unlabelled one for the pair.
    pub fn inline(&self, object: &str) -> Option<Value> {
        let (category, type_id) = match self.label {
            Some(label) => label,
            None => {
                let (from, to) = (canonical(object), canonical(self.to));
                let id = DEFAULT_TYPES
                    .iter()
                    .find(|(f, t, _)| *f == from && *t == to)?
                    .2;
                ("HUBSPOT_DEFINED", id)
            }
        };
        Some(json!({
            "to": { "id": self.id },
            "types": [{ "associationCategory": category, "associationTypeId": type_id }],
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activities_and_their_names() {
        for name in [
            "meetings", "Meeting", "0-47", "calls", "notes", "tasks", "emails",
        ] {
            assert!(is_activity(name), "{name}");
        }
        for name in [
            "contacts",
            "deals",
            "companies",
            "tickets",
            "p_bookings",
            "2-1234",
        ] {
            assert!(!is_activity(name), "{name}");
        }
        assert_eq!(created_property("contact"), "createdate");
        assert_eq!(created_property("meetings"), "hs_createdate");
        assert_eq!(created_property("p_bookings"), "hs_createdate");
    }

    #[test]
    fn links_go_inline_when_their_type_id_is_known() {
        let link = |to, label| Link {
            to,
            id: "51",
            label,
        };
        assert_eq!(
            link("contacts", None).inline("meetings"),
            Some(
                json!({"to": {"id": "51"}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 200}]})
            )
        );
        assert_eq!(
            link("contact", None)
                .inline("0-47")
                .map(|v| v["types"][0]["associationTypeId"].clone()),
            Some(json!(200))
        );
        assert_eq!(
            link("p_bookings", None).inline("meetings"),
            None,
            "no known default: linked after the create"
        );
        assert_eq!(
            link("p_bookings", Some(("USER_DEFINED", 37))).inline("meetings"),
            Some(
                json!({"to": {"id": "51"}, "types": [{"associationCategory": "USER_DEFINED", "associationTypeId": 37}]})
            )
        );
    }
}
