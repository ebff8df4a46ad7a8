//! The HTTP server of both listeners (ingress and admin), on hyper, with every wait
//! bounded: the ingress faces the open internet. Plain HTTP/1.1, or with `tls:` HTTPS
//! offering HTTP/2 and HTTP/1.1 ([`tls`]).
//!
//! Invariants:
//! - a connection is never idle (waiting for complete headers, or kept alive between
//!   requests) for longer than `header_timeout`: hyper's header read timeout runs from
//!   the connect and again from the end of each answer;
//! - a request body arrives whole within `body_timeout` (else 408) and a request is
//!   answered within `request_timeout` (else 503), both with `Connection: close`
//!   ([`service`]);
//! - at most `max_connections` connections are held: at the cap the connection idle the
//!   longest is closed to make room, and when every connection is inside a request a new
//!   one gets a fast 503 with `Connection: close` ([`conns`]); accepting never stops, and
//!   an accept error (out of file descriptors) is backed off briefly;
//! - on cancel, accepting stops, idle connections close at once, requests in flight get
//!   `shutdown_timeout` to finish, then every connection still open is dropped.
//!
//! - with TLS, the handshake is bounded by `header_timeout` too (it is done in the
//!   connection's own task, never in the accept loop), and an HTTP/2 connection is closed
//!   once idle for `header_timeout` (HTTP/2 has no header read timeout of its own).
//!
//! The accept loop hands each accepted stream to [`Server::connection`] as any
//! `AsyncRead + AsyncWrite` stream (with its peer's address, which each request gets as
//! `ConnectInfo<SocketAddr>`).

mod conns;
mod fds;
mod service;
pub mod tls;

pub use service::{BodyTimeout, body_timeout_answer, caused_by};

use axum::Router;
use axum::http::StatusCode;
use conns::{Conns, Slot};
use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulConnection;
use service::{Deadlines, RequestService};
use slatis_core::Config;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Requests one HTTP/2 connection may have in flight at once.
const MAX_STREAMS: u32 = 64;

/// Connections the admin listener holds at most (a dashboard and a metrics scraper need
/// a few).
pub const ADMIN_MAX_CONNECTIONS: usize = 16;

/// Refusals (503 at the cap) in progress at once per listener; past that a connection is
/// closed without an answer, as there is no room left to give one.
const REFUSALS_AT_ONCE: usize = 16;

/// How long a refusal may take (read the request's headers, answer 503).
const REFUSAL_WITHIN: Duration = Duration::from_secs(2);

/// How long the loop waits after an accept error such as EMFILE before accepting again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(20);

/// The largest request head (request line and headers) read; larger gets 431.
const MAX_HEAD_BYTES: usize = 16 * 1024;

/// The bounds one listener serves under (from `server:`).
#[derive(Debug, Clone)]
pub struct Limits {
    /// Time to send complete headers, from the connect or the end of the previous answer.
    pub header_timeout: Duration,
    /// Time to send the whole body once the headers are in.
    pub body_timeout: Duration,
    /// Time for the answer once the headers are in.
    pub request_timeout: Duration,
    /// On shutdown, how long requests in flight may still take.
    pub shutdown_timeout: Duration,
    /// Connections held at most.
    pub max_connections: usize,
}

/// The limits of the ingress and of the admin listener for `config`. Raises the soft
/// open-file limit to the hard one, and lowers `max_connections` (with a warning) to what
/// that limit leaves once the store, outbound CRM connections and the admin listener
/// have their share.
pub fn limits(config: &Config) -> (Limits, Limits) {
    let s = &config.server;
    let others = config.delivery.concurrency + ADMIN_MAX_CONNECTIONS + 2 * REFUSALS_AT_ONCE;
    let nofile = fds::raise_open_file_limit();
    let cap = fds::connection_budget(s.max_connections, nofile, others);
    if cap < s.max_connections {
        tracing::warn!(
            "server.max_connections is {} but the open-file limit ({}) leaves room for {cap}: serving at most {cap} connections",
            s.max_connections,
            nofile.unwrap_or_default(),
        );
    }
    let ingress = Limits {
        header_timeout: s.header_timeout,
        body_timeout: s.body_timeout,
        request_timeout: s.request_timeout,
        shutdown_timeout: s.shutdown_timeout,
        max_connections: cap,
    };
    let admin = Limits {
        max_connections: ADMIN_MAX_CONNECTIONS,
        ..ingress.clone()
    };
    (ingress, admin)
}

