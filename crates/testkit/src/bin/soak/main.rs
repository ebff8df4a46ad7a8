//! `soak`: the crash soak. Sends signed webhooks for many bookings (create, reschedules,
//! cancel) to a real `slatis-sync serve` that is SIGKILLed and restarted every few
//! seconds, while the mock CRM answers a share of requests with 429, 5xx, timeouts and
//! connections reset mid-answer; then checks that nothing acknowledged was lost, that no
//! booking's events reached the CRM out of order, and that every booking has exactly one
//! record in its final state.
//!
//! ```text
//! soak --bin target/release/slatis-sync [--webhooks 20000] [--bookings 5000]
//!      [--kill-every 3s] [--fault-rate 0.1] [--rate 300] [--concurrency 32] [--drain-timeout 300s]
//! ```
//! Webhooks go out at `--rate` per second, so the kills land while events are being
//! received as well as delivered. Like Slatis, the sender retries an event until it is acknowledged (a 2xx), and sends a
//! booking's next event only after the previous one was acknowledged. Exit 1 if any
//! guarantee failed; the last line of the output is the summary as JSON.

mod check;
mod plan;

use serde_json::{Value, json};
use slatis_testkit::mock::{Fault, MockHttp};
use slatis_testkit::process::{self, Server};
use slatis_testkit::signer;
use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

struct Args {
    bin: PathBuf,
    webhooks: usize,
    bookings: usize,
    kill_every: Duration,
    fault_rate: f64,
    rate: f64,
    concurrency: usize,
    drain_timeout: Duration,
}

const USAGE: &str = "usage: soak --bin PATH [--webhooks N] [--bookings N] [--kill-every DURATION] \
                     [--fault-rate P] [--rate PER_SECOND] [--concurrency C] [--drain-timeout DURATION]";

fn args() -> Result<Args, String> {
    let mut a = Args {
        bin: PathBuf::from("target/release/slatis-sync"),
        webhooks: 20_000,
        bookings: 5_000,
        kill_every: Duration::from_secs(3),
        fault_rate: 0.1,
        rate: 300.0,
        concurrency: 32,
        drain_timeout: Duration::from_secs(300),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let number = |v: &str| {
            v.parse::<usize>()
                .map_err(|_| format!("{flag} takes a number"))
        };
        let duration = |v: &str| {
            humantime::parse_duration(v).map_err(|_| format!("{flag} takes a duration (3s)"))
        };
        match flag.as_str() {
            "--bin" => a.bin = PathBuf::from(value),
            "--webhooks" => a.webhooks = number(&value)?,
            "--bookings" => a.bookings = number(&value)?,
            "--kill-every" => a.kill_every = duration(&value)?,
            "--fault-rate" => {
                a.fault_rate = value
                    .parse()
                    .ok()
                    .filter(|p: &f64| (0.0..1.0).contains(p))
                    .ok_or("--fault-rate takes a number in [0, 1)")?;
            }
            "--rate" => {
                a.rate = value
                    .parse()
                    .ok()
                    .filter(|r: &f64| *r > 0.0)
                    .ok_or("--rate takes a number of webhooks per second")?;
            }
            "--concurrency" => a.concurrency = number(&value)?.max(1),
            "--drain-timeout" => a.drain_timeout = duration(&value)?,
            other => return Err(format!("unknown flag {other}\n{USAGE}")),
        }
    }
    Ok(a)
}

