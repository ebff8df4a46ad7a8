//! Shared setup: a config around a mock destination, a server, signed posts.

use slatis_testkit::process::{self, Server};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tempfile::TempDir;

/// The tenant secret of the test configs (the signature vectors' secret).
pub const SECRET: &str = "whsec_test_3f9a1c";

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_slatis-sync"))
}

/// A test config: tenant `acme` with an http connector `api` at `dest`, stored in the
/// SQLite file `db`.
pub fn config(db: &Path, dest: &str, retry: &str) -> String {
    config_at(&format!("sqlite://{}", db.display()), dest, retry)
}

/// The test config of [`config`], stored at `storage_url`.
pub fn config_at(storage_url: &str, dest: &str, retry: &str) -> String {
    format!(
        r#"
server:
  listen: 127.0.0.1:0
  max_body_bytes: 4096
storage:
  url: "{storage_url}"
delivery:
  concurrency: 8
  shutdown_grace: 5s
  retry: {retry}
tenants:
  acme:
    signing_secrets: ["whsec_old_secret", "${{ACME_SECRET:-{SECRET}}}"]
    connectors:
      api:
        type: http
        base_url: {dest}
        timeout: 1s
        headers:
          Authorization: Bearer ${{API_TOKEN:-tok_e2e_not_secret}}
        sign: {{ secret: "${{SIGN_SECRET:-sign_e2e_not_secret}}", header: x-forward-signature }}
    routes:
      BOOKING_CREATED:
        - id: contact
          connector: api
          action: request
          method: POST
          path: /contacts
          json:
            email: "{{{{lower data.attendee.email}}}}"
            first_name: "{{{{first_name data.attendee.name}}}}"
            last_name: "{{{{default (last_name data.attendee.name) data.attendee.name}}}}"
            notes: "{{{{default data.notes ''}}}}"
            booking: "{{{{data.id}}}}"
        - connector: api
          action: request
          method: PUT
          path: "/meetings/{{{{data.id}}}}"
          json:
            contact: "{{{{steps.contact.id}}}}"
            start: "{{{{data.start_time}}}}"
            start_ms: {{ value: "{{{{epoch_ms data.start_time}}}}", type: integer }}
      BOOKING_CANCELLED:
        - connector: api
          action: request
          method: PATCH
          path: "/meetings/{{{{data.id}}}}"
          json: {{ status: cancelled }}
      BOOKING_NO_SHOW:
        - connector: api
          action: request
          method: PATCH
          path: "/meetings/{{{{data.id}}}}"
          json: {{ phone: "{{{{data.attendee.phone}}}}" }}
"#
    )
}

/// Fast retries for tests.
pub const QUICK: &str = "{ max_attempts: 5, initial_backoff: 50ms, max_backoff: 200ms }";

/// A temporary directory with a config written for `dest`.
pub struct Setup {
    pub dir: TempDir,
    pub config: PathBuf,
}

impl Setup {
    pub fn new(dest: &str, retry: &str) -> Self {
        Self::with(dest, retry, "")
    }

    /// The config of [`Setup::new`] with `extra` top-level YAML appended (e.g. `admin:`).
    pub fn with(dest: &str, retry: &str, extra: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let yaml = config(&dir.path().join("slatis.db"), dest, retry) + extra;
        let config = process::write_config(dir.path(), &yaml);
        Self { dir, config }
    }

    /// A config for `dest` stored at `storage_url` (e.g. a PostgreSQL test schema), with
    /// `extra` top-level YAML appended.
    pub fn at(storage_url: &str, dest: &str, retry: &str, extra: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let yaml = format!("{}{extra}", config_at(storage_url, dest, retry));
        let config = process::write_config(dir.path(), &yaml);
        Self { dir, config }
    }

    /// Rewrites the config for another destination (same database).
    pub fn point_at(&self, dest: &str, retry: &str) {
        std::fs::write(
            &self.config,
            config(&self.dir.path().join("slatis.db"), dest, retry),
        )
        .expect("rewrite config");
    }

    pub fn start(&self) -> Server {
        Server::start(&bin(), &self.config, &[])
    }

    /// Runs a CLI command with this config.
    pub fn cli(&self, args: &[&str]) -> (i32, String, String) {
        let mut all: Vec<&str> = args.to_vec();
        let config = self.config.to_string_lossy().into_owned();
        all.extend(["--config", &config]);
        process::run(&bin(), &all, &[])
    }
}

pub async fn post(url: &str, body: &str) -> (u16, serde_json::Value) {
    slatis_testkit::signer::post_signed(&reqwest::Client::new(), url, SECRET, body.as_bytes())
        .await
        .expect("post")
}

pub async fn wait_until<F: FnMut() -> bool>(what: &str, timeout: Duration, mut f: F) {
    let deadline = std::time::Instant::now() + timeout;
    while !f() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The steps of a booking into HubSpot, as `config.example.yaml`'s `acme` tenant maps it
/// (at the indentation of a route's steps): the attendee's contact upserted by email, the
/// meeting upserted by `slatis_booking_id` with the contact associated.
pub const HUBSPOT_BOOKING_STEPS: &str = r#"        - id: contact
          connector: hubspot
          action: upsert
          object: contacts
          match: { property: email, value: "{{lower data.attendee.email}}" }
          omit_empty: true
          properties:
            email: "{{lower data.attendee.email}}"
            firstname: "{{first_name data.attendee.name}}"
            lastname: "{{last_name data.attendee.name}}"
        - id: meeting
          connector: hubspot
          action: upsert
          object: meetings
          match: { property: slatis_booking_id, value: "{{data.id}}" }
          properties:
            slatis_booking_id: "{{data.id}}"
            hs_timestamp: "{{epoch_ms data.start_time}}"
            hs_meeting_title: "{{default data.title 'Slatis booking'}}"
            hs_meeting_start_time: "{{data.start_time}}"
            hs_meeting_end_time: "{{data.end_time}}"
            hs_meeting_outcome: "{{#if (eq event 'BOOKING_RESCHEDULED')}}RESCHEDULED{{else}}SCHEDULED{{/if}}"
          associate:
            - { to: contacts, id: "{{steps.contact.id}}" }
"#;
