//! A config reload while a backlog drains at a CRM's limit: connector instances keep
//! their running state (DESIGN §7, issue 10) — the mock sees no burst above its window and
//! no extra OAuth token for an unchanged block; a changed block starts a new connector
//! (one new token) that still shares the instance's rate budget.

use crate::support::{SECRET, bin, post, wait_until};
use slatis_testkit::fixtures;
use slatis_testkit::mock::{HubSpotOptions, MockHubSpot};
use slatis_testkit::process::{Server, write_config};
use std::time::Duration;

/// The mock's window, and the connector's limit: the same, as an operator sets it.
const WINDOW: Duration = Duration::from_secs(2);
const PER_WINDOW: usize = 30;

/// Tenant `acme` upserting contacts through an OAuth app; `title` is a route-only change,
/// `timeout` a change of the instance's own block.
fn config(db: &std::path::Path, mock: &MockHubSpot, title: &str, timeout: &str) -> String {
    format!(
        r#"
server: {{ listen: 127.0.0.1:0 }}
storage: {{ url: "sqlite://{db}" }}
delivery: {{ concurrency: 16, retry: {{ max_attempts: 30, initial_backoff: 100ms, max_backoff: 500ms }} }}
tenants:
  acme:
    signing_secrets: ["{SECRET}"]
    connectors:
      hubspot:
        type: hubspot
        base_url: "{url}"
        timeout: {timeout}
        rate_limit: {{ requests: {PER_WINDOW}, per: 2s }}
        oauth: {{ client_id: cid, client_secret: csecret, refresh_token: rt-1 }}
    routes:
      BOOKING_CREATED:
        - connector: hubspot
          action: upsert
          object: contacts
          match: {{ property: email, value: "{{{{lower data.attendee.email}}}}" }}
          properties:
            email: "{{{{lower data.attendee.email}}}}"
            firstname: "{{{{first_name data.attendee.name}}}}"
            lastname: "{{{{last_name data.attendee.name}}}}"
            jobtitle: "{title}"
"#,
        db = db.display(),
        url = mock.url()
    )
}

/// Reloads and waits for the server to log it.
async fn reload(server: &Server, path: &std::path::Path, yaml: &str) {
    std::fs::write(path, yaml).expect("write config");
    let before = server.log().matches("config reloaded").count();
    server.hang_up();
    wait_until("the reload logged", Duration::from_secs(10), || {
        server.log().matches("config reloaded").count() > before
    })
    .await;
}

/// The most requests any rolling window of `WINDOW` saw at the mock.
fn busiest_window(mock: &MockHubSpot) -> usize {
    let at: Vec<_> = mock
        .requests()
        .iter()
        .filter(|r| !r.path.contains("/oauth/"))
        .map(|r| r.at)
        .collect();
    (0..at.len())
        .map(|i| at[i..].iter().take_while(|t| **t - at[i] < WINDOW).count())
        .max()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_under_load_keeps_the_rate_budget_and_the_token() {
    let mock = MockHubSpot::start(HubSpotOptions {
        tokens: Vec::new(),
        oauth: Some(("cid".into(), "csecret".into(), "rt-1".into())),
        window: WINDOW,
        max_per_window: PER_WINDOW,
        ..HubSpotOptions::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("s.db");
    let path = write_config(dir.path(), &config(&db, &mock, "Guest", "5s"));
    let server = Server::start(&bin(), &path, &[]);
    let bookings = 60;
    for i in 0..bookings {
        let body = fixtures::booking(
            "BOOKING_CREATED",
            &format!("bkg_reload_{i:03}"),
            "Ada Lovelace",
            &format!("ada{i}@example.com"),
        );
        assert_eq!(post(&server.webhook("acme"), &body).await.0, 200);
    }
    // The backlog is draining at the limit: reload a route-only change.
    wait_until("deliveries under way", Duration::from_secs(20), || {
        mock.records("contacts").len() >= 5
    })
    .await;
    reload(&server, &path, &config(&db, &mock, "Attendee", "5s")).await;
    assert!(
        server.log().contains("connectors_kept=1"),
        "the unchanged instance is kept: {}",
        server.log()
    );
    assert!(
        mock.records("contacts").len() < bookings,
        "the reload came while the backlog drained"
    );
    let tokens_before = mock.tokens_issued();
    // Then a change of the instance's own block: a new connector, the same budget.
    wait_until("more deliveries", Duration::from_secs(20), || {
        mock.records("contacts").len() >= 25
    })
    .await;
    reload(&server, &path, &config(&db, &mock, "Attendee", "6s")).await;
    wait_until("the backlog drained", Duration::from_secs(60), || {
        mock.records("contacts").len() == bookings
    })
    .await;
    let refused: Vec<String> = mock
        .requests()
        .iter()
        .filter(|r| r.status == 429)
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(refused.is_empty(), "no 429 across the reloads: {refused:?}");
    let busiest = busiest_window(&mock);
    assert!(
        busiest <= PER_WINDOW,
        "{busiest} requests in one {WINDOW:?} window (limit {PER_WINDOW})"
    );
    assert_eq!(
        tokens_before, 1,
        "one token minted before the changed block"
    );
    assert_eq!(
        mock.tokens_issued(),
        2,
        "the changed block's connector mints one token; the unchanged one none"
    );
}
