//! Keeps secrets out of everything the service writes down.
//!
//! Invariants:
//! - the config's [`Redactor`] knows the whole value at every secret path (signing
//!   secrets, tokens, keys, passwords, credential headers), literal or from `${VAR}`, and
//!   every `${VAR}` value used in a URL or a header ([`exposure`] decides which is which);
//! - text it cleans ([`Redactor::redact`], [`Redactor::url`]) has every known secret
//!   masked, and every URL in it shown without its user info and query values;
//! - every recorded request, stored error, logged URL, dry-run record and config error
//!   passes through it;
//! - its `Debug` says how many values it masks, never one of them.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

/// What replaces a secret.
pub const MASK: &str = "***";

/// Values shorter than this are not masked: masking `"1"` everywhere would hide data and
/// protect nothing.
const MIN_SECRET: usize = 6;

/// A word of a secret (`Bearer <token>`, a PEM line) is masked on its own from this length.
const MIN_PART: usize = 8;

/// Words in a config key that make its value a secret.
const SECRET_WORDS: &[&str] = &[
    "secret",
    "token",
    "key",
    "password",
    "passwd",
    "passphrase",
    "credential",
    "authorization",
];

/// Words in a header name that make its value a credential.
const CREDENTIAL_HEADER_WORDS: &[&str] = &[
    "auth",
    "token",
    "secret",
    "key",
    "password",
    "cookie",
    "session",
    "signature",
];

/// Authorization schemes: the words before a credential, not part of it.
const SCHEMES: &[&str] = &["bearer", "basic", "token", "digest"];

/// How a config value at some path is treated, from the least to the most guarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Exposure {
    /// Shown as written (`server.listen`, a property template).
    Public,
    /// May carry a secret inside (a URL, a header value): every `${VAR}` value used in
    /// it is masked, the literal text is not.
    Carrier,
    /// A secret: its whole value is masked, whether literal or from `${VAR}`.
    Secret,
}

/// How the value at the YAML `path` is treated:
/// - under `headers`: [`Exposure::Secret`] for a credential header name
///   ([`is_credential_header`]), else [`Exposure::Carrier`];
/// - a key ending in `url`: [`Exposure::Carrier`];
/// - a key naming a secret (`signing_secrets`, `access_token`, `client_secret`,
///   `slatis_api_key`, `password`, `private_key`, `token`, …): [`Exposure::Secret`], but
///   only [`Exposure::Carrier`] inside `routes` (templates and field names, not
///   credentials); `…_file` keys name files and are public.
///
/// User-chosen names (tenants, connector instances) never make a path secret.
pub fn exposure(path: &str) -> Exposure {
    let lower = path.to_ascii_lowercase();
    let segments: Vec<&str> = lower
        .split(['.', '['])
        .map(|s| s.trim_end_matches(']'))
        .collect();
    if let Some(i) = segments.iter().position(|s| *s == "headers") {
        return match segments.get(i + 1) {
            Some(name) if is_credential_header(name) => Exposure::Secret,
            _ => Exposure::Carrier,
        };
    }
    let key = segments
        .iter()
        .rev()
        .find(|s| !s.is_empty() && !s.bytes().all(|b| b.is_ascii_digit()))
        .copied()
        .unwrap_or_default();
    if key.ends_with("url") {
        return Exposure::Carrier;
    }
    if key.ends_with("_file") {
        return Exposure::Public;
    }
    let named_by_user = |i: usize| i > 0 && matches!(segments[i - 1], "tenants" | "connectors");
    let secret = segments
        .iter()
        .enumerate()
        .any(|(i, s)| !named_by_user(i) && SECRET_WORDS.iter().any(|w| s.contains(w)));
    let in_routes = segments.first() == Some(&"tenants") && segments.get(2) == Some(&"routes");
    match (secret, in_routes) {
        (true, false) => Exposure::Secret,
        (true, true) => Exposure::Carrier,
        (false, _) => Exposure::Public,
    }
}

