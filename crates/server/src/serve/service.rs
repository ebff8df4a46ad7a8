//! One request on a served connection: the router's answer, within the body and request
//! deadlines.
//!
//! Invariants:
//! - the body must arrive whole within `body_timeout` of the headers: reading it after
//!   that fails with [`BodyTimeout`], and the answer is 408 with `Connection: close`,
//!   whatever the handler made of the error;
//! - a request not answered within `request_timeout` is answered 503 with
//!   `Connection: close` and its handler is dropped: never a 2xx the handler did not give;
//! - the connection counts as inside a request until the answer body is dropped (written).

use super::conns::{ConnState, InRequest};
use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, Response, StatusCode, header};
use axum::response::IntoResponse;
use bytes::Bytes;
use hyper::body::{Frame, Incoming, SizeHint};
use serde_json::json;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep};
use tower::ServiceExt;

/// A request body that did not arrive within `server.body_timeout`.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within server.body_timeout")]
pub struct BodyTimeout;

/// Whether `err`, or an error that caused it, is an `E` (e.g. [`BodyTimeout`]).
pub fn caused_by<E: std::error::Error + 'static>(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(err);
    while let Some(e) = cause {
        if e.is::<E>() {
            return true;
        }
        cause = e.source();
    }
    false
}

/// The 408 answer to a body that did not arrive in time (the connection is closed after).
pub fn body_timeout_answer() -> axum::response::Response {
    closing(
        StatusCode::REQUEST_TIMEOUT,
        "request body not received in time",
    )
}

/// An answer after which the connection is closed.
pub(super) fn closing(status: StatusCode, error: &str) -> axum::response::Response {
    (
        status,
        [(header::CONNECTION, "close")],
        axum::Json(json!({ "error": error })),
    )
        .into_response()
}

/// The deadlines of one request.
#[derive(Debug, Clone, Copy)]
pub(super) struct Deadlines {
    pub(super) body: Duration,
    pub(super) request: Duration,
}

/// The hyper service of one connection: the router, behind the deadlines.
pub(super) struct RequestService {
    pub(super) app: Router,
    pub(super) deadlines: Deadlines,
    pub(super) conn: Arc<ConnState>,
    /// The peer, given to each request as `ConnectInfo<SocketAddr>`.
    pub(super) peer: SocketAddr,
}

type Answer = Response<Tracked>;

impl hyper::service::Service<Request<Incoming>> for RequestService {
    type Response = Answer;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Answer, Infallible>> + Send>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let Some(in_request) = self.conn.begin() else {
            // closed to make room or for shutdown just as the headers came in
            let answer = closing(StatusCode::SERVICE_UNAVAILABLE, "server busy, retry later");
            return Box::pin(std::future::ready(Ok(answer.map(|body| Tracked {
                body,
                _in_request: None,
            }))));
        };
        let timed_out = Arc::new(AtomicBool::new(false));
        let mut req = req.map(|body| TimedBody {
            body,
            deadline: Instant::now() + self.deadlines.body,
            sleep: None,
            timed_out: Arc::clone(&timed_out),
        });
        req.extensions_mut().insert(ConnectInfo(self.peer));
        let app = self.app.clone();
        let limit = self.deadlines.request;
        Box::pin(async move {
            let answer = match tokio::time::timeout(limit, app.oneshot(req)).await {
                Ok(Ok(_)) if timed_out.load(Ordering::Relaxed) => body_timeout_answer(),
                Ok(Ok(answer)) => answer,
                Ok(Err(never)) => match never {},
                Err(_) => {
                    tracing::debug!("request not answered within server.request_timeout");
                    closing(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "request not answered in time, retry later",
                    )
                }
            };
            Ok(answer.map(|body| Tracked {
                body,
                _in_request: Some(in_request),
            }))
        })
    }
}

/// A request body that fails with [`BodyTimeout`] once its deadline has passed. The
/// timer is set only when the body has to be waited for (a body already received, the
/// usual case, costs no timer).
pub(super) struct TimedBody {
    body: Incoming,
    deadline: Instant,
    sleep: Option<Pin<Box<Sleep>>>,
    timed_out: Arc<AtomicBool>,
}

impl TimedBody {
    fn timeout(&self) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.timed_out.store(true, Ordering::Relaxed);
        Poll::Ready(Some(Err(Box::new(BodyTimeout))))
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl hyper::body::Body for TimedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if Instant::now() >= self.deadline {
            return self.timeout();
        }
        if let Poll::Ready(frame) = Pin::new(&mut self.body).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let deadline = self.deadline;
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if sleep.as_mut().poll(cx).is_ready() {
            return self.timeout();
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// An answer body that keeps its connection inside the request until it is written.
pub(super) struct Tracked {
    body: Body,
    _in_request: Option<InRequest>,
}

impl hyper::body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_timeout_is_found_under_the_errors_that_wrap_it() {
        let wrapped = axum::Error::new(axum::Error::new(BodyTimeout));
        assert!(caused_by::<BodyTimeout>(&wrapped));
        let other = axum::Error::new(std::io::Error::other("reset"));
        assert!(!caused_by::<BodyTimeout>(&other));
    }
}
