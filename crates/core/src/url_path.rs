//! URL paths that hold booking data: how a value becomes one path segment, how a rendered
//! path is checked, and whether a URL stays under its base.
//!
//! Invariants:
//! - a value put into a path is percent-encoded as exactly one segment: everything but
//!   letters, digits, `-`, `_`, `.`, `~` and `@` (which emails hold) is encoded, so a value
//!   can never add a level (`/`, `\`), a query (`?`) or a fragment (`#`);
//! - a value is never a dot segment (`.`, `..`) and never an empty segment: URL parsers
//!   read `%2e%2e` as `..` as well (WHATWG URL), so no encoding can carry those values —
//!   they are refused (a permanent failure), never sent;
//! - [`within`] holds for every URL the http connector sends: same scheme, host and port as
//!   its `base_url`, and a path under the base path once dot segments are resolved.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::Url;

/// The bytes a segment keeps as they are: RFC 3986 unreserved characters and `@`.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'@');

/// What a template's path escape writes for an empty value: a byte that encoding never
/// writes (it becomes `%00`) and a path template may not hold, so [`finish`] can tell a
/// segment that a value left empty from one the operator wrote empty.
const EMPTY_VALUE: char = '\0';

/// `value` percent-encoded as one path segment.
///
/// # Errors
/// A message when `value` cannot be one segment: it is empty, `.` or `..`.
pub fn segment(value: &str) -> Result<String, String> {
    match value {
        "" => Err("an empty value cannot be a URL path segment".to_owned()),
        "." | ".." => Err(format!(
            "{value:?} cannot be a URL path segment (it would move the path up or stay put)"
        )),
        _ => Ok(encode(value)),
    }
}

fn encode(value: &str) -> String {
    utf8_percent_encode(value, SEGMENT).to_string()
}

/// The escape a path template applies to each `{{…}}` output: [`segment`]'s encoding,
/// with an empty value marked for [`finish`] (an escape cannot fail).
pub(crate) fn escape_value(value: &str) -> String {
    if value.is_empty() {
        EMPTY_VALUE.to_string()
    } else {
        encode(value)
    }
}

/// Whether a path template's source may be used: it holds no NUL (the empty-value mark).
pub(crate) fn check_source(src: &str) -> Result<(), String> {
    if src.contains(EMPTY_VALUE) {
        Err("a path cannot hold a NUL character".to_owned())
    } else {
        Ok(())
    }
}

/// Checks a rendered path template and drops the empty-value marks. In the path part
/// (before the first `?` or `#` the operator wrote), a segment left empty by values, and
/// a dot segment in any spelling, are refused; in the query, an empty value is just empty.
///
/// # Errors
/// A message naming what is wrong with the path.
pub fn finish(rendered: &str) -> Result<String, String> {
    let path = rendered.split(['?', '#']).next().unwrap_or_default();
    for seg in path.split(['/', '\\']) {
        if !seg.is_empty() && seg.chars().all(|c| c == EMPTY_VALUE) {
            return Err("a value in the path is empty, which would drop a path level".to_owned());
        }
        let seg = seg.replace(EMPTY_VALUE, "");
        if is_dot_segment(&seg) {
            return Err(format!(
                "the path holds the segment {seg:?}, which moves the path up or stays put (a value cannot be `.` or `..`)"
            ));
        }
    }
    Ok(rendered.replace(EMPTY_VALUE, ""))
}

/// `.` or `..`, however spelled (`%2e`, `.%2E`, …): what a URL parser resolves.
fn is_dot_segment(seg: &str) -> bool {
    let lower = seg.to_ascii_lowercase();
    matches!(
        lower.as_str(),
        "." | "%2e" | ".." | ".%2e" | "%2e." | "%2e%2e"
    )
}

