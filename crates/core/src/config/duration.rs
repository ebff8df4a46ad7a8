//! Durations in the config: `500ms`, `10s`, `5m`, `1h`, `7d` (serde `with` module).

use serde::{Deserialize, Deserializer};
use std::time::Duration;

/// Parses a duration such as `500ms`, `10s`, `5m`, `1h` or `7d`.
///
/// # Errors
/// A message showing the accepted forms.
pub fn parse(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s.chars().all(|c| c.is_ascii_digit()) && !s.is_empty() {
        return Err(format!(
            "`{s}` has no unit: write a duration such as 500ms, 10s, 5m, 1h or 7d"
        ));
    }
    humantime::parse_duration(s)
        .map_err(|_| format!("`{s}` is not a duration such as 500ms, 10s, 5m, 1h or 7d"))
}

/// Deserializes a duration string.
///
/// # Errors
/// When the value is not a duration string.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Text(String),
        Number(serde_json::Number),
    }
    match Raw::deserialize(d)? {
        Raw::Text(s) => parse(&s).map_err(serde::de::Error::custom),
        Raw::Number(n) => Err(serde::de::Error::custom(format!(
            "`{n}` has no unit: write a duration such as 500ms, 10s, 5m, 1h or 7d"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse("7d"), Ok(Duration::from_secs(7 * 86400)));
        assert!(parse("10").is_err());
        assert!(parse("soon").is_err());
    }
}