/// Whether a header's value is a credential by the header's name (`Authorization`,
/// `Cookie`, `X-Api-Key`, `X-Api-Token`, `X-Session`, `X-Forward-Signature`, …).
pub fn is_credential_header(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    CREDENTIAL_HEADER_WORDS.iter().any(|w| lower.contains(w))
}

/// Replaces known secret values with [`MASK`], and hides what URLs carry.
#[derive(Clone, Default)]
pub struct Redactor {
    /// Longest first, so that a secret holding another is masked whole.
    secrets: Arc<[String]>,
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redactor")
            .field("secrets", &format_args!("<{} masked>", self.secrets.len()))
            .finish()
    }
}

impl Redactor {
    /// A redactor for these values, and for each word of one (`Bearer <token>` also masks
    /// `<token>` alone). Short values are ignored: masking `"1"` everywhere would hide
    /// data and protect nothing.
    pub fn new(values: impl IntoIterator<Item = String>) -> Self {
        let mut secrets: Vec<String> = Vec::new();
        for value in values {
            let words = value.split_whitespace().filter(|w| {
                w.len() >= MIN_PART
                    && w.len() < value.len()
                    && !SCHEMES.contains(&w.to_ascii_lowercase().as_str())
            });
            secrets.extend(words.map(str::to_owned));
            if value.len() >= MIN_SECRET {
                secrets.push(value);
            }
        }
        secrets.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        secrets.dedup();
        Self {
            secrets: secrets.into(),
        }
    }

    /// The values it masks (for a next config generation that keeps some tenants).
    pub(crate) fn secrets(&self) -> &[String] {
        &self.secrets
    }

    /// `text` with every known secret masked, and every URL in it (`scheme://…`) without
    /// its user info and query values.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        match self.values(text) {
            Cow::Borrowed(t) => mask_urls(t),
            Cow::Owned(t) => Cow::Owned(mask_urls(&t).into_owned()),
        }
    }

    /// A URL as it may be written down: known secrets masked, no user info, and every
    /// query value masked (`?api_key=***&limit=***`).
    pub fn url(&self, url: &str) -> String {
        mask_url(&self.values(url))
    }

    /// A header value as it may be shown: masked entirely for credential headers
    /// ([`is_credential_header`]), else cleaned like any text.
    pub fn header<'a>(&self, name: &str, value: &'a str) -> Cow<'a, str> {
        if is_credential_header(name) {
            Cow::Borrowed(MASK)
        } else {
            self.redact(value)
        }
    }

    /// Masks known secrets in every string of a JSON value (a request body: data, so
    /// the URLs it holds are left as they are).
    pub fn redact_json(&self, value: &mut serde_json::Value) {
        match value {
            serde_json::Value::String(s) => {
                if let Cow::Owned(r) = self.values(s) {
                    *s = r;
                }
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(|v| self.redact_json(v)),
            serde_json::Value::Object(map) => map.values_mut().for_each(|v| self.redact_json(v)),
            _ => {}
        }
    }

    /// `text` with every known secret masked.
    fn values<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        for s in self.secrets.iter() {
            if out.contains(s.as_str()) {
                out = Cow::Owned(out.replace(s.as_str(), MASK));
            }
        }
        out
    }
}

