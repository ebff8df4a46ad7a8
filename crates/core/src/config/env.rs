//! `${VAR}` substitution, run after parsing, into string values only.
//!
//! Invariants: a variable's text can never add YAML structure (it lands inside one
//! string); a missing variable is an error naming it and where it is used;
//! `${VAR:-default}` gives a default (also when the variable is empty); `$${` writes a
//! literal `${`. Values substituted into secret-bearing keys are reported so that they
//! can be masked everywhere.

use super::{ConfigIssue, yaml::join};
use crate::redact::is_secret_path;
use serde_json::Value;

/// Where variables come from (the process environment, or a map in tests).
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Substitutes every string leaf under `path`; collects issues and the secret values used.
pub fn interpolate(
    value: &mut Value,
    path: &str,
    env: Lookup<'_>,
    issues: &mut Vec<ConfigIssue>,
    secrets: &mut Vec<String>,
) {
    match value {
        Value::String(s) if s.contains('$') => match substitute(s, env) {
            Ok((out, used)) => {
                if is_secret_path(path) {
                    secrets.extend(used);
                }
                *s = out;
            }
            Err(message) => issues.push(ConfigIssue::new(path, message)),
        },
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                interpolate(item, &format!("{path}[{i}]"), env, issues, secrets);
            }
        }
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                interpolate(v, &join(path, k), env, issues, secrets);
            }
        }
        _ => {}
    }
}

/// Substitutes one string; returns it and the variable values that were used.
///
/// # Errors
/// A message naming a missing variable or describing a malformed reference.
pub fn substitute(s: &str, env: Lookup<'_>) -> Result<(String, Vec<String>), String> {
    let mut out = String::with_capacity(s.len());
    let mut used = Vec::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let Some(after) = tail.strip_prefix("$${") {
            out.push_str("${");
            rest = after;
        } else if let Some(after) = tail.strip_prefix("${") {
            let end = after
                .find('}')
                .ok_or_else(|| format!("unclosed `${{` in {s:?}"))?;
            let (name, default) = match after[..end].split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (&after[..end], None),
            };
            if !is_var_name(name) {
                return Err(format!(
                    "`${{{}}}` is not a valid variable reference (use ${{NAME}} or ${{NAME:-default}})",
                    &after[..end]
                ));
            }
            match (env(name), default) {
                (Some(v), Some(d)) if v.is_empty() => out.push_str(d),
                (Some(v), _) => {
                    out.push_str(&v);
                    used.push(v);
                }
                (None, Some(d)) => out.push_str(d),
                (None, None) => return Err(format!("environment variable {name} is not set")),
            }
            rest = &after[end + 1..];
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    Ok((out, used))
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
    fn only_secret_paths_report_their_values() {
        let mut v =
            serde_json::json!({"headers": {"A": "${TOKEN}"}, "base_url": "${TOKEN}", "n": 5});
        let (mut issues, mut secrets) = (vec![], vec![]);
        interpolate(&mut v, "c", &env, &mut issues, &mut secrets);
        assert!(issues.is_empty());
        assert_eq!(secrets, vec!["t0k3n".to_owned()]);
        assert_eq!(v["base_url"], "t0k3n");
        assert_eq!(v["n"], 5);
    }

    proptest! {
        #[test]
        fn a_variable_never_adds_structure(value in "\\PC{0,40}") {
            let lookup = |_: &str| Some(value.clone());
            let mut v = serde_json::json!({"a": "${X}", "b": ["x${X}"]});
            let (mut issues, mut secrets) = (vec![], vec![]);
            interpolate(&mut v, "", &lookup, &mut issues, &mut secrets);
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
