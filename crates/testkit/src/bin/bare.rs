//! `bare`: the ceiling for ingest benchmarks. An axum server that reads each request's
//! body and answers `200` (empty body) to any `POST` on any path, `405` to anything else.
//! It verifies nothing and stores nothing.
//!
//! ```text
//! bare --listen 127.0.0.1:PORT
//! ```
//! Runs on a multi-thread runtime like `slatis-sync serve`, so the two compare on the
//! same footing. Prints one line once listening, nothing per request.

use axum::http::{Method, StatusCode};

async fn answer(method: Method, _body: axum::body::Bytes) -> StatusCode {
    if method == Method::POST {
        StatusCode::OK
    } else {
        StatusCode::METHOD_NOT_ALLOWED
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let listen = match std::env::args().skip(1).collect::<Vec<_>>().as_slice() {
        [flag, addr] if flag == "--listen" => addr.clone(),
        _ => {
            eprintln!("usage: bare --listen ADDR");
            return std::process::ExitCode::from(2);
        }
    };
    let app = axum::Router::new().fallback(answer);
    slatis_testkit::standin::serve("bare", &listen, "", app).await
}
