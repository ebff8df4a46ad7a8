//! `${VAR}` substitution, run after parsing, into string values only.
//!
//! Invariants: a variable's text can never add YAML structure (it lands inside one
//! string); a missing variable is an error naming it and where it is used;
//! `${VAR:-default}` gives a default (also when the variable is empty); `$${` writes a
//! literal `${`; an error never quotes the string it is about. Every string is classed by
//! its path ([`exposure`]) and what it holds is reported ([`Found`]) so that secrets can be
//! masked everywhere and messages can name the variable to set.

use super::{ConfigIssue, yaml::join};
use crate::redact::{Exposure, exposure};
use serde_json::Value;
use std::collections::HashMap;

/// Where variables come from (the process environment, or a map in tests).
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// What substitution learned about the config's strings. (No `Debug`: it holds secrets.)
#[derive(Default)]
pub struct Found {
    /// What the running service masks: the whole value at a secret path (literal or
    /// not), and every variable value used in a URL, a header or another carrier.
    pub secrets: Vec<String>,
    /// Every variable value used anywhere: config errors mask all of them.
    pub values: Vec<String>,
    /// The variables each path's value was made from (for "set ACME_SECRET" hints).
    pub variables: HashMap<String, Vec<String>>,
}

/// Substitutes every string leaf under `path`; collects issues and what was [`Found`].
pub fn interpolate(
    value: &mut Value,
    path: &str,
    env: Lookup<'_>,
    issues: &mut Vec<ConfigIssue>,
    found: &mut Found,
) {
    match value {
        Value::String(s) => {
            let expanded = match expand(s, env) {
                Ok(e) => e,
                Err(message) => return issues.push(ConfigIssue::new(path, message)),
            };
            let used: Vec<String> = expanded
                .refs
                .iter()
                .filter_map(|r| r.value.clone())
                .collect();
            let url_like = s.contains("://") || expanded.text.contains("://");
            let class = exposure(path).max(if url_like {
                Exposure::Carrier
            } else {
                Exposure::Public
            });
            if class == Exposure::Secret && !expanded.text.contains("{{") {
                found.secrets.push(expanded.text.clone());
            }
            if class >= Exposure::Carrier {
                found.secrets.extend(used.iter().cloned());
            }
            found.values.extend(used);
            if !expanded.refs.is_empty() {
                found.variables.insert(
                    path.to_owned(),
                    expanded.refs.into_iter().map(|r| r.name).collect(),
                );
            }
            *s = expanded.text;
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                interpolate(item, &format!("{path}[{i}]"), env, issues, found);
            }
        }
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                interpolate(v, &join(path, k), env, issues, found);
            }
        }
        _ => {}
    }
}

/// One `${NAME}` or `${NAME:-default}` in a string.
struct Reference {
    name: String,
    /// The variable's value, when it (not the default) was used.
    value: Option<String>,
}

/// A string after substitution, and the references it held.
struct Expanded {
    text: String,
    refs: Vec<Reference>,
}

/// Substitutes one string; returns it and the variable values that were used.
///
/// # Errors
/// A message naming a missing variable or describing a malformed reference (never
/// quoting the string itself, which may hold a secret).
pub fn substitute(s: &str, env: Lookup<'_>) -> Result<(String, Vec<String>), String> {
    expand(s, env).map(|e| (e.text, e.refs.into_iter().filter_map(|r| r.value).collect()))
}

fn expand(s: &str, env: Lookup<'_>) -> Result<Expanded, String> {
    let mut out = String::with_capacity(s.len());
    let mut refs = Vec::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let Some(after) = tail.strip_prefix("$${") {
            out.push_str("${");
            rest = after;
        } else if let Some(after) = tail.strip_prefix("${") {
            let end = after.find('}').ok_or_else(|| {
                "unclosed `${` (write ${NAME} or ${NAME:-default}, or $${ for a literal `${`)"
                    .to_owned()
            })?;
            let (name, default) = match after[..end].split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (&after[..end], None),
            };
            if !is_var_name(name) {
                return Err(format!(
                    "`${{{}}}` is not a valid variable reference (use ${{NAME}} or ${{NAME:-default}})",
                    name.chars().take(40).collect::<String>()
                ));
            }
            let value = match (env(name), default) {
                (Some(v), Some(d)) if v.is_empty() => {
                    out.push_str(d);
                    None
                }
                (Some(v), _) => {
                    out.push_str(&v);
                    Some(v)
                }
                (None, Some(d)) => {
                    out.push_str(d);
                    None
                }
                (None, None) => return Err(format!("environment variable {name} is not set")),
            };
            refs.push(Reference {
                name: name.to_owned(),
                value,
            });
            rest = &after[end + 1..];
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    Ok(Expanded { text: out, refs })
}

