//! The YAML layer: the file is parsed once (serde-saphyr: pure Rust, no `unsafe`,
//! resource budgets) into a tree of [`Node`]s that keep their line numbers, so that every
//! later error can name both the path and the line.
//!
//! Invariant: this is the only module that knows the YAML crate; the rest of the config
//! code sees [`Node`] and `serde_json::Value`.

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Number, Value};
use serde_saphyr::Spanned;
use std::collections::HashMap;
use std::fmt;

/// A YAML node with the line it starts on (1-based; 0 when unknown).
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// What the node holds.
    pub kind: Kind,
    /// Its line in the file.
    pub line: u64,
}

/// The shape of a [`Node`].
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// `~`, `null` or nothing.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer or a float.
    Number(Number),
    /// A string scalar (plain or quoted).
    Str(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in file order; keys are turned into text.
    Map(Vec<(String, Node)>),
}

/// Where each path of the document starts, for error messages.
#[derive(Debug, Default, Clone)]
pub struct Lines(HashMap<String, u64>);

impl Lines {
    /// The lines of the document `src` (parsed again: lines are looked up only when an
    /// error is reported, so a valid config never keeps a line table), its paths under
    /// `prefix`; none when it no longer parses.
    pub fn of_source(src: &str, prefix: &str) -> Self {
        let mut lines = Self::default();
        if let Ok(node) = parse(src) {
            node.record_lines(prefix, &mut lines);
        }
        lines
    }

    /// The line of `path`, or of its nearest ancestor that has one.
    pub fn of(&self, path: &str) -> Option<u64> {
        let mut p = path;
        loop {
            if let Some(l) = self.0.get(p).filter(|l| **l > 0) {
                return Some(*l);
            }
            let cut = p.rfind(['.', '['])?;
            p = &p[..cut];
        }
    }
}

/// A YAML syntax error: the parser's description, line and column — never a snippet of
/// the file, which could show a secret written in it.
#[derive(Debug, Clone)]
pub struct SyntaxError {
    /// The parser's description and where (`… at line 3, column 7`).
    pub message: String,
    /// The line, where the parser knows it.
    pub line: Option<u64>,
}

/// The most YAML nodes (mappings, sequences and scalars) one file may hold: room for tens
/// of thousands of tenants, still a bound against a runaway document. The parser's default
/// (250,000) stopped a file of 10,000 small tenants at the 6,900th.
pub const MAX_NODES: usize = 4_000_000;

/// Parses a whole document.
///
/// # Errors
/// [`SyntaxError`] when the text is not YAML (or is over the parser's budgets).
pub fn parse(src: &str) -> Result<Node, SyntaxError> {
    parse_within(src, MAX_NODES)
}

fn parse_within(src: &str, max_nodes: usize) -> Result<Node, SyntaxError> {
    let mut options = serde_saphyr::Options::default();
    options.strict_booleans = true;
    options.leading_zero_numbers_as_strings = true;
    let mut budget = serde_saphyr::budget::Budget::default();
    budget.max_nodes = max_nodes;
    // a scalar is one parser event, a mapping or a sequence two
    budget.max_events = max_nodes.saturating_mul(2);
    options.budget = Some(budget);
    if src.trim().is_empty() {
        return Ok(Node {
            kind: Kind::Null,
            line: 1,
        });
    }
    serde_saphyr::from_str_with_options::<Spanned<Kind>>(src, options)
        .map(|s| Node {
            kind: s.value,
            line: s.referenced.line(),
        })
        .map_err(|e| SyntaxError {
            line: e.location().map(|l| l.line()).filter(|l| *l > 0),
            message: too_big(&e, max_nodes).unwrap_or_else(|| {
                e.without_snippet()
                    .render_with_options(serde_saphyr::render_options! {
                        formatter: &serde_saphyr::UserMessageFormatter,
                        snippets: serde_saphyr::SnippetMode::Off,
                    })
            }),
        })
}

/// What to say when `e` is the file being larger than `max_nodes` allows.
fn too_big(e: &serde_saphyr::Error, max_nodes: usize) -> Option<String> {
    use serde_saphyr::budget::BudgetBreach;
    match e.without_snippet() {
        serde_saphyr::Error::Budget {
            breach: BudgetBreach::Nodes { .. } | BudgetBreach::Events { .. },
            ..
        } => Some(format!(
            "the file holds more than {max_nodes} YAML values (keys, values and list items), \
             the most one config file may hold (a bound against runaway documents); move tenants \
             to `tenants_dir:` (one file per tenant, each with the same bound)"
        )),
        _ => None,
    }
}

impl Node {
    /// Turns the tree into JSON (the lines are dropped: [`Lines::of_source`] finds them
    /// again when an error needs one).
    pub fn into_json(self) -> Value {
        match self.kind {
            Kind::Null => Value::Null,
            Kind::Bool(b) => Value::Bool(b),
            Kind::Number(n) => Value::Number(n),
            Kind::Str(s) => Value::String(s),
            Kind::Seq(items) => Value::Array(items.into_iter().map(Self::into_json).collect()),
            Kind::Map(entries) => Value::Object(
                entries
                    .into_iter()
                    .map(|(k, n)| (k, n.into_json()))
                    .collect(),
            ),
        }
    }

