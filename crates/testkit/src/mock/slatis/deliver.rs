//! Delivering events as Slatis does: each [`Job`] is a task that POSTs the event's exact
//! bytes, signed `X-Slatis-Signature: sha256=<hex HMAC of the body>` with the webhook's
//! secret as it is at that attempt, answered within the per-attempt timeout (5 s) or
//! failed; a failure is retried after each of the retry delays, and counts towards the
//! webhook's auto-disable ([`Org::attempted`]).
//!
//! Invariants: deliveries run concurrently (a slow endpoint holds up only its own);
//! TLS is verified against the system roots plus the mock's trusted test CAs; a name of
//! the resolve overrides connects to its address (the URL's port is kept); nothing is
//! sent once the mock is dropped.

use super::model::{Job, Org};
use crate::signer::{HEADER, sign};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::mpsc;

/// How deliveries are made.
pub(super) struct Deliverer {
    client: reqwest::Client,
    org: Arc<Mutex<Org>>,
    retry_delays: Vec<Duration>,
    /// Set when the mock is dropped.
    pub(super) stopped: AtomicBool,
}

/// What the delivery client needs.
pub(super) struct Network<'a> {
    pub(super) resolve: &'a [(String, SocketAddr)],
    pub(super) trust: &'a [String],
    pub(super) timeout: Duration,
}

impl Deliverer {
    /// Starts the delivery loop; jobs sent to the returned sender are delivered.
    ///
    /// # Panics
    /// If a trusted CA is not PEM, or no client can be built (the test cannot run).
    pub(super) fn start(
        org: Arc<Mutex<Org>>,
        network: &Network<'_>,
        retry_delays: Vec<Duration>,
    ) -> (Arc<Self>, mpsc::UnboundedSender<Job>) {
        let mut builder = reqwest::Client::builder()
            .timeout(network.timeout)
            .redirect(reqwest::redirect::Policy::none());
        for (name, addr) in network.resolve {
            builder = builder.resolve(name, *addr);
        }
        for pem in network.trust {
            let ca = reqwest::Certificate::from_pem(pem.as_bytes())
                .unwrap_or_else(|e| panic!("Slatis mock: trusted CA is not PEM: {e}"));
            builder = builder.add_root_certificate(ca);
        }
        let client = builder
            .build()
            .unwrap_or_else(|e| panic!("Slatis mock: delivery client: {e}"));
        let deliverer = Arc::new(Self {
            client,
            org,
            retry_delays,
            stopped: AtomicBool::new(false),
        });
        let (tx, mut rx) = mpsc::unbounded_channel::<Job>();
        let running = Arc::clone(&deliverer);
        tokio::spawn(async move {
            while let Some(job) = rx.recv().await {
                tokio::spawn(Arc::clone(&running).deliver(job));
            }
        });
        (deliverer, tx)
    }

    fn org(&self) -> std::sync::MutexGuard<'_, Org> {
        self.org.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every attempt of one delivery.
    async fn deliver(self: Arc<Self>, job: Job) {
        let attempts = if job.test {
            1
        } else {
            self.retry_delays.len() + 1
        };
        for attempt in 0..attempts {
            if self.stopped.load(Ordering::Relaxed) {
                return;
            }
            let Some(target) = self.org().target(&job) else {
                return;
            };
            let sent = self
                .client
                .post(&target.url)
                .header(HEADER, sign(target.secret.as_bytes(), &target.body))
                .header("content-type", "application/json")
                .body(target.body)
                .send()
                .await;
            let (status, error) = match sent {
                Ok(answer) => (answer.status().as_u16(), None),
                Err(e) if e.is_timeout() => (0, Some("timed out".to_owned())),
                Err(e) => (0, Some(e.without_url().to_string())),
            };
            if self.org().attempted(&job, status, error) {
                return;
            }
            if let Some(delay) = self.retry_delays.get(attempt) {
                tokio::time::sleep(*delay).await;
            }
        }
        self.org().give_up(&job);
    }
}
