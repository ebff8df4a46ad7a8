//! `POST /crm/v3/objects/{type}/search`: filters (ANDed in a group, groups ORed), every
//! HubSpot operator, `query`, `sorts`, `properties`, `limit`/`after` paging, over what
//! search sees of each record (`search_lag` behind the primary store).
//!
//! Limits (<https://developers.hubspot.com/docs/api-reference/latest/crm/search-the-crm>,
//! <https://developers.hubspot.com/changelog/breaking-change-expanded-filtering-capabilities-and-error-messaging-in-hubspots-search-api>):
//! at most 5 filter groups, 6 filters a group, 18 in all (the older, stricter figures); `limit`
//! at most 200. `EQ`/`NEQ` compare text (contacts' `email` ignoring case); `IN`/`NOT_IN`
//! ignore case; `LT`…`BETWEEN` compare numbers, else date-times, else text;
//! `CONTAINS_TOKEN` is a case-insensitive substring match (`*` ignored). Results go by id
//! unless `sorts` says otherwise (ties by id).

use super::super::chassis::reply::{Answer, Reply};
use super::answers::{bad_request, parse_json};
use super::model::{Objects, Shown, View, object_json, same_value, search_value};
use super::schema::{Schema, default_properties};
use super::values::{datetime_millis, scalar_text};
use serde_json::{Value, json};
use std::time::Instant;

/// Orders two values: as numbers, else as date-times, else as text.
fn compare(a: &str, b: &str) -> std::cmp::Ordering {
    if let (Ok(x), Ok(y)) = (a.parse::<f64>(), b.parse::<f64>()) {
        return x.total_cmp(&y);
    }
    if let (Some(x), Some(y)) = (datetime_millis(a), datetime_millis(b)) {
        return x.cmp(&y);
    }
    a.cmp(b)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operator {
    Eq,
    Neq,
    Lt,
    Lte,
    Gt,
    Gte,
    Between,
    In,
    NotIn,
    HasProperty,
    NotHasProperty,
    ContainsToken,
    NotContainsToken,
}

impl Operator {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "EQ" => Self::Eq,
            "NEQ" => Self::Neq,
            "LT" => Self::Lt,
            "LTE" => Self::Lte,
            "GT" => Self::Gt,
            "GTE" => Self::Gte,
            "BETWEEN" => Self::Between,
            "IN" => Self::In,
            "NOT_IN" => Self::NotIn,
            "HAS_PROPERTY" => Self::HasProperty,
            "NOT_HAS_PROPERTY" => Self::NotHasProperty,
            "CONTAINS_TOKEN" => Self::ContainsToken,
            "NOT_CONTAINS_TOKEN" => Self::NotContainsToken,
            _ => return None,
        })
    }
}

#[derive(Debug)]
struct Filter {
    property: String,
    operator: Operator,
    value: String,
    high: String,
    values: Vec<String>,
}

impl Filter {
    fn parse(schema: &Schema, object_type: &str, filter: &Value) -> Result<Self, Reply> {
        let property = filter
            .get("propertyName")
            .and_then(Value::as_str)
            .ok_or_else(|| bad_request("A filter needs a \"propertyName\""))?;
        let operator_name = filter
            .get("operator")
            .and_then(Value::as_str)
            .ok_or_else(|| bad_request("A filter needs an \"operator\""))?;
        let operator = Operator::parse(operator_name)
            .ok_or_else(|| bad_request(&format!("Unknown filter operator \"{operator_name}\"")))?;
        if !schema.has(object_type, property) {
            return Err(bad_request(&format!(
                "There was a problem with a request filter: property \"{property}\" does not exist"
            )));
        }
        let text = |key: &str| filter.get(key).and_then(scalar_text);
        let value = text("value");
        let high = text("highValue");
        let values: Option<Vec<String>> = filter
            .get("values")
            .and_then(Value::as_array)
            .map(|vs| vs.iter().filter_map(scalar_text).collect());
        let missing = |what: &str| {
            bad_request(&format!(
                "Filter operator {operator_name} on \"{property}\" needs \"{what}\""
            ))
        };
        let (value, high, values) = match operator {
            Operator::HasProperty | Operator::NotHasProperty => {
                (String::new(), String::new(), Vec::new())
            }
            Operator::In | Operator::NotIn => (
                String::new(),
                String::new(),
                values.ok_or_else(|| missing("values"))?,
            ),
            Operator::Between => (
                value.ok_or_else(|| missing("value"))?,
                high.ok_or_else(|| missing("highValue"))?,
                Vec::new(),
            ),
            _ => (
                value.ok_or_else(|| missing("value"))?,
                String::new(),
                Vec::new(),
            ),
        };
        Ok(Self {
            property: property.to_owned(),
            operator,
            value,
            high,
            values,
        })
    }

