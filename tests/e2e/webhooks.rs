//! `slatis-sync webhooks …` against testkit's Slatis mock, which delivers over real HTTPS
//! (`server.tls`, a generated certificate for a public-looking name the mock resolves to
//! 127.0.0.1) to the real binary: register → list → test → 10 failures auto-disable →
//! enable, and a rotation during a stream of bookings with no 401.

use crate::support::bin;
use chrono::Utc;
use slatis_testkit::mock::{MockSlatis, SLATIS_TEST_KEY, SlatisOptions};
use slatis_testkit::process::{Server, run, write_config};
use std::path::{Path, PathBuf};
use std::time::Duration;

const HOST: &str = "hooks.example.test";
const ADMIN_TOKEN: &str = "e2e-admin-token-0123456789abcdef";

/// The service's config: HTTPS ingress, plain admin, tenant `acme` (dry-run http steps
/// for two event types) verifying with `secret`, and `reader` whose key may only read.
fn yaml(dir: &Path, secret: &str) -> String {
    format!(
        r#"
server:
  listen: 127.0.0.1:0
  tls: {{ cert: {d}/cert.pem, key: {d}/key.pem }}
admin:
  listen: 127.0.0.1:0
  token: {ADMIN_TOKEN}
storage: {{ url: "sqlite://{d}/hooks.db" }}
tenants:
  acme:
    signing_secrets: ["{secret}"]
    slatis_api_key: {SLATIS_TEST_KEY}
    connectors:
      api: {{ type: http, base_url: "https://crm.example.invalid", dry_run: true }}
    routes:
      BOOKING_CREATED:
        - {{ connector: api, action: request, method: POST, path: /contacts, json: {{ email: "{{{{data.attendee.email}}}}" }} }}
      BOOKING_CANCELLED:
        - {{ connector: api, action: request, method: DELETE, path: "/contacts/{{{{data.id}}}}" }}
  reader:
    signing_secrets: [unused]
    slatis_api_key: sk_live_reader
"#,
        d = dir.display()
    )
}

/// A running service, the Slatis mock delivering to it, and the CLI.
struct Stand {
    dir: tempfile::TempDir,
    config: PathBuf,
    server: Server,
    slatis: MockSlatis,
}

impl Stand {
    async fn start(retry_delays: Vec<Duration>) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec![HOST.to_owned()])
            .expect("params")
            .self_signed(&key)
            .expect("certificate");
        std::fs::write(dir.path().join("cert.pem"), cert.pem()).expect("cert");
        std::fs::write(dir.path().join("key.pem"), key.serialize_pem()).expect("key");
        let config = write_config(dir.path(), &yaml(dir.path(), "whsec_not_yet"));
        let server = Server::start(&bin(), &config, &[]);
        let slatis = MockSlatis::start(SlatisOptions {
            resolve: vec![(HOST.to_owned(), "127.0.0.1:0".parse().expect("addr"))],
            trust: vec![cert.pem()],
            retry_delays,
            ..SlatisOptions::default()
        })
        .await;
        slatis.add_key("sk_live_reader", &["webhooks:read"]);
        Self {
            dir,
            config,
            server,
            slatis,
        }
    }

    /// `slatis-sync webhooks <args> --slatis-url <mock>`, off the runtime's threads.
    async fn cli(&self, args: &[&str]) -> (i32, String, String) {
        let mut all: Vec<String> = vec![
            "--config".into(),
            self.config.display().to_string(),
            "webhooks".into(),
        ];
        all.extend(args.iter().map(|a| (*a).to_owned()));
        all.extend(["--slatis-url".to_owned(), self.slatis.url()]);
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = all.iter().map(String::as_str).collect();
            run(&bin(), &args, &[("SLATIS_SYNC_ADMIN_TOKEN", ADMIN_TOKEN)])
        })
        .await
        .expect("cli")
    }

    /// The public base URL: the mock's name for us, at our TLS port.
    fn public_url(&self) -> String {
        let port = self.server.url.rsplit(':').next().expect("port");
        format!("https://{HOST}:{port}")
    }

    fn admin(&self) -> String {
        self.server.admin_url.clone().expect("admin")
    }

    /// The config verifying with `secret`, reloaded.
    async fn configure(&self, secret: &str) {
        std::fs::write(&self.config, yaml(self.dir.path(), secret)).expect("config");
        let r = reqwest::Client::new()
            .post(format!("{}/admin/api/reload", self.admin()))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .expect("reload");
        assert_eq!(r.status().as_u16(), 200);
    }

    /// Registers acme's webhook and configures its secret: the webhook id.
    async fn register(&self) -> String {
        let (code, out, err) = self
            .cli(&[
                "register",
                "--tenant",
                "acme",
                "--public-url",
                &self.public_url(),
            ])
            .await;
        assert_eq!(code, 0, "{err}");
        let hooks = self.slatis.webhooks();
        assert_eq!(out.trim(), hooks[0].secret, "the secret alone on stdout");
        assert!(
            !err.contains(&hooks[0].secret),
            "the secret only once: {err}"
        );
        assert!(
            err.contains("ACME_SLATIS_SECRET") && err.contains("signing_secrets"),
            "{err}"
        );
        self.configure(out.trim()).await;
        hooks[0].id.clone()
    }

    async fn events_stored(&self) -> usize {
        let body: serde_json::Value = reqwest::Client::new()
            .get(format!(
                "{}/admin/api/events?tenant=acme&limit=1000",
                self.admin()
            ))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .expect("events")
            .json()
            .await
            .expect("json");
        body["events"].as_array().map_or(0, Vec::len)
    }
}

