//! Compiling a route's steps: generic keys (DESIGN §3.1), the connector's own keys,
//! templates, property write modes (`{value, on, type}`), and cross-checks (instances
//! exist, ids are unique, `steps.<id>` names an earlier step of the same connector).

use super::loader::Loader;
use super::{ConfigIssue, Instance, join, lenient, parse_value};
use crate::step::{Action, MatchSpec, OnMany, Step, Tree, ValueType, WriteMode};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

const GENERIC_KEYS: [&str; 10] = [
    "id",
    "connector",
    "action",
    "object",
    "match",
    "properties",
    "associate",
    "when",
    "omit_empty",
    "optional",
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    #[serde(default)]
    id: Option<String>,
    action: Action,
    #[serde(default)]
    object: Option<String>,
    #[serde(default, rename = "match")]
    matcher: Option<RawMatch>,
    #[serde(default)]
    properties: Map<String, Value>,
    #[serde(default)]
    associate: Vec<Value>,
    #[serde(default)]
    when: Option<String>,
    #[serde(default, deserialize_with = "lenient::boolean")]
    omit_empty: bool,
    #[serde(default, deserialize_with = "lenient::boolean")]
    optional: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMatch {
    property: String,
    value: Value,
    #[serde(default, deserialize_with = "lenient::boolean")]
    external_id: bool,
    #[serde(default)]
    on_many: OnMany,
}

/// A tenant's connector instances, as far as its routes need them.
pub(super) struct Instances<'a> {
    /// Those that loaded.
    pub valid: &'a BTreeMap<String, Box<Instance>>,
    /// Those declared whose block has errors of its own (already reported): a step naming
    /// one adds no error, so one missing feature gives one error, not one per step.
    pub broken: &'a BTreeSet<String>,
}

/// Compiles the steps of one route (`tenants.T.routes.EVENT`).
pub(super) fn compile_route(
    loader: &mut Loader,
    place: &str,
    value: Value,
    connectors: &Instances<'_>,
) -> Vec<Step> {
    let items = match value {
        Value::Array(items) => items,
        Value::Null => Vec::new(),
        _ => {
            loader.issue(place, "a route must be a list of steps");
            return Vec::new();
        }
    };
    let mut steps: Vec<Step> = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let splace = format!("{place}[{i}]");
        if let Some(step) = compile_step(loader, &splace, item, connectors, &steps) {
            steps.push(step);
        }
    }
    steps
}

