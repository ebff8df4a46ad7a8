//! Steps: as compiled from the config ([`Step`]) and as rendered for one delivery
//! ([`RenderedStep`]).
//!
//! Invariants:
//! - rendering builds values, never text that is parsed again: a template's output becomes
//!   one JSON string (or a converted number, boolean or JSON value for a typed property),
//!   so a step's body is valid JSON whatever the booking holds;
//! - a property's write mode decides when it is sent, the same for every connector: a
//!   create sends every property ([`RenderedStep::create_properties`]); an update sends the
//!   `always` ones and the `empty` ones whose field the CRM holds empty, never the `create`
//!   ones ([`RenderedStep::update_properties`]);
//! - several records matching a `match` resolve the same way in every connector
//!   ([`RenderedMatch::choose`], by `on_many`).

use crate::template::{RenderContext, TemplateError, Templates, Text};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;

/// What a step does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Make a record.
    Create,
    /// Find by `match` and update; no record is a (retried) failure.
    Update,
    /// Find by `match` and update, or create.
    Upsert,
    /// Find by `match` and delete; already gone is success.
    Delete,
    /// Only look a record up for later steps.
    Find,
    /// The http connector's raw request.
    Request,
}

impl Action {
    /// The name as written in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Update => "update",
            Self::Upsert => "upsert",
            Self::Delete => "delete",
            Self::Find => "find",
            Self::Request => "request",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The type a typed property's rendered text is converted to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValueType {
    /// A whole number.
    Integer,
    /// Any number.
    Number,
    /// `true` / `false`.
    Boolean,
    /// JSON text, parsed.
    Json,
    /// Text (the default for a plain template).
    String,
}

/// A tree whose string leaves are templates (a `json:` body, `associate`, connector keys).
#[derive(Debug, Clone, PartialEq)]
pub enum Tree {
    /// A template leaf.
    Text(Text),
    /// `{value: "<template>", type: …}`: the rendered text converted.
    Typed(Text, ValueType),
    /// A number, boolean or null, as written (boxed: a `Value` is larger than every other
    /// leaf, and trees are kept for every step of every tenant).
    Literal(Box<Value>),
    /// A list.
    Array(Vec<Tree>),
    /// A map, in config order.
    Object(Vec<(String, Tree)>),
}

/// Which record a `match` takes when several records hold its value (`match.on_many`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnMany {
    /// The one created first (the default: the record sales has worked with longest).
    #[default]
    Oldest,
    /// The one created last.
    Newest,
    /// None: the step fails permanently, naming the records.
    Fail,
}

/// When a property is written (`properties.<name>.on`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WriteMode {
    /// On every create and update (the default).
    #[default]
    Always,
    /// Only when the step creates the record.
    Create,
    /// On create, and on update only while the CRM's field is empty (missing, null or
    /// `""`): what a sales rep filled in is never overwritten.
    Empty,
}

/// How `update`, `upsert`, `delete` and `find` find their record.
#[derive(Debug, Clone, PartialEq)]
pub struct MatchSpec {
    /// The CRM property compared.
    pub property: String,
    /// The value it must equal (a template).
    pub value: Text,
    /// The property holds unique values (an external id): the CRM's own upsert or
    /// lookup by that property is used.
    pub external_id: bool,
    /// Which record to take when several match.
    pub on_many: OnMany,
}

/// A step as compiled at load.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// Its YAML path, e.g. `tenants.acme.routes.BOOKING_CREATED[0]`.
    pub place: String,
    /// The name later steps read its result under (`{{steps.<id>.id}}`).
    pub id: Option<String>,
    /// The connector instance it runs on.
    pub connector: String,
    /// What it does.
    pub action: Action,
    /// The CRM object (`contacts`, `Lead`, `persons`, …).
    pub object: Option<String>,
    /// How it finds its record.
    pub matcher: Option<MatchSpec>,
    /// Field → value.
    pub properties: Vec<(String, Tree)>,
    /// The write mode of each property that is not written `always`.
    pub write_modes: BTreeMap<String, WriteMode>,
    /// Links to other records.
    pub associate: Vec<Tree>,
    /// Runs only when this renders to something other than `""` / `false`.
    pub when: Option<Text>,
    /// Drop properties that render to `""`.
    pub omit_empty: bool,
    /// For `find`: nothing found is not a failure.
    pub optional: bool,
    /// Connector-specific keys (see `ConnectorFactory::step_keys`).
    pub extras: Vec<(String, Tree)>,
}

