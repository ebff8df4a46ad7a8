//! Tenant fairness (DESIGN §6): one tenant's backlog of 10,000 jobs, draining at its CRM's
//! rate limit, does not hold another tenant's fresh booking — the store shares claims
//! between lanes (tenant, connector), so the quiet tenant's job is claimed at once. On
//! SQLite and on PostgreSQL.

use crate::support::{SECRET, bin, wait_until};
use futures_util::StreamExt;
use slatis_testkit::fixtures;
use slatis_testkit::mock::MockHttp;
use slatis_testkit::postgres::TestSchema;
use slatis_testkit::process::{Server, write_config};
use slatis_testkit::signer::post_signed;
use std::time::{Duration, Instant};

const BACKLOG: usize = 10_000;

fn config(storage: &str, dest: &str) -> String {
    let tenant = |name: &str, limit: &str| {
        format!(
            r#"
  {name}:
    signing_secrets: ["{SECRET}"]
    connectors:
      api: {{ type: http, base_url: "{dest}", rate_limit: {limit} }}
    routes:
      BOOKING_CREATED:
        - connector: api
          action: request
          method: POST
          path: /{name}
          json: {{ booking: "{{{{data.id}}}}" }}"#
        )
    };
    format!(
        "server: {{ listen: 127.0.0.1:0 }}\nstorage: {{ url: \"{storage}\" }}\ndelivery: {{ concurrency: 16 }}\ntenants:{}{}\n",
        tenant("busy", "{ requests: 100, per: 1s }"),
        tenant("quiet", "{ requests: 100, per: 1s }"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_of_ten_thousand_jobs_does_not_hold_another_tenants_booking() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = format!("sqlite://{}", dir.path().join("s.db").display());
    backlog_and_a_fresh_booking(&db, dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_of_ten_thousand_jobs_does_not_hold_another_tenants_booking_on_postgres() {
    let Some(schema) = TestSchema::create().await else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    backlog_and_a_fresh_booking(schema.url(), dir.path()).await;
}

async fn backlog_and_a_fresh_booking(storage: &str, dir: &std::path::Path) {
    let mock = MockHttp::start().await;
    let path = write_config(dir, &config(storage, &mock.url()));
    let server = Server::start(&bin(), &path, &[]);
    let client = reqwest::Client::new();
    let busy = server.webhook("busy");
    let statuses: Vec<u16> = futures_util::stream::iter(0..BACKLOG)
        .map(|i| {
            let (client, busy) = (&client, &busy);
            async move {
                let body = fixtures::booking(
                    "BOOKING_CREATED",
                    &format!("bkg_busy_{i:05}"),
                    "Ada Lovelace",
                    &format!("ada{i}@example.com"),
                );
                post_signed(client, busy, SECRET, body.as_bytes())
                    .await
                    .expect("post")
                    .0
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    assert!(statuses.iter().all(|s| *s == 200), "every webhook stored");
    let delivered = |path: &str| mock.received().iter().filter(|r| r.path == path).count();
    let busy_done = delivered("/busy");
    assert!(
        busy_done < BACKLOG / 2,
        "the backlog is still there: {busy_done} of {BACKLOG} delivered"
    );

    let sent = Instant::now();
    let body = fixtures::booking(
        "BOOKING_CREATED",
        "bkg_quiet",
        "Grace Hopper",
        "grace@example.com",
    );
    let (status, _) = post_signed(&client, &server.webhook("quiet"), SECRET, body.as_bytes())
        .await
        .expect("post");
    assert_eq!(status, 200);
    wait_until("the quiet tenant's booking", Duration::from_secs(5), || {
        delivered("/quiet") == 1
    })
    .await;
    let waited = sent.elapsed();
    println!(
        "quiet tenant's booking delivered {waited:?} after it was sent, behind {} queued jobs of another tenant",
        BACKLOG - delivered("/busy")
    );
    assert!(
        BACKLOG - delivered("/busy") > BACKLOG / 2,
        "the backlog was still queued when the quiet booking went through"
    );
}