fn is_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "TOKEN" => Some("t0k3n".into()),
            "EMPTY" => Some(String::new()),
            "YAML" => Some("a: [1]\n- b".into()),
            "LONG" => Some("long-value-1".into()),
            "LONG2" => Some("long-value-2".into()),
            "LONG3" => Some("long-value-3".into()),
            _ => None,
        }
    }

    #[test]
    fn table() {
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("plain", Ok("plain")),
            ("Bearer ${TOKEN}", Ok("Bearer t0k3n")),
            ("${TOKEN}${TOKEN}", Ok("t0k3nt0k3n")),
            ("${MISSING:-fallback}", Ok("fallback")),
            ("${EMPTY:-fallback}", Ok("fallback")),
            ("${EMPTY}", Ok("")),
            ("${MISSING:-}", Ok("")),
            ("$${TOKEN}", Ok("${TOKEN}")),
            ("cost: $5", Ok("cost: $5")),
            ("${YAML}", Ok("a: [1]\n- b")),
            ("${MISSING}", Err("environment variable MISSING is not set")),
            ("${TOKEN", Err("unclosed")),
            ("${1BAD}", Err("not a valid variable reference")),
        ];
        for (input, want) in cases {
            let got = substitute(input, &env).map(|(s, _)| s);
            match want {
                Ok(w) => assert_eq!(got.as_deref(), Ok(*w), "{input}"),
                Err(w) => assert!(
                    got.as_ref().is_err_and(|e| e.contains(w)),
                    "{input}: {got:?}"
                ),
            }
        }
    }

    #[test]
    fn secrets_are_reported_by_exposure() {
        let mut v = serde_json::json!({
            "headers": {"Authorization": "Bearer ${TOKEN}", "X-Custom": "${LONG}", "Accept": "application/json"},
            "base_url": "https://crm.example/${LONG2}?k=1",
            "access_token": "literal-token-123",
            "template": "{{data.id}}",
            "n": 5,
            "plain": "${LONG3}",
        });
        let mut issues = vec![];
        let mut found = Found::default();
        interpolate(&mut v, "c", &env, &mut issues, &mut found);
        assert!(issues.is_empty(), "{issues:?}");
        let mut secrets = found.secrets.clone();
        secrets.sort();
        assert_eq!(
            secrets,
            [
                "Bearer t0k3n",
                "literal-token-123",
                "long-value-1",
                "long-value-2",
                "t0k3n"
            ],
            "a credential header whole and its variable, a carrier's variables, a literal secret"
        );
        let mut values = found.values.clone();
        values.sort();
        assert_eq!(
            values,
            ["long-value-1", "long-value-2", "long-value-3", "t0k3n"]
        );
        assert_eq!(found.variables["c.headers.Authorization"], ["TOKEN"]);
        assert_eq!(found.variables["c.plain"], ["LONG3"]);
        assert!(!found.variables.contains_key("c.access_token"));
        assert_eq!(v["base_url"], "https://crm.example/long-value-2?k=1");
        assert_eq!(v["n"], 5);
    }

    #[test]
    fn defaults_are_not_variable_values_but_are_traced() {
        let mut v = serde_json::json!({"signing_secrets": ["${MISSING:-whsec_demo}"]});
        let mut found = Found::default();
        interpolate(&mut v, "t", &env, &mut vec![], &mut found);
        assert_eq!(
            found.secrets,
            ["whsec_demo"],
            "the whole value at a secret path"
        );
        assert!(found.values.is_empty());
        assert_eq!(found.variables["t.signing_secrets[0]"], ["MISSING"]);
    }

    #[test]
    fn errors_never_quote_the_string() {
        let lookup = |_: &str| None;
        for s in [
            "whsec_LEAK${",
            "whsec_LEAK ${NO PE:-x}",
            "${1BAD:-whsec_LEAK}",
        ] {
            let e = substitute(s, &lookup).expect_err(s);
            assert!(!e.contains("whsec_LEAK"), "{e}");
        }
    }

    proptest! {
        #[test]
        fn a_variable_never_adds_structure(value in "\\PC{0,40}") {
            let lookup = |_: &str| Some(value.clone());
            let mut v = serde_json::json!({"a": "${X}", "b": ["x${X}"]});
            let (mut issues, mut found) = (vec![], Found::default());
            interpolate(&mut v, "", &lookup, &mut issues, &mut found);
            prop_assert!(issues.is_empty());
            prop_assert_eq!(&v["a"], &serde_json::json!(value.clone()));
            prop_assert_eq!(&v["b"], &serde_json::json!([format!("x{value}")]));
        }

        #[test]
        fn text_without_dollar_is_unchanged(s in "[^$]{0,40}") {
            prop_assert_eq!(substitute(&s, &env).map(|r| r.0), Ok(s));
        }
    }
}
