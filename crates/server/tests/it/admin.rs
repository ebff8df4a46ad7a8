//! The admin router: auth, listings, replay, reload, metrics.

use crate::support::{call, signed, world};
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use slatis_server::admin::router;
use slatis_store::{ClaimRequest, Finish, Outcome};
use slatis_testkit::fixtures::BOOKING_CREATED;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

const TOKEN: &str = "admin-token-for-tests";

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
async fn the_token_is_required_and_the_dashboard_signs_in_with_a_cookie() {
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
    // the browser flow: a login page, a form post, a cookie
    let page = router(Arc::clone(&w.shared))
        .oneshot(get("/admin", None))
        .await
        .expect("oneshot");
    assert_eq!(page.status(), StatusCode::UNAUTHORIZED);
    let login = Request::post("/admin/login")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(format!("token={TOKEN}")))
        .expect("req");
    let r = router(Arc::clone(&w.shared))
        .oneshot(login)
        .await
        .expect("oneshot");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let cookie = r.headers()[header::SET_COOKIE]
        .to_str()
        .expect("cookie")
        .split(';')
        .next()
        .expect("pair")
        .to_owned();
    assert!(
        r.headers()[header::SET_COOKIE]
            .to_str()
            .expect("cookie")
            .contains("HttpOnly")
    );
    let dash = Request::get("/admin")
        .header(header::COOKIE, cookie)
        .body(Body::empty())
        .expect("req");
    let r = router(Arc::clone(&w.shared))
        .oneshot(dash)
        .await
        .expect("oneshot");
    assert_eq!(r.status(), StatusCode::OK);
    let html = axum::body::to_bytes(r.into_body(), 1 << 20)
        .await
        .expect("body");
    assert!(String::from_utf8_lossy(&html).contains("dead letters"));
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
    let job = w
        .shared
        .store
        .claim(ClaimRequest {
            worker: "t".into(),
            limit: 1,
            lease: Duration::from_secs(60),
            now: chrono::Utc::now(),
            room: HashMap::new(),
            default_room: 1,
        })
        .await
        .expect("claim")
        .remove(0);
    let now = chrono::Utc::now();
    w.shared
        .store
        .finish(Finish {
            job: job.id,
            worker: "t".into(),
            outcome: Outcome::Dead,
            steps_done: 0,
            step_results: serde_json::json!({}),
            failed_step: Some(0),
            error: Some("HTTP 400: no".into()),
            dry_run: None,
            started_at: now,
            finished_at: now,
        })
        .await
        .expect("finish");
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
        get(&format!("/admin/api/jobs/{}", job.id), Some(TOKEN)),
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
        post(&format!("/admin/api/dead-letters/{}/replay", job.id)),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(replayed["replayed"], serde_json::json!([job.id]));
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
