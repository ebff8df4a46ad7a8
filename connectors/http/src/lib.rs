//! The generic HTTP connector (`type: http`): any JSON or text API.
//!
//! Instance keys: `base_url`, static `headers` (values may use `${VAR}`), and an optional
//! `sign: {secret, header}` that signs each body it forwards the way Slatis signs its own
//! (`sha256=` + hex HMAC-SHA256). Step keys (`action: request`): `method`, `path`
//! (joined to `base_url`), `headers`, and either `json:` (a tree whose string leaves are
//! templates, so the body is always valid JSON) or `body:` with `content_type`.
//!
//! Replies: 2xx succeed (a JSON `id` in the answer becomes `{{steps.<id>.id}}`; a dry run
//! assumes `dry-run`, so a later step's path shows where it would go);
//! 408, 429, 5xx and timeouts are retried; other 4xx are permanent.
//!
//! Invariant: a request never leaves `base_url`, whatever the booking holds. `path` is a
//! path key ([`ConnectorFactory::path_keys`]): each `{{…}}` in it renders as one
//! percent-encoded segment (`../../admin?x=` arrives as `..%2F..%2Fadmin%3Fx%3D`), a value
//! that is empty, `.` or `..` fails the step, and `{{{…}}}` is refused at load; the text the
//! operator wrote keeps its slashes and query. Then, as a second line, the final URL is
//! parsed (dot segments resolved) and refused unless it keeps `base_url`'s scheme, host,
//! port and path prefix ([`slatis_core::url_path::within`]).

use async_trait::async_trait;
use reqwest::Method;
use reqwest::header::{HeaderName, HeaderValue};
use serde::Deserialize;
use serde_json::{Value, json};
use slatis_core::config::ConfigIssue;
use slatis_core::connector::{
    BuildContext, Connector, ConnectorFactory, DryRunReply, StepContext, StepOutput,
};
use slatis_core::step::{Action, RenderedStep, Step, Tree};
use slatis_core::template::Text;
use slatis_core::{DeliveryError, redact, signature, url_path};
use std::collections::BTreeMap;

/// `type: http` instance keys. (No `Debug`: it holds credentials.)
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpConfig {
    /// The API's base URL; each step's `path` is joined to it.
    base_url: String,
    /// Headers sent with every request (e.g. `Authorization: Bearer ${TOKEN}`).
    #[serde(default)]
    headers: BTreeMap<String, String>,
    /// Sign each body: `header: sha256=<hex HMAC-SHA256(secret, body)>`.
    #[serde(default)]
    sign: Option<SignConfig>,
}

/// `sign:` — how forwarded bodies are signed. (No `Debug`: it holds the key.)
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignConfig {
    /// The HMAC key.
    secret: String,
    /// The header that carries the signature.
    #[serde(default = "default_sign_header")]
    header: String,
}

fn default_sign_header() -> String {
    signature::HEADER.to_owned()
}

/// A built `type: http` instance. Credential header values (by the header's name) and
/// each body signature are marked sensitive, so dry-run records mask them; its `Debug`
/// masks every header value.
struct HttpConnector {
    /// `base_url` without its trailing `/`, as text each path is appended to.
    base_url: String,
    /// `base_url` parsed: every request URL must stay under it.
    base: reqwest::Url,
    headers: Vec<(HeaderName, HeaderValue)>,
    sign: Option<(Vec<u8>, HeaderName)>,
}

impl std::fmt::Debug for HttpConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(name, _)| (name.as_str(), redact::MASK))
            .collect();
        f.debug_struct("HttpConnector")
            .field("base_url", &redact::mask_url(&self.base_url))
            .field("headers", &headers)
            .field(
                "sign",
                &self.sign.as_ref().map(|(_, header)| (redact::MASK, header)),
            )
            .finish()
    }
}

const STEP_KEYS: &[&str] = &["method", "path", "headers", "json", "body", "content_type"];
/// `path` is rendered with each value one path segment.
const PATH_KEYS: &[&str] = &["path"];

