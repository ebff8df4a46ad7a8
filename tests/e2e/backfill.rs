//! `slatis-sync backfill` against testkit's Slatis mock, beside a running `serve` on
//! SQLite delivering into a mock CRM: bookings no webhook delivered are fed once, those a
//! webhook delivered are skipped, `--dry-run` stores nothing, a run killed after its first
//! page resumes from its checkpoint with no duplicate, and bad dates are refused; and the
//! same on PostgreSQL (skipped with a note when `SLATIS_TEST_POSTGRES_URL` is unset).

use crate::support::{QUICK, bin, config_at, post, wait_until};
use chrono::{TimeDelta, Utc};
use slatis_testkit::mock::{
    Fault, MockHttp, MockSlatis, Received, SLATIS_SCOPES, SLATIS_TEST_KEY, SlatisOptions,
};
use slatis_testkit::postgres::TestSchema;
use slatis_testkit::process::{Server, run, write_config};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(15);

/// A config (tenant `acme` of [`config`], with `key` as its `slatis_api_key`), the
/// service running it, and the mock CRM it delivers to.
struct Stand {
    dir: tempfile::TempDir,
    storage: String,
    config: PathBuf,
    dest: MockHttp,
    server: Server,
}

impl Stand {
    /// Stored in SQLite.
    async fn start(key: &str) -> Self {
        Self::at(None, key).await
    }

    /// Stored at `storage` (a `storage.url`), else in a SQLite file.
    async fn at(storage: Option<&str>, key: &str) -> Self {
        let dest = MockHttp::start().await;
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = storage.map_or_else(
            || format!("sqlite://{}", dir.path().join("slatis.db").display()),
            str::to_owned,
        );
        let config = write_config(dir.path(), &yaml(&storage, &dest, key));
        let server = Server::start(&bin(), &config, &[]);
        Self {
            dir,
            storage,
            config,
            dest,
            server,
        }
    }

    /// The config with another Slatis API key.
    fn use_key(&self, key: &str) {
        std::fs::write(&self.config, yaml(&self.storage, &self.dest, key)).expect("config");
    }

    /// `slatis-sync backfill --tenant acme <args> --slatis-url <mock>`, off the runtime.
    async fn backfill(&self, slatis: &MockSlatis, args: &[&str]) -> (i32, String, String) {
        let all = self.args(slatis, args);
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = all.iter().map(String::as_str).collect();
            run(&bin(), &args, &[])
        })
        .await
        .expect("cli")
    }

    fn args(&self, slatis: &MockSlatis, args: &[&str]) -> Vec<String> {
        let mut all: Vec<String> = [
            "--config",
            &self.config.display().to_string(),
            "backfill",
            "--tenant",
            "acme",
            "--slatis-url",
            &slatis.url(),
        ]
        .map(str::to_owned)
        .to_vec();
        all.extend(args.iter().map(|a| (*a).to_owned()));
        all
    }

    /// How many of each `METHOD path` the CRM got.
    fn calls(&self) -> BTreeMap<String, usize> {
        let mut calls = BTreeMap::new();
        for r in self.dest.received() {
            *calls.entry(line(&r)).or_default() += 1;
        }
        calls
    }
}

fn line(r: &Received) -> String {
    let booking = r.json()["booking"].as_str().map(str::to_owned);
    format!(
        "{} {}{}",
        r.method,
        r.path,
        booking.map(|b| format!(" {b}")).unwrap_or_default()
    )
}

fn yaml(storage: &str, dest: &MockHttp, key: &str) -> String {
    config_at(storage, &dest.url(), QUICK).replacen(
        "  acme:\n",
        &format!("  acme:\n    slatis_api_key: {key}\n"),
        1,
    )
}

/// `--since` a few days ago, as a date.
fn since() -> String {
    (Utc::now() - TimeDelta::days(5))
        .format("%Y-%m-%d")
        .to_string()
}