/// `url` without its user info (`***@host`), with every query value masked
/// (`?key=***`, a bare `?token` becomes `?***`) and any fragment masked. Text without
/// `://` is read as a path and query.
pub fn mask_url(url: &str) -> String {
    let (head, rest) = match url.find("://") {
        Some(i) => url.split_at(i + 3),
        None => ("", url),
    };
    let authority_end = if head.is_empty() {
        0
    } else {
        rest.find(['/', '?', '#']).unwrap_or(rest.len())
    };
    let (authority, tail) = rest.split_at(authority_end);
    let (tail, fragment) = match tail.find('#') {
        Some(i) => (&tail[..i], &tail[i + 1..]),
        None => (tail, ""),
    };
    let mut out = String::with_capacity(url.len());
    out.push_str(head);
    match authority.rfind('@') {
        Some(at) => {
            out.push_str(MASK);
            out.push_str(&authority[at..]);
        }
        None => out.push_str(authority),
    }
    match tail.split_once('?') {
        None => out.push_str(tail),
        Some((path, query)) => {
            out.push_str(path);
            out.push('?');
            let pairs: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((k, v)) if !v.is_empty() => format!("{k}={MASK}"),
                    Some((k, _)) => format!("{k}="),
                    None if pair.is_empty() => String::new(),
                    None => MASK.to_owned(),
                })
                .collect();
            out.push_str(&pairs.join("&"));
        }
    }
    if !fragment.is_empty() {
        out.push('#');
        out.push_str(MASK);
    }
    out
}

