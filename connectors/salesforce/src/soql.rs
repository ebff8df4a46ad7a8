//! SOQL built safely: names are checked, values are escaped.
//!
//! Invariant: a value can only ever be one string literal. Every character SOQL treats
//! specially inside quotes (`'`, `"`, `\`, and the control characters with an escape) is
//! escaped, so `O'Brien` or `a\b` matches exactly and nothing can close the literal
//! early and widen the query. Object and field names are never values: they come from
//! the config and must be plain identifiers.

/// Whether `name` is a plain SOQL identifier (`Contact`, `Email`, `Booking_Uid__c`).
pub fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `value` as the body of a SOQL string literal.
pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c => out.push(c),
        }
    }
    out
}

/// `SELECT Id, {fields} FROM {object} WHERE {field} = '{value}' ORDER BY CreatedDate
/// {dir}, Id {dir} LIMIT {limit}`: the records holding a value, by creation (ties, within
/// `CreatedDate`'s second, by id), oldest first unless `newest_first`.
pub fn select_matching(
    object: &str,
    fields: &[&str],
    (field, value): (&str, &str),
    newest_first: bool,
    limit: u32,
) -> String {
    let mut select: Vec<&str> = vec!["Id"];
    for f in fields {
        if !select.iter().any(|s| s.eq_ignore_ascii_case(f)) {
            select.push(f);
        }
    }
    let dir = if newest_first { "DESC" } else { "ASC" };
    format!(
        "SELECT {} FROM {object} WHERE {field} = '{}' ORDER BY CreatedDate {dir}, Id {dir} LIMIT {limit}",
        select.join(", "),
        escape(value)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The inverse of [`escape`], with SOQL's rules, for checking it.
    fn unescape(literal: &str) -> Option<String> {
        let mut out = String::new();
        let mut chars = literal.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => out.push(match chars.next()? {
                    '\\' => '\\',
                    '\'' => '\'',
                    '"' => '"',
                    'n' => '\n',
                    'r' => '\r',
                    't' => '\t',
                    'b' => '\u{8}',
                    'f' => '\u{c}',
                    _ => return None,
                }),
                '\'' => return None,
                c => out.push(c),
            }
        }
        Some(out)
    }

    #[test]
    fn table() {
        assert_eq!(escape("O'Brien"), "O\\'Brien");
        assert_eq!(escape("a\\b"), "a\\\\b");
        assert_eq!(escape("x' OR Name != '"), "x\\' OR Name != \\'");
        assert_eq!(
            select_matching("Contact", &[], ("Email", "o'b@x.io"), false, 1),
            "SELECT Id FROM Contact WHERE Email = 'o\\'b@x.io' ORDER BY CreatedDate ASC, Id ASC LIMIT 1"
        );
        assert_eq!(
            select_matching(
                "Contact",
                &["Phone", "id", "phone", "FirstName"],
                ("Email", "a@b.co"),
                true,
                1
            ),
            "SELECT Id, Phone, FirstName FROM Contact WHERE Email = 'a@b.co' ORDER BY CreatedDate DESC, Id DESC LIMIT 1"
        );
    }

    #[test]
    fn identifiers() {
        for ok in ["Contact", "Email", "Booking_Uid__c", "a1"] {
            assert!(is_identifier(ok), "{ok}");
        }
        for bad in ["", "1a", "Email OR", "E-mail", "x'", "_x", "Em ail"] {
            assert!(!is_identifier(bad), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn any_value_stays_one_literal_and_round_trips(value in "\\PC*|[\\\\'\"\\n\\t]*") {
            let escaped = escape(&value);
            prop_assert_eq!(unescape(&escaped), Some(value));
        }
    }
}
