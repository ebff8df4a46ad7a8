//! The answer type the CRM mocks build before it becomes an HTTP response, with the one
//! way every mock breaks a connection off mid-answer ([`super::Fault::Drop`]).

use axum::body::{Body, Bytes};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::Value;

/// The body of an answer.
#[derive(Debug)]
pub(super) enum Payload {
    /// No body.
    Empty,
    /// A JSON body.
    Json(Value),
    /// A [`super::Fault::Status`] body, as given.
    Raw(String),
}

/// An answer, before it becomes a response.
#[derive(Debug)]
pub(super) struct Reply {
    /// The status.
    pub(super) status: u16,
    /// The body.
    pub(super) body: Payload,
    /// Extra headers.
    pub(super) headers: Vec<(&'static str, String)>,
}

/// A handler's result: the answer either way (`Err` short-circuits with `?`).
pub(super) type Answer = Result<Reply, Reply>;

impl Reply {
    /// A JSON answer.
    pub(super) fn json(status: u16, body: Value) -> Self {
        Self {
            status,
            body: Payload::Json(body),
            headers: Vec::new(),
        }
    }

    /// An answer with no body.
    pub(super) fn empty(status: u16) -> Self {
        Self {
            status,
            body: Payload::Empty,
            headers: Vec::new(),
        }
    }

    /// The body's bytes.
    pub(super) fn body_bytes(&self) -> Vec<u8> {
        match &self.body {
            Payload::Empty => Vec::new(),
            Payload::Json(body) => serde_json::to_vec(body).unwrap_or_default(),
            Payload::Raw(body) => body.as_bytes().to_vec(),
        }
    }

    /// The response; with `drop_body`, one whose body breaks off halfway (a body-less
    /// answer becomes a 200 whose body breaks off at once).
    pub(super) fn into_response(self, drop_body: bool) -> Response {
        let bytes = self.body_bytes();
        let empty = matches!(self.body, Payload::Empty);
        let status = if drop_body && empty { 200 } else { self.status };
        let mut builder = Response::builder()
            .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR));
        if !empty || drop_body {
            builder = builder.header("content-type", "application/json;charset=utf-8");
        }
        for (name, value) in self.headers {
            builder = builder.header(name, value);
        }
        let body = if drop_body {
            let half = Bytes::copy_from_slice(&bytes[..bytes.len() / 2]);
            let chunks: Vec<Result<Bytes, std::io::Error>> =
                vec![Ok(half), Err(std::io::Error::other("connection dropped"))];
            Body::from_stream(futures_util::stream::iter(chunks))
        } else {
            Body::from(bytes)
        };
        builder.body(body).unwrap_or_default()
    }
}

/// Binds `127.0.0.1:0` for a mock named `name`.
///
/// # Panics
/// If no port can be bound (the test cannot run).
pub(super) async fn bind(name: &str) -> (tokio::net::TcpListener, std::net::SocketAddr) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("bind the {name} mock: {e}"));
    let addr = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("{name} mock address: {e}"));
    (listener, addr)
}

/// Serves `app` on `listener` until the task is aborted.
pub(super) fn spawn(
    listener: tokio::net::TcpListener,
    app: axum::Router,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    })
}
