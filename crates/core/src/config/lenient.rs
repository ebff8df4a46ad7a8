//! Scalars that may come from `${VAR}`: a variable always yields text, so numeric and
//! boolean keys also accept their text form (`dry_run: ${DRY_RUN:-true}`).

use serde::{Deserialize, Deserializer, de::Error};
use std::str::FromStr;

#[derive(Deserialize)]
#[serde(untagged)]
enum Scalar {
    Bool(bool),
    Number(serde_json::Number),
    Text(String),
}

/// A boolean, or the text `true` / `false`.
///
/// # Errors
/// When the value is neither.
pub fn boolean<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    match Scalar::deserialize(d)? {
        Scalar::Bool(b) => Ok(b),
        Scalar::Text(s) if s.trim().eq_ignore_ascii_case("true") => Ok(true),
        Scalar::Text(s) if s.trim().eq_ignore_ascii_case("false") => Ok(false),
        _ => Err(D::Error::custom("expected true or false")),
    }
}

/// A whole number, or its text.
///
/// # Errors
/// When the value is not a whole number that fits `T`.
pub fn int<'de, D: Deserializer<'de>, T: FromStr>(d: D) -> Result<T, D::Error> {
    let text = match Scalar::deserialize(d)? {
        Scalar::Number(n) => n.to_string(),
        Scalar::Text(s) => s.trim().to_owned(),
        Scalar::Bool(b) => b.to_string(),
    };
    text.parse()
        .map_err(|_| D::Error::custom(format!("expected a whole number (≥ 0), got `{text}`")))
}
