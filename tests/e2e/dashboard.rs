//! The dashboard in a real browser: Debian's headless Chromium driven over WebDriver
//! (chromedriver, through `fantoccini`) signs in, searches a booking by the attendee's
//! email, opens its timeline, sees the dead attempt, replays it once the CRM accepts again,
//! and sees the job delivered. A screenshot is kept at `target/test-artifacts/dashboard.png`.
//!
//! chromedriver is `SLATIS_TEST_CHROMEDRIVER` (a path) or `chromedriver` on `PATH`, the
//! browser `SLATIS_TEST_CHROMIUM` or whatever chromedriver finds. Without chromedriver the
//! test fails, unless `SLATIS_SKIP_BROWSER_TEST=1`.

use crate::support::{Setup, post};
use fantoccini::{Client, ClientBuilder, Locator};
use futures_util::FutureExt;
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;
use slatis_testkit::fixtures::BOOKING_CREATED;
use slatis_testkit::mock::{Fault, MockHttp};
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const TOKEN: &str = "dashboard_e2e_token_0123456789abcdef0123";
/// Two attempts, then the dead letter.
const RETRY: &str = "{ max_attempts: 2, initial_backoff: 50ms, max_backoff: 100ms }";
const WAIT: Duration = Duration::from_secs(15);

/// A chromedriver on a free port, killed when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    /// `None` when chromedriver is not installed and the test may be skipped.
    fn start() -> Option<Self> {
        let path =
            std::env::var("SLATIS_TEST_CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = match Command::new(&path)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if std::env::var("SLATIS_SKIP_BROWSER_TEST").as_deref() == Ok("1") {
                    eprintln!("browser test skipped: no {path} (SLATIS_SKIP_BROWSER_TEST=1)");
                    return None;
                }
                panic!(
                    "the browser test needs chromedriver and Chromium: `{path}` was not found. \
                     Install them (Debian: apt-get install chromium chromium-driver), or set \
                     SLATIS_TEST_CHROMEDRIVER to chromedriver's path, or skip this test with \
                     SLATIS_SKIP_BROWSER_TEST=1"
                );
            }
            Err(e) => panic!("cannot run {path}: {e}"),
        };
        let driver = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "{path} did not listen on port {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(driver)
    }

    async fn browser(&self) -> Client {
        let mut options = json!({
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,1400"]
        });
        if let Ok(binary) = std::env::var("SLATIS_TEST_CHROMIUM") {
            options["binary"] = binary.into();
        }
        let mut caps = serde_json::Map::new();
        caps.insert("goog:chromeOptions".into(), options);
        ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&self.url)
            .await
            .expect("a headless Chromium session")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until an element matching `css` holds `text`; on time out, fails with the page.
