//! `loadgen`: posts signed, distinct Slatis events to a webhook URL over exactly
//! `--concurrency` keep-alive connections, and reports how many were acknowledged per
//! second and the latency distribution.
//!
//! ```text
//! loadgen --url http://127.0.0.1:8080/webhooks/bench --secret whsec_bench \
//!         [--count 20000] [--concurrency 64] [--event BOOKING_CREATED] [--json]
//! ```
//! Invariants:
//! - every body is built and signed before the clock starts (the timestamp inside is the
//!   time of generation), so the measured run does no JSON or HMAC work of its own;
//! - every event has its own booking id, so none is a duplicate;
//! - one task per connection, each a plain HTTP/1 client connection (`http://` only) with
//!   one request in flight; a connection that fails is counted and opened again;
//! - latencies (send to full answer) go into an HDR histogram in microseconds (1 µs to
//!   10 min, 3 significant digits).
//!
//! Prints one human line, and with `--json` also one JSON line
//! `{count, ok, failed, seconds, rps, p50_ms, p99_ms, p999_ms, max_ms}`. Exit 1 if any
//! answer was not a 2xx.

use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use slatis_testkit::{fixtures, signer};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

struct Args {
    url: String,
    secret: String,
    count: usize,
    concurrency: usize,
    event: String,
    json: bool,
}

const USAGE: &str = "usage: loadgen --url http://HOST:PORT/PATH --secret SECRET [--count N] [--concurrency C] [--event TYPE] [--json]";

fn args() -> Result<Args, String> {
    let mut a = Args {
        url: String::new(),
        secret: String::new(),
        count: 20_000,
        concurrency: 64,
        event: "BOOKING_CREATED".into(),
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
            "--url" => a.url = value,
            "--secret" => a.secret = value,
            "--count" => a.count = value.parse().map_err(|_| "--count takes a number")?,
            "--concurrency" => {
                a.concurrency = value.parse().map_err(|_| "--concurrency takes a number")?;
            }
            "--event" => a.event = value,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if a.url.is_empty() || a.secret.is_empty() || a.concurrency == 0 {
        return Err(USAGE.into());
    }
    Ok(a)
}

/// One request, ready to send: the body and its signature header.
struct Prepared {
    body: Bytes,
    signature: hyper::header::HeaderValue,
}

/// Where to connect and what to put in the request line and `host` header.
struct Target {
    addr: String,
    authority: String,
    path: String,
}

fn target(url: &str) -> Result<Target, String> {
    let uri: hyper::Uri = url.parse().map_err(|e| format!("bad --url: {e}"))?;
    if uri.scheme_str() != Some("http") {
        return Err("--url must be http://".into());
    }
    let authority = uri
        .authority()
        .ok_or("--url needs a host")?
        .as_str()
        .to_owned();
    let addr = if uri.port().is_some() {
        authority.clone()
    } else {
        format!("{authority}:80")
    };
    let path = uri
        .path_and_query()
        .map_or("/", hyper::http::uri::PathAndQuery::as_str)
        .to_owned();
    Ok(Target {
        addr,
        authority,
        path,
    })
}

fn prepare(a: &Args) -> Result<Vec<Prepared>, String> {
    let run = format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos()
    );
    (0..a.count)
        .map(|i| {
            let raw = fixtures::booking(
                &a.event,
                &format!("bkg_{run}_{i}"),
                "Ada Lovelace",
                &format!("ada+{run}.{i}@example.com"),
            );
            let body = signer::fresh(raw.as_bytes());
            let signature = signer::sign(a.secret.as_bytes(), &body)
                .parse()
                .map_err(|e| format!("signature header: {e}"))?;
            Ok(Prepared {
                body: Bytes::from(body),
                signature,
            })
        })
        .collect()
}

/// What one connection's task saw.
struct Tally {
    latencies: Histogram<u64>,
    failed: usize,
}

/// Latencies in microseconds, 1 µs to 10 min, 3 significant digits; a longer one is
/// recorded as 10 min (fixed bounds: an auto-resizing histogram would clamp instead).
fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3)
        .unwrap_or_else(|_| unreachable!("valid bounds and precision"))
}

type Sender = http1::SendRequest<Full<Bytes>>;

async fn connect(addr: &str) -> Result<Sender, String> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    let _ = stream.set_nodelay(true);
    let (sender, connection) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(connection);
    Ok(sender)
}

