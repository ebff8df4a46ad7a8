//! The answer type the mocks build before it becomes an HTTP response, and the ways every
//! mock delivers it ([`After`]): at once, late, broken off mid-answer, endless, or a byte
//! at a time.

use axum::body::{Body, Bytes};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::Value;
use std::time::Duration;

/// The body of an answer.
#[derive(Debug)]
pub enum Payload {
    /// No body.
    Empty,
    /// A JSON body.
    Json(Value),
    /// A [`super::fault::Fault::Status`] body, as given.
    Raw(String),
}

/// Answer headers: (lower-case name, value).
pub type Headers = Vec<(&'static str, String)>;

/// An answer, before it becomes a response.
#[derive(Debug)]
pub struct Reply {
    /// The status.
    pub status: u16,
    /// The body.
    pub body: Payload,
    /// Extra headers.
    pub headers: Headers,
}

/// A handler's result: the answer either way (`Err` short-circuits with `?`).
pub type Answer = Result<Reply, Reply>;

impl Reply {
    /// A JSON answer.
    pub fn json(status: u16, body: Value) -> Self {
        Self {
            status,
            body: Payload::Json(body),
            headers: Vec::new(),
        }
    }

    /// An answer with no body.
    pub fn empty(status: u16) -> Self {
        Self {
            status,
            body: Payload::Empty,
            headers: Vec::new(),
        }
    }

    /// An answer with this body, as given.
    pub fn raw(status: u16, body: String) -> Self {
        Self {
            status,
            body: Payload::Raw(body),
            headers: Vec::new(),
        }
    }

    /// Adds `headers`, except those whose name the answer already has (a fault's header
    /// wins over the mock's own).
    pub fn add_headers(&mut self, headers: Headers) {
        for (name, value) in headers {
            if !self.headers.iter().any(|(n, _)| *n == name) {
                self.headers.push((name, value));
            }
        }
    }

    /// The body's bytes.
    pub fn body_bytes(&self) -> Vec<u8> {
        match &self.body {
            Payload::Empty => Vec::new(),
            Payload::Json(body) => serde_json::to_vec(body).unwrap_or_default(),
            Payload::Raw(body) => body.as_bytes().to_vec(),
        }
    }

    /// The response: this status, the answer's headers (and a JSON content type when
    /// `typed`), and `body` in place of the answer's own.
    fn response(self, status: u16, typed: bool, body: Body) -> Response {
        let mut builder = Response::builder()
            .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR));
        if typed {
            builder = builder.header("content-type", "application/json;charset=utf-8");
        }
        for (name, value) in self.headers {
            builder = builder.header(name, value);
        }
        builder.body(body).unwrap_or_else(|e| {
            let mut broken =
                Response::new(Body::from(format!("mock: cannot build the answer: {e}")));
            *broken.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            broken
        })
    }
}

/// How an answer is delivered.
#[derive(Debug, Clone, Copy)]
pub enum After {
    /// At once.
    Answer,
    /// After this long.
    Slow(Duration),
    /// Half the body, then the connection drops (a body-less answer becomes a 200 whose
    /// body breaks off at once).
    Drop,
    /// The body, then blanks without end.
    Endless,
    /// The body a byte at a time, one every this long.
    Drip(Duration),
}

/// Blanks, sent again and again by an endless answer.
const BLANKS: &[u8] = &[b' '; 64 * 1024];

impl After {
    /// Delivers `reply`; `set_status` records the status the mock answered (0 when the
    /// answer does not complete: dropped, endless, dripped).
    pub async fn deliver(self, reply: Reply, set_status: impl Fn(u16)) -> Response {
        let bytes = reply.body_bytes();
        let status = reply.status;
        let typed = !matches!(reply.body, Payload::Empty);
        match self {
            Self::Answer | Self::Slow(_) => {
                if let Self::Slow(d) = self {
                    tokio::time::sleep(d).await;
                }
                set_status(status);
                reply.response(status, typed, Body::from(bytes))
            }
            Self::Drop => {
                set_status(0);
                let status = if typed { status } else { 200 };
                let half = Bytes::copy_from_slice(&bytes[..bytes.len() / 2]);
                let chunks: Vec<Result<Bytes, std::io::Error>> =
                    vec![Ok(half), Err(std::io::Error::other("connection dropped"))];
                reply.response(
                    status,
                    true,
                    Body::from_stream(futures_util::stream::iter(chunks)),
                )
            }
            Self::Endless => {
                set_status(0);
                let start = futures_util::stream::once(async move { Bytes::from(bytes) });
                let blanks = futures_util::stream::repeat_with(|| Bytes::from_static(BLANKS));
                let body = futures_util::StreamExt::map(
                    futures_util::StreamExt::chain(start, blanks),
                    Ok::<_, std::io::Error>,
                );
                reply.response(status, typed, Body::from_stream(body))
            }
            Self::Drip(every) => {
                set_status(0);
                let drip = futures_util::stream::unfold(0, move |i| {
                    let byte = bytes.get(i).copied();
                    async move {
                        let byte = byte?;
                        tokio::time::sleep(every).await;
                        Some((Ok::<_, std::io::Error>(Bytes::from(vec![byte])), i + 1))
                    }
                });
                reply.response(status, typed, Body::from_stream(drip))
            }
        }
    }
}