impl Step {
    /// Whether a connector-specific key is set.
    pub fn has(&self, key: &str) -> bool {
        self.extras.iter().any(|(k, _)| k == key)
    }

    /// Whether the step runs in this context.
    ///
    /// # Errors
    /// The `when` template's render error.
    pub fn applies(&self, t: &Templates, cx: &RenderContext) -> Result<bool, TemplateError> {
        match &self.when {
            None => Ok(true),
            Some(w) => Ok(crate::template::is_truthy(&t.render(w, cx)?)),
        }
    }

    /// Renders the step for one delivery.
    ///
    /// # Errors
    /// A [`TemplateError`] naming the template's place (a missing field, a bad helper
    /// input, text that does not convert to its type).
    pub fn render(&self, t: &Templates, cx: &RenderContext) -> Result<RenderedStep, TemplateError> {
        let matcher = match &self.matcher {
            None => None,
            Some(m) => Some(RenderedMatch {
                property: m.property.clone(),
                value: t.render(&m.value, cx)?,
                external_id: m.external_id,
                on_many: m.on_many,
            }),
        };
        let mut properties = Map::new();
        let mut write_modes = BTreeMap::new();
        for (key, tree) in &self.properties {
            if let Some(v) = render_tree(tree, t, cx, self.omit_empty)? {
                properties.insert(key.clone(), v);
                if let Some(mode) = self.write_modes.get(key) {
                    write_modes.insert(key.clone(), *mode);
                }
            }
        }
        let associate = self
            .associate
            .iter()
            .map(|a| render_tree(a, t, cx, false).map(Option::unwrap_or_default))
            .collect::<Result<_, _>>()?;
        let mut extras = Map::new();
        for (key, tree) in &self.extras {
            extras.insert(
                key.clone(),
                render_tree(tree, t, cx, false)?.unwrap_or_default(),
            );
        }
        Ok(RenderedStep {
            place: self.place.clone(),
            id: self.id.clone(),
            action: self.action,
            object: self.object.clone(),
            matcher,
            properties,
            write_modes,
            associate,
            extras,
            optional: self.optional,
        })
    }
}

/// Renders a tree; `None` when `omit_empty` drops a blank leaf.
fn render_tree(
    tree: &Tree,
    t: &Templates,
    cx: &RenderContext,
    omit_empty: bool,
) -> Result<Option<Value>, TemplateError> {
    Ok(match tree {
        Tree::Literal(v) => Some((**v).clone()),
        Tree::Text(text) => {
            let s = t.render(text, cx)?;
            if omit_empty && s.is_empty() {
                None
            } else {
                Some(Value::String(s))
            }
        }
        Tree::Typed(text, ty) => {
            let s = t.render(text, cx)?;
            if omit_empty && s.trim().is_empty() {
                None
            } else {
                Some(convert(&s, *ty).map_err(|message| TemplateError {
                    place: place_of(text),
                    message,
                })?)
            }
        }
        Tree::Array(items) => Some(Value::Array(
            items
                .iter()
                .map(|i| render_tree(i, t, cx, false).map(Option::unwrap_or_default))
                .collect::<Result<_, _>>()?,
        )),
        Tree::Object(entries) => {
            let mut map = Map::new();
            for (k, v) in entries {
                if let Some(v) = render_tree(v, t, cx, omit_empty)? {
                    map.insert(k.clone(), v);
                }
            }
            Some(Value::Object(map))
        }
    })
}

