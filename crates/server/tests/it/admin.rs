//! The admin router: auth (bearer, sessions, CSRF, Origin, throttle), security headers,
//! listings, replay, reload, metrics.

use crate::support::{call, signed, world, world_with_admin};
use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use axum::response::Response;
use slatis_server::admin::{COOKIE, CSP, CSRF_HEADER, THROTTLE_PER_CLIENT, router};
use slatis_store::Outcome;
use slatis_testkit::fixtures::BOOKING_CREATED;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

const TOKEN: &str = "admin-token-for-tests-0123456789abcdef";

fn get(path: &str, token: Option<&str>) -> Request<Body> {
    let mut b = Request::get(path);
    if let Some(t) = token {
        b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    b.body(Body::empty()).expect("req")
}

fn post(path: &str) -> Request<Body> {
    Request::post(path)
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .body(Body::empty())
        .expect("req")
}

#[tokio::test]
async fn without_a_token_the_admin_api_is_off_but_metrics_and_health_answer() {
    let w = world("adm0", "").await;
    assert_eq!(
        call(
            router(Arc::clone(&w.shared)),
            get("/admin/api/stats", Some("x"))
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(router(Arc::clone(&w.shared)), get("/admin", None))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    for path in ["/metrics", "/healthz", "/readyz"] {
        let r = router(Arc::clone(&w.shared))
            .oneshot(get(path, None))
            .await
            .expect("oneshot");
        assert_eq!(r.status(), StatusCode::OK, "{path}");
    }
}

#[tokio::test]
async fn the_token_is_required_for_the_api() {
    let w = world("adm1", TOKEN).await;
    assert_eq!(
        call(router(Arc::clone(&w.shared)), get("/admin/api/stats", None))
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        call(
            router(Arc::clone(&w.shared)),
            get("/admin/api/stats", Some("wrong"))
        )
        .await
        .0,
        StatusCode::UNAUTHORIZED
    );
    let (status, stats) = call(
        router(Arc::clone(&w.shared)),
        get("/admin/api/stats", Some(TOKEN)),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(stats["tenants"][0]["name"], "adm1");
    let page = router(Arc::clone(&w.shared))
        .oneshot(get("/admin", None))
        .await
        .expect("oneshot");
    assert_eq!(page.status(), StatusCode::UNAUTHORIZED);
    assert!(text(page).await.contains("action=\"/admin/login\""));
}

async fn send(app: &Router, req: Request<Body>) -> Response {
    app.clone().oneshot(req).await.expect("oneshot")
}

async fn text(res: Response) -> String {
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .expect("body");
    String::from_utf8_lossy(&bytes).into_owned()
}

fn from(ip: [u8; 4], mut req: Request<Body>) -> Request<Body> {
    req.extensions_mut()
        .insert(ConnectInfo(SocketAddr::from((ip, 40_000))));
    req
}

fn login_form(token: &str) -> Request<Body> {
    Request::post("/admin/login")
        .header(header::HOST, "127.0.0.1:9090")
        .header(header::ORIGIN, "http://127.0.0.1:9090")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(format!("token={token}")))
        .expect("req")
}

fn set_cookie(res: &Response) -> String {
    res.headers()[header::SET_COOKIE]
        .to_str()
        .expect("cookie")
        .to_owned()
}

/// Signs in; returns the `name=value` cookie pair and the whole `Set-Cookie`.
async fn sign_in(app: &Router) -> (String, String) {
    let res = send(app, login_form(TOKEN)).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let whole = set_cookie(&res);
    let pair = whole.split(';').next().expect("pair").to_owned();
    (pair, whole)
}

fn with_cookie(cookie: &str, builder: axum::http::request::Builder) -> Request<Body> {
    builder
        .header(header::COOKIE, cookie)
        .header(header::HOST, "127.0.0.1:9090")
        .body(Body::empty())
        .expect("req")
}

/// The CSRF token the dashboard page carries for this session.
async fn csrf_of(app: &Router, cookie: &str) -> String {
    let res = send(app, with_cookie(cookie, Request::get("/admin"))).await;
    assert_eq!(res.status(), StatusCode::OK);
    let html = text(res).await;
    assert!(html.contains("dead letters"));
    let needle = "name=\"csrf-token\" content=\"";
    let start = html.find(needle).expect("meta") + needle.len();
    let token: String = html[start..].chars().take_while(|c| *c != '"').collect();
    assert_eq!(token.len(), 64, "{token}");
    token
}

#[tokio::test]
async fn the_dashboard_signs_in_with_a_session_cookie_that_never_holds_the_token() {
    let w = world("adm1s", TOKEN).await;
    let app = router(Arc::clone(&w.shared));
    let (pair, whole) = sign_in(&app).await;
    let id = pair
        .strip_prefix(&format!("{COOKIE}="))
        .expect("our cookie");
    assert_eq!(id.len(), 64, "{whole}");
    assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
    assert!(!whole.contains(TOKEN), "{whole}");
    for attr in [
        "HttpOnly",
        "SameSite=Strict",
        "Path=/admin",
        "Max-Age=43200",
    ] {
        assert!(whole.split("; ").any(|a| a == attr), "{attr} in {whole}");
    }
    assert!(!whole.contains("Secure"), "off by default: {whole}");
    let (again, _) = sign_in(&app).await;
    assert_ne!(again, pair, "each sign-in is a new random id");
    let csrf = csrf_of(&app, &pair).await;
    assert_ne!(csrf, id);
    let res = send(&app, with_cookie(&pair, Request::get("/admin/api/stats"))).await;
    assert_eq!(res.status(), StatusCode::OK);
    let page = text(send(&app, with_cookie(&pair, Request::get("/admin"))).await).await;
    assert!(!page.contains(TOKEN));
    // a cookie that names no session is refused and cleared
    let res = send(
        &app,
        with_cookie(
            &format!("{COOKIE}={TOKEN}"),
            Request::get("/admin/api/stats"),
        ),
    )
    .await;
    assert_eq!(
        res.status(),
        StatusCode::UNAUTHORIZED,
        "the token is no cookie"
    );
    assert!(set_cookie(&res).contains("Max-Age=0"));
}

#[tokio::test]
async fn secure_cookie_marks_the_cookie_secure() {
    let w = world_with_admin("adm1t", &format!("token: {TOKEN}, secure_cookie: true")).await;
    let (_, whole) = sign_in(&router(Arc::clone(&w.shared))).await;
    assert!(whole.ends_with("; Secure"), "{whole}");
}

#[tokio::test]
async fn a_session_ends_at_its_expiry_at_sign_out_and_when_the_token_changes() {
    let w = world_with_admin("adm1e", &format!("token: {TOKEN}, session_ttl: 1s")).await;
    let app = router(Arc::clone(&w.shared));
    let (pair, whole) = sign_in(&app).await;
    assert!(whole.contains("Max-Age=1"), "{whole}");
    let stats = || with_cookie(&pair, Request::get("/admin/api/stats"));
    assert_eq!(send(&app, stats()).await.status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        send(&app, stats()).await.status(),
        StatusCode::UNAUTHORIZED,
        "expired"
    );

    let w = world("adm1o", TOKEN).await;
    let app = router(Arc::clone(&w.shared));
    let (pair, _) = sign_in(&app).await;
    let csrf = csrf_of(&app, &pair).await;
    let mut out = with_cookie(&pair, Request::post("/admin/logout"));
    out.headers_mut()
        .insert(CSRF_HEADER, csrf.parse().expect("header"));
    let res = send(&app, out).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert!(set_cookie(&res).contains("Max-Age=0"));
    let stats = with_cookie(&pair, Request::get("/admin/api/stats"));
    assert_eq!(send(&app, stats).await.status(), StatusCode::UNAUTHORIZED);

    let (pair, _) = sign_in(&app).await;
    let path = w.dir.path().join("config.yaml");
    let rotated = std::fs::read_to_string(&path)
        .expect("read")
        .replace(TOKEN, "rotated-admin-token-0123456789abcdef");
    std::fs::write(&path, rotated).expect("write");
    let (status, answer) = call(app.clone(), post("/admin/api/reload")).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let stats = with_cookie(&pair, Request::get("/admin/api/stats"));
    assert_eq!(
        send(&app, stats).await.status(),
        StatusCode::UNAUTHORIZED,
        "a rotated token signs every browser out"
    );
}

#[tokio::test]
async fn cookie_requests_that_change_state_need_the_csrf_token_and_their_own_origin() {
    let w = world("adm1c", TOKEN).await;
    let app = router(Arc::clone(&w.shared));
    let (pair, _) = sign_in(&app).await;
    let csrf = csrf_of(&app, &pair).await;
    let reload = |csrf: Option<&str>, origin: Option<&str>| {
        let mut b = Request::post("/admin/api/dead-letters/replay");
        if let Some(c) = csrf {
            b = b.header(CSRF_HEADER, c);
        }
        if let Some(o) = origin {
            b = b.header(header::ORIGIN, o);
        }
        with_cookie(&pair, b)
    };
    let cases = [
        (None, None, StatusCode::FORBIDDEN, "no CSRF token"),
        (
            Some("0".repeat(64)),
            None,
            StatusCode::FORBIDDEN,
            "a wrong one",
        ),
        (
            Some(csrf.clone()),
            Some("http://evil.example"),
            StatusCode::FORBIDDEN,
            "another origin",
        ),
        (
            Some(csrf.clone()),
            Some("null"),
            StatusCode::FORBIDDEN,
            "an opaque origin",
        ),
        (
            Some(csrf.clone()),
            Some("http://127.0.0.1:9090"),
            StatusCode::OK,
            "same origin",
        ),
        (Some(csrf.clone()), None, StatusCode::OK, "no Origin sent"),
    ];
    for (token, origin, want, what) in cases {
        let res = send(&app, reload(token.as_deref(), origin)).await;
        assert_eq!(res.status(), want, "{what}");
    }
    // a bearer call needs none of it (browsers never send that header by themselves)
    assert_eq!(
        call(app.clone(), post("/admin/api/dead-letters/replay"))
            .await
            .0,
        StatusCode::OK
    );
    // and a sign-in form posted from another site is refused
    let mut form = login_form(TOKEN);
    form.headers_mut().insert(
        header::ORIGIN,
        "http://evil.example".parse().expect("header"),
    );
    let res = send(&app, form).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(!res.headers().contains_key(header::SET_COOKIE));
}

#[tokio::test]
async fn wrong_tokens_are_throttled_per_client() {
    let w = world("adm1r", TOKEN).await;
    let app = router(Arc::clone(&w.shared));
    let (a, b, c) = ([192, 0, 2, 1], [192, 0, 2, 2], [192, 0, 2, 3]);
    for _ in 0..THROTTLE_PER_CLIENT {
        let res = send(&app, from(a, login_form("not-the-admin-token"))).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    for token in ["not-the-admin-token", TOKEN] {
        let res = send(&app, from(a, login_form(token))).await;
        assert_eq!(
            res.status(),
            StatusCode::TOO_MANY_REQUESTS,
            "right or wrong, no more guesses"
        );
        let wait: u64 = res.headers()[header::RETRY_AFTER]
            .to_str()
            .expect("text")
            .parse()
            .expect("seconds");
        assert!((1..=600).contains(&wait), "{wait}");
    }
    let res = send(&app, from(b, login_form(TOKEN))).await;
    assert_eq!(
        res.status(),
        StatusCode::SEE_OTHER,
        "another client signs in"
    );
    for _ in 0..THROTTLE_PER_CLIENT {
        let res = send(&app, from(c, get("/admin/api/stats", Some("wrong")))).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    let res = send(&app, from(c, get("/admin/api/stats", Some(TOKEN)))).await;
    assert_eq!(
        res.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "bearer guesses count too"
    );
    assert!(res.headers().contains_key(header::RETRY_AFTER));
}

#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let w = world("adm1h", TOKEN).await;
    let app = router(Arc::clone(&w.shared));
    let requests = [
        get("/admin", None),
        get("/admin/api/stats", Some(TOKEN)),
        get("/admin/api/stats", None),
        get("/admin/assets/dashboard.js", None),
        get("/metrics", None),
        get("/healthz", None),
        login_form("wrong"),
    ];
    for req in requests {
        let path = req.uri().path().to_owned();
        let res = send(&app, req).await;
        let h = res.headers();
        assert_eq!(h[header::CONTENT_SECURITY_POLICY], CSP, "{path}");
        assert_eq!(h[header::X_FRAME_OPTIONS], "DENY", "{path}");
        assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{path}");
        assert_eq!(h[header::REFERRER_POLICY], "same-origin", "{path}");
    }
    assert!(CSP.contains("frame-ancestors 'none'") && CSP.contains("script-src 'self'"));
}

#[tokio::test]
async fn the_pages_load_their_code_and_styles_from_admin_routes() {
    let w = world("adm1a", TOKEN).await;
    let app = router(Arc::clone(&w.shared));
    let (pair, _) = sign_in(&app).await;
    let dashboard = text(send(&app, with_cookie(&pair, Request::get("/admin"))).await).await;
    let login = text(send(&app, get("/admin", None)).await).await;
    const SCRIPTS: [&str; 5] = [
        "/admin/assets/util.js",
        "/admin/assets/plot.js",
        "/admin/assets/detail.js",
        "/admin/assets/lists.js",
        "/admin/assets/dashboard.js",
    ];
    let scripts = SCRIPTS.map(|s| (s, "text/javascript"));
    for (asset, content_type) in scripts.into_iter().chain([
        ("/admin/assets/dashboard.css", "text/css"),
        ("/admin/assets/login.css", "text/css"),
    ]) {
        assert!(
            dashboard.contains(asset) || login.contains(asset),
            "{asset} is used"
        );
        let res = send(&app, get(asset, None)).await;
        assert_eq!(res.status(), StatusCode::OK, "{asset}");
        assert!(
            res.headers()[header::CONTENT_TYPE]
                .to_str()
                .expect("text")
                .starts_with(content_type),
            "{asset}"
        );
    }
    let mut js = String::new();
    for script in SCRIPTS {
        js += &text(send(&app, get(script, None)).await).await;
    }
    for call in ["'/admin/api/' + path", "X-CSRF-Token", "/admin/logout"] {
        assert!(js.contains(call), "the dashboard code uses {call}");
    }
}

#[tokio::test]
async fn jobs_dead_letters_and_replay() {
    let w = world("adm2", TOKEN).await;
    let (_, answer) = call(
        slatis_server::ingress::router(Arc::clone(&w.shared)),
        signed("/webhooks/adm2", BOOKING_CREATED),
    )
    .await;
    let event_id = answer["event_id"].as_str().expect("id").to_owned();
    // dead-letter the job by hand
    let job = crate::support::run_all(&w.shared, Outcome::Dead).await[0];
    let (status, list) = call(
        router(Arc::clone(&w.shared)),
        get(&format!("/admin/api/jobs?event_id={event_id}"), Some(TOKEN)),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["jobs"][0]["status"], "dead");
    let (_, dead) = call(
        router(Arc::clone(&w.shared)),
        get("/admin/api/dead-letters", Some(TOKEN)),
    )
    .await;
    assert_eq!(dead["jobs"].as_array().map(Vec::len), Some(1));
    let (status, detail) = call(
        router(Arc::clone(&w.shared)),
        get(&format!("/admin/api/jobs/{job}"), Some(TOKEN)),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(detail["attempts_log"][0]["error"], "HTTP 400: no");
    assert_eq!(detail["event"]["data"]["id"], "bkg_01HZX4M2Q8");
    assert_eq!(
        call(
            router(Arc::clone(&w.shared)),
            get("/admin/api/jobs/999", Some(TOKEN))
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(
            router(Arc::clone(&w.shared)),
            get("/admin/api/jobs?status=weird", Some(TOKEN))
        )
        .await
        .0,
        StatusCode::BAD_REQUEST
    );
    let (status, replayed) = call(
        router(Arc::clone(&w.shared)),
        post(&format!("/admin/api/dead-letters/{job}/replay")),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(replayed["replayed"], serde_json::json!([job]));
    assert_eq!(replayed["count"], 1);
    let (_, events) = call(
        router(Arc::clone(&w.shared)),
        get("/admin/api/events", Some(TOKEN)),
    )
    .await;
    assert_eq!(events["events"][0]["id"], event_id);
}

#[tokio::test]
async fn reload_takes_a_valid_file_and_keeps_the_running_config_otherwise() {
    let w = world("adm3", TOKEN).await;
    let path = w.dir.path().join("config.yaml");
    let good = std::fs::read_to_string(&path)
        .expect("read")
        .replace("  adm3:", "  adm3renamed:");
    std::fs::write(&path, &good).expect("write");
    let (status, answer) = call(router(Arc::clone(&w.shared)), post("/admin/api/reload")).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert!(w.shared.config().tenants.contains_key("adm3renamed"));
    std::fs::write(&path, good.replace("type: script", "type: nothing")).expect("write");
    let (status, answer) = call(router(Arc::clone(&w.shared)), post("/admin/api/reload")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        answer["errors"][0]
            .as_str()
            .is_some_and(|e| e.contains("connector type `nothing`")),
        "{answer}"
    );
    assert!(
        w.shared.config().tenants.contains_key("adm3renamed"),
        "the running config stays"
    );
}