/// Serves `app` on `listener` under `limits` (over HTTPS with `tls`) until `cancel`, then
/// shuts down (see the module's invariants).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    tls: Option<Arc<tls::Tls>>,
    cancel: CancellationToken,
) {
    let server = Arc::new(Server::new(app, &limits, tls));
    let mut tasks = JoinSet::new();
    let mut accept_errors = Throttled::default();
    let mut refusals = Throttled::default();
    loop {
        let accepted = tokio::select! {
            biased;
            () = cancel.cancelled() => break,
            Some(ended) = tasks.join_next(), if !tasks.is_empty() => {
                if ended.is_err_and(|e| e.is_panic()) {
                    tracing::error!("a connection task panicked");
                }
                continue;
            }
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                if !server.take(stream, peer, &mut tasks, &cancel)
                    && let Some(more) = refusals.due()
                {
                    tracing::warn!(
                        max_connections = limits.max_connections,
                        "every connection is inside a request: new connections are answered 503 ({more} more since the last note)"
                    );
                }
            }
            Err(e) if is_transient(&e) => {}
            Err(e) => {
                if let Some(more) = accept_errors.due() {
                    tracing::warn!(error = %e, "cannot accept a connection, retrying shortly ({more} more since the last note)");
                }
                tokio::select! {
                    () = cancel.cancelled() => break,
                    () = tokio::time::sleep(ACCEPT_BACKOFF) => {}
                }
            }
        }
    }
    drop(listener);
    let drained = tokio::time::timeout(limits.shutdown_timeout, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            connections = tasks.len(),
            "server.shutdown_timeout passed: closing the connections still open"
        );
        tasks.shutdown().await;
    }
}

/// An accept error about one connection only (it went away before it was taken).
fn is_transient(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset, Interrupted};
    matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset | Interrupted
    )
}

/// A note that is written at most every ten seconds, with how many were left out.
#[derive(Default)]
struct Throttled {
    last: Option<Instant>,
    left_out: u64,
}

impl Throttled {
    const EVERY: Duration = Duration::from_secs(10);

    /// `Some(left out since the last note)` when a note is due now.
    fn due(&mut self) -> Option<u64> {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < Self::EVERY)
        {
            self.left_out += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.left_out))
    }
}

/// What every connection of one listener shares.
struct Server {
    app: Router,
    deadlines: Deadlines,
    http: http1::Builder,
    http2: http2::Builder<TokioExecutor>,
    refusal_http: http1::Builder,
    conns: Arc<Conns>,
    refusals: Arc<Semaphore>,
    tls: Option<Arc<tls::Tls>>,
    /// A TLS handshake, or an HTTP/2 connection with no request, lasts this long at most.
    idle: Duration,
}

