//! Reading a CRM's answer: its body, up to a cap, and what a redirect means.
//!
//! Invariants: at most [`MAX_ANSWER_BYTES`] of a body are held (it is read as a stream, and
//! a larger declared length is refused before reading), and a redirect is never followed:
//! it is a permanent failure that says where it pointed, without the query, fragment or
//! user info a URL can carry secrets in.

use crate::delivery::DeliveryError;
use bytes::{Bytes, BytesMut};
use reqwest::{Method, StatusCode};

/// The most of a CRM's answer that is read. Answers are a few KB; past this the server is
/// broken or hostile, and reading on would only hold memory and a worker.
pub const MAX_ANSWER_BYTES: usize = 4 << 20;

/// Reads an answer's body as it streams in, up to [`MAX_ANSWER_BYTES`]; `on_error` classes
/// a failed read (a reset, the timeout). The request's timeout covers the whole read
/// (reqwest's per-request timeout runs until the body ends), so a body that drips in
/// slowly is cut off with the timeout.
pub(super) async fn read_body(
    mut response: reqwest::Response,
    method: &Method,
    on_error: impl Fn(&reqwest::Error) -> DeliveryError,
) -> Result<Bytes, DeliveryError> {
    let status = response.status().as_u16();
    let too_large = || {
        DeliveryError::retryable(format!(
            "{method} got an answer over {} MiB (HTTP {status}); it was not read further",
            MAX_ANSWER_BYTES >> 20
        ))
    };
    if response
        .content_length()
        .is_some_and(|n| n > MAX_ANSWER_BYTES as u64)
    {
        return Err(too_large());
    }
    let mut body = BytesMut::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) if body.len() + chunk.len() > MAX_ANSWER_BYTES => {
                return Err(too_large());
            }
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            Ok(None) => return Ok(body.freeze()),
            Err(e) => return Err(on_error(&e)),
        }
    }
}

/// The statuses that send a client elsewhere (`Location`). 300 and 304 are answers in
/// their own right (Salesforce's 300 lists the records an external id matched).
pub(super) fn is_redirect(status: StatusCode) -> bool {
    matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
}

/// A redirect is never followed (the client's policy): a permanent failure that says where
/// the CRM pointed, without the query, fragment or user info a URL can carry secrets in.
pub(super) fn refused_redirect(method: &Method, response: &reqwest::Response) -> DeliveryError {
    let target = response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|location| response.url().join(location.trim()).ok())
        .map_or_else(
            || "no readable Location".to_owned(),
            |mut to| {
                to.set_query(None);
                to.set_fragment(None);
                let _ = to.set_username("");
                let _ = to.set_password(None);
                let text = to.as_str();
                match text.char_indices().nth(200) {
                    Some((cut, _)) => format!("{}…", &text[..cut]),
                    None => text.to_owned(),
                }
            },
        );
    DeliveryError::permanent(format!(
        "HTTP {}: {method} was redirected to {target}; redirects are refused (point the connector at the API's own URL)",
        response.status().as_u16()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connector::{DryRunReply, Recorder, Reply, Transport};
    use crate::redact::Redactor;
    use serde_json::Value;
    use std::time::Duration;

    /// Serves one connection: writes `head`, then `body` `repeat` times, then closes.
    async fn serve_once(head: &'static str, body: &'static [u8], repeat: usize) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!(
            "http://{}/api/contacts?token=s3cr3t",
            listener.local_addr().expect("addr")
        );
        tokio::spawn(async move {
            let (mut conn, _) = listener.accept().await.expect("accept");
            let mut request = [0u8; 4096];
            let _ = conn.read(&mut request).await;
            let _ = conn.write_all(head.as_bytes()).await;
            for _ in 0..repeat {
                if conn.write_all(body).await.is_err() {
                    return;
                }
            }
        });
        url
    }

    async fn send(url: &str) -> Result<Reply, DeliveryError> {
        let transport = Transport::new(
            (None, None),
            Duration::from_secs(5),
            false,
            Redactor::default(),
        );
        let recorder = Recorder::default();
        let out = transport.outbound(&recorder);
        out.send(
            out.request(Method::GET, url),
            DryRunReply::json(Value::Null),
        )
        .await
    }

    #[tokio::test]
    async fn answers_are_read_up_to_the_cap() {
        const CHUNK: &[u8] = &[b' '; 64 * 1024];
        let endless = serve_once(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n",
            CHUNK,
            usize::MAX,
        )
        .await;
        let e = send(&endless).await.expect_err("cut off");
        assert_eq!(e.class(), "retryable");
        assert_eq!(
            e.message(),
            "GET got an answer over 4 MiB (HTTP 200); it was not read further"
        );
        let declared = serve_once(
            "HTTP/1.1 200 OK\r\ncontent-length: 999999999999\r\n\r\n",
            b"{}",
            1,
        )
        .await;
        assert!(
            send(&declared)
                .await
                .expect_err("declared too large")
                .message()
                .contains("over 4 MiB")
        );
        // just under the cap is read whole
        let fits = serve_once("HTTP/1.1 200 OK\r\n\r\n", CHUNK, 63).await;
        assert_eq!(
            send(&fits).await.expect("fits").body.len(),
            63 * CHUNK.len()
        );
    }

    #[tokio::test]
    async fn a_redirect_is_refused_naming_where_without_its_query() {
        let away = serve_once(
            "HTTP/1.1 302 Found\r\nlocation: https://user:pw@evil.example/steal?token=abc#frag\r\ncontent-length: 0\r\n\r\n",
            b"",
            0,
        )
        .await;
        let e = send(&away).await.expect_err("refused");
        assert_eq!(e.class(), "permanent");
        assert_eq!(
            e.message(),
            "HTTP 302: GET was redirected to https://evil.example/steal; redirects are refused (point the connector at the API's own URL)"
        );
        let relative = serve_once(
            "HTTP/1.1 308 Permanent Redirect\r\nlocation: /v2/contacts?x=1\r\ncontent-length: 0\r\n\r\n",
            b"",
            0,
        )
        .await;
        let e = send(&relative).await.expect_err("refused");
        let host = relative.split("/api").next().unwrap_or_default().to_owned();
        assert!(
            e.message()
                .contains(&format!("redirected to {host}/v2/contacts;")),
            "{e}"
        );
        assert!(
            !e.message().contains("s3cr3t") && !e.message().contains("x=1"),
            "{e}"
        );
        let nowhere = serve_once("HTTP/1.1 301 Moved\r\ncontent-length: 0\r\n\r\n", b"", 0).await;
        assert!(
            send(&nowhere)
                .await
                .expect_err("refused")
                .message()
                .contains("redirected to no readable Location")
        );
    }
}
