//! Where a mock listens: a port on `127.0.0.1` bound first (so the mock can know its own
//! URL before it is built), then served until the mock is dropped.
//!
//! Invariant: a [`Server`] serves for exactly as long as it lives.

use axum::Router;
use std::net::SocketAddr;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A bound port, not served yet.
pub struct Bound {
    listener: TcpListener,
    addr: SocketAddr,
}

impl Bound {
    /// Binds `127.0.0.1:0` for the mock named `name`.
    ///
    /// # Panics
    /// If no port can be bound (the test cannot run).
    pub async fn new(name: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("bind the {name} mock: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("{name} mock address: {e}"));
        Self { listener, addr }
    }

    /// The base URL, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Serves `app` until the [`Server`] is dropped.
    pub fn serve(self, app: Router) -> Server {
        let task = tokio::spawn(async move {
            let _ = axum::serve(self.listener, app).await;
        });
        Server {
            addr: self.addr,
            task,
        }
    }
}

/// A served port; dropping it stops the server.
pub struct Server {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Server {
    /// The base URL, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}