fn compile_step(
    loader: &mut Loader,
    place: &str,
    value: Value,
    connectors: &Instances<'_>,
    earlier: &[Step],
) -> Option<Step> {
    let Value::Object(mut map) = value else {
        loader.issue(
            place,
            "a step must be a mapping with at least `connector` and `action`",
        );
        return None;
    };
    let connector_name = match map.remove("connector") {
        Some(Value::String(name)) => Some(name),
        None => {
            loader.issue(
                place,
                "a step needs `connector`: the name of one of the tenant's connector instances",
            );
            None
        }
        Some(_) => {
            loader.issue(
                join(place, "connector"),
                "must be the name of one of the tenant's connector instances",
            );
            None
        }
    };
    let instance = match &connector_name {
        Some(name) => match connectors.valid.get(name) {
            Some(i) => Some(i),
            None if connectors.broken.contains(name) => return None,
            None => {
                let known: Vec<&str> = connectors.valid.keys().map(String::as_str).collect();
                loader.issue(
                    join(place, "connector"),
                    format!(
                        "no connector instance named `{name}` in this tenant (it has: {})",
                        if known.is_empty() {
                            "none".to_owned()
                        } else {
                            known.join(", ")
                        }
                    ),
                );
                return None;
            }
        },
        None => None,
    };
    let factory = instance.and_then(|i| crate::connector::factory(&i.kind));
    let step_keys = factory.map_or(&[][..], |f| f.step_keys);
    let path_keys = factory.map_or(&[][..], |f| f.path_keys);
    let mut extras_raw = Vec::new();
    for key in map.keys().cloned().collect::<Vec<_>>() {
        if GENERIC_KEYS.contains(&key.as_str()) {
            continue;
        }
        let value = map.remove(&key).unwrap_or_default();
        if step_keys.contains(&key.as_str()) {
            extras_raw.push((key, value));
        } else {
            let own = if step_keys.is_empty() {
                String::new()
            } else {
                format!("; this connector also takes {}", step_keys.join(", "))
            };
            loader.issue(
                join(place, &key),
                format!(
                    "unknown step key `{key}` (steps take {}{own})",
                    GENERIC_KEYS.join(", ")
                ),
            );
        }
    }
    let raw: RawStep = parse_value(&Value::Object(map), place)
        .map_err(|i| loader.issues.push(i))
        .ok()?;
    let instance = instance?;

    if let Some(id) = &raw.id {
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            loader.issue(
                join(place, "id"),
                "a step id may hold only letters, digits and `_`",
            );
        }
        if earlier.iter().any(|s| s.id.as_ref() == Some(id)) {
            loader.issue(
                join(place, "id"),
                format!("step id `{id}` is used twice in this route"),
            );
        }
    }
    if matches!(
        raw.action,
        Action::Update | Action::Upsert | Action::Delete | Action::Find
    ) && raw.matcher.is_none()
    {
        loader.issue(
            place,
            format!(
                "`{}` needs a `match: {{property, value}}` to find its record",
                raw.action
            ),
        );
    }

    let mut sources = Vec::new();
    let matcher = raw.matcher.map(|m| {
        let mplace = join(place, "match.value");
        let value = match m.value {
            Value::String(s) => {
                sources.push(s.clone());
                text(loader, &mplace, &s)
            }
            Value::Number(n) => crate::template::Text::Const(n.to_string()),
            _ => {
                loader.issue(&mplace, "must be text or a number");
                crate::template::Text::Const(String::new())
            }
        };
        MatchSpec {
            property: m.property,
            value,
            external_id: m.external_id,
            on_many: m.on_many,
        }
    });
    let mut write_modes = BTreeMap::new();
    let properties = raw
        .properties
        .into_iter()
        .map(|(k, v)| {
            let pplace = join(&join(place, "properties"), &k);
            let (t, mode) = property(loader, &pplace, v, &mut sources);
            if mode != WriteMode::Always {
                write_modes.insert(k.clone(), mode);
            }
            (k, t)
        })
        .collect();
    let associate = raw
        .associate
        .into_iter()
        .enumerate()
        .map(|(i, v)| tree(loader, &format!("{place}.associate[{i}]"), v, &mut sources))
        .collect();
    let when = raw.when.map(|w| {
        sources.push(w.clone());
        text(loader, &join(place, "when"), &w)
    });
    let extras = extras_raw.into_iter().map(|(k, v)| {
        let kplace = join(place, &k);
        let t = if path_keys.contains(&k.as_str()) {
            path(loader, &kplace, v, &mut sources)
        } else {
            tree(loader, &kplace, v, &mut sources)
        };
        (k, t)
    });
    let step = Step {
        place: place.to_owned(),
        id: raw.id,
        connector: instance.name.clone(),
        action: raw.action,
        object: raw.object,
        matcher,
        properties,
        write_modes,
        associate,
        when,
        omit_empty: raw.omit_empty,
        optional: raw.optional,
        // a new, exact allocation: collecting in place would keep `extras_raw`'s
        extras: {
            let mut exact = Vec::with_capacity(extras.len());
            exact.extend(extras);
            exact
        },
    };
    check_step_refs(loader, &step, &sources, earlier);
    for (key, message) in instance.connector.check_step(&step) {
        loader.issue(
            if key.is_empty() {
                place.to_owned()
            } else {
                join(place, &key)
            },
            message,
        );
    }
    Some(step)
}

fn text(loader: &mut Loader, place: &str, src: &str) -> crate::template::Text {
    loader.templates.compile(place, src).unwrap_or_else(|m| {
        loader.issues.push(ConfigIssue::new(place, m));
        crate::template::Text::Const(String::new())
    })
}

