//! The serving layer in-process, around routers made for the test: the request deadline,
//! the body deadline whatever the handler makes of it, and the shutdown deadline.

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::ConnectInfo;
use axum::http::StatusCode;
use axum::routing::{get, post};
use slatis_server::serve::{self, Limits};
use slatis_testkit::raw::{self, Seen};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

fn limits() -> Limits {
    Limits {
        header_timeout: Duration::from_secs(5),
        body_timeout: Duration::from_millis(300),
        request_timeout: Duration::from_millis(600),
        shutdown_timeout: Duration::from_millis(500),
        max_connections: 16,
    }
}

/// A router with a handler that never answers, one that answers after 200 ms, one that
/// names the peer, and one that reads the body and turns any failure into a 400.
fn app() -> Router {
    Router::new()
        .route("/stuck", get(std::future::pending::<&'static str>))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(200)).await;
                "done"
            }),
        )
        .route(
            "/peer",
            get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.ip().to_string() }),
        )
        .route(
            "/read",
            post(|body: Body| async move {
                match to_bytes(body, 1 << 20).await {
                    Ok(_) => StatusCode::OK,
                    Err(_) => StatusCode::BAD_REQUEST,
                }
            }),
        )
}

async fn start(limits: Limits) -> (String, CancellationToken, JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let cancel = CancellationToken::new();
    let task = tokio::spawn(serve::serve(listener, app(), limits, None, cancel.clone()));
    (addr, cancel, task)
}

/// Sends `request` on a fresh connection; its answer.
async fn ask(addr: &str, request: &[u8]) -> raw::Answer {
    answer(raw::exchange(addr, request, Duration::from_secs(5)).await)
}

fn answer(seen: Seen) -> raw::Answer {
    match seen {
        Seen::Answer(a) => a,
        other => panic!("no answer: {other:?}"),
    }
}

#[tokio::test]
async fn each_request_knows_its_peer() {
    let (addr, _cancel, _task) = start(limits()).await;
    let a = ask(&addr, b"GET /peer HTTP/1.1\r\nhost: t\r\n\r\n").await;
    assert_eq!((a.status, a.body.as_slice()), (200, &b"127.0.0.1"[..]));
}

#[tokio::test]
async fn a_request_not_answered_in_time_gets_503_and_is_closed() {
    let (addr, _cancel, _task) = start(limits()).await;
    let a = ask(&addr, b"GET /stuck HTTP/1.1\r\nhost: t\r\n\r\n").await;
    assert_eq!(a.status, 503);
    assert_eq!(a.header("connection"), Some("close"));
    assert!(a.json()["error"].is_string(), "{:?}", a.json());
    assert!(
        a.after >= Duration::from_millis(500) && a.after < Duration::from_secs(3),
        "{:?}",
        a.after
    );
}

#[tokio::test]
async fn a_late_body_is_408_whatever_the_handler_made_of_it() {
    let (addr, _cancel, _task) = start(limits()).await;
    let mut s = raw::connect(&addr).await;
    raw::send(
        &mut s,
        b"POST /read HTTP/1.1\r\nhost: t\r\ncontent-length: 10\r\n\r\nabc",
    )
    .await;
    let a = answer(raw::receive(&mut s, Duration::from_secs(5)).await);
    assert_eq!(a.status, 408, "not the handler's 400");
    assert_eq!(a.header("connection"), Some("close"));
    assert_eq!(
        a.json(),
        serde_json::json!({"error": "request body not received in time"})
    );
    assert!(
        raw::closed_within(&mut s, Duration::from_secs(2))
            .await
            .is_some()
    );
    // a body that arrives in time is read as usual
    let a = ask(
        &addr,
        b"POST /read HTTP/1.1\r\nhost: t\r\ncontent-length: 3\r\n\r\nabc",
    )
    .await;
    assert_eq!(a.status, 200);
}

#[tokio::test]
async fn shutdown_lets_requests_finish_then_drops_what_is_left() {
    let (addr, cancel, task) = start(Limits {
        body_timeout: Duration::from_secs(10),
        request_timeout: Duration::from_secs(10),
        ..limits()
    })
    .await;
    let mut slow = raw::connect(&addr).await;
    raw::send(&mut slow, b"GET /slow HTTP/1.1\r\nhost: t\r\n\r\n").await;
    let mut stuck = raw::connect(&addr).await;
    raw::send(&mut stuck, b"GET /stuck HTTP/1.1\r\nhost: t\r\n\r\n").await;
    let mut idle = raw::connect(&addr).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let start = Instant::now();
    cancel.cancel();
    // the idle connection is closed at once, the request in flight is answered
    assert!(
        raw::closed_within(&mut idle, Duration::from_millis(300))
            .await
            .is_some()
    );
    let a = answer(raw::receive(&mut slow, Duration::from_secs(2)).await);
    assert_eq!(a.status, 200);
    assert_eq!(a.body, b"done");
    // the stuck one is dropped when shutdown_timeout (500 ms) has passed
    task.await.expect("serve ends");
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(450) && took < Duration::from_secs(2),
        "{took:?}"
    );
    assert!(matches!(
        raw::receive(&mut stuck, Duration::from_millis(500)).await,
        Seen::Closed(_)
    ));
    assert!(
        tokio::net::TcpStream::connect(&addr).await.is_err(),
        "no longer accepting"
    );
}
