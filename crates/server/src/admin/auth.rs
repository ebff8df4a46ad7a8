//! Who may use `/admin` and `/admin/api/…`: a bearer token (scripts) or a sign-in
//! session (the dashboard), and the sign-in and sign-out routes.
//!
//! Invariants:
//! - without `admin.token` the admin API is off (404); tokens are compared in constant time;
//! - a bearer request (`Authorization: Bearer <admin.token>`) needs nothing else: browsers
//!   never add that header by themselves, so it cannot be forged cross-site;
//! - a request authenticated by the session cookie that changes state (any method but
//!   GET, HEAD, OPTIONS) must carry the session's CSRF token in `X-CSRF-Token`, and its
//!   `Origin`, when present, must name the `Host` it was sent to; the sign-in form must
//!   come from the same origin too;
//! - every wrong token (sign-in form or bearer) counts in the [`Throttle`]; while it is
//!   exhausted every token check answers 429 with `Retry-After`.

use super::page;
use super::session::{self, Live, Sessions};
use super::throttle::Throttle;
use crate::Shared;
use axum::extract::{ConnectInfo, Form, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::json;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use subtle::ConstantTimeEq;

/// The header the dashboard sends its session's CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// What the guard keeps across requests.
pub struct Guard {
    /// The service.
    pub shared: Arc<Shared>,
    /// Signed-in browsers.
    pub sessions: Sessions,
    /// Failed token counts.
    pub throttle: Throttle,
}

/// The peer's address, when the listener recorded it.
pub struct ClientIp(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}

fn equal(given: &str, want: &str) -> bool {
    given.as_bytes().ct_eq(want.as_bytes()).into()
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({ "error": message }))).into_response()
}

fn off() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "the admin API is off: set admin.token",
    )
}

/// 429 with `Retry-After` (whole seconds, at least 1).
fn too_many(wait: Duration, body: Response) -> Response {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let mut res = body;
    *res.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    res.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
    res
}

/// Whether `Origin`, when the browser sent one, names the `Host` the request went to.
/// (The scheme is not compared: behind a TLS-terminating proxy the listener sees http.)
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    match (origin.to_str().ok().and_then(|o| o.split_once("://")), host) {
        (Some((scheme, authority)), Some(host)) => {
            matches!(scheme, "http" | "https") && authority.eq_ignore_ascii_case(host)
        }
        _ => false,
    }
}

fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The admin section of the current config, if the admin API is on.
fn token_of(shared: &Shared) -> Option<(String, Duration, bool)> {
    let config = shared.config();
    let admin = config.admin.as_ref()?;
    let token = admin.token.clone()?;
    Some((token, admin.session_ttl, admin.secure_cookie))
}

/// Middleware of every `/admin` and `/admin/api/…` route. A session it lets through is
/// in the request's extensions ([`Live`]) for the handlers.
pub async fn authorize(State(g): State<Arc<Guard>>, mut req: Request, next: Next) -> Response {
    let Some((token, _, secure)) = token_of(&g.shared) else {
        return off();
    };
    let ip = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    if let Some(auth) = req.headers().get(header::AUTHORIZATION) {
        let Some(given) = auth.to_str().ok().and_then(|a| a.strip_prefix("Bearer ")) else {
            return error(
                StatusCode::UNAUTHORIZED,
                "use Authorization: Bearer <admin.token>",
            );
        };
        if let Err(wait) = g.throttle.check(ip) {
            return too_many(
                wait,
                error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too many wrong admin tokens: try again later",
                ),
            );
        }
        if equal(given.trim(), &token) {
            return next.run(req).await;
        }
        g.throttle.failed(ip);
        return error(StatusCode::UNAUTHORIZED, "missing or wrong admin token");
    }
    let cookie = session::presented(req.headers());
    let Some(live) = cookie.and_then(|id| g.sessions.find(id, &token)) else {
        let mut res = if req.uri().path() == "/admin" {
            (StatusCode::UNAUTHORIZED, page::login(None)).into_response()
        } else {
            error(StatusCode::UNAUTHORIZED, "missing or wrong admin token")
        };
        if cookie.is_some()
            && let Ok(v) = HeaderValue::from_str(&session::cleared(secure))
        {
            res.headers_mut().insert(header::SET_COOKIE, v);
        }
        return res;
    };
    if changes_state(req.method()) {
        if !same_origin(req.headers()) {
            return error(StatusCode::FORBIDDEN, "cross-origin request refused");
        }
        let csrf = req.headers().get(CSRF_HEADER).and_then(|v| v.to_str().ok());
        if !csrf.is_some_and(|c| equal(c, &live.csrf)) {
            return error(
                StatusCode::FORBIDDEN,
                "missing or wrong X-CSRF-Token (reload the dashboard)",
            );
        }
    }
    req.extensions_mut().insert(live);
    next.run(req).await
}

/// The sign-in form.
#[derive(Deserialize)]
pub struct LoginForm {
    token: String,
}

/// `POST /admin/login`: a session cookie for the right token.
pub async fn login(
    State(g): State<Arc<Guard>>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let Some((token, ttl, secure)) = token_of(&g.shared) else {
        return off();
    };
    if !same_origin(&headers) {
        return error(StatusCode::FORBIDDEN, "cross-origin sign-in refused");
    }
    if let Err(wait) = g.throttle.check(ip) {
        let page = page::login(Some("Too many failed sign-ins: try again later."));
        return too_many(wait, page.into_response());
    }
    if !equal(&form.token, &token) {
        g.throttle.failed(ip);
        return (
            StatusCode::UNAUTHORIZED,
            page::login(Some("That is not the admin token.")),
        )
            .into_response();
    }
    let signed_in = g.sessions.start(&token, ttl);
    (
        [(
            header::SET_COOKIE,
            session::cookie(&signed_in.id, ttl, secure),
        )],
        Redirect::to("/admin"),
    )
        .into_response()
}

/// `POST /admin/logout`: ends the session (a guarded route, so it needs the CSRF token).
pub async fn logout(State(g): State<Arc<Guard>>, live: Option<axum::Extension<Live>>) -> Response {
    if let Some(axum::Extension(live)) = live {
        g.sessions.end(&live);
    }
    let secure = token_of(&g.shared).is_some_and(|(_, _, s)| s);
    (
        StatusCode::NO_CONTENT,
        [(header::SET_COOKIE, session::cleared(secure))],
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn origins() {
        assert!(same_origin(&headers(&[("host", "127.0.0.1:9090")])));
        assert!(same_origin(&headers(&[
            ("host", "127.0.0.1:9090"),
            ("origin", "http://127.0.0.1:9090")
        ])));
        assert!(same_origin(&headers(&[
            ("host", "Admin.Example.com"),
            ("origin", "https://admin.example.com")
        ])));
        for origin in [
            "http://evil.example",
            "http://127.0.0.1:9091",
            "null",
            "file://127.0.0.1:9090",
        ] {
            let mut h = headers(&[("host", "127.0.0.1:9090")]);
            h.insert(header::ORIGIN, HeaderValue::from_static(origin));
            assert!(!same_origin(&h), "{origin}");
        }
        assert!(!same_origin(&headers(&[("origin", "http://x")])), "no Host");
    }
}
