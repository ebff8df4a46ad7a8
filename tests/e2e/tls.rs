//! HTTPS on the ingress (`server.tls`): webhooks over HTTP/2 and HTTP/1.1, and a
//! certificate swapped on disk under load with no failed request.

use crate::support::bin;
use slatis_testkit::process::{Server, write_config};
use slatis_testkit::{fixtures, signer};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const SECRET: &str = "whsec_tls_e2e";

/// A self-signed certificate for 127.0.0.1: (certificate PEM, key PEM, certificate DER).
fn certificate() -> (String, String, Vec<u8>) {
    let key = rcgen::KeyPair::generate().expect("key");
    let params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .expect("params");
    let cert = params.self_signed(&key).expect("certificate");
    (cert.pem(), key.serialize_pem(), cert.der().to_vec())
}

/// Writes a certificate and key the way a renewal tool should: each file replaced whole.
fn install(dir: &Path, cert: &str, key: &str) {
    for (name, text) in [("key.pem", key), ("cert.pem", cert)] {
        let tmp = dir.join(format!("{name}.new"));
        std::fs::write(&tmp, text).expect("write");
        std::fs::rename(&tmp, dir.join(name)).expect("rename");
    }
}

fn client(roots: &[&str], http1: bool) -> reqwest::Client {
    let mut b = reqwest::Client::builder().tls_info(true);
    for pem in roots {
        b = b.add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).expect("root"));
    }
    if http1 {
        b = b.http1_only();
    }
    b.build().expect("client")
}

/// Posts a signed booking; the status, the HTTP version and the server's certificate.
async fn post(
    client: &reqwest::Client,
    url: &str,
    i: usize,
) -> reqwest::Result<(u16, reqwest::Version, Vec<u8>)> {
    let body = signer::fresh(
        fixtures::booking(
            "BOOKING_CREATED",
            &format!("bkg_tls_{i}"),
            "Ada Lovelace",
            "ada@example.com",
        )
        .as_bytes(),
    );
    let r = client
        .post(format!("{url}/webhooks/acme"))
        .header(signer::HEADER, signer::sign(SECRET.as_bytes(), &body))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await?;
    let peer = r
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|t| t.peer_certificate().map(<[u8]>::to_vec))
        .unwrap_or_default();
    Ok((r.status().as_u16(), r.version(), peer))
}

fn start(dir: &Path) -> Server {
    let yaml = format!(
        "server:\n  listen: 127.0.0.1:0\n  tls: {{ cert: {0}/cert.pem, key: {0}/key.pem }}\nadmin:\n  listen: 127.0.0.1:0\n  tls: {{ cert: {0}/cert.pem, key: {0}/key.pem }}\nstorage: {{ url: \"sqlite://{0}/tls.db\" }}\ntenants:\n  acme:\n    signing_secrets: [{SECRET}]\n",
        dir.display()
    );
    Server::start(&bin(), &write_config(dir, &yaml), &[])
}

#[tokio::test]
async fn webhooks_arrive_over_https_with_http2_and_http1() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key, der) = certificate();
    install(dir.path(), &cert, &key);
    let server = start(dir.path());
    assert!(server.url.starts_with("https://"), "{}", server.url);
    let (status, version, peer) = post(&client(&[&cert], false), &server.url, 1)
        .await
        .expect("h2");
    assert_eq!((status, version), (200, reqwest::Version::HTTP_2));
    assert_eq!(peer, der);
    let (status, version, _) = post(&client(&[&cert], true), &server.url, 2)
        .await
        .expect("h1");
    assert_eq!((status, version), (200, reqwest::Version::HTTP_11));
    // the admin listener too
    let admin = server.admin_url.clone().expect("admin");
    assert!(admin.starts_with("https://"), "{admin}");
    let health = client(&[&cert], false)
        .get(format!("{admin}/healthz"))
        .send()
        .await
        .expect("admin over https");
    assert_eq!(health.status().as_u16(), 200);
    // plain HTTP on the HTTPS port gets nowhere
    let plain = server.url.replacen("https://", "http://", 1);
    assert!(post(&reqwest::Client::new(), &plain, 3).await.is_err());
}

