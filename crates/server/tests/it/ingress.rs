//! The ingress router in-process: what is stored for each answer, and 503 when storage is gone.

use crate::support::{call, signed, world};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use slatis_server::ingress::router;
use slatis_store::JobQuery;
use slatis_testkit::fixtures::{BOOKING_CREATED, booking};
use std::sync::Arc;

#[tokio::test]
async fn an_accepted_event_is_stored_with_one_job_per_routed_instance() {
    let w = world("ing1", "").await;
    let (status, answer) = call(
        router(Arc::clone(&w.shared)),
        signed("/webhooks/ing1", BOOKING_CREATED),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let jobs = w
        .shared
        .store
        .jobs(&JobQuery::default())
        .await
        .expect("jobs");
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].event_id, answer["event_id"].as_str().expect("id"));
    assert_eq!(jobs[0].booking_id.as_deref(), Some("bkg_01HZX4M2Q8"));
    // unrouted: stored, no job
    let (status, answer) = call(
        router(Arc::clone(&w.shared)),
        signed(
            "/webhooks/ing1",
            &booking("BOOKING_NO_SHOW", "b2", "A B", "a@b.c"),
        ),
    )
    .await;
    assert_eq!(
        (status, answer["routed"].as_u64()),
        (StatusCode::OK, Some(0))
    );
    assert_eq!(
        w.shared
            .store
            .events(&slatis_store::EventQuery {
                limit: 10,
                ..Default::default()
            })
            .await
            .expect("events")
            .len(),
        2
    );
    assert_eq!(
        w.shared
            .store
            .jobs(&JobQuery::default())
            .await
            .expect("jobs")
            .len(),
        1
    );
}

#[tokio::test]
async fn refused_requests_store_nothing() {
    let w = world("ing2", "").await;
    let big = format!(
        r#"{{"event":"BOOKING_CREATED","x":"{}"}}"#,
        "y".repeat(3000)
    );
    let bad = Request::post("/webhooks/ing2")
        .header("x-slatis-signature", "sha256=00")
        .body(Body::from(BOOKING_CREATED))
        .expect("req");
    for (req, want) in [
        (
            signed("/webhooks/ing2", &big),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (bad, StatusCode::UNAUTHORIZED),
        (
            signed("/webhooks/other", BOOKING_CREATED),
            StatusCode::UNAUTHORIZED,
        ),
        (
            signed("/webhooks/ing2", "{not json"),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        assert_eq!(call(router(Arc::clone(&w.shared)), req).await.0, want);
    }
    assert!(
        w.shared
            .store
            .events(&slatis_store::EventQuery {
                limit: 10,
                ..Default::default()
            })
            .await
            .expect("events")
            .is_empty()
    );
}

#[tokio::test]
async fn storage_unavailable_is_a_503_never_a_2xx() {
    let w = world("ing3", "").await;
    w.shared.store.close().await;
    let (status, answer) = call(
        router(Arc::clone(&w.shared)),
        signed("/webhooks/ing3", BOOKING_CREATED),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer["error"], "storage unavailable, retry later");
    let (status, _) = call(
        router(Arc::clone(&w.shared)),
        Request::get("/readyz").body(Body::empty()).expect("req"),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
}