fn build(cx: &BuildContext<'_>) -> Result<Box<dyn Connector>, Vec<ConfigIssue>> {
    let cfg: HttpConfig = cx.parse()?;
    let mut issues = Vec::new();
    issues.extend(cx.url_issue("base_url", &cfg.base_url));
    let mut headers = Vec::new();
    for (name, value) in &cfg.headers {
        match (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            (Ok(n), Ok(mut v)) => {
                v.set_sensitive(redact::is_credential_header(name));
                headers.push((n, v));
            }
            (Err(_), _) => {
                issues.push(cx.issue(&format!("headers.{name}"), "not a valid header name"))
            }
            (_, Err(_)) => {
                issues.push(cx.issue(&format!("headers.{name}"), "not a valid header value"))
            }
        }
    }
    let sign = match cfg.sign {
        None => None,
        Some(s) => match HeaderName::from_bytes(s.header.as_bytes()) {
            Ok(h) if !s.secret.is_empty() => Some((s.secret.into_bytes(), h)),
            Ok(_) => {
                issues.push(cx.issue("sign.secret", "must not be empty"));
                None
            }
            Err(_) => {
                issues.push(cx.issue("sign.header", "not a valid header name"));
                None
            }
        },
    };
    if !issues.is_empty() {
        return Err(issues);
    }
    let base = reqwest::Url::parse(&cfg.base_url)
        .map_err(|_| vec![cx.issue("base_url", "not an http(s) URL")])?;
    Ok(Box::new(HttpConnector {
        base_url: cfg.base_url.trim_end_matches('/').to_owned(),
        base,
        headers,
        sign,
    }))
}

inventory::submit! {
    ConnectorFactory {
        kind: "http",
        step_keys: STEP_KEYS,
        path_keys: PATH_KEYS,
        default_rate_limit: None,
        default_search_rate_limit: None,
        build,
    }
}

#[async_trait]
impl Connector for HttpConnector {
    fn check_step(&self, step: &Step) -> Vec<(String, String)> {
        let mut issues = Vec::new();
        if step.action != Action::Request {
            issues.push((
                "action".into(),
                format!(
                    "the http connector's only action is `request`, not `{}`",
                    step.action
                ),
            ));
        }
        for (key, present) in [
            ("object", step.object.is_some()),
            ("match", step.matcher.is_some()),
            ("properties", !step.properties.is_empty()),
            ("associate", !step.associate.is_empty()),
        ] {
            if present {
                issues.push((key.into(), format!("the http connector does not use `{key}`; describe the request with method, path, headers and json or body")));
            }
        }
        match step
            .extras
            .iter()
            .find(|(k, _)| k == "method")
            .map(|(_, t)| t)
        {
            None => issues.push((
                String::new(),
                "a request needs `method` (GET, POST, PUT, PATCH or DELETE)".into(),
            )),
            Some(Tree::Text(Text::Const(m))) if parse_method(m).is_none() => {
                issues.push((
                    "method".into(),
                    format!("`{m}` is not one of GET, POST, PUT, PATCH, DELETE"),
                ));
            }
            Some(_) => {}
        }
        if !step.has("path") {
            issues.push((
                String::new(),
                "a request needs `path` (joined to the instance's base_url)".into(),
            ));
        }
        if step.has("json") && step.has("body") {
            issues.push((
                "body".into(),
                "give either `json` or `body`, not both".into(),
            ));
        }
        if step.has("content_type") && !step.has("body") {
            issues.push((
                "content_type".into(),
                "`content_type` goes with `body` (a `json` body is application/json)".into(),
            ));
        }
        issues
    }