/// A renewed certificate written over the files is served from the next handshake on;
/// requests during the swap, on new and kept-alive connections, all succeed.
#[tokio::test]
async fn a_certificate_swapped_under_load_fails_no_request() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (old_cert, old_key, old_der) = certificate();
    let (new_cert, new_key, new_der) = certificate();
    install(dir.path(), &old_cert, &old_key);
    let server = Arc::new(start(dir.path()));
    let roots = [old_cert.as_str(), new_cert.as_str()];
    let stop = Arc::new(AtomicBool::new(false));
    let (sent, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut load = Vec::new();
    for worker in 0..4 {
        let (server, stop, sent, failed) = (
            Arc::clone(&server),
            Arc::clone(&stop),
            Arc::clone(&sent),
            Arc::clone(&failed),
        );
        let roots: Vec<String> = roots.iter().map(|r| (*r).to_owned()).collect();
        load.push(tokio::spawn(async move {
            let kept = client(
                &roots.iter().map(String::as_str).collect::<Vec<_>>(),
                worker % 2 == 0,
            );
            let mut i = worker * 100_000;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                // every other request on a new connection: a handshake during the swap
                let fresh;
                let c = if i % 2 == 0 {
                    fresh = client(&roots.iter().map(String::as_str).collect::<Vec<_>>(), false);
                    &fresh
                } else {
                    &kept
                };
                sent.fetch_add(1, Ordering::Relaxed);
                match post(c, &server.url, i).await {
                    Ok((200, _, _)) => {}
                    other => {
                        eprintln!("request failed: {other:?}");
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, _, before) = post(&client(&roots, false), &server.url, 1)
        .await
        .expect("before");
    assert_eq!(before, old_der);
    install(dir.path(), &new_cert, &new_key);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, _, peer) = post(&client(&roots, false), &server.url, 2)
            .await
            .expect("after");
        if peer == new_der {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the new certificate was not served within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    for l in load {
        l.await.expect("load");
    }
    let (sent, failed) = (sent.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    println!("{sent} requests during the swap, {failed} failed");
    assert!(sent > 20, "the load ran ({sent})");
    assert_eq!(failed, 0);
    assert!(
        server.log().contains("TLS certificate loaded"),
        "{}",
        server.log()
    );
}

/// `validate` reads the certificate files as `serve` would: a missing file, or a key that
/// is not the certificate's, is an error naming the file.
#[test]
fn validate_checks_the_certificate_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, _, _) = certificate();
    let (_, other_key, _) = certificate();
    let validate = || {
        let yaml = format!(
            "server:\n  tls: {{ cert: {0}/cert.pem, key: {0}/key.pem }}\ntenants:\n  acme:\n    signing_secrets: [{SECRET}]\n",
            dir.path().display()
        );
        let path = write_config(dir.path(), &yaml);
        slatis_testkit::process::run(
            &bin(),
            &["validate", "--config", &path.to_string_lossy()],
            &[],
        )
    };
    let (code, _, err) = validate();
    assert_eq!(code, 1);
    assert!(
        err.contains("server.tls: TLS certificate") && err.contains("cert.pem"),
        "{err}"
    );
    install(dir.path(), &cert, &other_key);
    let (code, _, err) = validate();
    assert_eq!(code, 1);
    assert!(err.contains("does not match the certificate"), "{err}");
    assert!(
        !err.contains("PRIVATE KEY"),
        "no key material in errors: {err}"
    );
    let (cert, key, _) = certificate();
    install(dir.path(), &cert, &key);
    let (code, out, err) = validate();
    assert_eq!(code, 0, "{out}{err}");
}

/// A client that connects to the TLS port and never finishes its handshake is cut off at
/// `server.header_timeout`, like one that never sends its headers.
#[tokio::test]
async fn a_stalled_handshake_is_closed_at_the_header_timeout() {
    use tokio::io::AsyncReadExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key, _) = certificate();
    install(dir.path(), &cert, &key);
    let yaml = format!(
        "server:\n  listen: 127.0.0.1:0\n  header_timeout: 1s\n  tls: {{ cert: {0}/cert.pem, key: {0}/key.pem }}\nstorage: {{ url: \"sqlite://{0}/tls.db\" }}\ntenants:\n  acme:\n    signing_secrets: [{SECRET}]\n",
        dir.path().display()
    );
    let server = Server::start(&bin(), &write_config(dir.path(), &yaml), &[]);
    let addr = server.url.trim_start_matches("https://").to_owned();
    let mut stalled = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    let started = Instant::now();
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(10), stalled.read(&mut buf)).await;
    let waited = started.elapsed();
    assert!(
        matches!(read, Ok(Ok(0) | Err(_))),
        "closed, not answered: {read:?}"
    );
    assert!(
        waited >= Duration::from_millis(900),
        "not before the timeout: {waited:?}"
    );
    assert!(waited < Duration::from_secs(5), "bounded: {waited:?}");
}
