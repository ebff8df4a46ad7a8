//! The client against testkit's stateful Slatis mock: every call, paging, and how each
//! failure is classed (the key never in an error).

use slatis_api::{BookingQuery, Client, Error, NewWebhook};
use slatis_testkit::mock::{MockSlatis, SLATIS_TEST_KEY, SlatisOptions};
use std::time::Duration;

fn new_hook() -> NewWebhook {
    NewWebhook {
        url: "https://hooks.example.test:1/webhooks/acme".to_owned(),
        events: vec!["BOOKING_CREATED".to_owned()],
        description: Some("slatis-sync acme".to_owned()),
    }
}

#[tokio::test]
async fn webhooks_round_trip() {
    let mock = MockSlatis::start(SlatisOptions {
        resolve: vec![(
            "hooks.example.test".to_owned(),
            "127.0.0.1:1".parse().expect("addr"),
        )],
        retry_delays: Vec::new(),
        ..SlatisOptions::default()
    })
    .await;
    let client = Client::new(&mock.url(), SLATIS_TEST_KEY).expect("client");
    let made = client.create_webhook(&new_hook()).await.expect("create");
    assert_eq!(made.secret.expose(), mock.webhooks()[0].secret);
    assert_eq!(format!("{:?}", made.secret), "Secret(***)");
    assert!(made.webhook.is_active);
    let id = made.webhook.id.clone();
    assert_eq!(
        client.list_webhooks().await.expect("list"),
        vec![made.webhook.clone()]
    );
    assert_eq!(
        client.get_webhook(&id).await.expect("get").url,
        made.webhook.url
    );
    let rotated = client.rotate_secret(&id).await.expect("rotate");
    assert_ne!(rotated.secret, made.secret);
    assert_eq!(rotated.secret.expose(), mock.webhooks()[0].secret);
    let off = client.set_active(&id, false).await.expect("disable");
    assert!(!off.is_active);
    let delivery = client.test_webhook(&id).await.expect("test");
    assert_eq!(delivery.event, "BOOKING_CREATED");
    let mut attempts = Vec::new();
    for _ in 0..50 {
        let all = client.deliveries(&id).await.expect("deliveries");
        attempts = all
            .iter()
            .find(|d| d.id == delivery.id)
            .map(|d| d.attempts.clone())
            .unwrap_or_default();
        if !attempts.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(attempts.len(), 1, "the test delivery was tried once");
    assert_eq!(attempts[0].response_status, None, "nothing listens there");
    // an id is a path segment, never spliced
    let e = client
        .get_webhook("../bookings")
        .await
        .expect_err("no such webhook");
    assert_eq!((e.status(), e.code()), (Some(404), Some("not_found")));
}

#[tokio::test]
async fn bookings_page_to_the_end() {
    let mock = MockSlatis::start(SlatisOptions::default()).await;
    let start = chrono::Utc::now();
    let ids: Vec<String> = (0..5)
        .map(|i| {
            mock.create_booking(
                "Ada Lovelace",
                "ada@example.com",
                start + chrono::TimeDelta::hours(i),
            )
        })
        .collect();
    let client = Client::new(&format!("{}/", mock.url()), SLATIS_TEST_KEY).expect("client");
    let mut query = BookingQuery {
        limit: Some(2),
        ..BookingQuery::default()
    };
    let mut seen = Vec::new();
    loop {
        let page = client.list_bookings(&query).await.expect("page");
        assert!(page.items.len() <= 2);
        seen.extend(page.items.into_iter().map(|b| b.id));
        match page.next_cursor {
            Some(c) => query.cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seen, ids);
    let one = client.get_booking(&ids[0]).await.expect("get");
    assert_eq!(
        (one.status.as_str(), one.attendee.name.as_str()),
        ("SCHEDULED", "Ada Lovelace")
    );
    let bad = client
        .list_bookings(&BookingQuery {
            start_date: Some("yesterday".to_owned()),
            ..BookingQuery::default()
        })
        .await
        .expect_err("bad date");
    assert_eq!(
        (bad.status(), bad.code()),
        (Some(400), Some("validation_error"))
    );
}

#[tokio::test]
async fn failures_are_classed_without_the_key() {
    let mock = MockSlatis::start(SlatisOptions {
        rate_per_minute: Some(2),
        ..SlatisOptions::default()
    })
    .await;
    mock.add_key("sk_live_readonly_secret", &["webhooks:read"]);
    let wrong = Client::new(&mock.url(), "sk_live_wrong_secret").expect("client");
    let e = wrong.list_webhooks().await.expect_err("401");
    assert!(
        matches!(&e, Error::Api { status: 401, code, request_id: Some(_), .. } if code == "unauthorized"),
        "{e:?}"
    );
    assert!(!format!("{e} {e:?}").contains("wrong_secret"));
    let reader = Client::new(&mock.url(), "sk_live_readonly_secret").expect("client");
    let e = reader.create_webhook(&new_hook()).await.expect_err("403");
    assert_eq!((e.status(), e.code()), (Some(403), Some("forbidden")));
    assert!(e.to_string().contains("webhooks:manage"), "{e}");
    assert!(!format!("{e} {e:?} {reader:?}").contains("readonly_secret"));
    reader.list_webhooks().await.expect("within the limit");
    let e = reader.list_webhooks().await.expect_err("429");
    assert!(
        matches!(e, Error::RateLimited { retry_after: Some(d) } if d >= Duration::from_secs(1)),
        "{e:?}"
    );
    let e = Client::new("http://127.0.0.1:1", "k")
        .expect("client")
        .list_webhooks()
        .await
        .expect_err("nothing listens");
    assert!(matches!(e, Error::Transport(_)), "{e:?}");
    assert!(matches!(
        Client::new("mailto:x", "k"),
        Err(Error::BaseUrl(_))
    ));
}
