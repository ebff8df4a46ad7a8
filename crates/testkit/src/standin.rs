//! The one way the benchmark stand-ins (`bare`, `sink`) serve: bind, say so on stdout,
//! serve until killed.
//!
//! Invariant: a bind or serve failure is one line on stderr and a non-zero exit code.

use std::process::ExitCode;

/// Serves `app` on `listen`, printing `"{name} listening on {listen}{note}"` once bound.
pub async fn serve(name: &str, listen: &str, note: &str, app: axum::Router) -> ExitCode {
    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("bind {listen}: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("{name} listening on {listen}{note}");
    match axum::serve(listener, app).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("serve: {e}");
            ExitCode::FAILURE
        }
    }
}
