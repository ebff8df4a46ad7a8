//! Rate limits and auth: 429s classed by policy, the daily reset, OAuth refresh.

use crate::harness::{PLAIN, ROUTES, config, deliver, deliver_until_done, failure, mock, quick};
use chrono::Utc;
use slatis_core::DeliveryError;
use slatis_core::connector::MemoryRecordMap;
use slatis_testkit::fixtures::{self, BOOKING_CREATED};
use slatis_testkit::mock::{Fault, HubSpotOptions};
use std::time::Duration;

fn until(e: &DeliveryError) -> chrono::DateTime<Utc> {
    match e {
        DeliveryError::RateLimited { until, .. } => *until,
        other => panic!("expected rate limited, got {other:?}"),
    }
}

#[tokio::test]
async fn a_rolling_window_429_pauses_for_the_window() {
    let hs = mock(HubSpotOptions {
        max_per_window: 2,
        window: Duration::from_secs(2),
        ..quick()
    })
    .await;
    let config = config(&hs, PLAIN, ROUTES);
    let e = failure(&deliver(&config, &MemoryRecordMap::default(), BOOKING_CREATED).await).clone();
    assert!(e.message().contains("HTTP 429 TEN_SECONDLY_ROLLING"), "{e}");
    let wait = until(&e) - Utc::now();
    assert!(
        wait > chrono::Duration::milliseconds(1500) && wait <= chrono::Duration::seconds(2),
        "{wait:?}"
    );
}

#[tokio::test]
async fn search_is_kept_under_its_own_limit() {
    let hs = mock(HubSpotOptions {
        search_per_second: 2,
        ..quick()
    })
    .await;
    // five bookings of five new emails: five searches; the connector allows 2 per second
    let keys = "access_token: pat-test-token, rate_limit: { requests: 1000, per: 1s }, search_rate_limit: { requests: 2, per: 1s }";
    let config = config(&hs, keys, ROUTES);
    let records = MemoryRecordMap::default();
    let start = std::time::Instant::now();
    for i in 0..5 {
        let body = fixtures::booking(
            "BOOKING_CREATED",
            &format!("b{i}"),
            "Ada Lovelace",
            &format!("a{i}@example.com"),
        );
        let r = deliver(&config, &records, &body).await;
        assert!(r[0].failure.is_none(), "{:?}", r[0].failure);
    }
    assert_eq!(hs.rate_limited(), 0, "no SECONDLY 429");
    assert!(
        start.elapsed() >= Duration::from_millis(1900),
        "five searches at 2/s take two seconds"
    );
    // and a SECONDLY 429 (the limit set too high) pauses for a second
    let config = config_with(&hs, "search_rate_limit: { requests: 100, per: 1s }");
    let mut seen = None;
    for i in 0..5 {
        let body = fixtures::booking(
            "BOOKING_CREATED",
            &format!("c{i}"),
            "Ada Lovelace",
            &format!("c{i}@example.com"),
        );
        if let Some((_, e)) = deliver(&config, &records, &body).await.remove(0).failure {
            seen = Some(e);
            break;
        }
    }
    let e = seen.expect("a SECONDLY 429");
    assert!(e.message().contains("HTTP 429 SECONDLY"), "{e}");
    assert!(until(&e) - Utc::now() <= chrono::Duration::seconds(1));
}

fn config_with(hs: &slatis_testkit::mock::MockHubSpot, extra: &str) -> slatis_core::Config {
    config(
        hs,
        &format!(
            "access_token: pat-test-token, rate_limit: {{ requests: 1000, per: 1s }}, {extra}"
        ),
        ROUTES,
    )
}

#[tokio::test]
async fn the_daily_limit_waits_for_hubspots_reset() {
    let reset = Utc::now() + chrono::Duration::hours(5);
    let hs = mock(HubSpotOptions {
        daily_limit: Some(1),
        daily_resets_at: reset,
        ..quick()
    })
    .await;
    let config = config(&hs, PLAIN, ROUTES);
    let e = failure(&deliver(&config, &MemoryRecordMap::default(), BOOKING_CREATED).await).clone();
    assert!(
        e.message().contains("HTTP 429 DAILY") && e.message().contains("daily reset"),
        "{e}"
    );
    assert!(
        (until(&e) - reset).num_seconds().abs() <= 1,
        "paused until {} not {reset}",
        until(&e)
    );
}

