//! `slatis-sync sign` and `slatis-sync send`: sign a body the way Slatis does.

use super::read;
use anyhow::Context as _;
use std::io::Read as _;
use std::path::Path;
use std::process::ExitCode;

/// Prints the `x-slatis-signature` value for `file` (or stdin).
pub fn sign(secret: &str, file: Option<&Path>) -> anyhow::Result<ExitCode> {
    let body = match file {
        Some(f) => read(f)?,
        None => {
            let mut buf = Vec::new();
            std::io::stdin()
                .read_to_end(&mut buf)
                .context("cannot read stdin")?;
            buf
        }
    };
    println!("{}", slatis_core::signature::sign(secret.as_bytes(), &body));
    Ok(ExitCode::SUCCESS)
}

/// Signs `file` and POSTs it to `url` as a fresh delivery: a top-level `timestamp` in it
/// is set to now, as Slatis stamps each delivery (the server refuses a signed timestamp
/// older than `storage.retention` as a possible replay). Exit 0 only on a 2xx answer.
pub async fn send(url: &str, secret: &str, file: &Path) -> anyhow::Result<ExitCode> {
    let raw = read(file)?;
    let body = slatis_core::envelope::restamp(&raw, chrono::Utc::now()).unwrap_or(raw);
    let response = reqwest::Client::new()
        .post(url)
        .header(
            slatis_core::signature::HEADER,
            slatis_core::signature::sign(secret.as_bytes(), &body),
        )
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .with_context(|| format!("cannot POST to {url}"))?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    println!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    );
    let pretty = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or(text);
    if !pretty.is_empty() {
        println!("{pretty}");
    }
    Ok(if status.is_success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
