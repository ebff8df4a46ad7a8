//! Reading what arrives on the wire, for every mock: form and query pairs, path segments,
//! base64 (Basic auth, paging cursors) — through the well-kept crates, not by hand.

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

/// `a=1&b=2` (a form body or a query) as decoded pairs, `+` as a space.
pub fn parse_pairs(text: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(text.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The first value of `key`.
pub fn pair<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// A URL path's non-empty segments, each percent-decoded (`+` stays a `+`).
pub fn segments(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect()
}

/// URL-safe base64 that decodes with or without padding.
const URL_SAFE: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Base64url without padding.
pub fn base64_encode(bytes: &[u8]) -> String {
    URL_SAFE.encode(bytes)
}

/// Base64 in the standard or the URL-safe alphabet, padding optional.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    URL_SAFE
        .decode(text.replace('+', "-").replace('/', "_"))
        .ok()
}
