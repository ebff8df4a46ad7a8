//! Durations in the config: `500ms`, `10s`, `5m`, `1h`, `7d` (serde `with` module).
//!
//! Invariant: every duration a config holds is at most [`MAX`], so the waits, leases,
//! windows and deadlines made from it stay far inside every clock's range (keys with
//! tighter bounds check them where the key is read).

use serde::{Deserialize, Deserializer};
use std::time::Duration;

/// The longest duration any key takes: 3660 days (ten years, the record map's longest
/// retention). Longer is a typo (`70000d` for `7d`); most keys have tighter bounds.
pub const MAX: Duration = Duration::from_secs(3660 * 86_400);

/// Parses a duration such as `500ms`, `10s`, `5m`, `1h` or `7d`, at most [`MAX`].
///
/// # Errors
/// A message showing the accepted forms, or the bound.
pub fn parse(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s.chars().all(|c| c.is_ascii_digit()) && !s.is_empty() {
        return Err(format!(
            "`{s}` has no unit: write a duration such as 500ms, 10s, 5m, 1h or 7d"
        ));
    }
    let d = humantime::parse_duration(s)
        .map_err(|_| format!("`{s}` is not a duration such as 500ms, 10s, 5m, 1h or 7d"))?;
    if d > MAX {
        return Err(format!(
            "`{s}` is longer than {}, the longest duration allowed",
            show(MAX)
        ));
    }
    Ok(d)
}

/// A duration as the config writes it, in its largest whole unit (`90s`, `7d`, `250ms`).
pub fn show(d: Duration) -> String {
    let ms = d.as_millis();
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
    ] {
        if ms >= size && ms.is_multiple_of(size) {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
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

    #[test]
    fn every_duration_is_bounded() {
        assert_eq!(parse("3660d"), Ok(MAX));
        for long in [
            "3661d",
            "100years",
            "99999999999999999d",
            "18446744073709551615s",
        ] {
            let e = parse(long).expect_err(long);
            assert!(
                e.contains("longest duration allowed") || e.contains("is not a duration"),
                "{long}: {e}"
            );
        }
        assert_eq!(
            parse("70000d"),
            Err("`70000d` is longer than 3660d, the longest duration allowed".to_owned())
        );
    }

    #[test]
    fn durations_show_in_their_largest_unit() {
        assert_eq!(show(Duration::from_secs(7 * 86_400)), "7d");
        assert_eq!(show(Duration::from_secs(3600)), "1h");
        assert_eq!(show(Duration::from_secs(90)), "90s");
        assert_eq!(show(Duration::from_millis(1500)), "1500ms");
        assert_eq!(show(Duration::ZERO), "0ms");
    }
}