#[tokio::test]
async fn register_list_test_auto_disable_and_enable() {
    let s = Stand::start(Vec::new()).await;
    let id = s.register().await;
    let hook = &s.slatis.webhooks()[0];
    assert_eq!(hook.url, format!("{}/webhooks/acme", s.public_url()));
    assert_eq!(
        hook.events,
        ["BOOKING_CREATED", "BOOKING_CANCELLED"],
        "exactly the routed types"
    );
    // registering again is refused, naming the webhook
    let (code, _, err) = s
        .cli(&[
            "register",
            "--tenant",
            "acme",
            "--public-url",
            &s.public_url(),
        ])
        .await;
    assert!(code != 0 && err.contains(&id), "{err}");

    let (code, out, err) = s.cli(&["list", "--tenant", "acme"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&id) && out.contains("active") && out.contains("BOOKING_CANCELLED"),
        "{out}"
    );

    let (code, out, err) = s.cli(&["test", "--tenant", "acme", &id]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("arrived: our endpoint answered 200"), "{out}");
    assert_eq!(s.events_stored().await, 1, "the test event is stored");

    // our endpoint refuses everything (a wrong secret): 10 failures disable the webhook
    s.configure("whsec_wrong").await;
    let (code, out, _) = s.cli(&["test", "--tenant", "acme", &id]).await;
    assert!(code != 0 && out.contains("401"), "{out}");
    let start = Utc::now() + chrono::TimeDelta::days(1);
    for i in 0..10 {
        s.slatis
            .create_booking("Ada Lovelace", &format!("ada{i}@example.com"), start);
    }
    assert!(
        s.slatis
            .wait_until(|m| !m.webhooks()[0].is_active, Duration::from_secs(20))
            .await,
        "auto-disabled"
    );
    let (_, out, _) = s.cli(&["list", "--tenant", "acme"]).await;
    assert!(
        out.contains("AUTO-DISABLED") && out.contains("10 consecutive"),
        "{out}"
    );

    s.configure(&s.slatis.webhooks()[0].secret).await;
    let (code, out, err) = s.cli(&["enable", "--tenant", "acme", &id]).await;
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("were not delivered"), "{err}");
    assert!(
        out.starts_with("slatis-sync backfill --tenant acme --since 20"),
        "{out}"
    );
    assert!(s.slatis.webhooks()[0].is_active);
    s.slatis.create_booking("Bob", "bob@example.com", start);
    assert!(
        s.slatis
            .wait_until(
                |m| m
                    .deliveries()
                    .last()
                    .is_some_and(|d| d.status == "delivered"),
                Duration::from_secs(10)
            )
            .await,
        "delivered again"
    );
}

#[tokio::test]
async fn clear_errors_for_tenant_key_and_scope() {
    let s = Stand::start(Vec::new()).await;
    let (code, _, err) = s.cli(&["list", "--tenant", "nope"]).await;
    assert!(
        code != 0 && err.contains("no tenant \"nope\"") && err.contains("acme"),
        "{err}"
    );
    let (code, _, err) = s
        .cli(&[
            "register",
            "--tenant",
            "reader",
            "--public-url",
            &s.public_url(),
        ])
        .await;
    assert!(code != 0 && err.contains("routes no event type"), "{err}");
    let (code, _, err) = s.cli(&["enable", "--tenant", "reader", "wh_x"]).await;
    assert!(code != 0 && err.contains("not_found"), "{err}");
    s.slatis.add_key("sk_live_reader", &[]);
    let (code, _, err) = s.cli(&["list", "--tenant", "reader"]).await;
    assert!(
        code != 0 && err.contains("lacks the webhooks:read scope"),
        "{err}"
    );
    assert!(
        !err.contains("sk_live_reader"),
        "the key is never printed: {err}"
    );
}

#[tokio::test]
async fn a_rotation_during_a_stream_of_bookings_fails_no_delivery() {
    let s = Stand::start(vec![Duration::from_millis(200); 3]).await;
    let id = s.register().await;
    let old = s.slatis.webhooks()[0].secret.clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stream = {
        let (stop, slatis) = (std::sync::Arc::clone(&stop), &s.slatis);
        async move {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                slatis.create_booking("Ada", &format!("ada{n}@example.com"), Utc::now());
                n += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            n
        }
    };
    let rotate = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let admin = s.admin();
        let out = s
            .cli(&["rotate", "--tenant", "acme", "--admin-url", &admin, &id])
            .await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        out
    };
    let (made, (code, out, err)) = tokio::join!(stream, rotate);
    assert_eq!(code, 0, "{err}");
    let new = s.slatis.webhooks()[0].secret.clone();
    assert_ne!(new, old);
    assert_eq!(out.trim(), new, "the new secret alone on stdout");
    assert!(made >= 20, "a stream ({made} bookings)");
    assert!(
        s.slatis
            .wait_until(
                |m| m.deliveries().iter().all(|d| d.status == "delivered"),
                Duration::from_secs(20)
            )
            .await,
        "every booking delivered"
    );
    let deliveries = s.slatis.deliveries();
    assert_eq!(deliveries.len(), made);
    let refused: Vec<_> = deliveries
        .iter()
        .flat_map(|d| &d.attempts)
        .filter(|a| a.status == 401)
        .collect();
    assert!(
        refused.is_empty(),
        "no 401 during the rotation: {refused:?}"
    );
    assert_eq!(s.events_stored().await, made);
    assert!(
        s.server
            .log()
            .contains("signing secret was added at runtime")
    );
    assert!(!s.server.log().contains(&new), "the secret is not logged");
}
