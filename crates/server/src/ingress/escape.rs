//! Values that came from a request, made safe to write into a log line.
//!
//! Invariant: what [`escaped`] displays holds no control character (newlines, ANSI escape
//! sequences), no invisible or direction-changing character, and at most [`MAX_CHARS`]
//! characters of the value, so a request can neither forge log lines nor flood them.

use std::fmt;

/// The most characters of a value written to a log.
pub const MAX_CHARS: usize = 128;

/// `value` for a log line: escaped as Rust escapes a `char` for `Debug` (`\n`, `\u{1b}`,
/// `\u{202e}`, `\\`, …; quotes are left as they are) and cut after [`MAX_CHARS`]
/// characters, with how much was cut.
pub fn escaped(value: &str) -> Escaped<'_> {
    Escaped(value)
}

/// See [`escaped`].
pub struct Escaped<'a>(&'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut chars = self.0.char_indices();
        for (_, c) in chars.by_ref().take(MAX_CHARS) {
            if matches!(c, '"' | '\'') {
                fmt::Write::write_char(f, c)?;
            } else {
                write!(f, "{}", c.escape_debug())?;
            }
        }
        if let Some((at, _)) = chars.next() {
            write!(f, "…(+{} bytes)", self.0.len() - at)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn control_and_invisible_characters_are_escaped() {
        assert_eq!(
            escaped("BOOKING\n2026 INFO forged\u{1b}[31mred\r").to_string(),
            r"BOOKING\n2026 INFO forged\u{1b}[31mred\r"
        );
        assert_eq!(escaped("a\u{202e}b\u{0}c").to_string(), r"a\u{202e}b\0c");
        assert_eq!(
            escaped("Zoë O'Brien \"x\"").to_string(),
            "Zoë O'Brien \"x\""
        );
        assert_eq!(escaped(r"a\b").to_string(), r"a\\b");
    }

    #[test]
    fn long_values_are_cut_with_a_count() {
        let long = "é".repeat(200);
        let shown = escaped(&long).to_string();
        assert_eq!(shown, format!("{}…(+144 bytes)", "é".repeat(MAX_CHARS)));
        assert_eq!(
            escaped(&"x".repeat(MAX_CHARS)).to_string(),
            "x".repeat(MAX_CHARS)
        );
    }

    proptest! {
        #[test]
        fn nothing_escaped_can_break_a_line(value in any::<String>()) {
            let shown = escaped(&value).to_string();
            prop_assert!(!shown.chars().any(char::is_control), "{shown:?}");
            prop_assert!(shown.chars().count() <= MAX_CHARS * 10 + 32);
        }
    }
}
