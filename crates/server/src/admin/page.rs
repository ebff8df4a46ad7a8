//! The dashboard and sign-in pages, their files (`/admin/assets/…`), and the security
//! headers on every answer of the admin listener.
//!
//! Invariants:
//! - every answer carries [`CSP`] (no inline script or style, nothing from elsewhere, no
//!   framing), `X-Frame-Options: DENY`, `X-Content-Type-Options: nosniff`,
//!   `Referrer-Policy: same-origin` and `Cache-Control: no-store`;
//! - so the pages hold no inline `<script>`, `<style>` or `style=`: their code and styles
//!   are files compiled into the binary and served from `/admin/assets/…` (open: they hold
//!   no data);
//! - the only value put into a page is the session's CSRF token (hex) or a fixed message.

use axum::Router;
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

/// The Content-Security-Policy of every admin answer.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const DASHBOARD: &str = include_str!("assets/dashboard.html");
const LOGIN: &str = include_str!("assets/login.html");

/// The files pages load: path under `/admin/assets/`, content type, content.
const ASSETS: &[(&str, &str, &str)] = &[
    // the dashboard's scripts, in the order the page loads them
    ("util.js", JS, include_str!("assets/util.js")),
    ("plot.js", JS, include_str!("assets/plot.js")),
    ("detail.js", JS, include_str!("assets/detail.js")),
    ("lists.js", JS, include_str!("assets/lists.js")),
    ("dashboard.js", JS, include_str!("assets/dashboard.js")),
    ("dashboard.css", CSS, include_str!("assets/dashboard.css")),
    ("login.css", CSS, include_str!("assets/login.css")),
];
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// The dashboard, carrying the session's CSRF token (empty for a bearer-token visit,
/// which has no session to post with).
pub fn dashboard(csrf: &str) -> Html<String> {
    Html(DASHBOARD.replace("__CSRF_TOKEN__", csrf))
}

/// The sign-in page, with a fixed message (never request data).
pub fn login(message: Option<&'static str>) -> Html<String> {
    let note = message.map_or_else(String::new, |m| format!("<p class=\"message\">{m}</p>"));
    Html(LOGIN.replace("<!--message-->", &note))
}

/// `/admin/assets/…`.
pub fn assets<S: Clone + Send + Sync + 'static>() -> Router<S> {
    ASSETS
        .iter()
        .fold(Router::new(), |router, &(name, content_type, body)| {
            router.route(
                &format!("/admin/assets/{name}"),
                get(move || async move { ([(header::CONTENT_TYPE, content_type)], body) }),
            )
        })
}

/// Adds the security headers to an answer.
pub async fn secure(mut res: Response) -> Response {
    let headers = res.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        // not `no-referrer`: under it browsers send `Origin: null` with the sign-in form,
        // which `auth` must refuse as cross-origin; `same-origin` sends nothing elsewhere
        (header::REFERRER_POLICY, "same-origin"),
        (header::CACHE_CONTROL, "no-store"),
    ] {
        headers.insert::<HeaderName>(name, HeaderValue::from_static(value));
    }
    res.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_hold_no_inline_script_or_style() {
        for (name, page) in [("dashboard", DASHBOARD), ("login", LOGIN)] {
            let lower = page.to_ascii_lowercase();
            assert!(!lower.contains("<style"), "{name}");
            assert!(!lower.contains("style="), "{name}");
            for handler in [
                "onclick=",
                "onload=",
                "onsubmit=",
                "onerror=",
                "javascript:",
            ] {
                assert!(!lower.contains(handler), "{name}: no inline {handler}");
            }
            let scripts = lower.matches("<script").count();
            let external = lower.matches("<script src=\"/admin/assets/").count();
            assert_eq!(scripts, external, "{name}: every script is a file");
        }
        assert!(
            ASSETS.iter().all(|(_, _, body)| !body.contains("style=")
                && !body.contains("eval(")
                && !body.contains("innerHTML")
                && !body.contains("setAttribute('style'")),
            "nothing in the code writes style attributes the CSP would block, nor HTML"
        );
        for (name, ..) in ASSETS {
            assert!(
                name.ends_with(".css") || DASHBOARD.contains(&format!("/admin/assets/{name}\"")),
                "the dashboard loads {name}"
            );
        }
    }

    #[test]
    fn the_token_and_messages_are_put_in_place() {
        assert!(dashboard("abc123").0.contains("content=\"abc123\""));
        assert!(
            login(Some("Nope."))
                .0
                .contains("<p class=\"message\">Nope.</p>")
        );
        assert!(!login(None).0.contains("message\">"));
    }
}