    async fn execute(
        &self,
        step: &RenderedStep,
        cx: &StepContext<'_>,
    ) -> Result<StepOutput, DeliveryError> {
        let method_text = step.extra_str("method").unwrap_or_default();
        let method = parse_method(method_text).ok_or_else(|| {
            DeliveryError::permanent(format!("`{method_text}` is not an HTTP method"))
        })?;
        let path = step.extra_str("path").unwrap_or_default();
        if path.contains("://") {
            return Err(DeliveryError::permanent(
                "`path` must be a path under base_url, not a full URL",
            ));
        }
        let url = self.url(path)?;
        let mut request = cx.http.request(method, url.as_str());
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        if let Some(Value::Object(headers)) = step.extra("headers") {
            for (name, value) in headers {
                let value = match value {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                    DeliveryError::permanent(format!("`{name}` is not a valid header name"))
                })?;
                let value = HeaderValue::from_str(&value).map_err(|_| {
                    DeliveryError::permanent(format!("header `{name}` renders to an invalid value"))
                })?;
                request = request.header(name, value);
            }
        }
        let body: Option<(Vec<u8>, String)> = match (step.extra("json"), step.extra("body")) {
            (Some(json), _) => Some((json.to_string().into_bytes(), "application/json".to_owned())),
            (None, Some(body)) => Some((
                match body {
                    Value::String(s) => s.clone().into_bytes(),
                    other => other.to_string().into_bytes(),
                },
                step.extra_str("content_type")
                    .unwrap_or("text/plain; charset=utf-8")
                    .to_owned(),
            )),
            (None, None) => None,
        };
        if let Some((bytes, content_type)) = body {
            if let Some((secret, header)) = &self.sign {
                let mut value =
                    HeaderValue::from_str(&signature::sign(secret, &bytes)).map_err(|_| {
                        DeliveryError::permanent("the body signature is not a header value")
                    })?;
                value.set_sensitive(true);
                request = request.header(header, value);
            }
            request = request
                .header(reqwest::header::CONTENT_TYPE, content_type)
                .body(bytes);
        }
        let reply = cx
            .http
            .send(request, DryRunReply::json(json!({"id": "dry-run"})))
            .await?
            .check(|r| r.excerpt(300))?;
        let id = match reply.json().get("id") {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        Ok(StepOutput {
            id,
            created: reply.status == reqwest::StatusCode::CREATED,
        })
    }
}

impl HttpConnector {
    /// `path` (already rendered, each value one segment) joined to `base_url`, if the
    /// result stays under it.
    fn url(&self, path: &str) -> Result<reqwest::Url, DeliveryError> {
        let text = format!("{}/{}", self.base_url, path.trim_start_matches('/'));
        let url = reqwest::Url::parse(&text).map_err(|e| {
            DeliveryError::permanent(format!("`path` does not make a valid URL: {e}"))
        })?;
        if url_path::within(&self.base, &url) {
            Ok(url)
        } else {
            Err(DeliveryError::permanent(format!(
                "`path` leads to {}, outside base_url's path {}: refused",
                url.path(),
                self.base.path()
            )))
        }
    }
}

fn parse_method(m: &str) -> Option<Method> {
    match m.trim().to_ascii_uppercase().as_str() {
        "GET" => Some(Method::GET),
        "POST" => Some(Method::POST),
        "PUT" => Some(Method::PUT),
        "PATCH" => Some(Method::PATCH),
        "DELETE" => Some(Method::DELETE),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_no_credential() {
        let mut auth = HeaderValue::from_static("Bearer tok_debug_secret");
        auth.set_sensitive(true);
        let url = "https://u:pw_debug_secret@api.example.com/v1?key=key_debug_secret";
        let c = HttpConnector {
            base_url: url.into(),
            base: reqwest::Url::parse(url).expect("url"),
            headers: vec![(HeaderName::from_static("authorization"), auth)],
            sign: Some((
                b"sign_debug_secret".to_vec(),
                HeaderName::from_static("x-sig"),
            )),
        };
        let text = format!("{c:?}");
        assert!(!text.contains("debug_secret"), "{text}");
        assert!(
            text.contains("api.example.com") && text.contains("authorization"),
            "{text}"
        );
    }
}