    fn matches(&self, object_type: &str, view: &View<'_>) -> bool {
        use std::cmp::Ordering::{Greater, Less};
        let Some(actual) = search_value(object_type, view, &self.property) else {
            return matches!(
                self.operator,
                Operator::Neq
                    | Operator::NotIn
                    | Operator::NotHasProperty
                    | Operator::NotContainsToken
            );
        };
        let same = |v: &str| same_value(object_type, &self.property, &actual, v);
        let token = || {
            let wanted = self.value.trim_matches('*').to_lowercase();
            actual.to_lowercase().contains(&wanted)
        };
        match self.operator {
            Operator::Eq => same(&self.value),
            Operator::Neq => !same(&self.value),
            Operator::Lt => compare(&actual, &self.value) == Less,
            Operator::Lte => compare(&actual, &self.value) != Greater,
            Operator::Gt => compare(&actual, &self.value) == Greater,
            Operator::Gte => compare(&actual, &self.value) != Less,
            Operator::Between => {
                compare(&actual, &self.value) != Less && compare(&actual, &self.high) != Greater
            }
            Operator::In => self
                .values
                .iter()
                .any(|v| v.to_lowercase() == actual.to_lowercase()),
            Operator::NotIn => !self
                .values
                .iter()
                .any(|v| v.to_lowercase() == actual.to_lowercase()),
            Operator::HasProperty => true,
            Operator::NotHasProperty => false,
            Operator::ContainsToken => token(),
            Operator::NotContainsToken => !token(),
        }
    }
}

/// The `properties` asked for in a query (`properties=a,b` or repeated), if any.
pub(super) fn asked_properties(query: &[(String, String)]) -> Option<Vec<String>> {
    let names: Vec<String> = query
        .iter()
        .filter(|(k, _)| k == "properties")
        .flat_map(|(_, v)| v.split(','))
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .collect();
    (!names.is_empty()).then_some(names)
}

/// The `properties` a JSON body (search, batch read) asks for, else the type's defaults.
pub(super) fn body_properties(body: &Value, object_type: &str) -> Vec<String> {
    match body.get("properties") {
        Some(Value::Array(names)) if !names.is_empty() => names
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => default_shown(object_type),
    }
}

pub(super) fn default_shown(object_type: &str) -> Vec<String> {
    default_properties(object_type)
        .iter()
        .map(|n| (*n).to_owned())
        .collect()
}

