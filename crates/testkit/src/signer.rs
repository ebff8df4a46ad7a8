//! Signing and sending webhooks the way Slatis does.

pub use slatis_core::signature::{HEADER, sign};

/// Posts `body` to `url` signed with `secret`; returns the status and the JSON answer
/// (`null` if the answer is not JSON).
///
/// # Errors
/// When the request cannot be sent.
pub async fn post_signed(
    client: &reqwest::Client,
    url: &str,
    secret: &str,
    body: &[u8],
) -> reqwest::Result<(u16, serde_json::Value)> {
    let response = client
        .post(url)
        .header(HEADER, sign(secret.as_bytes(), body))
        .header("content-type", "application/json")
        .body(body.to_vec())
        .send()
        .await?;
    let status = response.status().as_u16();
    let bytes = response.bytes().await?;
    Ok((
        status,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    ))
}
