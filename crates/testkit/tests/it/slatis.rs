//! The Slatis mock: every refusal with the doc it comes from, auth, scopes and rate
//! limits, deliveries failing into auto-disable, and bookings paging.

use chrono::{TimeZone, Utc};
use serde_json::{Value, json};
use slatis_testkit::mock::{MockSlatis, SLATIS_TEST_KEY, SlatisOptions, SlatisRefusal};
use std::collections::HashSet;
use std::time::Duration;

async fn call(
    mock: &MockSlatis,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut r = reqwest::Client::new()
        .request(
            method.parse().expect("method"),
            format!("{}{path}", mock.url()),
        )
        .bearer_auth(SLATIS_TEST_KEY);
    if let Some(body) = body {
        r = r.json(&body);
    }
    let answer = r.send().await.expect("send");
    let status = answer.status().as_u16();
    let headers = answer.headers().clone();
    (status, headers, answer.json().await.unwrap_or(Value::Null))
}

/// A mock whose deliveries go nowhere (a closed port) and are not retried.
async fn unreachable() -> MockSlatis {
    MockSlatis::start(SlatisOptions {
        resolve: vec![(
            "hooks.example.test".to_owned(),
            "127.0.0.1:1".parse().expect("addr"),
        )],
        retry_delays: Vec::new(),
        ..SlatisOptions::default()
    })
    .await
}

const HOOK: &str = "https://hooks.example.test:1/webhooks/acme";

#[tokio::test]
async fn every_refusal_is_a_documented_validation_error() {
    let mock = unreachable().await;
    let create = |url: &str, events: Value| json!({ "url": url, "events": events });
    let cases: Vec<(&str, String, Value, SlatisRefusal)> = vec![
        (
            "POST",
            "/v1/webhooks".into(),
            create("http://hooks.example.com/x", json!(["BOOKING_CREATED"])),
            SlatisRefusal::NotHttps,
        ),
        (
            "POST",
            "/v1/webhooks".into(),
            create("https://10.0.0.8/x", json!(["BOOKING_CREATED"])),
            SlatisRefusal::PrivateAddress,
        ),
        (
            "POST",
            "/v1/webhooks".into(),
            create("https://localhost/x", json!(["BOOKING_CREATED"])),
            SlatisRefusal::Loopback,
        ),
        (
            "POST",
            "/v1/webhooks".into(),
            create("https://169.254.1.1/x", json!(["BOOKING_CREATED"])),
            SlatisRefusal::LinkLocal,
        ),
        (
            "POST",
            "/v1/webhooks".into(),
            create("::nope", json!(["BOOKING_CREATED"])),
            SlatisRefusal::BadUrl,
        ),
        (
            "POST",
            "/v1/webhooks".into(),
            create(HOOK, json!([])),
            SlatisRefusal::NoEvents,
        ),
        (
            "POST",
            "/v1/webhooks".into(),
            create(HOOK, json!(["BOOKING_MADE"])),
            SlatisRefusal::UnknownEvent,
        ),
        (
            "POST",
            "/v1/webhooks".into(),
            json!({ "url": HOOK, "events": ["BOOKING_CREATED"], "secret": "mine" }),
            SlatisRefusal::BadBody,
        ),
        (
            "POST",
            "/v1/webhooks".into(),
            json!({ "url": HOOK, "events": ["BOOKING_CREATED"], "description": "x".repeat(300 * 1024) }),
            SlatisRefusal::TooLarge,
        ),
        (
            "GET",
            "/v1/bookings?limit=101".into(),
            Value::Null,
            SlatisRefusal::BadQuery,
        ),
    ];
    let mut seen = HashSet::new();
    for (method, path, body, why) in cases {
        let body = (!body.is_null()).then_some(body);
        let (status, _, answer) = call(&mock, method, &path, body).await;
        let expected = if why == SlatisRefusal::TooLarge {
            413
        } else {
            400
        };
        assert_eq!(status, expected, "{why:?}: {answer}");
        assert_eq!(answer["success"], false);
        if expected == 400 {
            assert_eq!(answer["error"]["code"], "validation_error", "{why:?}");
        }
        let logged = mock.requests().last().and_then(|r| r.refusal);
        assert_eq!(logged, Some(why));
        assert!(why.doc().starts_with("https://"), "{why:?}");
        seen.insert(why);
    }
    assert_eq!(
        seen.len(),
        SlatisRefusal::ALL.len(),
        "every refusal is exercised"
    );
    // the URL rule applies on update too, and a refused update changes nothing
    let (status, _, made) = call(
        &mock,
        "POST",
        "/v1/webhooks",
        Some(create(HOOK, json!(["BOOKING_CREATED"]))),
    )
    .await;
    assert_eq!(status, 201, "{made}");
    let id = made["webhook"]["id"].as_str().expect("id");
    let (status, _, _) = call(
        &mock,
        "PATCH",
        &format!("/v1/webhooks/{id}"),
        Some(json!({ "url": "https://192.168.0.2/x" })),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(mock.webhooks()[0].url, HOOK);
}

#[tokio::test]
async fn keys_scopes_rate_limits_and_request_ids() {
    let mock = MockSlatis::start(SlatisOptions {
        rate_per_minute: Some(5),
        ..SlatisOptions::default()
    })
    .await;
    mock.add_key("sk_live_reader", &["webhooks:read"]);
    let url = format!("{}/v1/webhooks", mock.url());
    let client = reqwest::Client::new();
    let none = client.get(&url).send().await.expect("send");
    assert_eq!(none.status().as_u16(), 401);
    assert!(none.headers().contains_key("x-request-id"));
    for header in ["slatis-api-key", "x-api-key"] {
        let r = client
            .get(&url)
            .header(header, "sk_live_reader")
            .header("x-request-id", "req-mine")
            .send()
            .await
            .expect("send");
        assert_eq!(r.status().as_u16(), 200, "{header}");
        assert_eq!(r.headers()["x-request-id"], "req-mine");
        assert!(r.headers().contains_key("x-ratelimit-remaining"));
    }
    let r = client
        .post(&url)
        .bearer_auth("sk_live_reader")
        .json(&json!({"url": HOOK, "events": ["BOOKING_CREATED"]}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 403);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["error"]["code"], "forbidden");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("webhooks:manage")),
        "{body}"
    );
    let wrong = client
        .get(&url)
        .bearer_auth("sk_live_nope")
        .send()
        .await
        .expect("send");
    assert_eq!(wrong.status().as_u16(), 401);
    let mut limited = None;
    for _ in 0..5 {
        let r = client
            .get(&url)
            .bearer_auth("sk_live_reader")
            .send()
            .await
            .expect("send");
        if r.status().as_u16() == 429 {
            limited = Some(r);
            break;
        }
    }
    let limited = limited.expect("the sixth call in a minute is limited");
    assert!(
        limited.headers()["retry-after"]
            .to_str()
            .expect("text")
            .parse::<u64>()
            .expect("secs")
            >= 1
    );
    assert_eq!(mock.rate_limited(), 1);
}

