//! HTTPS for a listener: rustls, HTTP/2 and HTTP/1.1 offered by ALPN, and a certificate
//! that can change under a running server.
//!
//! Invariants:
//! - a certificate and key are loaded whole or not at all: a renewal caught half-written,
//!   or a key that does not match, keeps the certificate being served, with an error
//!   logged, and is tried again at the next change;
//! - a new certificate applies to every handshake after it is loaded; connections already
//!   open keep theirs, so a swap fails no request;
//! - the files are re-read when their modification time or size changes (checked every
//!   [`WATCH_EVERY`]) and on [`Tls::reload`] (SIGHUP).

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use slatis_core::config::TlsFiles;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, SystemTime};
use tokio_util::sync::CancellationToken;

/// How often the certificate files are looked at.
pub const WATCH_EVERY: Duration = Duration::from_secs(1);

/// The ALPN protocol of HTTP/2.
pub(super) const H2: &[u8] = b"h2";

/// Why a certificate could not be loaded (names the file; never shows the key).
#[derive(Debug, thiserror::Error)]
#[error("TLS {what} {path}: {why}")]
pub struct TlsError {
    what: &'static str,
    path: String,
    why: String,
}

/// The certificate being served, swapped whole.
#[derive(Debug)]
struct Current(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for Current {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(
            &self.0.read().unwrap_or_else(PoisonError::into_inner),
        ))
    }
}

/// A listener's TLS: the acceptor and what it serves.
pub struct Tls {
    files: TlsFiles,
    provider: Arc<CryptoProvider>,
    current: Arc<Current>,
    acceptor: tokio_rustls::TlsAcceptor,
    /// The files' stamps when last loaded.
    seen: Mutex<Option<Stamps>>,
}

/// The (modified, length) of the certificate and of the key file.
type Stamps = [(SystemTime, u64); 2];

/// The files' stamps; `None` while either cannot be read.
fn stamps(files: &TlsFiles) -> Option<Stamps> {
    let stamp = |path: &std::path::Path| {
        let meta = std::fs::metadata(path).ok()?;
        Some((meta.modified().ok()?, meta.len()))
    };
    Some([stamp(&files.cert)?, stamp(&files.key)?])
}

/// Reads and checks a certificate chain and its key.
fn certified(files: &TlsFiles, provider: &CryptoProvider) -> Result<CertifiedKey, TlsError> {
    let fail = |what, path: &std::path::Path, why: String| TlsError {
        what,
        path: path.display().to_string(),
        why,
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .and_then(Iterator::collect)
        .map_err(|e| fail("certificate", &files.cert, e.to_string()))?;
    if chain.is_empty() {
        return Err(fail(
            "certificate",
            &files.cert,
            "no PEM certificate in it".into(),
        ));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| fail("key", &files.key, format!("no PEM private key in it ({e})")))?;
    let signing = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| fail("key", &files.key, e.to_string()))?;
    let certified = CertifiedKey::new(chain, signing);
    certified.keys_match().map_err(|e| {
        fail(
            "key",
            &files.key,
            format!("does not match the certificate ({e})"),
        )
    })?;
    Ok(certified)
}

/// Checks that `files` hold a usable certificate and key (`slatis-sync validate`).
///
/// # Errors
/// [`TlsError`] naming the file and what is wrong with it.
pub fn check(files: &TlsFiles) -> Result<(), TlsError> {
    certified(files, &rustls::crypto::aws_lc_rs::default_provider()).map(drop)
}

impl Tls {
    /// Loads `files`.
    ///
    /// # Errors
    /// [`TlsError`] when they cannot be read or do not hold a matching certificate and key.
    pub fn load(files: &TlsFiles) -> Result<Arc<Self>, TlsError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let seen = stamps(files);
        let current = Arc::new(Current(RwLock::new(Arc::new(certified(files, &provider)?))));
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError {
                what: "setup",
                path: String::new(),
                why: e.to_string(),
            })?
            .with_no_client_auth()
            .with_cert_resolver(Arc::clone(&current) as Arc<dyn ResolvesServerCert>);
        config.alpn_protocols = vec![H2.to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(Self {
            files: files.clone(),
            provider,
            current,
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
            seen: Mutex::new(seen),
        }))
    }

    /// The acceptor handshakes go through.
    pub(super) fn acceptor(&self) -> &tokio_rustls::TlsAcceptor {
        &self.acceptor
    }

    /// Reads the files again and serves what they hold from the next handshake on.
    ///
    /// # Errors
    /// [`TlsError`]; the certificate being served is kept.
    pub fn reload(&self) -> Result<(), TlsError> {
        let read = stamps(&self.files);
        let fresh = certified(&self.files, &self.provider)?;
        *self
            .current
            .0
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(fresh);
        *self.seen.lock().unwrap_or_else(PoisonError::into_inner) = read;
        tracing::info!(cert = %self.files.cert.display(), "TLS certificate loaded");
        Ok(())
    }

    /// Reloads the files whenever they change, until `cancel`.
    pub async fn watch(self: Arc<Self>, cancel: CancellationToken) {
        let mut failed_at: Option<Stamps> = None;
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(WATCH_EVERY) => {}
            }
            // readable, and neither what was last loaded nor what last failed to load
            let Some(now) = stamps(&self.files) else {
                continue;
            };
            let seen = *self.seen.lock().unwrap_or_else(PoisonError::into_inner);
            if seen == Some(now) || failed_at == Some(now) {
                continue;
            }
            match self.reload() {
                Ok(()) => failed_at = None,
                Err(e) => {
                    tracing::error!(error = %e, "TLS certificate not reloaded; serving the previous one");
                    failed_at = Some(now);
                }
            }
        }
    }
}
