//! `server:` — the webhook ingress: where it listens and how long it waits for a client.
//!
//! Invariant (checked at load, with the rest of the config): every timeout is above zero
//! and at most [`MAX_TIMEOUT`], `body_timeout` is not longer than `request_timeout`, and
//! `max_connections` is between 1 and [`MAX_CONNECTIONS`].

use super::{duration, lenient};
use serde::Deserialize;
use std::net::SocketAddr;
use std::time::Duration;

/// The longest any server timeout may be.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(600);

/// The most connections `server.max_connections` may allow.
pub const MAX_CONNECTIONS: usize = 1_000_000;

/// `server:` — the webhook ingress (its timeouts also apply to the admin listener).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Where `POST /webhooks/{tenant}`, `/healthz` and `/readyz` are served.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Larger bodies are answered 413.
    #[serde(default = "default_max_body", deserialize_with = "lenient::int")]
    pub max_body_bytes: usize,
    /// Time a client has to send a request's complete headers, from its connect or from
    /// the end of the previous answer on a kept-alive connection; then it is closed.
    #[serde(default = "default_header_timeout", with = "duration")]
    pub header_timeout: Duration,
    /// Time a client has to send the whole body once the headers are in; then 408.
    #[serde(default = "default_body_timeout", with = "duration")]
    pub body_timeout: Duration,
    /// Time to answer once the headers are in; then 503 (never a 2xx without a commit).
    #[serde(default = "default_request_timeout", with = "duration")]
    pub request_timeout: Duration,
    /// Connections held at once; past it idle ones are closed, then new ones get 503.
    #[serde(default = "default_max_connections", deserialize_with = "lenient::int")]
    pub max_connections: usize,
    /// On SIGTERM, how long requests in flight may still take before their connections
    /// are dropped.
    #[serde(default = "default_shutdown_timeout", with = "duration")]
    pub shutdown_timeout: Duration,
    /// Serve HTTPS (HTTP/1.1 and HTTP/2) with this certificate instead of plain HTTP.
    #[serde(default)]
    pub tls: Option<TlsFiles>,
}

/// `tls: { cert, key }` of a listener: PEM files, re-read when they change (and on
/// SIGHUP), so a renewed certificate is served without a restart.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// The certificate chain, leaf first (PEM).
    pub cert: std::path::PathBuf,
    /// Its private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: std::path::PathBuf,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}
fn default_max_body() -> usize {
    262_144
}
fn default_header_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_body_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_request_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_max_connections() -> usize {
    1024
}
fn default_shutdown_timeout() -> Duration {
    Duration::from_secs(10)
}

impl ServerConfig {
    /// Whether going from `self` to `new` changes what only a restart applies: the
    /// listen address, the timeouts and the connection cap (`max_body_bytes` applies at
    /// once).
    pub fn needs_restart_for(&self, new: &Self) -> bool {
        Self {
            max_body_bytes: new.max_body_bytes,
            ..self.clone()
        } != *new
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<ServerConfig, String> {
        let value: serde_json::Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
        super::super::parse_value(&value, "server").map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_are_safe() {
        let s = parse("{}").expect("defaults");
        assert_eq!(s.header_timeout, Duration::from_secs(5));
        assert_eq!(s.body_timeout, Duration::from_secs(5));
        assert_eq!(s.request_timeout, Duration::from_secs(10));
        assert_eq!(s.shutdown_timeout, Duration::from_secs(10));
        assert_eq!(s.max_connections, 1024);
    }

    #[test]
    fn every_key_is_read() {
        let s = parse(
            r#"{"header_timeout": "1s", "body_timeout": "2s", "request_timeout": "3s",
                "shutdown_timeout": "4s", "max_connections": "50"}"#,
        )
        .expect("parse");
        assert_eq!(
            (
                s.header_timeout,
                s.body_timeout,
                s.request_timeout,
                s.shutdown_timeout
            ),
            (
                Duration::from_secs(1),
                Duration::from_secs(2),
                Duration::from_secs(3),
                Duration::from_secs(4)
            )
        );
        assert_eq!(s.max_connections, 50);
    }

    #[test]
    fn a_duration_needs_a_unit_and_unknown_keys_are_refused() {
        assert!(parse(r#"{"header_timeout": 5}"#).is_err());
        assert!(parse(r#"{"idle_timeout": "5s"}"#).is_err());
    }

    #[test]
    fn only_max_body_bytes_applies_without_a_restart() {
        let old = parse("{}").expect("parse");
        let bigger = parse(r#"{"max_body_bytes": 1000000}"#).expect("parse");
        assert!(!old.needs_restart_for(&bigger));
        let slower = parse(r#"{"header_timeout": "9s"}"#).expect("parse");
        assert!(old.needs_restart_for(&slower));
    }
}
