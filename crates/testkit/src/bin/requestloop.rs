//! `requestloop`: the delivery benchmark's baseline. Sends the requests the benchmark
//! route makes for `--count` bookings, with no queue in between: for each booking
//! `PUT {base}/contacts/{email}` then `PUT {base}/meetings/{id}` (the second after the
//! first answered, as the route's steps run), `--concurrency` bookings in flight.
//!
//! ```text
//! requestloop --base-url http://127.0.0.1:PORT [--count 100000] [--concurrency 32] [--json]
//! ```
//! Invariant: the client is configured like slatis-sync's outbound client (no redirects,
//! its user agent, 60 s idle pool timeout, a 30 s timeout per request, the default
//! connection timeout) and the bodies have the route's JSON shape, so the two runs differ
//! only by what the product does around each request. Bodies are built inside the
//! timed loop, as the product renders its steps inside its own.
//!
//! Prints one human line, and with `--json` one JSON line
//! `{count, requests, failed, seconds, rps}` (requests per second). Exit 1 if any answer
//! was not a 2xx.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

struct Args {
    base_url: String,
    count: usize,
    concurrency: usize,
    json: bool,
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        base_url: String::new(),
        count: 100_000,
        concurrency: 32,
        json: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--json" {
            a.json = true;
            continue;
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--base-url" => a.base_url = value.trim_end_matches('/').to_owned(),
            "--count" => a.count = value.parse().map_err(|_| "--count takes a number")?,
            "--concurrency" => {
                a.concurrency = value.parse().map_err(|_| "--concurrency takes a number")?;
            }
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if a.base_url.is_empty() || a.concurrency == 0 {
        return Err(
            "usage: requestloop --base-url URL [--count N] [--concurrency C] [--json]".into(),
        );
    }
    Ok(a)
}

/// Sends one request with a JSON body; whether it was answered with a 2xx.
async fn put(client: &reqwest::Client, url: String, body: &serde_json::Value) -> bool {
    let sent = client
        .put(url)
        .timeout(Duration::from_secs(30))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body.to_string())
        .send()
        .await;
    match sent {
        Ok(r) => {
            let ok = r.status().is_success();
            ok && r.bytes().await.is_ok()
        }
        Err(_) => false,
    }
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
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("slatis-sync/", env!("CARGO_PKG_VERSION")))
        .pool_idle_timeout(Duration::from_secs(60))
        .build()
        .unwrap_or_else(|_| reqwest::Client::new());
    let next = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let workers: Vec<_> = (0..a.concurrency)
        .map(|_| {
            let (a, client, next, failed) = (
                Arc::clone(&a),
                client.clone(),
                Arc::clone(&next),
                Arc::clone(&failed),
            );
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= a.count {
                        return;
                    }
                    let email = format!("ada+{i}@example.com");
                    let contact =
                        serde_json::json!({"email": email, "first": "Ada", "last": "Lovelace"});
                    if !put(
                        &client,
                        format!("{}/contacts/{email}", a.base_url),
                        &contact,
                    )
                    .await
                    {
                        failed.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    let meeting =
                        serde_json::json!({"contact": "1", "start": "2026-12-01T15:00:00.000Z"});
                    if !put(
                        &client,
                        format!("{}/meetings/bkg_{i}", a.base_url),
                        &meeting,
                    )
                    .await
                    {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.await;
    }
    let seconds = start.elapsed().as_secs_f64();
    let failed = failed.load(Ordering::Relaxed);
    let requests = a.count * 2;
    #[allow(clippy::cast_precision_loss)]
    let rps = requests as f64 / seconds;
    println!(
        "sent {requests} requests ({} bookings x 2 steps) in {seconds:.2}s: {rps:.0} requests/s ({} in flight); failed {failed}",
        a.count, a.concurrency
    );
    if a.json {
        println!(
            "{}",
            serde_json::json!({"count": a.count, "requests": requests, "failed": failed, "seconds": seconds, "rps": rps})
        );
    }
    if failed == 0 {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}
