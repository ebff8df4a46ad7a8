//! A fresh PostgreSQL schema per test, on the server `SLATIS_TEST_POSTGRES_URL` names.
//!
//! Invariants:
//! - variable unset: [`TestSchema::create`] returns `None` and prints a note (the test
//!   skips); variable set and the server does not answer: it panics (the test fails, it
//!   does not skip);
//! - each schema has a new random name, is created empty and dropped (with everything in
//!   it) when the [`TestSchema`] is dropped, so tests run in parallel on one database;
//! - [`TestSchema::url`] is the server's URL with `options=-csearch_path=<schema>`: a
//!   process given it (the store, the real binary) works in that schema only.

use std::time::Duration;
use tokio_postgres::NoTls;

/// The variable naming the test server.
pub const ENV: &str = "SLATIS_TEST_POSTGRES_URL";

/// How long the server may take to answer.
const CONNECT: Duration = Duration::from_secs(10);

/// A schema of its own for one test; dropped with it.
#[derive(Debug)]
pub struct TestSchema {
    base: String,
    name: String,
    url: String,
}

/// The server's URL, if the variable is set.
pub fn server_url() -> Option<String> {
    std::env::var(ENV).ok().filter(|u| !u.is_empty())
}

async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio::time::timeout(CONNECT, tokio_postgres::connect(url, NoTls))
        .await
        .unwrap_or_else(|_| panic!("{ENV} is set but the PostgreSQL server does not answer"))
        .unwrap_or_else(|e| panic!("{ENV} is set but the PostgreSQL server refused: {e}"));
    tokio::spawn(conn);
    client
}

/// `scheme://`, the authority, and what follows (path and query) of `url`.
fn split(url: &str) -> (&str, &str, &str) {
    let at = url.find("://").map_or(0, |i| i + 3);
    let (scheme, rest) = url.split_at(at);
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    (scheme, authority, tail)
}

impl TestSchema {
    /// Creates a fresh schema; `None` (with a note) when [`ENV`] is unset.
    ///
    /// # Panics
    /// When [`ENV`] is set and the server does not answer or refuses.
    pub async fn create() -> Option<Self> {
        let Some(base) = server_url() else {
            eprintln!("note: {ENV} is not set; skipping a PostgreSQL test");
            return None;
        };
        let name = format!("t_{}", uuid::Uuid::now_v7().simple());
        connect(&base)
            .await
            .batch_execute(&format!("CREATE SCHEMA {name}"))
            .await
            .unwrap_or_else(|e| panic!("cannot create schema {name}: {e}"));
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options=-csearch_path%3D{name}");
        Some(Self { base, name, url })
    }

    /// The URL that works in this schema.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The server's address (`host:port` of the URL, port 5432 if none), to put a
    /// [`crate::proxy::Proxy`] in front of.
    ///
    /// # Panics
    /// If the URL names no host that resolves.
    pub fn server_addr(&self) -> std::net::SocketAddr {
        let (_, authority, _) = split(&self.url);
        let host = authority.rsplit('@').next().unwrap_or(authority);
        let host = if host.contains(':') {
            host.to_owned()
        } else {
            format!("{host}:5432")
        };
        std::net::ToSocketAddrs::to_socket_addrs(&host)
            .ok()
            .and_then(|mut a| a.next())
            .unwrap_or_else(|| panic!("cannot resolve the PostgreSQL host {host}"))
    }

    /// [`TestSchema::url`] with `addr` in place of the server's `host:port` (the user
    /// kept): a connection through a proxy.
    pub fn url_through(&self, addr: std::net::SocketAddr) -> String {
        let (scheme, authority, rest) = split(&self.url);
        let user = authority
            .rsplit_once('@')
            .map(|(user, _)| format!("{user}@"))
            .unwrap_or_default();
        format!("{scheme}{user}{addr}{rest}")
    }

    /// The schema's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        let (base, name) = (self.base.clone(), self.name.clone());
        // Drop runs inside the test's runtime: use a runtime of its own on a thread.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                connect(&base)
                    .await
                    .batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                    .await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("warning: could not drop test schema {}", self.name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_through_a_proxy_keeps_the_user_database_and_options() {
        let schema = TestSchema {
            base: String::new(),
            name: "t_x".into(),
            url: "postgres://postgres@127.0.0.1:5432/test?options=-csearch_path%3Dt_x".into(),
        };
        assert_eq!(schema.server_addr().to_string(), "127.0.0.1:5432");
        let addr: std::net::SocketAddr = "127.0.0.1:6000".parse().expect("addr");
        assert_eq!(
            schema.url_through(addr),
            "postgres://postgres@127.0.0.1:6000/test?options=-csearch_path%3Dt_x"
        );
        // the drop of this fake schema must not reach a server
        std::mem::forget(schema);
    }
}