/// Whether `url` stays under `base`: same scheme, host and port, and a path equal to the
/// base path or below it (both as parsed, so dot segments are already resolved).
pub fn within(base: &Url, url: &Url) -> bool {
    let base_path = base.path().trim_end_matches('/');
    let path = url.path();
    url.scheme() == base.scheme()
        && url.host() == base.host()
        && url.port_or_known_default() == base.port_or_known_default()
        && (path == base_path
            || path
                .strip_prefix(base_path)
                .is_some_and(|rest| rest.starts_with('/')))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn values_become_one_segment() {
        assert_eq!(
            segment("ada+1@example.com").as_deref(),
            Ok("ada%2B1@example.com")
        );
        assert_eq!(segment("a/b c?d#e").as_deref(), Ok("a%2Fb%20c%3Fd%23e"));
        assert_eq!(segment("O'Brien").as_deref(), Ok("O%27Brien"));
        assert_eq!(segment("..\\x").as_deref(), Ok("..%5Cx"));
        assert_eq!(segment("%2e%2e").as_deref(), Ok("%252e%252e"));
        assert_eq!(segment("José").as_deref(), Ok("Jos%C3%A9"));
        assert_eq!(segment("...").as_deref(), Ok("..."));
        for bad in ["", ".", ".."] {
            assert!(segment(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn rendered_paths_are_checked() {
        let mark = EMPTY_VALUE;
        assert_eq!(finish("users/42/notes").as_deref(), Ok("users/42/notes"));
        assert_eq!(
            finish(&format!("items?q={mark}&x=1")).as_deref(),
            Ok("items?q=&x=1"),
            "an empty query value is fine"
        );
        assert_eq!(
            finish(&format!("file{mark}.json")).as_deref(),
            Ok("file.json"),
            "an empty value beside literal text leaves the segment"
        );
        assert_eq!(finish("items/").as_deref(), Ok("items/"), "written by hand");
        for bad in [
            format!("users/{mark}"),
            format!("users/{mark}/notes"),
            format!("users/{mark}{mark}"),
            "users/../admin".to_owned(),
            "users/%2E%2e/admin".to_owned(),
            "users/.%2e".to_owned(),
            "users/%2e".to_owned(),
            "users\\..\\admin".to_owned(),
            format!(".{mark}./admin"),
        ] {
            assert!(finish(&bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            finish("a?b=../x").as_deref(),
            Ok("a?b=../x"),
            "the query is not a path"
        );
    }

    #[test]
    fn urls_stay_under_their_base() {
        let base = Url::parse("https://api.example.com/v2/").expect("url");
        let yes = [
            "https://api.example.com/v2",
            "https://api.example.com/v2/",
            "https://api.example.com/v2/people/1?x=2",
            "https://api.example.com:443/v2/a",
        ];
        let no = [
            "https://api.example.com/v20/people",
            "https://api.example.com/admin",
            "https://api.example.com/v2/../admin",
            "http://api.example.com/v2/people",
            "https://api.example.com:8443/v2/people",
            "https://evil.com/v2/people",
            "https://api.example.com.evil.com/v2/people",
        ];
        for u in yes {
            assert!(within(&base, &Url::parse(u).expect("url")), "{u}");
        }
        for u in no {
            assert!(!within(&base, &Url::parse(u).expect("url")), "{u}");
        }
        let root = Url::parse("http://127.0.0.1:9000").expect("url");
        assert!(within(
            &root,
            &Url::parse("http://127.0.0.1:9000/x").expect("url")
        ));
    }

    proptest! {
        /// Whatever the value, it is one segment that a URL parser keeps as it is.
        #[test]
        fn a_value_is_one_segment_a_parser_keeps(value in "\\PC{0,12}|[./%2eE\\\\?#]{0,6}") {
            let base = Url::parse("https://api.example.com/v2/users/").expect("url");
            match segment(&value) {
                Err(_) => prop_assert!(value.is_empty() || value == "." || value == ".."),
                Ok(seg) => {
                    let url = Url::parse(&format!("https://api.example.com/v2/users/{seg}/notes"))
                        .expect("parses");
                    prop_assert!(within(&base, &url));
                    let segments: Vec<&str> = url.path_segments().expect("segments").collect();
                    prop_assert_eq!(segments, vec!["v2", "users", seg.as_str(), "notes"]);
                    prop_assert!(url.query().is_none() && url.fragment().is_none());
                }
            }
        }
    }
}