async fn wait_text(c: &Client, css: &str, text: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        for e in c.find_all(Locator::Css(css)).await.unwrap_or_default() {
            if e.text().await.is_ok_and(|t| t.contains(text)) {
                return;
            }
        }
        if Instant::now() > deadline {
            let page = c.source().await.unwrap_or_default();
            panic!("timed out waiting for {text:?} in {css}; the page:\n{page}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Clicks the first element matching `css`, again if the panel was redrawn under it.
async fn click(c: &Client, css: &str) {
    let mut tries = 0;
    loop {
        let res = match c.find(Locator::Css(css)).await {
            Ok(e) => e.click().await,
            Err(e) => Err(e),
        };
        match res {
            Ok(()) => return,
            Err(_) if tries < 20 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("cannot click {css}: {e}"),
        }
    }
}

/// `target/test-artifacts/<name>` (the directory made).
fn artifact(name: &str) -> PathBuf {
    // CARGO_TARGET_TMPDIR is target/tmp: the artifact goes beside it
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target dir")
        .join("test-artifacts");
    std::fs::create_dir_all(&dir).expect("create target/test-artifacts");
    dir.join(name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_replays_a_dead_letter_found_by_email() {
    let Some(driver) = Driver::start() else {
        return;
    };
    let started = Instant::now();
    let dest = MockHttp::start().await;
    let refusal = Fault::Status {
        status: 500,
        retry_after: None,
        body: "CRM refuses: down for maintenance".into(),
    };
    dest.chaos(1.0, vec![refusal]);
    let admin = format!("admin:\n  listen: 127.0.0.1:0\n  token: {TOKEN}\n");
    let setup = Setup::with(&dest.url(), RETRY, &admin);
    let server = setup.start();
    let base = server.admin_url.clone().expect("admin listener");
    assert_eq!(post(&server.webhook("acme"), BOOKING_CREATED).await.0, 200);

    let c = driver.browser().await;
    // the browser is closed and the page kept even when a step fails (a chromedriver killed
    // with a session open would leave Chromium running)
    let walked = AssertUnwindSafe(walk_through(&c, &base, &dest))
        .catch_unwind()
        .await;
    let path = artifact(if walked.is_ok() {
        "dashboard.png"
    } else {
        "dashboard-failed.png"
    });
    if let Ok(png) = c.screenshot().await {
        std::fs::write(&path, png).expect("write the screenshot");
        println!("dashboard screenshot: {}", path.display());
    }
    let _ = c.close().await;
    if let Err(panic) = walked {
        std::panic::resume_unwind(panic);
    }
    eprintln!("browser test took {:?}", started.elapsed());
}

/// Signs in, finds the booking by email, watches its job die, replays it, sees it delivered.
async fn walk_through(c: &Client, base: &str, dest: &MockHttp) {
    // the sign-in page, then the dashboard
    c.goto(&format!("{base}/admin")).await.expect("open /admin");
    c.find(Locator::Css("input[name=token]"))
        .await
        .expect("the sign-in form")
        .send_keys(TOKEN)
        .await
        .expect("type the token");
    click(c, "button[type=submit]").await;
    wait_text(c, "#tenant-rows", "acme").await;

    // search by the attendee's email (any case), open the booking's timeline
    c.find(Locator::Css("#q"))
        .await
        .expect("the search box")
        .send_keys("Ada@Example.com")
        .await
        .expect("type the email");
    click(c, "#search button[type=submit]").await;
    wait_text(c, "#list-title", "1 event(s) for").await;
    click(c, "#rows button.booking").await;
    wait_text(c, "#timeline", "bkg_01HZX4M2Q8").await;

    // the job dies (two refused attempts), each attempt with the CRM's answer
    wait_text(c, "#timeline-jobs td[data-status=dead]", "dead").await;
    wait_text(c, "#timeline-entries td.err", "500").await;
    wait_text(c, "#timeline-entries td[data-status=retry]", "retrying").await;
    // the dead-letter list has it too, with its own Replay button
    click(c, "nav button[data-view=dead]").await;
    wait_text(c, "#rows tr[data-job] td[data-status=dead]", "dead").await;
    wait_text(c, "#rows tr[data-job] button.replay", "Replay").await;

    // the CRM accepts again; replay from the timeline; the job is delivered
    dest.chaos(0.0, Vec::new());
    click(c, "#timeline-jobs button.replay").await;
    wait_text(c, "#note", "replayed").await;
    wait_text(c, "#timeline-jobs td[data-status=done]", "delivered").await;
    wait_text(c, "#timeline-entries td[data-status=done]", "delivered").await;
    assert_eq!(
        dest.wait_delivered(2, WAIT).await.len(),
        2,
        "both steps sent"
    );
    wait_text(c, "#tenant-rows tr.total", "1").await;
    // the last hour of one tenant
    click(c, "#tenant-rows tr[data-tenant=acme]").await;
    wait_text(c, "#plot h3", "Last hour — acme").await;
    wait_text(c, "#plot .legend", "1 received").await;
}
