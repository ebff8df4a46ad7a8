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
    let body = stamped_now(read(file)?);
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

/// `body` with its top-level `timestamp` set to now; as it was if it has none (or is not
/// a JSON object).
fn stamped_now(body: Vec<u8>) -> Vec<u8> {
    let Ok(serde_json::Value::Object(mut event)) = serde_json::from_slice(&body) else {
        return body;
    };
    let Some(timestamp) = event.get_mut("timestamp") else {
        return body;
    };
    *timestamp = chrono::Utc::now()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        .into();
    serde_json::to_vec(&event).unwrap_or(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_present_timestamp_is_set_to_now() {
        let before = chrono::Utc::now() - chrono::Duration::seconds(1);
        let out = stamped_now(
            br#"{"event":"A","timestamp":"2020-01-01T00:00:00.000Z","data":{"timestamp":"x"}}"#
                .to_vec(),
        );
        let v: serde_json::Value = serde_json::from_slice(&out).expect("json");
        let at = chrono::DateTime::parse_from_rfc3339(v["timestamp"].as_str().expect("text"))
            .expect("a time");
        assert!(at >= before, "{at}");
        assert_eq!(v["data"]["timestamp"], "x", "nested fields are kept");
        assert_eq!(
            stamped_now(b"{\"event\":\"A\"}".to_vec()),
            b"{\"event\":\"A\"}"
        );
        assert_eq!(stamped_now(b"not json".to_vec()), b"not json");
    }
}
