//! The loader's rules about secrets.
//!
//! Invariants:
//! - a public placeholder signing secret (the example config's defaults) or an empty one
//!   is refused while any connector of its tenant sends for real; the error names the
//!   variable to set and never the value;
//! - no issue message leaves the loader holding a value: serde's quoted strings are
//!   dropped ([`clean`]) and every secret and variable value the config used is masked.

use super::ConfigIssue;
use crate::redact::Redactor;
use std::borrow::Cow;
use std::collections::HashMap;

/// Signing secrets anyone can read: the defaults of `config.example.yaml`, and the like.
/// A tenant may use one only while every connector of it is in dry run.
pub const PLACEHOLDER_SIGNING_SECRETS: &[&str] = &[
    "whsec_demo",
    "whsec_acme_example",
    "whsec_globex_example",
    "whsec_initech_example",
    "whsec_example",
    "whsec_placeholder",
    "whsec_changeme",
    "changeme",
    "change-me",
];

/// Whether `secret` is a known public placeholder (case and surrounding blanks aside).
pub fn is_placeholder(secret: &str) -> bool {
    let s = secret.trim();
    PLACEHOLDER_SIGNING_SECRETS
        .iter()
        .any(|p| s.eq_ignore_ascii_case(p))
}

/// The issues of the signing secrets of the tenant at `place`: an empty secret always;
/// a placeholder unless `all_dry_run` (nothing of the tenant's is sent anywhere).
/// `variables` maps a path to the variables its value came from.
pub fn signing_secret_issues(
    place: &str,
    secrets: &[String],
    all_dry_run: bool,
    variables: &HashMap<String, Vec<String>>,
) -> Vec<ConfigIssue> {
    let mut issues = Vec::new();
    for (i, secret) in secrets.iter().enumerate() {
        let path = format!("{place}.signing_secrets[{i}]");
        let fix = match variables.get(&path).map(Vec::as_slice) {
            Some([]) | None => "write the tenant's signing secret from Slatis here, or take it from a variable (${NAME})".to_owned(),
            Some(names) => format!("set {} to the tenant's signing secret from Slatis", names.join(" / ")),
        };
        if secret.trim().is_empty() {
            issues.push(ConfigIssue::new(
                path,
                format!("a signing secret must not be empty: {fix}"),
            ));
        } else if is_placeholder(secret) && !all_dry_run {
            issues.push(ConfigIssue::new(
                path,
                format!("is a public placeholder, accepted only while every connector of the tenant is in dry run: {fix}"),
            ));
        }
    }
    issues
}

/// `message` as it may leave the loader: every `string "…"` serde quotes is dropped
/// (`invalid type: a string, expected a sequence`), and every value `shown` knows is
/// masked.
pub fn clean(message: &str, shown: &Redactor) -> String {
    shown.redact(&unquote(message)).into_owned()
}

/// Drops the text of every `string "…"` (a Rust-escaped string, as serde's
/// `Unexpected::Str` prints it).
fn unquote(message: &str) -> Cow<'_, str> {
    const OPEN: &str = "string \"";
    if !message.contains(OPEN) {
        return Cow::Borrowed(message);
    }
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(i) = rest.find(OPEN) {
        out.push_str(&rest[..i]);
        out.push_str("a string");
        let body = &rest[i + OPEN.len()..];
        let mut escaped = false;
        let mut close = body.len();
        for (j, c) in body.char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => {
                    close = j + 1;
                    break;
                }
                _ => {}
            }
        }
        rest = &body[close..];
    }
    out.push_str(rest);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn quoted_strings_are_dropped() {
        let r = Redactor::default();
        assert_eq!(
            clean(r#"invalid type: string "whsec_x", expected a sequence"#, &r),
            "invalid type: a string, expected a sequence"
        );
        assert_eq!(
            clean(
                r#"invalid value: string "a\"b\\", expected x; string "c""#,
                &r
            ),
            "invalid value: a string, expected x; a string"
        );
        assert_eq!(clean(r#"string "unclosed secret"#, &r), "a string");
        assert_eq!(
            clean("invalid type: integer `5`", &r),
            "invalid type: integer `5`"
        );
    }

    #[test]
    fn placeholders_are_refused_unless_all_dry_run() {
        let vars = HashMap::from([(
            "tenants.a.signing_secrets[0]".to_owned(),
            vec!["A_SECRET".to_owned()],
        )]);
        let secrets = ["whsec_acme_example".to_owned(), " WHSEC_DEMO ".to_owned()];
        let issues = signing_secret_issues("tenants.a", &secrets, false, &vars);
        assert_eq!(issues.len(), 2, "{issues:?}");
        assert_eq!(issues[0].path, "tenants.a.signing_secrets[0]");
        assert!(issues[0].message.contains("set A_SECRET"), "{issues:?}");
        assert!(
            issues[1]
                .message
                .contains("write the tenant's signing secret")
        );
        for i in &issues {
            assert!(!i.message.to_ascii_lowercase().contains("whsec_"), "{i}");
        }
        assert!(signing_secret_issues("tenants.a", &secrets, true, &vars).is_empty());
        let real = ["whsec_9f8e7d6c5b4a".to_owned()];
        assert!(signing_secret_issues("tenants.a", &real, false, &vars).is_empty());
    }

    #[test]
    fn empty_secrets_are_refused_even_in_dry_run() {
        let vars = HashMap::from([(
            "tenants.a.signing_secrets[1]".to_owned(),
            vec!["B".to_owned()],
        )]);
        let issues = signing_secret_issues("tenants.a", &["x".into(), " ".into()], true, &vars);
        assert_eq!(issues.len(), 1);
        assert_eq!(issues[0].path, "tenants.a.signing_secrets[1]");
        assert!(
            issues[0].message.contains("must not be empty: set B"),
            "{issues:?}"
        );
    }

    proptest! {
        #[test]
        fn no_debug_quoted_string_survives(s in "\\PC{0,30}", before in "[a-z :]{0,10}") {
            let message = format!("{before}invalid type: string {s:?}, expected a map");
            let out = clean(&message, &Redactor::default());
            prop_assert!(out.ends_with("a string, expected a map"), "{out}");
        }
    }
}