/// Sends one request; `Ok(status)` once the whole answer is read.
async fn send(sender: &mut Sender, t: &Target, p: &Prepared) -> Result<(u16, Bytes), String> {
    sender.ready().await.map_err(|e| e.to_string())?;
    let request = hyper::Request::post(&t.path)
        .header(hyper::header::HOST, &t.authority)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header(signer::HEADER, p.signature.clone())
        .body(Full::new(p.body.clone()))
        .map_err(|e| e.to_string())?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, body))
}

async fn worker(
    t: Arc<Target>,
    bodies: Arc<Vec<Prepared>>,
    next: Arc<AtomicUsize>,
    reported: Arc<AtomicUsize>,
) -> Tally {
    let mut tally = Tally {
        latencies: histogram(),
        failed: 0,
    };
    let report = |e: String| {
        if reported.fetch_add(1, Ordering::Relaxed) < 3 {
            eprintln!("{e}");
        }
    };
    let mut sender: Option<Sender> = None;
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some(p) = bodies.get(i) else {
            return tally;
        };
        let mut s = match sender.take() {
            Some(s) if !s.is_closed() => s,
            _ => match connect(&t.addr).await {
                Ok(s) => s,
                Err(e) => {
                    tally.failed += 1;
                    report(e);
                    continue;
                }
            },
        };
        let start = Instant::now();
        match send(&mut s, &t, p).await {
            Ok((status, _)) if (200..300).contains(&status) => {
                let micros = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
                tally.latencies.saturating_record(micros.max(1));
                sender = Some(s);
            }
            Ok((status, answer)) => {
                tally.failed += 1;
                report(format!(
                    "answer {status}: {}",
                    String::from_utf8_lossy(&answer)
                ));
                sender = Some(s);
            }
            Err(e) => {
                tally.failed += 1;
                report(format!("request failed: {e}"));
            }
        }
    }
}

fn main() -> std::process::ExitCode {
    let (a, t) = match args().and_then(|a| target(&a.url).map(|t| (a, t))) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("{e}");
            return std::process::ExitCode::from(2);
        }
    };
    let bodies = match prepare(&a) {
        Ok(b) => Arc::new(b),
        Err(e) => {
            eprintln!("{e}");
            return std::process::ExitCode::from(2);
        }
    };
    // One thread: the generator takes at most one core from the server it measures.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let t = Arc::new(t);
    let next = Arc::new(AtomicUsize::new(0));
    let reported = Arc::new(AtomicUsize::new(0));
    let (tallies, elapsed) = runtime.block_on(async {
        let start = Instant::now();
        let workers: Vec<_> = (0..a.concurrency)
            .map(|_| {
                tokio::spawn(worker(
                    Arc::clone(&t),
                    Arc::clone(&bodies),
                    Arc::clone(&next),
                    Arc::clone(&reported),
                ))
            })
            .collect();
        let mut tallies = Vec::new();
        for w in workers {
            if let Ok(tally) = w.await {
                tallies.push(tally);
            }
        }
        (tallies, start.elapsed())
    });
    let mut latencies = histogram();
    let mut failed = 0;
    for tally in &tallies {
        let _ = latencies.add(&tally.latencies);
        failed += tally.failed;
    }
    let ok = latencies.len();
    let seconds = elapsed.as_secs_f64();
    #[allow(clippy::cast_precision_loss)]
    let rps = ok as f64 / seconds;
    #[allow(clippy::cast_precision_loss)]
    let ms = |micros: u64| micros as f64 / 1000.0;
    let (p50, p99, p999, max) = (
        ms(latencies.value_at_quantile(0.5)),
        ms(latencies.value_at_quantile(0.99)),
        ms(latencies.value_at_quantile(0.999)),
        ms(latencies.max()),
    );
    println!(
        "acknowledged {ok} of {} in {seconds:.2}s: {rps:.0} webhooks/s ({} connections); latency ms p50 {p50:.2} p99 {p99:.2} p99.9 {p999:.2} max {max:.2}; failed {failed}",
        a.count, a.concurrency
    );
    if a.json {
        println!(
            "{}",
            serde_json::json!({
                "count": a.count, "ok": ok, "failed": failed, "seconds": seconds, "rps": rps,
                "p50_ms": p50, "p99_ms": p99, "p999_ms": p999, "max_ms": max,
            })
        );
    }
    if failed == 0 {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}