impl Server {
    fn new(app: Router, limits: &Limits, tls: Option<Arc<tls::Tls>>) -> Self {
        let mut http = http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout)
            .max_header_size(MAX_HEAD_BYTES);
        let mut refusal_http = http.clone();
        refusal_http
            .header_read_timeout(limits.header_timeout.min(Duration::from_secs(1)))
            .keep_alive(false);
        let mut http2 = http2::Builder::new(TokioExecutor::new());
        http2
            .timer(TokioTimer::new())
            .max_header_list_size(u32::try_from(MAX_HEAD_BYTES).unwrap_or(u32::MAX))
            .max_concurrent_streams(MAX_STREAMS)
            .keep_alive_interval(limits.header_timeout)
            .keep_alive_timeout(limits.header_timeout);
        Self {
            app,
            deadlines: Deadlines {
                body: limits.body_timeout,
                request: limits.request_timeout,
            },
            http,
            http2,
            refusal_http,
            conns: Conns::new(limits.max_connections),
            refusals: Arc::new(Semaphore::new(REFUSALS_AT_ONCE)),
            tls,
            idle: limits.header_timeout,
        }
    }

    /// Serves `io` if there is room, else refuses it; returns whether it was served.
    fn take<I>(
        self: &Arc<Self>,
        io: I,
        peer: SocketAddr,
        tasks: &mut JoinSet<()>,
        cancel: &CancellationToken,
    ) -> bool
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        if let Some(slot) = self.conns.admit() {
            let (server, cancel) = (Arc::clone(self), cancel.clone());
            tasks.spawn(async move {
                match &server.tls {
                    None => {
                        Arc::clone(&server)
                            .connection(io, peer, slot, cancel, false)
                            .await
                    }
                    Some(tls) => {
                        let accept = tls.acceptor().accept(io);
                        match tokio::time::timeout(server.idle, accept).await {
                            Ok(Ok(io)) => {
                                let h2 = io.get_ref().1.alpn_protocol() == Some(tls::H2);
                                Arc::clone(&server)
                                    .connection(io, peer, slot, cancel, h2)
                                    .await;
                            }
                            Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                            Err(_) => tracing::debug!(
                                "TLS handshake not done within server.header_timeout"
                            ),
                        }
                    }
                }
            });
            return true;
        }
        if let Ok(permit) = Arc::clone(&self.refusals).try_acquire_owned() {
            let server = Arc::clone(self);
            tasks.spawn(async move {
                match server.tls.clone() {
                    None => server.refuse(io, permit).await,
                    Some(tls) => {
                        let refused = async {
                            if let Ok(io) = tls.acceptor().accept(io).await {
                                server.refuse(io, permit).await;
                            }
                        };
                        let _ = tokio::time::timeout(REFUSAL_WITHIN, refused).await;
                    }
                }
            });
        }
        false
    }

    /// Serves one connection (HTTP/2 when `h2`, else HTTP/1.1) until it ends, is closed to
    /// make room, or shutdown ends it.
    async fn connection<I>(
        self: Arc<Self>,
        io: I,
        peer: SocketAddr,
        slot: Slot,
        cancel: CancellationToken,
        h2: bool,
    ) where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let service = RequestService {
            app: self.app.clone(),
            deadlines: self.deadlines,
            conn: Arc::clone(slot.state()),
            peer,
        };
        if h2 {
            let conn = self.http2.serve_connection(TokioIo::new(io), service);
            // HTTP/2 has no header read timeout: an idle connection is closed here.
            drive(conn, &slot, &cancel, Some(self.idle)).await;
        } else {
            let conn = self.http.serve_connection(TokioIo::new(io), service);
            drive(conn, &slot, &cancel, None).await;
        }
    }

    /// Answers one request on `io` with 503 and `Connection: close`.
    async fn refuse<I>(&self, io: I, _permit: OwnedSemaphorePermit)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let busy = hyper::service::service_fn(|_| async {
            Ok::<_, Infallible>(service::closing(
                StatusCode::SERVICE_UNAVAILABLE,
                "server at its connection limit, retry later",
            ))
        });
        let conn = self.refusal_http.serve_connection(TokioIo::new(io), busy);
        let _ = tokio::time::timeout(REFUSAL_WITHIN, conn).await;
    }
}

/// Runs `conn` until it ends, its slot is closed to make room, it stays idle past `idle`
/// (when given), or shutdown ends it (letting a request in flight finish).
async fn drive<C>(conn: C, slot: &Slot, cancel: &CancellationToken, idle: Option<Duration>)
where
    C: GracefulConnection<Error = hyper::Error>,
{
    let mut conn = std::pin::pin!(conn);
    let idle_out = async {
        let Some(idle) = idle else {
            return std::future::pending().await;
        };
        loop {
            tokio::time::sleep(idle / 4).await;
            if slot.state().idle_for().is_some_and(|d| d >= idle) && slot.state().close_if_idle() {
                return;
            }
        }
    };
    let ended = tokio::select! {
        ended = conn.as_mut() => ended,
        () = slot.state().closed() => return,
        () = idle_out => return,
        () = cancel.cancelled() => {
            if slot.state().close_if_idle() {
                return;
            }
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = ended {
        tracing::debug!(error = %e, "connection closed on an error");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_throttled_note_is_due_once_per_period() {
        let mut t = Throttled::default();
        assert_eq!(t.due(), Some(0));
        assert_eq!(t.due(), None);
        assert_eq!(t.due(), None);
        t.last = Some(Instant::now() - Throttled::EVERY);
        assert_eq!(t.due(), Some(2));
    }
}
