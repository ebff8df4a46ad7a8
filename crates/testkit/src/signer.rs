//! Signing and sending webhooks the way Slatis does.

pub use slatis_core::signature::{HEADER, sign};
use std::sync::OnceLock;

/// The event time of every delivery this process sends: when it first sent one. One
/// time for the whole run keeps a body re-sent a duplicate, and keeps the fixtures'
/// fixed times from being refused as replays once they are older than a server's
/// `storage.retention`.
pub fn delivery_time() -> chrono::DateTime<chrono::Utc> {
    static AT: OnceLock<chrono::DateTime<chrono::Utc>> = OnceLock::new();
    *AT.get_or_init(chrono::Utc::now)
}

/// `body` as this run delivers it: its top-level `timestamp`, if it has one, set to
/// [`delivery_time`]; anything else as it is.
pub fn fresh(body: &[u8]) -> Vec<u8> {
    slatis_core::envelope::restamp(body, delivery_time()).unwrap_or_else(|| body.to_vec())
}

/// Posts `body` to `url` as a delivery of this run ([`fresh`]) signed with `secret`;
/// returns the status and the JSON answer (`null` if the answer is not JSON). To send a
/// timestamp of your own, sign and post the bytes yourself.
///
/// # Errors
/// When the request cannot be sent.
pub async fn post_signed(
    client: &reqwest::Client,
    url: &str,
    secret: &str,
    body: &[u8],
) -> reqwest::Result<(u16, serde_json::Value)> {
    let body = fresh(body);
    let response = client
        .post(url)
        .header(HEADER, sign(secret.as_bytes(), &body))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await?;
    let status = response.status().as_u16();
    let bytes = response.bytes().await?;
    Ok((
        status,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    ))
}