fn place_of(text: &Text) -> String {
    match text {
        Text::Template(c) | Text::Path(c) => c.place.clone(),
        Text::Const(_) => "a constant".to_owned(),
    }
}

/// Converts rendered text to `ty`; blank text is `null` for every type but `string`.
///
/// # Errors
/// A message saying what the text is and what it should have been.
pub fn convert(s: &str, ty: ValueType) -> Result<Value, String> {
    let trimmed = s.trim();
    if trimmed.is_empty() && ty != ValueType::String {
        return Ok(Value::Null);
    }
    match ty {
        ValueType::String => Ok(Value::String(s.to_owned())),
        ValueType::Integer => trimmed
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| format!("{s:?} is not an integer")),
        ValueType::Number => trimmed
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| format!("{s:?} is not a number")),
        ValueType::Boolean => match trimmed.to_ascii_lowercase().as_str() {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err(format!("{s:?} is not true or false")),
        },
        ValueType::Json => {
            serde_json::from_str(trimmed).map_err(|e| format!("{s:?} is not JSON ({e})"))
        }
    }
}

/// A [`MatchSpec`] rendered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RenderedMatch {
    /// The CRM property compared.
    pub property: String,
    /// The rendered value.
    pub value: String,
    /// The property holds unique values (an external id).
    pub external_id: bool,
    /// Which record to take when several match.
    pub on_many: OnMany,
}

impl RenderedMatch {
    /// The record this match resolves to among `ids_oldest_first` (every record the CRM
    /// found for it, ordered by creation, oldest first), by `on_many`; `None` when there is
    /// none. With `on_many: fail`, several is a permanent error that names them: `{n}
    /// {noun} have {property} = {value} (ids …); a match must name one record: {hint}`.
    ///
    /// # Errors
    /// Permanent, with `on_many: fail` and several records.
    pub fn choose(
        &self,
        mut ids_oldest_first: Vec<String>,
        noun: &str,
        hint: &str,
    ) -> Result<Option<String>, crate::DeliveryError> {
        match self.on_many {
            OnMany::Oldest => Ok(ids_oldest_first.into_iter().next()),
            OnMany::Newest => Ok(ids_oldest_first.pop()),
            OnMany::Fail => match <[String; 1]>::try_from(ids_oldest_first) {
                Ok([one]) => Ok(Some(one)),
                Err(ids) if ids.is_empty() => Ok(None),
                Err(ids) => Err(crate::DeliveryError::permanent(format!(
                    "{} {noun} have {} = {:?} (ids {}); a match must name one record \
                     (match.on_many: fail): {hint}, or set match.on_many to oldest or newest",
                    ids.len(),
                    self.property,
                    self.value,
                    ids.join(", ")
                ))),
            },
        }
    }
}

/// A step rendered for one delivery: what a connector executes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RenderedStep {
    /// Its YAML path.
    pub place: String,
    /// Its id, if it has one.
    pub id: Option<String>,
    /// What it does.
    pub action: Action,
    /// The CRM object.
    pub object: Option<String>,
    /// How it finds its record.
    #[serde(rename = "match")]
    pub matcher: Option<RenderedMatch>,
    /// Field → value, after `omit_empty`: every property, whatever its write mode (read
    /// them through [`Self::create_properties`] and [`Self::update_properties`]).
    pub properties: Map<String, Value>,
    /// The write mode of each property that is not written `always`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub write_modes: BTreeMap<String, WriteMode>,
    /// Rendered links.
    pub associate: Vec<Value>,
    /// Rendered connector-specific keys.
    pub extras: Map<String, Value>,
    /// For `find`: nothing found is not a failure.
    pub optional: bool,
}

impl RenderedStep {
    /// A connector-specific key's rendered value.
    pub fn extra(&self, key: &str) -> Option<&Value> {
        self.extras.get(key)
    }

    /// A connector-specific key that must be text.
    pub fn extra_str(&self, key: &str) -> Option<&str> {
        self.extras.get(key).and_then(Value::as_str)
    }

    /// The write mode of `property`.
    pub fn write_mode(&self, property: &str) -> WriteMode {
        self.write_modes.get(property).copied().unwrap_or_default()
    }