/// `text` with every `scheme://…` in it passed through [`mask_url`]; a URL ends at
/// whitespace, a quote, a backtick or an angle bracket.
fn mask_urls(text: &str) -> Cow<'_, str> {
    if !text.contains("://") {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let start = rest[..i]
            .char_indices()
            .rev()
            .find(|(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
            .map_or(0, |(p, c)| p + c.len_utf8());
        let end = rest[i..]
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '`' | '<' | '>'))
            .map_or(rest.len(), |e| i + e);
        out.push_str(&rest[..start]);
        out.push_str(&mask_url(&rest[start..end]));
        rest = &rest[end..];
    }
    out.push_str(rest);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn masks_known_values_and_credential_headers() {
        let r = Redactor::new(["supersecret".to_owned(), "abc".to_owned()]);
        assert_eq!(r.redact("Bearer supersecret!"), "Bearer ***!");
        assert_eq!(r.redact("abc"), "abc");
        assert_eq!(r.header("Authorization", "anything"), MASK);
        assert_eq!(r.header("X-Partner-Key", "anything"), MASK);
        assert_eq!(r.header("x-trace", "supersecret"), MASK);
        assert_eq!(r.header("x-trace", "t1"), "t1");
    }

    #[test]
    fn the_words_of_a_secret_are_masked_on_their_own() {
        let r = Redactor::new(["Bearer tok_4f3e2d1c".to_owned()]);
        assert_eq!(r.redact("sent Bearer tok_4f3e2d1c"), "sent ***");
        assert_eq!(
            r.redact("the CRM said tok_4f3e2d1c is revoked"),
            "the CRM said *** is revoked"
        );
        assert_eq!(
            r.redact("Bearer scheme"),
            "Bearer scheme",
            "the scheme is no secret"
        );
    }

    #[test]
    fn urls_lose_user_info_and_query_values() {
        let r = Redactor::new(["s3cr3t-path-token".to_owned()]);
        let cases = [
            (
                "https://api.example.com/v1/contacts",
                "https://api.example.com/v1/contacts",
            ),
            (
                "https://api.example.com/v1?api_key=abc&limit=5",
                "https://api.example.com/v1?api_key=***&limit=***",
            ),
            (
                "https://user:pw@db.example.com:5432/x",
                "https://***@db.example.com:5432/x",
            ),
            (
                "postgres://u:p@h/db?sslmode=require",
                "postgres://***@h/db?sslmode=***",
            ),
            ("https://h/a?token#frag", "https://h/a?***#***"),
            ("https://h/a?x=&y", "https://h/a?x=&***"),
            ("https://h/s3cr3t-path-token/x", "https://h/***/x"),
            ("/contacts?email=a@b.c", "/contacts?email=***"),
        ];
        for (url, want) in cases {
            assert_eq!(r.url(url), want, "{url}");
        }
    }

    #[test]
    fn urls_inside_text_are_cleaned() {
        let r = Redactor::default();
        assert_eq!(
            r.redact(
                "`https://x.example/a?key=k1` is not http(s); see <http://docs.example/?p=2> ok"
            ),
            "`https://x.example/a?key=***` is not http(s); see <http://docs.example/?p=***> ok"
        );
        assert_eq!(r.redact("no url here: a?b=c"), "no url here: a?b=c");
        assert_eq!(
            r.redact("é→https://ü@h/?q=1 tail"),
            "é→https://***@h/?q=*** tail"
        );
    }

    #[test]
    fn bodies_keep_their_urls_but_not_secrets() {
        let r = Redactor::new(["supersecret".to_owned()]);
        let mut v =
            serde_json::json!({"link": "https://meet.example/j/1?pwd=x", "k": ["supersecret"]});
        r.redact_json(&mut v);
        assert_eq!(
            v,
            serde_json::json!({"link": "https://meet.example/j/1?pwd=x", "k": ["***"]})
        );
    }

    #[test]
    fn debug_shows_no_secret() {
        let r = Redactor::new(["supersecret".to_owned()]);
        let text = format!("{r:?}");
        assert!(!text.contains("supersecret"), "{text}");
        assert!(text.contains("1 masked"), "{text}");
    }

    #[test]
    fn exposure_of_paths() {
        let cases = [
            ("tenants.acme.signing_secrets[0]", Exposure::Secret),
            ("tenants.acme.slatis_api_key", Exposure::Secret),
            ("tenants.acme.connectors.hs.access_token", Exposure::Secret),
            ("tenants.a.connectors.sf.auth.private_key", Exposure::Secret),
            (
                "tenants.a.connectors.sf.auth.client_secret",
                Exposure::Secret,
            ),
            ("tenants.a.connectors.api.sign.secret", Exposure::Secret),
            ("admin.token", Exposure::Secret),
            (
                "tenants.acme.connectors.api.headers.Authorization",
                Exposure::Secret,
            ),
            (
                "tenants.acme.connectors.api.headers.X-Partner-Token",
                Exposure::Secret,
            ),
            (
                "tenants.acme.connectors.api.headers.X-Custom",
                Exposure::Carrier,
            ),
            (
                "tenants.acme.routes.A[0].headers.x-api-key",
                Exposure::Secret,
            ),
            ("tenants.acme.connectors.api.base_url", Exposure::Carrier),
            (
                "tenants.acme.connectors.pd.oauth.token_url",
                Exposure::Carrier,
            ),
            ("storage.url", Exposure::Carrier),
            (
                "tenants.acme.routes.A[0].properties.api_key",
                Exposure::Carrier,
            ),
            (
                "tenants.a.connectors.sf.auth.private_key_file",
                Exposure::Public,
            ),
            ("tenants.a.connectors.sf.auth.client_id", Exposure::Public),
            (
                "tenants.keystone.connectors.tokens.timeout",
                Exposure::Public,
            ),
            (
                "tenants.acme.routes.A[0].properties.firstname",
                Exposure::Public,
            ),
            ("server.listen", Exposure::Public),
        ];
        for (path, want) in cases {
            assert_eq!(exposure(path), want, "{path}");
        }
    }

    proptest! {
        #[test]
        fn a_known_secret_never_survives(
            secret in "[A-Za-z0-9_-]{6,24}",
            before in "\\PC{0,20}",
            after in "\\PC{0,20}",
        ) {
            let r = Redactor::new([secret.clone()]);
            let text = format!("{before}{secret}{after}");
            let out = r.redact(&text);
            prop_assert!(!out.contains(&secret), "{out}");
            prop_assert!(!r.url(&text).contains(&secret));
        }

        #[test]
        fn no_query_value_survives(value in "[A-Za-z0-9_.~-]{1,24}", key in "[a-z_]{1,8}") {
            let url = format!("https://h.example/p?{key}={value}");
            let out = Redactor::default().redact(&url).into_owned();
            prop_assert_eq!(out, format!("https://h.example/p?{key}={MASK}"));
        }
    }
}
