//! Value checks every mock's schema shares: an email address that could be one, a JSON
//! scalar as text.
//!
//! Invariant: these accept no more than any of the real APIs does with the same check.

use serde_json::Value;

/// Whether `text` could be an email address: one `@`, a non-empty local part, a domain
/// with a dot inside it, no whitespace.
pub fn plausible_email(text: &str) -> bool {
    let Some((local, domain)) = text.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !text.chars().any(char::is_whitespace)
}

/// A JSON scalar as text; `None` for null, arrays and objects.
pub fn text_of(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn emails_need_a_local_part_and_a_dotted_domain() {
        for good in ["ada@example.com", "a.b+c@mail.example.org"] {
            assert!(plausible_email(good), "{good}");
        }
        for bad in [
            "nope",
            "@example.com",
            "ada@example",
            "ada@.example.com",
            "ada@example.com.",
            "ada@b@example.com",
            "ada lovelace@example.com",
        ] {
            assert!(!plausible_email(bad), "{bad}");
        }
    }

    #[test]
    fn scalars_are_text_and_the_rest_is_not() {
        assert_eq!(text_of(&json!("x")).as_deref(), Some("x"));
        assert_eq!(text_of(&json!(1.5)).as_deref(), Some("1.5"));
        assert_eq!(text_of(&json!(true)).as_deref(), Some("true"));
        assert_eq!(text_of(&json!(null)), None);
        assert_eq!(text_of(&json!([1])), None);
    }
}