#[tokio::test]
async fn server_errors_and_timeouts_are_retried() {
    let hs = mock(quick()).await;
    let config = config(&hs, PLAIN, ROUTES);
    for fault in [
        Fault::Status {
            status: 502,
            retry_after: None,
            body: String::new(),
        },
        Fault::Status {
            status: 503,
            retry_after: Some(7),
            body: String::new(),
        },
        Fault::Slow(Duration::from_millis(800)),
    ] {
        hs.fail_next(1, fault.clone());
        let e =
            failure(&deliver(&config, &MemoryRecordMap::default(), BOOKING_CREATED).await).clone();
        assert_eq!(e.class(), "retryable", "{fault:?}: {e}");
        if let DeliveryError::Retryable {
            not_before: Some(t),
            ..
        } = e
        {
            assert!(t > Utc::now() + chrono::Duration::seconds(5));
        }
    }
}

#[tokio::test]
async fn oauth_tokens_are_refreshed_before_expiry_and_after_a_401() {
    let hs = mock(HubSpotOptions {
        tokens: vec![],
        oauth: Some(("client-1".into(), "secret-1".into(), "refresh-1".into())),
        ..quick()
    })
    .await;
    let keys = "oauth: { client_id: client-1, client_secret: secret-1, refresh_token: refresh-1 }, rate_limit: { requests: 1000, per: 1s }, search_rate_limit: { requests: 1000, per: 1s }";
    let config = config(&hs, keys, ROUTES);
    let records = MemoryRecordMap::default();
    deliver_until_done(&config, &records, BOOKING_CREATED, 2).await;
    assert_eq!(hs.tokens_issued(), 1, "one token for every call");
    // the date-versioned endpoint, its parameters in the body (v1 is retired 2027-02-16)
    let grant = &hs.requests()[0];
    assert_eq!(
        (grant.method.as_str(), grant.path.as_str()),
        ("POST", "/oauth/2026-03/token")
    );
    let form = String::from_utf8_lossy(&grant.body);
    assert!(
        form.contains("grant_type=refresh_token") && form.contains("refresh_token=refresh-1"),
        "{form}"
    );
    hs.expire_tokens_now();
    let renamed = fixtures::booking(
        "BOOKING_UPDATED",
        "bkg_01HZX4M2Q8",
        "Ada King",
        "ada@example.com",
    );
    let r = deliver(&config, &records, &renamed).await;
    assert!(r[0].failure.is_none(), "{:?}", r[0].failure);
    assert_eq!(hs.tokens_issued(), 2, "refreshed once after the 401");
    assert!(hs.requests().iter().any(|q| q.status == 401));
    // wrong credentials: permanent, with HubSpot's reason
    let bad = config_with_keys(
        &hs,
        "oauth: { client_id: client-1, client_secret: wrong, refresh_token: refresh-1 }",
    );
    let e = failure(&deliver(&bad, &MemoryRecordMap::default(), BOOKING_CREATED).await).clone();
    assert_eq!(e.class(), "permanent", "{e}");
    assert!(
        e.message()
            .contains("refused to refresh the OAuth token: HTTP 400 invalid_client: ")
            && !e.message().contains("wrong"),
        "{e}"
    );
    // an unknown private-app token: permanent, HubSpot's category kept
    let bad = config_with_keys(&hs, "access_token: pat-nope");
    let e = failure(&deliver(&bad, &MemoryRecordMap::default(), BOOKING_CREATED).await).clone();
    assert!(
        e.message().contains("HTTP 401 INVALID_AUTHENTICATION"),
        "{e}"
    );
    assert!(!e.message().contains("pat-nope"));
}

fn config_with_keys(hs: &slatis_testkit::mock::MockHubSpot, keys: &str) -> slatis_core::Config {
    config(hs, keys, ROUTES)
}
