//! HTTP/1 over a raw TCP stream, for requests an HTTP client will not send (malformed
//! heads, absurd lengths, slow or stalled clients) and for watching when a server closes.

use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What a server did with a request, as seen from the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// It answered (interim `1xx` answers are skipped).
    Answer(Answer),
    /// It closed the connection (or reset it) without an answer, after this long.
    Closed(Duration),
    /// Nothing happened within the wait.
    Silence,
}

/// One HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// The header lines, lower-cased names, as `name: value`.
    pub headers: Vec<String>,
    /// The body (as far as `Content-Length` says, or until the close).
    pub body: Vec<u8>,
    /// From the end of the last write to the end of the answer.
    pub after: Duration,
}

impl Answer {
    /// The value of header `name` (lower case), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find_map(|h| {
            let (n, v) = h.split_once(':')?;
            (n == name).then(|| v.trim())
        })
    }

    /// The body as JSON (`null` if it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// Raises this process's soft open-file limit to its hard limit (for tests that hold
/// thousands of connections); returns the limit now in force.
///
/// # Panics
/// If the limit cannot be read or raised.
pub fn raise_open_file_limit() -> u64 {
    rlimit::increase_nofile_limit(u64::MAX).expect("raise RLIMIT_NOFILE")
}

/// Connects to `addr` (`127.0.0.1:PORT`).
///
/// # Panics
/// If the connection cannot be made.
pub async fn connect(addr: &str) -> TcpStream {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let _ = stream.set_nodelay(true);
    stream
}

/// Writes `bytes` to `stream`; a write the server refused (it already closed) is ignored,
/// as what counts is what the server answers.
pub async fn send(stream: &mut TcpStream, bytes: &[u8]) {
    let _ = stream.write_all(bytes).await;
    let _ = stream.flush().await;
}

/// Connects, sends `request` and waits up to `within` for what the server does.
pub async fn exchange(addr: &str, request: &[u8], within: Duration) -> Seen {
    let mut stream = connect(addr).await;
    send(&mut stream, request).await;
    receive(&mut stream, within).await
}

/// Reads one answer from `stream`, waiting up to `within` (from now).
pub async fn receive<R: AsyncRead + Unpin>(stream: &mut R, within: Duration) -> Seen {
    let start = Instant::now();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(seen) = parse(&mut buf, false, start) {
            return seen;
        }
        let left = within.saturating_sub(start.elapsed());
        match tokio::time::timeout(left, stream.read(&mut chunk)).await {
            Err(_) => return Seen::Silence,
            Ok(Ok(0) | Err(_)) => {
                return parse(&mut buf, true, start).unwrap_or(Seen::Closed(start.elapsed()));
            }
            Ok(Ok(n)) => buf.extend_from_slice(chunk.get(..n).unwrap_or_default()),
        }
    }
}

/// Waits up to `within` for the server to close `stream`, discarding what it sends;
/// returns after how long it closed, `None` if it did not.
pub async fn closed_within<R: AsyncRead + Unpin>(
    stream: &mut R,
    within: Duration,
) -> Option<Duration> {
    let start = Instant::now();
    let mut chunk = [0u8; 8192];
    loop {
        let left = within.saturating_sub(start.elapsed());
        match tokio::time::timeout(left, stream.read(&mut chunk)).await {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some(start.elapsed()),
            Ok(Ok(_)) => {}
        }
    }
}

/// A complete answer at the start of `buf` (interim answers dropped from it), or `None`
/// if more is needed; `eof` when nothing more will come.
fn parse(buf: &mut Vec<u8>, eof: bool, start: Instant) -> Option<Seen> {
    loop {
        let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
        let head = String::from_utf8_lossy(buf.get(..end)?).into_owned();
        let mut lines = head.split("\r\n");
        let status: u16 = lines.next()?.split(' ').nth(1)?.parse().ok()?;
        let headers: Vec<String> = lines
            .map(|l| match l.split_once(':') {
                Some((n, v)) => format!("{}:{v}", n.to_ascii_lowercase()),
                None => l.to_owned(),
            })
            .collect();
        let body_at = end + 4;
        if (100..200).contains(&status) {
            buf.drain(..body_at);
            continue;
        }
        let length = headers
            .iter()
            .find_map(|h| h.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse::<usize>().ok());
        let body = match length {
            Some(n) if buf.len() >= body_at + n => buf.get(body_at..body_at + n)?.to_vec(),
            None if eof => buf.get(body_at..)?.to_vec(),
            _ => return None,
        };
        return Some(Seen::Answer(Answer {
            status,
            headers,
            body,
            after: start.elapsed(),
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interim_answers_are_skipped() {
        let mut buf = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 408 Request Timeout\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}".to_vec();
        let Some(Seen::Answer(a)) = parse(&mut buf, false, Instant::now()) else {
            panic!("an answer");
        };
        assert_eq!(a.status, 408);
        assert_eq!(a.header("connection"), Some("close"));
        assert_eq!(a.body, b"{}");
    }

    #[test]
    fn a_partial_answer_needs_more() {
        let mut buf = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}".to_vec();
        assert_eq!(parse(&mut buf, false, Instant::now()), None);
    }
}