/// Answers a search of `object_type` with `body`.
pub(super) fn search(schema: &Schema, objects: &Objects, object_type: &str, body: &[u8]) -> Answer {
    schema.known_type(object_type)?;
    let body = parse_json(body)?;
    let groups = match body.get("filterGroups") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(groups)) => groups.clone(),
        Some(_) => return Err(bad_request("\"filterGroups\" must be an array")),
    };
    if groups.len() > 5 {
        return Err(bad_request("A search takes at most 5 filterGroups"));
    }
    let mut parsed: Vec<Vec<Filter>> = Vec::new();
    for group in &groups {
        let filters = group
            .get("filters")
            .and_then(Value::as_array)
            .ok_or_else(|| bad_request("A filter group needs \"filters\""))?;
        if filters.len() > 6 {
            return Err(bad_request("A filter group takes at most 6 filters"));
        }
        parsed.push(
            filters
                .iter()
                .map(|f| Filter::parse(schema, object_type, f))
                .collect::<Result<_, _>>()?,
        );
    }
    if parsed.iter().map(Vec::len).sum::<usize>() > 18 {
        return Err(bad_request("A search takes at most 18 filters in all"));
    }
    let limit = match body.get("limit") {
        None | Some(Value::Null) => 10,
        Some(v) => v
            .as_u64()
            .and_then(|l| usize::try_from(l).ok())
            .filter(|l| *l <= 200)
            .ok_or_else(|| bad_request("limit must be a number from 0 to 200"))?,
    };
    let offset = match body.get("after") {
        None | Some(Value::Null) => 0,
        Some(v) => parse_after(scalar_text(v).as_deref())?,
    };
    let names = body_properties(&body, object_type);
    let sorts = parse_sorts(schema, object_type, body.get("sorts"))?;
    let query = body
        .get("query")
        .and_then(Value::as_str)
        .map(str::to_lowercase)
        .filter(|q| !q.is_empty());
    let now = Instant::now();
    let mut matching: Vec<View<'_>> = objects
        .records(object_type)
        .filter_map(|(id, rec)| rec.indexed(id, now))
        .filter(|view| {
            parsed.is_empty()
                || parsed
                    .iter()
                    .any(|group| group.iter().all(|f| f.matches(object_type, view)))
        })
        .filter(|view| {
            query
                .as_ref()
                .is_none_or(|q| view.props.values().any(|v| v.to_lowercase().contains(q)))
        })
        .collect();
    if !sorts.is_empty() {
        matching.sort_by(|a, b| {
            sorts
                .iter()
                .map(|(property, descending)| {
                    let x = search_value(object_type, a, property).unwrap_or_default();
                    let y = search_value(object_type, b, property).unwrap_or_default();
                    let order = compare(&x, &y);
                    if *descending { order.reverse() } else { order }
                })
                .find(|order| order.is_ne())
                .unwrap_or_else(|| a.id.cmp(&b.id))
        });
    }
    let shown = Shown::Only(&names);
    let results: Vec<Value> = matching
        .iter()
        .skip(offset)
        .take(limit)
        .map(|view| object_json(schema, object_type, view, &shown))
        .collect();
    let mut answer = json!({ "total": matching.len(), "results": results });
    if offset + limit < matching.len() {
        answer["paging"] = json!({ "next": { "after": (offset + limit).to_string() } });
    }
    Ok(Reply::json(200, answer))
}

/// A search's `sorts` (`[{"propertyName", "direction"}]`, or `"name"` / `"-name"`) as
/// (property, descending).
fn parse_sorts(
    schema: &Schema,
    object_type: &str,
    sorts: Option<&Value>,
) -> Result<Vec<(String, bool)>, Reply> {
    let sorts = match sorts {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(sorts)) => sorts,
        Some(_) => return Err(bad_request("\"sorts\" must be an array")),
    };
    // "Only one sorting rule can be applied to any search" (the search guide).
    if sorts.len() > 1 {
        return Err(bad_request(
            "A search takes one sort: only one sorting rule can be applied to any search",
        ));
    }
    let mut out = Vec::new();
    for sort in sorts {
        let (property, descending) = match sort {
            Value::String(text) => match text.strip_prefix('-') {
                Some(name) => (name.to_owned(), true),
                None => (text.clone(), false),
            },
            Value::Object(_) => {
                let property = sort
                    .get("propertyName")
                    .and_then(Value::as_str)
                    .ok_or_else(|| bad_request("A sort needs a \"propertyName\""))?;
                let descending = match sort.get("direction").and_then(Value::as_str) {
                    None | Some("ASCENDING") => false,
                    Some("DESCENDING") => true,
                    Some(other) => {
                        return Err(bad_request(&format!(
                            "Invalid sort direction \"{other}\": expected ASCENDING or DESCENDING"
                        )));
                    }
                };
                (property.to_owned(), descending)
            }
            _ => return Err(bad_request("A sort must be an object or a property name")),
        };
        if !schema.has(object_type, &property) {
            return Err(bad_request(&format!(
                "Cannot sort on property \"{property}\": it does not exist"
            )));
        }
        out.push((property, descending));
    }
    Ok(out)
}

/// A paging cursor: an offset.
pub(super) fn parse_after(after: Option<&str>) -> Result<usize, Reply> {
    match after {
        None | Some("") => Ok(0),
        Some(text) => text
            .parse()
            .map_err(|_| bad_request(&format!("Invalid paging cursor \"after\": {text}"))),
    }
}