/// A URL path template: text, each `{{…}}` one path segment.
fn path(loader: &mut Loader, place: &str, value: Value, sources: &mut Vec<String>) -> Tree {
    let Value::String(src) = value else {
        loader.issue(place, "must be text: a path (template) under base_url");
        return Tree::Text(crate::template::Text::Const(String::new()));
    };
    sources.push(src.clone());
    Tree::Text(
        loader
            .templates
            .compile_path(place, &src)
            .unwrap_or_else(|m| {
                loader.issues.push(ConfigIssue::new(place, m));
                crate::template::Text::Const(String::new())
            }),
    )
}

/// A template tree; `{value, type}` with a known type is a typed leaf.
fn tree(loader: &mut Loader, place: &str, value: Value, sources: &mut Vec<String>) -> Tree {
    match value {
        Value::String(s) => {
            sources.push(s.clone());
            Tree::Text(text(loader, place, &s))
        }
        Value::Array(items) => Tree::Array(
            items
                .into_iter()
                .enumerate()
                .map(|(i, v)| tree(loader, &format!("{place}[{i}]"), v, sources))
                .collect(),
        ),
        Value::Object(map) if is_typed(&map) => {
            let ty = map
                .get("type")
                .cloned()
                .and_then(|t| serde_json::from_value::<ValueType>(t).ok());
            match (map.get("value"), ty) {
                (Some(Value::String(s)), Some(ty)) => {
                    sources.push(s.clone());
                    Tree::Typed(text(loader, &join(place, "value"), s), ty)
                }
                (Some(v @ (Value::Number(_) | Value::Bool(_) | Value::Null)), Some(_)) => {
                    Tree::Literal(Box::new(v.clone()))
                }
                (_, None) => {
                    loader.issue(
                        join(place, "type"),
                        "must be one of integer, number, boolean, json, string",
                    );
                    Tree::Literal(Box::new(Value::Null))
                }
                _ => {
                    loader.issue(join(place, "value"), "must be a template (text)");
                    Tree::Literal(Box::new(Value::Null))
                }
            }
        }
        Value::Object(map) => Tree::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let t = tree(loader, &join(place, &k), v, sources);
                    (k, t)
                })
                .collect(),
        ),
        literal => Tree::Literal(Box::new(literal)),
    }
}

fn is_typed(map: &Map<String, Value>) -> bool {
    map.len() == 2 && map.contains_key("value") && map.get("type").is_some_and(Value::is_string)
}

/// A property's value and write mode: `{value, on}` (with `type` too, or not) names a write
/// mode; anything else is a value written `always`.
fn property(
    loader: &mut Loader,
    place: &str,
    value: Value,
    sources: &mut Vec<String>,
) -> (Tree, WriteMode) {
    let Value::Object(mut map) = value else {
        return (tree(loader, place, value, sources), WriteMode::Always);
    };
    let Some(on) = map
        .get("on")
        .filter(|_| {
            map.contains_key("value")
                && map
                    .keys()
                    .all(|k| matches!(k.as_str(), "value" | "on" | "type"))
        })
        .cloned()
    else {
        return (
            tree(loader, place, Value::Object(map), sources),
            WriteMode::Always,
        );
    };
    map.remove("on");
    let mode = serde_json::from_value::<WriteMode>(on).unwrap_or_else(|_| {
        loader.issue(
            join(place, "on"),
            "must be always, create (only when the record is created) or empty (only while the CRM's field is empty)",
        );
        WriteMode::Always
    });
    let value = if map.contains_key("type") {
        Value::Object(map)
    } else {
        map.remove("value").unwrap_or_default()
    };
    (tree(loader, place, value, sources), mode)
}

/// Every `steps.<id>` a template reads must be an earlier step of the same connector.
fn check_step_refs(loader: &mut Loader, step: &Step, sources: &[String], earlier: &[Step]) {
    for src in sources {
        let mut rest = src.as_str();
        while let Some(i) = rest.find("steps.") {
            let before = rest[..i].chars().last();
            rest = &rest[i + "steps.".len()..];
            if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.') {
                continue;
            }
            let id: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            let known = earlier
                .iter()
                .any(|s| s.connector == step.connector && s.id.as_deref() == Some(id.as_str()));
            if !known {
                loader.issue(
                    &step.place,
                    format!("reads `steps.{id}`, but no earlier step of connector `{}` in this route has `id: {id}`", step.connector),
                );
            }
        }
    }
}
