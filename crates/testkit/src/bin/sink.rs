//! `sink`: an instant HTTP destination standing in for a CRM in benchmarks. Reads each
//! request's body and answers at once with `--status` (default `200`) and the JSON body
//! `{"id":"1"}`, whatever the method and path.
//!
//! ```text
//! sink --listen 127.0.0.1:PORT [--status 400]
//! ```
//! A `4xx` status makes every delivery fail permanently (dead-lettered at once), which
//! `scripts/bench-delivery.sh` uses to build a backlog. Runs on one thread so it leaves
//! the other cores to the process under test. Prints one line once listening, nothing
//! per request.

use axum::http::StatusCode;
use axum::response::IntoResponse;

fn args() -> Result<(String, StatusCode), String> {
    let (mut listen, mut status) = (String::new(), StatusCode::OK);
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--listen" => listen = value,
            "--status" => {
                status = value
                    .parse::<u16>()
                    .ok()
                    .and_then(|s| StatusCode::from_u16(s).ok())
                    .ok_or("--status takes an HTTP status")?;
            }
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if listen.is_empty() {
        return Err("usage: sink --listen ADDR [--status CODE]".into());
    }
    Ok((listen, status))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let (listen, status) = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return std::process::ExitCode::from(2);
        }
    };
    let app = axum::Router::new().fallback(move |_body: axum::body::Bytes| async move {
        (
            status,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            r#"{"id":"1"}"#,
        )
            .into_response()
    });
    slatis_testkit::standin::serve("sink", &listen, &format!(", answering {status}"), app).await
}