#[tokio::test]
async fn ten_consecutive_failures_disable_a_webhook_and_nothing_more_is_sent() {
    let mock = unreachable().await;
    let (_, _, made) = call(
        &mock,
        "POST",
        "/v1/webhooks",
        Some(json!({"url": HOOK, "events": ["BOOKING_CREATED", "BOOKING_CANCELLED"]})),
    )
    .await;
    let id = made["webhook"]["id"].as_str().expect("id").to_owned();
    assert!(
        made["webhook"]["secret"]
            .as_str()
            .is_some_and(|s| s.starts_with("whsec_"))
    );
    let start = Utc
        .with_ymd_and_hms(2026, 5, 1, 14, 0, 0)
        .single()
        .expect("time");
    for i in 0..10 {
        mock.create_booking("Ada", &format!("ada{i}@example.com"), start);
    }
    assert!(
        mock.wait_until(|m| !m.webhooks()[0].is_active, Duration::from_secs(10))
            .await,
        "disabled after 10 failures"
    );
    let hook = &mock.webhooks()[0];
    assert!(
        hook.failure_reason
            .as_deref()
            .is_some_and(|r| r.contains("10 consecutive")),
        "{hook:?}"
    );
    let deliveries = mock.deliveries();
    assert_eq!(deliveries.len(), 10);
    assert!(
        deliveries
            .iter()
            .all(|d| d.attempts.len() == 1 && d.attempts[0].status == 0)
    );
    // the secret is never shown again
    let (_, _, got) = call(&mock, "GET", &format!("/v1/webhooks/{id}"), None).await;
    assert_eq!(got["webhook"]["is_active"], false);
    assert!(got["webhook"].get("secret").is_none());
    // while disabled, events are not delivered
    mock.create_booking("Bob", "bob@example.com", start);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(mock.deliveries().len(), 10);
    // re-enabled: counting starts again
    let (status, _, on) = call(
        &mock,
        "PATCH",
        &format!("/v1/webhooks/{id}"),
        Some(json!({"is_active": true})),
    )
    .await;
    assert_eq!(status, 200, "{on}");
    assert_eq!(
        (
            on["webhook"]["is_active"].clone(),
            on["webhook"]["failure_reason"].clone()
        ),
        (json!(true), Value::Null)
    );
    assert_eq!(mock.webhooks()[0].failures, 0);
}

#[tokio::test]
async fn bookings_page_in_start_order_with_an_opaque_cursor() {
    let mock = MockSlatis::start(SlatisOptions::default()).await;
    let day = |d| {
        Utc.with_ymd_and_hms(2026, 5, d, 9, 0, 0)
            .single()
            .expect("time")
    };
    let ids: Vec<String> = (1..=7)
        .rev()
        .map(|d| mock.create_booking("A", "a@example.com", day(d)))
        .collect();
    mock.cancel_booking(&ids[0]);
    let (mut seen, mut cursor) = (Vec::new(), None::<String>);
    loop {
        let path = format!(
            "/v1/bookings?start_date=2026-05-02&end_date=2026-05-06&limit=2{}",
            cursor
                .as_ref()
                .map(|c| format!("&cursor={c}"))
                .unwrap_or_default()
        );
        let (status, _, page) = call(&mock, "GET", &path, None).await;
        assert_eq!(status, 200, "{page}");
        seen.extend(
            page["bookings"]
                .as_array()
                .expect("list")
                .iter()
                .map(|b| b["start_time"].as_str().expect("t")[..10].to_owned()),
        );
        match page["pagination"]["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(
        seen,
        [
            "2026-05-02",
            "2026-05-03",
            "2026-05-04",
            "2026-05-05",
            "2026-05-06"
        ]
    );
    let (status, _, _) = call(&mock, "GET", "/v1/bookings?cursor=garbage", None).await;
    assert_eq!(status, 400);
    let (_, _, one) = call(&mock, "GET", &format!("/v1/bookings/{}", ids[0]), None).await;
    assert_eq!(one["booking"]["status"], "CANCELLED");
    let (status, _, missing) = call(&mock, "GET", "/v1/bookings/bkg_nope", None).await;
    assert_eq!(
        (status, missing["error"]["code"].clone()),
        (404, json!("not_found"))
    );
}