/// The faults the mock CRM picks from, one per faulty request.
fn faults() -> Vec<Fault> {
    let status = |status, retry_after| Fault::Status {
        status,
        retry_after,
        body: format!("{{\"error\":\"injected {status}\"}}"),
    };
    vec![
        status(429, Some(1)),
        status(500, None),
        status(503, Some(1)),
        Fault::Slow(Duration::from_millis(1500)),
        Fault::Drop,
    ]
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// Spaces sends `1 / rate` apart across every sender.
struct Pace {
    gap: Duration,
    next: Mutex<Instant>,
}

impl Pace {
    async fn wait(&self) {
        let at = {
            let mut next = self
                .next
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let at = (*next).max(Instant::now());
            *next = at + self.gap;
            at
        };
        tokio::time::sleep_until(at.into()).await;
    }
}

/// Sends events until each is acknowledged; a booking's next event waits for its previous.
async fn send_all(
    url: String,
    secret: String,
    plan: Arc<Vec<plan::Booking>>,
    rate: f64,
    concurrency: usize,
    duplicates: Arc<AtomicUsize>,
    refused: Arc<AtomicUsize>,
) -> Result<(), String> {
    let total: usize = plan.iter().map(|b| b.events.len()).sum();
    let queue: Arc<Mutex<VecDeque<(usize, usize)>>> =
        Arc::new(Mutex::new((0..plan.len()).map(|b| (b, 0)).collect()));
    let acked = Arc::new(AtomicUsize::new(0));
    let pace = Arc::new(Pace {
        gap: Duration::from_secs_f64(1.0 / rate),
        next: Mutex::new(Instant::now()),
    });
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| e.to_string())?;
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (url, secret, plan, queue, acked, client, duplicates, refused, pace) = (
            url.clone(),
            secret.clone(),
            Arc::clone(&plan),
            Arc::clone(&queue),
            Arc::clone(&acked),
            client.clone(),
            Arc::clone(&duplicates),
            Arc::clone(&refused),
            Arc::clone(&pace),
        );
        workers.spawn(async move {
            loop {
                let next = queue
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .pop_front();
                let Some((b, e)) = next else {
                    if acked.load(Ordering::Acquire) >= total {
                        return Ok(());
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                };
                let body = plan::body(&plan[b], &plan[b].events[e]);
                pace.wait().await;
                loop {
                    match signer::post_signed(&client, &url, &secret, &body).await {
                        Ok((200, answer)) => {
                            if answer["duplicate"] == true {
                                duplicates.fetch_add(1, Ordering::Relaxed);
                            }
                            break;
                        }
                        Ok((status @ (400..=499), answer)) => {
                            return Err(format!("event refused with {status}: {answer}"));
                        }
                        // 503 (storage), a dropped connection (the server was killed): Slatis retries.
                        Ok(_) | Err(_) => {
                            refused.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                }
                acked.fetch_add(1, Ordering::AcqRel);
                if e + 1 < plan[b].events.len() {
                    queue
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .push_back((b, e + 1));
                }
            }
        });
    }
    while let Some(done) = workers.join_next().await {
        done.map_err(|e| e.to_string())??;
    }
    Ok(())
}

/// Kills and restarts the server every `every` (±50%) until `stop`.
fn killer(
    server: Arc<Mutex<Server>>,
    start: impl Fn() -> Server + Send + 'static,
    every: Duration,
    stop: Arc<AtomicBool>,
    kills: Arc<AtomicUsize>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        while !stop.load(Ordering::Acquire) {
            let jitter = rand::random_range(0.5..1.5);
            let deadline = Instant::now() + every.mul_f64(jitter);
            while Instant::now() < deadline && !stop.load(Ordering::Acquire) {
                std::thread::sleep(Duration::from_millis(20));
            }
            if stop.load(Ordering::Acquire) {
                return;
            }
            let mut s = server
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            s.kill();
            *s = start();
            kills.fetch_add(1, Ordering::Relaxed);
        }
    })
}