    /// Records the line of this node and of every node under it, under `prefix`.
    fn record_lines(&self, prefix: &str, lines: &mut Lines) {
        lines.0.insert(prefix.to_owned(), self.line);
        match &self.kind {
            Kind::Seq(items) => {
                for (i, n) in items.iter().enumerate() {
                    n.record_lines(&format!("{prefix}[{i}]"), lines);
                }
            }
            Kind::Map(entries) => {
                for (k, n) in entries {
                    n.record_lines(&join(prefix, k), lines);
                }
            }
            _ => {}
        }
    }
}

/// `prefix.key`, or `key` at the top.
pub fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}.{key}")
    }
}

impl<'de> Deserialize<'de> for Kind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(KindVisitor)
    }
}

struct KindVisitor;

impl<'de> Visitor<'de> for KindVisitor {
    type Value = Kind;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E>(self) -> Result<Kind, E> {
        Ok(Kind::Null)
    }
    fn visit_none<E>(self) -> Result<Kind, E> {
        Ok(Kind::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Kind, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Kind, E> {
        Ok(Kind::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Kind, E> {
        Ok(Kind::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Kind, E> {
        Ok(Kind::Number(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Kind, E> {
        Number::from_f64(v)
            .map(Kind::Number)
            .ok_or_else(|| E::custom("numbers must be finite"))
    }
    fn visit_str<E>(self, v: &str) -> Result<Kind, E> {
        Ok(Kind::Str(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Kind, E> {
        Ok(Kind::Str(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Kind, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Kind>>()? {
            items.push(Node {
                kind: item.value,
                line: item.referenced.line(),
            });
        }
        Ok(Kind::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Kind, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Kind>()? {
            let key = match key {
                Kind::Str(s) => s,
                Kind::Number(n) => n.to_string(),
                Kind::Bool(b) => b.to_string(),
                Kind::Null => "null".to_owned(),
                Kind::Seq(_) | Kind::Map(_) => {
                    return Err(de::Error::custom("mapping keys must be scalars"));
                }
            };
            let value = map.next_value::<Spanned<Kind>>()?;
            entries.push((
                key,
                Node {
                    kind: value.value,
                    line: value.referenced.line(),
                },
            ));
        }
        Ok(Kind::Map(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file past the node budget is told what limit it hit and what to do, not the
    /// parser's internal breach report.
    #[test]
    fn a_file_over_the_node_budget_says_which_limit_and_what_to_do() {
        let src = format!("[{}]", vec!["1"; 101].join(", "));
        let e = parse_within(&src, 100).expect_err("over budget");
        assert!(
            e.message.contains("more than 100 YAML values"),
            "{}",
            e.message
        );
        assert!(e.message.contains("tenants_dir"), "{}", e.message);
        assert!(!e.message.contains("budget breached"), "{}", e.message);
        parse_within(&format!("[{}]", vec!["1"; 90].join(", ")), 100).expect("under budget");
    }

    /// The parser's own default (250,000 nodes) no longer caps a config file.
    #[test]
    fn a_file_of_more_than_250_000_nodes_parses() {
        let src = format!("[{}]", vec!["1"; 300_000].join(","));
        let Kind::Seq(items) = parse(&src).expect("parses").kind else {
            panic!("a sequence");
        };
        assert_eq!(items.len(), 300_000);
    }

    #[test]
    fn keeps_lines_of_nested_nodes() {
        let src = "a:\n  b:\n    - x\n    - y: 1\n";
        let v = parse(src).expect("yaml").into_json();
        let lines = Lines::of_source(src, "");
        assert_eq!(v["a"]["b"][1]["y"], 1);
        assert_eq!(lines.of("a.b[1].y"), Some(4));
        assert_eq!(lines.of("a.b[0]"), Some(3));
        assert_eq!(lines.of("a.b[1].nope"), Some(4));
    }

    #[test]
    fn norway_stays_a_string_and_zip_codes_keep_their_zero() {
        let v = parse("c: NO\nz: 0123\n").expect("yaml").into_json();
        assert_eq!(v["c"], "NO");
        assert_eq!(v["z"], "0123");
    }

    #[test]
    fn syntax_errors_carry_a_line() {
        let e = parse("a: [1, 2\nb: 3\n").expect_err("broken");
        assert!(e.line.is_some(), "{e:?}");
    }

    #[test]
    fn syntax_errors_show_no_text_of_the_file() {
        for src in [
            "a:\n  secret: whsec_LEAK_1\n  b: [whsec_LEAK_2, \n",
            "a: \"whsec_LEAK_1\nb: 'whsec_LEAK_2\n",
            "k: whsec_LEAK_1\nk: whsec_LEAK_2\n",
            "a:\n  - whsec_LEAK_1\n  b: whsec_LEAK_2\n",
            "a: whsec_LEAK_1\n\tb: whsec_LEAK_2\n",
        ] {
            let e = parse(src).expect_err(src);
            assert!(!e.message.contains("LEAK"), "{src:?}: {}", e.message);
            assert!(e.message.contains("line"), "{src:?}: {}", e.message);
        }
    }

    #[test]
    fn duplicate_keys_are_errors() {
        assert!(parse("a: 1\na: 2\n").is_err());
    }
}
