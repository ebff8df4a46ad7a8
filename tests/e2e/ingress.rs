//! DESIGN §4: every answer of `POST /webhooks/{tenant}`, and the signature vectors.

use crate::support::{QUICK, SECRET, Setup, post};
use serde_json::json;
use slatis_testkit::fixtures::{self, BOOKING_CREATED};
use slatis_testkit::mock::MockHttp;
use slatis_testkit::signer::{HEADER, sign};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_follows_the_contract() {
    let dest = MockHttp::start().await;
    let setup = Setup::new(&dest.url(), QUICK);
    let server = setup.start();
    let client = reqwest::Client::new();
    let url = server.webhook("acme");

    // unknown tenant, bad signature, missing signature: one indistinguishable answer
    let unknown = client
        .post(server.webhook("nobody"))
        .header(HEADER, sign(SECRET.as_bytes(), BOOKING_CREATED.as_bytes()))
        .body(BOOKING_CREATED)
        .send()
        .await
        .expect("post");
    let bad = client
        .post(&url)
        .header(HEADER, sign(b"wrong", BOOKING_CREATED.as_bytes()))
        .body(BOOKING_CREATED)
        .send()
        .await
        .expect("post");
    let missing = client
        .post(&url)
        .body(BOOKING_CREATED)
        .send()
        .await
        .expect("post");
    let garbage = client
        .post(&url)
        .header(HEADER, "sha256=nothex")
        .body(BOOKING_CREATED)
        .send()
        .await
        .expect("post");
    for r in [unknown, bad, missing, garbage] {
        assert_eq!(r.status(), 401);
        assert_eq!(
            r.json::<serde_json::Value>().await.expect("json"),
            json!({"error": "invalid signature"})
        );
    }

    // signed but not an event
    for body in ["not json", r#"{"data":{}}"#, r#"{"event":42}"#, "[]"] {
        let (status, answer) = post(&url, body).await;
        assert_eq!(status, 400, "{body}");
        assert!(answer["error"].is_string(), "{answer}");
    }

    // over max_body_bytes (4096 in the test config), with or without a content-length
    let big = format!(
        r#"{{"event":"BOOKING_CREATED","pad":"{}"}}"#,
        "x".repeat(5000)
    );
    assert_eq!(post(&url, &big).await.0, 413);
    let stream = futures_stream(big.clone());
    let r = client
        .post(&url)
        .header(HEADER, sign(SECRET.as_bytes(), big.as_bytes()))
        .body(stream)
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 413, "a chunked body over the limit");

    // accepted, then the same body again is a duplicate
    let (status, first) = post(&url, BOOKING_CREATED).await;
    assert_eq!(status, 200);
    assert_eq!(first["received"], true);
    assert_eq!(first["routed"], 1);
    let event_id = first["event_id"].as_str().expect("event_id").to_owned();
    assert!(event_id.starts_with("evt_"));
    let (status, dup) = post(&url, BOOKING_CREATED).await;
    assert_eq!(status, 200);
    assert_eq!(
        dup,
        json!({"received": true, "duplicate": true, "event_id": event_id})
    );

    // an event type with no route is stored, not queued
    let completed = fixtures::booking(
        "BOOKING_COMPLETED",
        "bkg_done",
        "Ada Lovelace",
        "ada@example.com",
    );
    let (status, unrouted) = post(&url, &completed).await;
    assert_eq!(status, 200);
    assert_eq!(unrouted["routed"], 0);

    for path in ["/healthz", "/readyz"] {
        assert_eq!(
            client
                .get(format!("{}{path}", server.url))
                .send()
                .await
                .expect("get")
                .status(),
            200,
            "{path}"
        );
    }
}

fn futures_stream(body: String) -> reqwest::Body {
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = body
        .into_bytes()
        .chunks(1000)
        .map(|c| Ok(c.to_vec()))
        .collect();
    reqwest::Body::wrap_stream(futures_util::stream::iter(chunks))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_signature_vector_is_accepted_and_any_change_refused() {
    let dest = MockHttp::start().await;
    let setup = Setup::new(&dest.url(), QUICK);
    let server = setup.start();
    let client = reqwest::Client::new();
    let vectors = fixtures::signature_vectors();
    assert_eq!(vectors.len(), 7);
    for v in &vectors {
        assert_eq!(v.secret, SECRET);
        let body = v.body();
        let name = v
            .file
            .clone()
            .or_else(|| v.name.clone())
            .unwrap_or_default();
        let send = |sig: String| {
            client
                .post(server.webhook("acme"))
                .header(HEADER, sig)
                .body(body.clone())
                .send()
        };
        let status = send(v.signature.clone())
            .await
            .expect("post")
            .status()
            .as_u16();
        // the empty body is correctly signed but is not an event; a fixture whose event
        // time is older than storage.retention (7d) is refused as a possible replay
        let stale = slatis_core::Envelope::parse(&body)
            .ok()
            .and_then(|e| e.timestamp().ok().flatten())
            .is_some_and(|t| t < chrono::Utc::now() - chrono::Duration::days(7));
        let want = if body.is_empty() || stale { 400 } else { 200 };
        assert_eq!(status, want, "vector {name}");
        let upper = format!("sha256={}", v.signature["sha256=".len()..].to_uppercase());
        assert_eq!(
            send(upper).await.expect("post").status().as_u16(),
            want,
            "upper-case hex, vector {name}"
        );
        let mut flipped = v.signature.clone();
        let last = flipped.pop().expect("char");
        flipped.push(if last == '0' { '1' } else { '0' });
        assert_eq!(
            send(flipped).await.expect("post").status(),
            401,
            "altered signature, vector {name}"
        );
    }
}