/// An admin API GET, retried while the server restarts.
async fn admin_get(client: &reqwest::Client, url: &str, token: &str) -> Result<Value, String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let answer = client.get(url).bearer_auth(token).send().await;
        match answer {
            Ok(r) if r.status().is_success() => {
                return r.json().await.map_err(|e| format!("{url}: {e}"));
            }
            Ok(r) if r.status().is_client_error() => {
                return Err(format!("{url}: {}", r.status()));
            }
            _ if Instant::now() > deadline => return Err(format!("{url}: no answer")),
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Waits until no job is pending or running.
async fn drain(client: &reqwest::Client, admin: &str, token: &str, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Ok(s) = admin_get(client, &format!("{admin}/admin/api/stats"), token).await {
            let q = &s["queue"];
            if q["pending"] == 0 && q["running"] == 0 {
                return true;
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    false
}

/// Every dead letter, as `(booking, seq) → reason`.
async fn dead_letters(
    client: &reqwest::Client,
    admin: &str,
    token: &str,
) -> Result<HashMap<(String, u64), String>, String> {
    let mut out = HashMap::new();
    let mut dead = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = admin_get(
            client,
            &format!("{admin}/admin/api/dead-letters?limit=500&cursor={cursor}"),
            token,
        )
        .await?;
        dead.extend(page["jobs"].as_array().into_iter().flatten().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => break,
        }
    }
    for job in &dead {
        let detail = admin_get(
            client,
            &format!("{admin}/admin/api/jobs/{}", job["id"]),
            token,
        )
        .await?;
        let data = &detail["event"]["data"];
        let key = (
            data["id"].as_str().unwrap_or_default().to_owned(),
            data["seq"].as_u64().unwrap_or_default(),
        );
        let reason = detail["last_error"]
            .as_str()
            .unwrap_or("(no reason)")
            .to_owned();
        out.insert(key, reason);
    }
    Ok(out)
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let a = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return std::process::ExitCode::from(2);
        }
    };
    match soak(a).await {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(e) => {
            eprintln!("soak: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn soak(a: Args) -> Result<bool, String> {
    let started = Instant::now();
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let crm = MockHttp::start().await;
    crm.chaos(a.fault_rate, faults());
    let run = format!("{:x}", rand::random::<u32>());
    let secret = format!("whsec_soak_{run}_{:x}", rand::random::<u64>());
    let token = format!("soak-admin-{:032x}", rand::random::<u128>());
    let (listen, admin) = (
        format!("127.0.0.1:{}", free_port()),
        format!("127.0.0.1:{}", free_port()),
    );
    let db = dir.path().join("soak.db");
    let config = process::write_config(
        dir.path(),
        &plan::config(
            &listen,
            &admin,
            &token,
            &db.display().to_string(),
            &crm.url(),
            &secret,
        ),
    );
    let plan = Arc::new(plan::bookings(a.webhooks, a.bookings, &run));
    let total: usize = plan.iter().map(|b| b.events.len()).sum();
    eprintln!(
        "soak: {total} webhooks for {} bookings at {}/s; SIGKILL every ~{:?}; CRM fault rate {}",
        plan.len(),
        a.rate,
        a.kill_every,
        a.fault_rate
    );
    let start = {
        let (bin, config) = (a.bin.clone(), config.clone());
        move || Server::start(&bin, &config, &[("RUST_LOG", "warn")])
    };
    let server = Arc::new(Mutex::new(start()));
    let (stop, kills) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicUsize::new(0)),
    );
    let killing = killer(
        Arc::clone(&server),
        start,
        a.kill_every,
        Arc::clone(&stop),
        Arc::clone(&kills),
    );
    let (duplicates, retried) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let sent = send_all(
        format!("http://{listen}/webhooks/soak"),
        secret,
        Arc::clone(&plan),
        a.rate,
        a.concurrency,
        Arc::clone(&duplicates),
        Arc::clone(&retried),
    )
    .await;
    let sent_in = started.elapsed();
    let client = reqwest::Client::new();
    let admin_url = format!("http://{admin}");
    // Keep killing through half the drain, then let it finish.
    let drained_under_kills = drain(&client, &admin_url, &token, a.drain_timeout / 2).await;
    stop.store(true, Ordering::Release);
    let _ = killing.join();
    let drained =
        drained_under_kills || drain(&client, &admin_url, &token, a.drain_timeout / 2).await;
    sent?;
    if !drained {
        return Err(format!(
            "the queue did not drain within {:?}",
            a.drain_timeout
        ));
    }
    let dead = dead_letters(&client, &admin_url, &token).await?;
    let graceful = server
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .terminate(Duration::from_secs(15));
    let received = crm.received();
    let v = check::judge(&plan, &received, &dead);
    let kills = kills.load(Ordering::Relaxed);
    println!(
        "sent                 {total} webhooks for {} bookings in {:.1}s",
        plan.len(),
        sent_in.as_secs_f64()
    );
    println!(
        "acknowledged         {} ({} answered as duplicates of a delivery the server had stored before it was killed; {} sends retried)",
        v.acknowledged,
        duplicates.load(Ordering::Relaxed),
        retried.load(Ordering::Relaxed)
    );
    println!("delivered            {}", v.delivered);
    println!("dead-lettered        {}", v.dead.len());
    println!("lost                 {}", v.lost.len());
    println!("order violations     {}", v.order_violations.len());
    println!(
        "records              {} bookings, {} contacts ({} stray, {} wrong final state)",
        v.booking_records,
        v.contact_records,
        v.stray_records.len(),
        v.wrong_final.len()
    );
    println!(
        "CRM requests         {} ({} refused by injected 429/5xx; {} writes repeated after a lost answer)",
        received.len(),
        v.refused,
        v.repeated_writes
    );
    println!(
        "kills survived       {kills} (SIGKILL + restart); graceful stop at the end: {}",
        if graceful { "ok" } else { "FAILED" }
    );
    println!(
        "elapsed              {:.1}s",
        started.elapsed().as_secs_f64()
    );
    for (what, list) in [
        ("dead letter", &v.dead),
        ("LOST", &v.lost),
        ("ORDER", &v.order_violations),
        ("WRONG FINAL", &v.wrong_final),
        ("STRAY", &v.stray_records),
    ] {
        for line in list.iter().take(10) {
            println!("  {what}: {line}");
        }
    }
    let passed = v.passed() && graceful;
    println!(
        "{}",
        json!({
            "passed": passed, "webhooks": total, "bookings": plan.len(), "acknowledged": v.acknowledged,
            "delivered": v.delivered, "dead_lettered": v.dead.len(), "lost": v.lost.len(),
            "order_violations": v.order_violations.len(), "duplicate_records": v.stray_records.len(),
            "wrong_final_state": v.wrong_final.len(), "kills": kills, "crm_requests": received.len(),
            "crm_refused": v.refused, "repeated_writes": v.repeated_writes,
            "seconds": started.elapsed().as_secs(),
        })
    );
    Ok(passed)
}