    /// What a create sends: every property.
    pub fn create_properties(&self) -> Map<String, Value> {
        self.properties.clone()
    }

    /// The properties written `on: empty`: an update must know whether the CRM's field is
    /// empty before it sends them (connectors read the record first when this is not
    /// empty).
    pub fn empty_only(&self) -> impl Iterator<Item = &str> {
        self.write_modes
            .iter()
            .filter(|(_, m)| **m == WriteMode::Empty)
            .map(|(k, _)| k.as_str())
    }

    /// What an update sends: the `always` properties, and the `empty` ones for which
    /// `is_empty(field)` says the CRM's field is empty; never the `create` ones.
    pub fn update_properties(&self, is_empty: impl Fn(&str) -> bool) -> Map<String, Value> {
        self.properties
            .iter()
            .filter(|(k, _)| match self.write_mode(k) {
                WriteMode::Always => true,
                WriteMode::Create => false,
                WriteMode::Empty => is_empty(k),
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

/// Whether a CRM field's value counts as empty for `on: empty`: missing, null, `""` (or
/// only white space), or an empty list.
pub fn is_blank(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.trim().is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        Some(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn tree(t: &mut Templates, v: &Value, place: &str) -> Tree {
        match v {
            Value::String(s) => Tree::Text(t.compile(place, s).expect("compiles")),
            Value::Array(a) => Tree::Array(
                a.iter()
                    .enumerate()
                    .map(|(i, v)| tree(t, v, &format!("{place}[{i}]")))
                    .collect(),
            ),
            Value::Object(m) => Tree::Object(
                m.iter()
                    .map(|(k, v)| (k.clone(), tree(t, v, &format!("{place}.{k}"))))
                    .collect(),
            ),
            other => Tree::Literal(Box::new(other.clone())),
        }
    }

    fn body_step(t: &mut Templates) -> Step {
        let json = json!({"name": "{{data.attendee.name}}", "notes": "{{data.notes}}",
                          "first": "{{first_name data.attendee.name}}", "n": 1, "tags": ["{{data.notes}}", true]});
        Step {
            place: "s".into(),
            id: None,
            connector: "c".into(),
            action: Action::Request,
            object: None,
            matcher: None,
            properties: vec![],
            write_modes: BTreeMap::new(),
            associate: vec![],
            when: None,
            omit_empty: false,
            optional: false,
            extras: vec![("json".into(), tree(t, &json, "s.json"))],
        }
    }

    #[test]
    fn typed_values_convert() {
        assert_eq!(convert(" 42 ", ValueType::Integer), Ok(json!(42)));
        assert_eq!(convert("4.5", ValueType::Number), Ok(json!(4.5)));
        assert_eq!(convert("TRUE", ValueType::Boolean), Ok(json!(true)));
        assert_eq!(
            convert(r#"{"a":[1]}"#, ValueType::Json),
            Ok(json!({"a":[1]}))
        );
        assert_eq!(convert("", ValueType::Integer), Ok(Value::Null));
        assert!(
            convert("4x", ValueType::Integer)
                .unwrap_err()
                .contains("not an integer")
        );
        assert!(convert("yes", ValueType::Boolean).is_err());
    }

    #[test]
    fn on_many_picks_the_oldest_the_newest_or_fails() {
        let m = |on_many| RenderedMatch {
            property: "email".into(),
            value: "a@b.co".into(),
            external_id: false,
            on_many,
        };
        let ids = || vec!["7".to_owned(), "8".to_owned(), "9".to_owned()];
        for on_many in [OnMany::Oldest, OnMany::Newest, OnMany::Fail] {
            assert_eq!(m(on_many).choose(vec![], "contacts", "h"), Ok(None));
            assert_eq!(
                m(on_many).choose(vec!["7".into()], "contacts", "h"),
                Ok(Some("7".into()))
            );
        }
        assert_eq!(
            m(OnMany::Oldest).choose(ids(), "contacts", "h"),
            Ok(Some("7".into()))
        );
        assert_eq!(
            m(OnMany::Newest).choose(ids(), "contacts", "h"),
            Ok(Some("9".into()))
        );
        let e = m(OnMany::Fail)
            .choose(ids(), "contacts", "use a unique property")
            .expect_err("several");
        assert_eq!(e.class(), "permanent");
        assert_eq!(
            e.message(),
            "3 contacts have email = \"a@b.co\" (ids 7, 8, 9); a match must name one record \
             (match.on_many: fail): use a unique property, or set match.on_many to oldest or newest"
        );
    }

    #[test]
    fn write_modes_decide_what_a_create_and_an_update_send() {
        let mut t = Templates::default();
        let mut step = body_step(&mut t);
        step.extras.clear();
        for (name, src) in [
            ("email", "a@b.co"),
            ("first", "Ada"),
            ("source", "slatis"),
            ("phone", ""),
        ] {
            step.properties
                .push((name.into(), Tree::Text(t.compile(name, src).expect("c"))));
        }
        step.write_modes = BTreeMap::from([
            ("first".to_owned(), WriteMode::Empty),
            ("source".to_owned(), WriteMode::Create),
            ("phone".to_owned(), WriteMode::Empty),
        ]);
        step.omit_empty = true;
        let r = step
            .render(&t, &RenderContext::new(json!({})))
            .expect("renders");
        assert_eq!(
            Value::Object(r.create_properties()),
            json!({"email": "a@b.co", "first": "Ada", "source": "slatis"}),
            "a create sends every property (a blank one is still dropped by omit_empty)"
        );
        assert_eq!(r.empty_only().collect::<Vec<_>>(), vec!["first"]);
        let crm = json!({"first": "Augusta", "email": "old@b.co"});
        assert_eq!(
            Value::Object(r.update_properties(|k| is_blank(crm.get(k)))),
            json!({"email": "a@b.co"}),
            "a name the CRM holds stays; `create` is never an update"
        );
        let crm = json!({"first": " "});
        assert_eq!(
            Value::Object(r.update_properties(|k| is_blank(crm.get(k)))),
            json!({"email": "a@b.co", "first": "Ada"})
        );
    }

    #[test]
    fn omit_empty_drops_blank_properties_only() {
        let mut t = Templates::default();
        let mut step = body_step(&mut t);
        step.extras.clear();
        step.omit_empty = true;
        step.properties = vec![
            (
                "phone".into(),
                Tree::Text(t.compile("p1", "{{data.phone}}").expect("c")),
            ),
            (
                "name".into(),
                Tree::Text(t.compile("p2", "{{data.name}}").expect("c")),
            ),
            (
                "n".into(),
                Tree::Typed(
                    t.compile("p3", "{{data.phone}}").expect("c"),
                    ValueType::Integer,
                ),
            ),
        ];
        let cx = RenderContext::new(json!({"data": {"phone": "", "name": "Ada"}}));
        let r = step.render(&t, &cx).expect("renders");
        assert_eq!(Value::Object(r.properties), json!({"name": "Ada"}));
    }

    proptest! {
        #[test]
        fn a_json_body_is_valid_json_whatever_the_booking_holds(name in "\\PC{0,30}", notes in "(\\PC|[\"\\\\<>&\n\t])*") {
            let mut t = Templates::default();
            let step = body_step(&mut t);
            let cx = RenderContext::new(json!({"data": {"attendee": {"name": name.clone()}, "notes": notes.clone()}}));
            let r = step.render(&t, &cx).expect("renders");
            let text = serde_json::to_string(r.extra("json").expect("json")).expect("serialises");
            let back: Value = serde_json::from_str(&text).expect("valid JSON");
            prop_assert_eq!(&back["name"], &json!(name));
            prop_assert_eq!(&back["notes"], &json!(notes.clone()));
            prop_assert_eq!(&back["tags"], &json!([notes, true]));
            prop_assert_eq!(&back["n"], &json!(1));
        }
    }
}
