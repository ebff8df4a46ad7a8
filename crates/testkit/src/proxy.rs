//! A TCP proxy that cuts every connection on command: a database (or any server) going
//! away and coming back, as the process under test sees it.
//!
//! Invariants: while cut, every open connection through the proxy is closed and every
//! new one is accepted and closed at once (the peer sees a reset, as when a server
//! restarts); after [`Proxy::restore`], new connections reach the target again.

use std::net::SocketAddr;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A running proxy in front of one target.
pub struct Proxy {
    addr: SocketAddr,
    up: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.up.send_replace(false);
        self.task.abort();
    }
}

impl Proxy {
    /// Listens on a free port of 127.0.0.1 and forwards to `target`.
    ///
    /// # Panics
    /// If it cannot listen.
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let (up, _) = watch::channel(true);
        let watch = up.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let mut cut = watch.subscribe();
                if !*cut.borrow_and_update() {
                    drop(client);
                    continue;
                }
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(target).await else {
                        return;
                    };
                    let (mut client, mut server) = (client, server);
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.wait_for(|up| !*up) => {}
                    }
                });
            }
        });
        Self { addr, up, task }
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Closes every connection and refuses new ones until [`Proxy::restore`].
    pub fn cut(&self) {
        self.up.send_replace(false);
    }

    /// Lets new connections through again.
    pub fn restore(&self) {
        self.up.send_replace(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn echo() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        addr
    }

    async fn round_trip(s: &mut TcpStream) -> std::io::Result<[u8; 4]> {
        s.write_all(b"ping").await?;
        let mut buf = [0; 4];
        s.read_exact(&mut buf).await?;
        Ok(buf)
    }

    #[tokio::test]
    async fn a_cut_closes_connections_and_a_restore_lets_new_ones_through() {
        let proxy = Proxy::start(echo().await).await;
        let mut open = TcpStream::connect(proxy.addr()).await.expect("connect");
        assert_eq!(&round_trip(&mut open).await.expect("through"), b"ping");
        proxy.cut();
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(round_trip(&mut open).await.is_err(), "the open one is cut");
        let mut refused = TcpStream::connect(proxy.addr()).await.expect("accepted");
        assert!(
            round_trip(&mut refused).await.is_err(),
            "a new one is closed"
        );
        proxy.restore();
        let mut again = TcpStream::connect(proxy.addr()).await.expect("connect");
        assert_eq!(
            &round_trip(&mut again).await.expect("through again"),
            b"ping"
        );
    }
}