/// A webhook delivery of `BOOKING_CREATED` for booking `id`.
fn created(id: &str) -> String {
    format!(
        r#"{{"event":"BOOKING_CREATED","timestamp":"2026-01-01T00:00:00.000Z","webhook_id":"wh_1","data":{{"id":"{id}","status":"SCHEDULED","start_time":"2026-05-01T14:00:00.000Z","attendee":{{"name":"Ann Early","email":"ann@example.com"}}}}}}"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bookings_no_webhook_delivered_are_fed_once_and_a_dry_run_stores_nothing() {
    let slatis = MockSlatis::start(SlatisOptions::default()).await;
    let stand = Stand::start(SLATIS_TEST_KEY).await;
    let t0 = Utc::now() - TimeDelta::days(2);
    let hour = TimeDelta::hours(1);
    let a = slatis.create_booking("Ann Early", "ann@example.com", t0);
    let b = slatis.create_booking("Bob Gap", "bob@example.com", t0 + hour);
    let c = slatis.create_booking("Cat Gone", "cat@example.com", t0 + hour * 2);
    slatis.cancel_booking(&c);
    let d = slatis.create_booking("Dan Done", "dan@example.com", t0 + hour * 3);
    slatis.complete_booking(&d);
    assert!(slatis.deliveries().is_empty(), "no webhook was active");
    // `a` arrived by webhook before the gap
    assert_eq!(
        post(&stand.server.webhook("acme"), &created(&a)).await.0,
        200
    );
    stand.dest.wait_delivered(2, WAIT).await;

    let (code, out, err) = stand
        .backfill(&slatis, &["--since", &since(), "--dry-run"])
        .await;
    assert_eq!(code, 0, "{err}");
    let plan: Vec<&str> = out.lines().collect();
    assert_eq!(
        plan,
        [
            format!("{a}  SCHEDULED -> BOOKING_CREATED  skip (already received)"),
            format!("{b}  SCHEDULED -> BOOKING_CREATED  new"),
            format!("{c}  CANCELLED -> BOOKING_CANCELLED  new"),
            format!("{d}  COMPLETED -> BOOKING_COMPLETED  skip (not routed)"),
        ],
        "{err}"
    );
    assert!(
        err.contains("page 1: 4 bookings, 2 to feed, 1 already received"),
        "{err}"
    );
    assert!(err.contains("nothing stored"), "{err}");

    // the dry run stored nothing: the real run feeds the same two
    let (code, out, err) = stand.backfill(&slatis, &["--since", &since()]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "", "stdout stays clean");
    assert!(
        err.contains("page 1: 4 bookings, 2 fed, 1 already received"),
        "{err}"
    );
    assert!(
        err.contains("1 of event types tenant acme does not route"),
        "{err}"
    );
    stand.dest.wait_delivered(5, WAIT).await;
    let want: BTreeMap<String, usize> = [
        (format!("POST /contacts {a}"), 1),
        (format!("PUT /meetings/{a}"), 1),
        (format!("POST /contacts {b}"), 1),
        (format!("PUT /meetings/{b}"), 1),
        (format!("PATCH /meetings/{c}"), 1),
    ]
    .into_iter()
    .collect();
    assert_eq!(stand.calls(), want);
    let contact = stand
        .dest
        .received()
        .into_iter()
        .find(|r| r.json()["booking"] == b.as_str())
        .expect("b's contact");
    assert_eq!(
        contact.json()["email"],
        "bob@example.com",
        "mapped as a webhook"
    );

    // a re-run feeds nothing
    let (code, _, err) = stand.backfill(&slatis, &["--since", &since()]).await;
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("0 fed, 3 already received"), "{err}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(stand.calls(), want, "nothing delivered twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_killed_after_its_first_page_resumes_without_duplicates() {
    // one call per key per minute: the second page waits on a 429, and is killed there
    let slatis = MockSlatis::start(SlatisOptions {
        rate_per_minute: Some(1),
        ..SlatisOptions::default()
    })
    .await;
    let stand = Stand::start(SLATIS_TEST_KEY).await;
    let t0 = Utc::now() - TimeDelta::days(1);
    let ids: Vec<String> = (0..4)
        .map(|i| {
            slatis.create_booking(
                &format!("Guest {i}"),
                &format!("g{i}@example.com"),
                t0 + TimeDelta::minutes(i),
            )
        })
        .collect();
    let args = stand.args(&slatis, &["--since", &since(), "--page-size", "2"]);
    let mut child = Command::new(bin())
        .args(&args)
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let stderr = child.stderr.take().expect("stderr");
    let seen = tokio::task::spawn_blocking(move || {
        let mut seen = String::new();
        for l in BufReader::new(stderr).lines().map_while(Result::ok) {
            seen.push_str(&l);
            seen.push('\n');
            if l.contains("waiting") {
                break;
            }
        }
        seen
    })
    .await
    .expect("read");
    assert!(seen.contains("page 1: 2 bookings, 2 fed"), "{seen}");
    assert!(seen.contains("rate limit reached: waiting"), "{seen}");
    child.kill().expect("kill");
    child.wait().expect("reaped");

    // the same command, with a key that has its budget left
    slatis.add_key("sk_test_second", &SLATIS_SCOPES);
    stand.use_key("sk_test_second");
    let (code, _, err) = stand
        .backfill(&slatis, &["--since", &since(), "--page-size", "2"])
        .await;
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("resuming after page 1"), "{err}");
    assert!(
        err.contains("page 2: 4 bookings, 4 fed, 0 already received"),
        "{err}"
    );
    stand.dest.wait_delivered(8, WAIT).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let calls = stand.calls();
    for id in &ids {
        assert_eq!(
            calls.get(&format!("POST /contacts {id}")),
            Some(&1),
            "{calls:?}"
        );
    }
    assert_eq!(calls.values().sum::<usize>(), 8, "{calls:?}");
    let checkpoints = stand.dir.path().join("config.backfill");
    wait_until("the checkpoint removed", WAIT, || {
        std::fs::read_dir(&checkpoints).map_or(true, |d| d.count() == 0)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_dates_and_a_missing_scope_stop_it_a_429_is_waited_out() {
    let slatis = MockSlatis::start(SlatisOptions::default()).await;
    let stand = Stand::start(SLATIS_TEST_KEY).await;
    for (args, want) in [
        (
            vec!["--since", "yesterday"],
            "--since \"yesterday\" is not a date: use YYYY-MM-DD",
        ),
        (
            vec!["--since", "2026-05-01", "--until", "2026-02-30"],
            "--until \"2026-02-30\" is not a date",
        ),
        (
            vec!["--since", "2026-05-02", "--until", "2026-05-01T10:00:00Z"],
            "must be after --since",
        ),
    ] {
        let (code, out, err) = stand.backfill(&slatis, &args).await;
        assert_eq!(code, 1, "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
        assert_eq!(out, "");
    }
    assert!(slatis.requests().is_empty(), "nothing asked of Slatis");

    let b = slatis.create_booking("Bob Gap", "bob@example.com", Utc::now());
    slatis.fail_next(
        1,
        Fault::Status {
            status: 429,
            retry_after: Some(1),
            body: String::new(),
        },
    );
    let (code, _, err) = stand.backfill(&slatis, &["--since", &since()]).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("rate limit reached: waiting 1 s before page 1"),
        "{err}"
    );
    assert!(err.contains("page 1: 1 bookings, 1 fed"), "{err}");
    stand.dest.wait_delivered(2, WAIT).await;
    assert_eq!(stand.calls().get(&format!("POST /contacts {b}")), Some(&1));

    slatis.add_key("sk_test_hooks_only", &["webhooks:read"]);
    stand.use_key("sk_test_hooks_only");
    let (code, _, err) = stand.backfill(&slatis, &["--since", &since()]).await;
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("the API key of tenant acme lacks the bookings:read scope"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_a_backfill_feeds_the_gap_once() {
    let Some(schema) = TestSchema::create().await else {
        return;
    };
    let slatis = MockSlatis::start(SlatisOptions::default()).await;
    let stand = Stand::at(Some(schema.url()), SLATIS_TEST_KEY).await;
    let t0 = Utc::now() - TimeDelta::days(1);
    let a = slatis.create_booking("Ann Early", "ann@example.com", t0);
    let b = slatis.create_booking("Bob Gap", "bob@example.com", t0 + TimeDelta::hours(1));
    assert_eq!(
        post(&stand.server.webhook("acme"), &created(&a)).await.0,
        200
    );
    let (code, _, err) = stand.backfill(&slatis, &["--since", &since()]).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("page 1: 2 bookings, 1 fed, 1 already received"),
        "{err}"
    );
    stand.dest.wait_delivered(4, WAIT).await;
    let (code, _, err) = stand.backfill(&slatis, &["--since", &since()]).await;
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("0 fed, 2 already received"), "{err}");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let calls = stand.calls();
    for id in [&a, &b] {
        assert_eq!(
            calls.get(&format!("POST /contacts {id}")),
            Some(&1),
            "{calls:?}"
        );
    }
    assert_eq!(calls.values().sum::<usize>(), 4, "{calls:?}");
}
