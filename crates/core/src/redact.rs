//! Keeps secrets out of everything the service writes down.
//!
//! Invariant: every value the config took from a secret-bearing `${VAR}` (signing
//! secrets, tokens, keys, passwords, header values) is known to the [`Redactor`], and
//! every recorded request, stored error and dry-run record passes through it.

use std::borrow::Cow;

/// What replaces a secret.
pub const MASK: &str = "***";

/// Header names whose values are always masked, whatever they hold.
const SECRET_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
    "api-key",
    "x-api-token",
];

/// Replaces known secret values with [`MASK`].
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    secrets: Vec<String>,
}

impl Redactor {
    /// A redactor for these values (short or empty ones are ignored: masking `"1"`
    /// everywhere would hide data and protect nothing).
    pub fn new(values: impl IntoIterator<Item = String>) -> Self {
        let mut secrets: Vec<String> = values.into_iter().filter(|s| s.len() >= 6).collect();
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Self { secrets }
    }

    /// `text` with every known secret masked.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        for s in &self.secrets {
            if out.contains(s.as_str()) {
                out = Cow::Owned(out.replace(s.as_str(), MASK));
            }
        }
        out
    }

    /// A header value as it may be shown: masked entirely for credential headers.
    pub fn header<'a>(&self, name: &str, value: &'a str) -> Cow<'a, str> {
        if SECRET_HEADERS.iter().any(|h| name.eq_ignore_ascii_case(h)) {
            Cow::Borrowed(MASK)
        } else {
            self.redact(value)
        }
    }

    /// Masks secrets in every string of a JSON value.
    pub fn redact_json(&self, value: &mut serde_json::Value) {
        match value {
            serde_json::Value::String(s) => {
                if let Cow::Owned(r) = self.redact(s) {
                    *s = r;
                }
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(|v| self.redact_json(v)),
            serde_json::Value::Object(map) => map.values_mut().for_each(|v| self.redact_json(v)),
            _ => {}
        }
    }
}

/// Whether a config key holds a secret by its name (`signing_secrets`, `access_token`,
/// `client_secret`, `api_key`, `password`, `private_key`, `token`, …) or sits under a
/// `headers` map.
pub fn is_secret_path(path: &str) -> bool {
    const WORDS: &[&str] = &[
        "secret",
        "token",
        "key",
        "password",
        "credential",
        "authorization",
    ];
    let lower = path.to_ascii_lowercase();
    lower
        .split(['.', '['])
        .any(|seg| seg == "headers" || WORDS.iter().any(|w| seg.contains(w)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_known_values_and_credential_headers() {
        let r = Redactor::new(["supersecret".to_owned(), "abc".to_owned()]);
        assert_eq!(r.redact("Bearer supersecret!"), "Bearer ***!");
        assert_eq!(r.redact("abc"), "abc");
        assert_eq!(r.header("Authorization", "anything"), MASK);
        assert_eq!(r.header("x-trace", "supersecret"), MASK);
        assert_eq!(r.header("x-trace", "t1"), "t1");
    }

    #[test]
    fn secret_paths() {
        assert!(is_secret_path("tenants.acme.signing_secrets[0]"));
        assert!(is_secret_path("tenants.acme.connectors.hs.access_token"));
        assert!(is_secret_path(
            "tenants.acme.connectors.api.headers.X-Custom"
        ));
        assert!(is_secret_path("tenants.a.connectors.sf.auth.private_key"));
        assert!(!is_secret_path("tenants.acme.connectors.api.base_url"));
        assert!(!is_secret_path("server.listen"));
    }
}
