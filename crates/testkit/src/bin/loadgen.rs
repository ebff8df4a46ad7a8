//! `loadgen`: posts signed, distinct Slatis events to a webhook URL with a fixed number of
//! concurrent connections, and reports how many were acknowledged per second.
//!
//! ```text
//! loadgen --url http://127.0.0.1:8080/webhooks/bench --secret whsec_bench \
//!         [--count 20000] [--concurrency 64] [--event BOOKING_CREATED]
//! ```
//! Every event has its own booking id, so none is a duplicate. Exit 1 if any answer was
//! not a 2xx.

use slatis_testkit::{fixtures, signer};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

struct Args {
    url: String,
    secret: String,
    count: usize,
    concurrency: usize,
    event: String,
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        url: String::new(),
        secret: String::new(),
        count: 20_000,
        concurrency: 64,
        event: "BOOKING_CREATED".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--url" => a.url = value,
            "--secret" => a.secret = value,
            "--count" => a.count = value.parse().map_err(|_| "--count takes a number")?,
            "--concurrency" => {
                a.concurrency = value.parse().map_err(|_| "--concurrency takes a number")?
            }
            "--event" => a.event = value,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if a.url.is_empty() || a.secret.is_empty() {
        return Err(
            "usage: loadgen --url URL --secret SECRET [--count N] [--concurrency C] [--event TYPE]"
                .into(),
        );
    }
    Ok(a)
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let a = match args() {
        Ok(a) => Arc::new(a),
        Err(e) => {
            eprintln!("{e}");
            return std::process::ExitCode::from(2);
        }
    };
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(a.concurrency)
        .build()
        .unwrap_or_default();
    let next = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let run = format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos()
    );
    let start = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..a.concurrency {
        let (a, client, next, failed, run) = (
            Arc::clone(&a),
            client.clone(),
            Arc::clone(&next),
            Arc::clone(&failed),
            run.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= a.count {
                    return latencies;
                }
                let body = fixtures::booking(
                    &a.event,
                    &format!("bkg_{run}_{i}"),
                    "Ada Lovelace",
                    &format!("ada+{i}@example.com"),
                );
                let t = Instant::now();
                match signer::post_signed(&client, &a.url, &a.secret, body.as_bytes()).await {
                    Ok((s, _)) if (200..300).contains(&s) => latencies.push(t.elapsed()),
                    Ok((s, answer)) => {
                        if failed.fetch_add(1, Ordering::Relaxed) < 3 {
                            eprintln!("answer {s}: {answer}");
                        }
                    }
                    Err(e) => {
                        if failed.fetch_add(1, Ordering::Relaxed) < 3 {
                            eprintln!("request failed: {e}");
                        }
                    }
                }
            }
        }));
    }
    let mut latencies: Vec<Duration> = Vec::new();
    for w in workers {
        latencies.extend(w.await.unwrap_or_default());
    }
    let elapsed = start.elapsed();
    latencies.sort_unstable();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    let failed = failed.load(Ordering::Relaxed);
    println!(
        "acknowledged {} of {} in {:.2}s: {:.0} webhooks/s (concurrency {}); latency ms p50 {:.2} p99 {:.2} max {:.2}; failed {}",
        latencies.len(),
        a.count,
        elapsed.as_secs_f64(),
        latencies.len() as f64 / elapsed.as_secs_f64(),
        a.concurrency,
        pct(0.5),
        pct(0.99),
        pct(1.0),
        failed
    );
    if failed == 0 {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}
