//! DESIGN §6 "secrets": a run with known secret values — literal in the config file and
//! from variables, in signing secrets, connector tokens, a `base_url` query, custom
//! headers and the admin token — then every kind of output it can produce (debug logs,
//! `/metrics`, every admin API answer, `dlq list` / `dlq show`, dead-letter reasons,
//! dry-run records, `validate` on broken configs, `render`) is searched for them.

use crate::support::{bin, wait_until};
use slatis_testkit::fixtures::{BOOKING_CREATED_FULL, booking};
use slatis_testkit::mock::{Fault, MockHttp};
use slatis_testkit::process::{self, Server};
use slatis_testkit::signer::post_signed;
use std::path::Path;
use std::time::Duration;

/// Secrets written literally in the config file.
const LIT_SIGNING: &str = "whsec_LIT_signing_a1b2c3d4";
const LIT_HEADER: &str = "lit_HEADER_token_1122aa";
const LIT_SIGN: &str = "lit_SIGN_key_55dd66ee";
const LIT_QUERY: &str = "lit_QUERY_aabbccdd";
const LIT_DRY_TOKEN: &str = "lit_DRYTOKEN_eeff0011";
const LIT_HUBSPOT: &str = "pat-lit-HUBSPOT-22334455";
const LIT_ADMIN: &str = "admin_LIT_token_0123456789abcdef0123456789abcdef";

/// Secrets taken from variables.
const VARS: [(&str, &str); 7] = [
    ("LIVE_SECRET", "whsec_VAR_signing_e5f6a7b8"),
    ("SHADOW_SECRET", "whsec_VAR_shadow_c9d0e1f2"),
    ("LIVE_API_KEY", "slatis_VAR_apikey_3a4b5c"),
    ("API_TOKEN", "tok_VAR_crm_6d7e8f90"),
    ("PARTNER_TOKEN", "partner_VAR_33bb44cc"),
    ("QUERY_TOKEN", "query_VAR_77ff8899"),
    ("PD_TOKEN", "pd_VAR_token_66778899"),
];

fn var(name: &str) -> &'static str {
    VARS.iter()
        .find(|(k, _)| *k == name)
        .map(|(_, v)| *v)
        .unwrap_or_else(|| panic!("no variable {name}"))
}

fn all_secrets() -> Vec<&'static str> {
    let mut all = vec![
        LIT_SIGNING,
        LIT_HEADER,
        LIT_SIGN,
        LIT_QUERY,
        LIT_DRY_TOKEN,
        LIT_HUBSPOT,
        LIT_ADMIN,
    ];
    all.extend(VARS.iter().map(|(_, v)| *v));
    all
}

/// Tenant `live` sends to `dest` for real; tenant `shadow` is all dry run (http, HubSpot
/// and Pipedrive), with a token in its `base_url` query.
const CONFIG: &str = r#"
server:
  listen: 127.0.0.1:0
storage:
  url: sqlite://@DB@
admin:
  listen: 127.0.0.1:0
  token: @LIT_ADMIN@
delivery:
  concurrency: 4
  shutdown_grace: 2s
  retry: { max_attempts: 2, initial_backoff: 50ms, max_backoff: 200ms }
tenants:
  live:
    signing_secrets: ["@LIT_SIGNING@", "${LIVE_SECRET}"]
    slatis_api_key: ${LIVE_API_KEY}
    connectors:
      api:
        type: http
        base_url: @DEST@
        timeout: 1s
        headers:
          Authorization: Bearer ${API_TOKEN}
          X-Api-Token: @LIT_HEADER@
          X-Partner: ${PARTNER_TOKEN}
        sign: { secret: "@LIT_SIGN@", header: x-forward-signature }
    routes:
      BOOKING_CREATED:
        - connector: api
          action: request
          method: POST
          path: /contacts
          json: { email: "{{lower data.attendee.email}}", booking: "{{data.id}}" }
  shadow:
    signing_secrets: ["${SHADOW_SECRET}"]
    connectors:
      api:
        type: http
        dry_run: true
        base_url: "https://crm.example.com/api?api_key=${QUERY_TOKEN}&sig=@LIT_QUERY@"
        headers:
          Authorization: Bearer @LIT_DRY_TOKEN@
          X-Partner: ${PARTNER_TOKEN}
      hs:
        type: hubspot
        dry_run: true
        access_token: @LIT_HUBSPOT@
      pd:
        type: pipedrive
        dry_run: true
        base_url: https://shadow.pipedrive.com
        api_token: ${PD_TOKEN}
    routes:
      BOOKING_CREATED:
        - connector: api
          action: request
          method: PUT
          path: "/contacts/{{lower data.attendee.email}}"
          json: { email: "{{lower data.attendee.email}}" }
        - connector: hs
          action: upsert
          object: contacts
          match: { property: email, value: "{{lower data.attendee.email}}" }
          properties: { email: "{{lower data.attendee.email}}" }
        - connector: pd
          action: upsert
          object: persons
          match: { property: email, value: "{{lower data.attendee.email}}" }
          properties: { name: "{{data.attendee.name}}", email: "{{lower data.attendee.email}}" }
"#;

fn config(db: &Path, dest: &str) -> String {
    CONFIG
        .replace("@DB@", &db.display().to_string())
        .replace("@DEST@", dest)
        .replace("@LIT_ADMIN@", LIT_ADMIN)
        .replace("@LIT_SIGNING@", LIT_SIGNING)
        .replace("@LIT_HEADER@", LIT_HEADER)
        .replace("@LIT_SIGN@", LIT_SIGN)
        .replace("@LIT_QUERY@", LIT_QUERY)
        .replace("@LIT_DRY_TOKEN@", LIT_DRY_TOKEN)
        .replace("@LIT_HUBSPOT@", LIT_HUBSPOT)
}

/// The config with type errors around secrets: a string where a tenant's list of signing
/// secrets belongs (from a variable), a literal secret where the `sign` map belongs, a
/// variable in a number.
fn type_errors(good: &str) -> String {
    let bad = good
        .replace(
            "signing_secrets: [\"${SHADOW_SECRET}\"]",
            "signing_secrets: \"${SHADOW_SECRET}\"",
        )
        .replace(
            &format!("sign: {{ secret: \"{LIT_SIGN}\", header: x-forward-signature }}"),
            &format!("sign: \"{LIT_SIGN}\""),
        )
        .replace("max_attempts: 2", "max_attempts: \"${API_TOKEN}\"");
    assert_eq!(
        bad.matches("\"${").count(),
        good.matches("\"${").count() + 1
    );
    bad
}

/// The config with a YAML syntax error on the line of a literal secret.
fn syntax_error(good: &str) -> String {
    let bad = good.replace(
        &format!("[\"{LIT_SIGNING}\", \"${{LIVE_SECRET}}\"]"),
        &format!("[\"{LIT_SIGNING}\", \"${{LIVE_SECRET}}\""),
    );
    assert_ne!(bad, good);
    bad
}

/// An admin API call with the token; returns the status and the body.
async fn admin(
    client: &reqwest::Client,
    server: &Server,
    method: reqwest::Method,
    path: &str,
) -> (u16, String) {
    let base = server.admin_url.as_deref().expect("admin listener");
    let r = client
        .request(method, format!("{base}{path}"))
        .bearer_auth(LIT_ADMIN)
        .header("origin", base)
        .send()
        .await
        .expect("admin call");
    (r.status().as_u16(), r.text().await.expect("admin body"))
}

fn jobs(listing: &str) -> Vec<serde_json::Value> {
    let v: serde_json::Value = serde_json::from_str(listing).expect("jobs json");
    v["jobs"].as_array().cloned().unwrap_or_default()
}

fn count(jobs: &[serde_json::Value], tenant: &str, status: &str) -> usize {
    jobs.iter()
        .filter(|j| j["tenant"] == tenant && j["status"] == status)
        .count()
}

/// Sends SIGHUP and waits for the server to log that the config was not reloaded.
async fn hang_up(server: &Server) {
    let before = server.log().matches("config not reloaded").count();
    server.hang_up();
    wait_until(
        "the refused SIGHUP reload logged",
        Duration::from_secs(10),
        || server.log().matches("config not reloaded").count() > before,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_any_output() {
    let dest = MockHttp::start().await;
    // A hostile CRM echoes the credentials it was sent in its error bodies.
    let echo = format!(
        "revoked: Bearer {} / {LIT_HEADER} / {}",
        var("API_TOKEN"),
        var("PARTNER_TOKEN")
    );
    dest.fail_next(
        1,
        Fault::Status {
            status: 401,
            retry_after: None,
            body: echo.clone(),
        },
    );
    dest.fail_next(
        1,
        Fault::Status {
            status: 503,
            retry_after: None,
            body: echo.clone(),
        },
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let good = config(&dir.path().join("slatis.db"), &dest.url());
    let config_path = process::write_config(dir.path(), &good);
    let good_path = dir.path().join("good.yaml");
    std::fs::write(&good_path, &good).expect("write good.yaml");
    let mut env: Vec<(&str, &str)> = VARS.to_vec();
    let cli_env = env.clone();
    env.push(("RUST_LOG", "debug"));
    let server = Server::start(&bin(), &config_path, &env);
    let client = reqwest::Client::new();
    let mut out = String::new();

    // Webhooks: accepted (with the literal and with the variable secret), refused (bad
    // signature, unknown tenant), and one for the dry-run tenant.
    let signed = [
        (
            "live",
            LIT_SIGNING,
            booking(
                "BOOKING_CREATED",
                "bkg_s1",
                "Ada Lovelace",
                "ada@example.com",
            ),
            200,
        ),
        (
            "live",
            var("LIVE_SECRET"),
            booking(
                "BOOKING_CREATED",
                "bkg_s2",
                "Grace Hopper",
                "grace@example.com",
            ),
            200,
        ),
        (
            "shadow",
            var("SHADOW_SECRET"),
            BOOKING_CREATED_FULL.to_owned(),
            200,
        ),
        (
            "live",
            "whsec_wrong_guess",
            booking("BOOKING_CREATED", "bkg_s3", "Eve", "eve@example.com"),
            401,
        ),
        (
            "ghost",
            LIT_SIGNING,
            booking("BOOKING_CREATED", "bkg_s4", "Eve", "eve@example.com"),
            401,
        ),
    ];
    for (tenant, secret, body, want) in &signed {
        let (status, answer) =
            post_signed(&client, &server.webhook(tenant), secret, body.as_bytes())
                .await
                .expect("post");
        assert_eq!(status, *want, "{tenant}: {answer}");
        out.push_str(&answer.to_string());
    }

    // One live delivery is refused for good (401), the other retried (503) and then
    // delivered; the three dry-run jobs record.
    let mut listing = String::new();
    let settled = async {
        loop {
            listing = admin(&client, &server, reqwest::Method::GET, "/admin/api/jobs")
                .await
                .1;
            let j = jobs(&listing);
            if count(&j, "live", "dead") == 1
                && count(&j, "live", "done") == 1
                && count(&j, "shadow", "done") == 3
            {
                return j;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let all_jobs = tokio::time::timeout(Duration::from_secs(20), settled)
        .await
        .unwrap_or_else(|_| panic!("jobs did not settle: {listing}"));
    let sent = dest.received();
    assert_eq!(sent.len(), 3, "401, 503, then 201");
    assert!(
        sent[0].headers["authorization"].contains(var("API_TOKEN")),
        "the token was live"
    );
    assert_eq!(sent[0].headers["x-api-token"], LIT_HEADER);
    assert_eq!(sent[0].headers["x-partner"], var("PARTNER_TOKEN"));

    // Every admin API answer.
    let dead_id = all_jobs
        .iter()
        .find(|j| j["status"] == "dead")
        .and_then(|j| j["id"].as_i64())
        .expect("a dead letter");
    let get = reqwest::Method::GET;
    let post = reqwest::Method::POST;
    let mut answers = vec![listing.clone()];
    for path in [
        "/admin/api/stats",
        "/admin/api/events",
        "/admin/api/dead-letters",
    ] {
        let (status, body) = admin(&client, &server, get.clone(), path).await;
        assert_eq!(status, 200, "{path}: {body}");
        answers.push(body);
    }
    for job in &all_jobs {
        let id = job["id"].as_i64().expect("id");
        let (status, body) = admin(
            &client,
            &server,
            get.clone(),
            &format!("/admin/api/jobs/{id}"),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        answers.push(body);
    }
    let dry_runs = answers
        .iter()
        .filter(|a| a.contains("\"dry_run\":["))
        .count();
    assert_eq!(
        dry_runs, 3,
        "the three dry-run jobs show what they would send"
    );
    let dead = answers
        .iter()
        .find(|a| a.contains("HTTP 401"))
        .expect("the 401's reason");
    assert!(
        dead.contains("revoked: *** / *** / ***"),
        "the echoed credentials are masked: {dead}"
    );
    let shown = answers.concat();
    assert!(
        shown.contains("api_key=***&sig=***"),
        "the base_url query is masked: {shown}"
    );
    let metrics = reqwest::get(format!(
        "{}/metrics",
        server.admin_url.as_deref().expect("admin")
    ))
    .await
    .expect("metrics")
    .text()
    .await
    .expect("metrics body");
    assert!(metrics.contains("slatis_deliveries_total"), "{metrics}");
    answers.push(metrics);

    // The CLI beside the server: dead letters, one dead job, one dry-run job, render.
    let good_arg = good_path.to_string_lossy().into_owned();
    let shadow_id = all_jobs
        .iter()
        .find(|j| j["tenant"] == "shadow")
        .and_then(|j| j["id"].as_i64())
        .expect("a dry-run job");
    let event = dir.path().join("event.json");
    std::fs::write(&event, BOOKING_CREATED_FULL).expect("event");
    let event_arg = event.to_string_lossy().into_owned();
    let commands: Vec<Vec<String>> = vec![
        vec!["dlq".into(), "list".into()],
        vec!["dlq".into(), "show".into(), dead_id.to_string()],
        vec!["dlq".into(), "show".into(), shadow_id.to_string()],
        vec![
            "render".into(),
            "--tenant".into(),
            "shadow".into(),
            "--event".into(),
            event_arg.clone(),
        ],
        vec![
            "render".into(),
            "--tenant".into(),
            "live".into(),
            "--event".into(),
            event_arg.clone(),
        ],
    ];
    for args in &commands {
        let mut all: Vec<&str> = args.iter().map(String::as_str).collect();
        all.extend(["--config", &good_arg]);
        let (code, stdout, stderr) = process::run(&bin(), &all, &cli_env);
        assert_eq!(code, 0, "{args:?}: {stdout}{stderr}");
        out.push_str(&stdout);
        out.push_str(&stderr);
    }
    assert!(out.contains("HTTP 401"), "dlq list shows the reason: {out}");
    assert!(
        out.contains("PUT https://crm.example.com/api?api_key=***&sig=***"),
        "{out}"
    );

    // Replay the dead letter (the CRM answers now).
    let (status, body) = admin(
        &client,
        &server,
        post.clone(),
        &format!("/admin/api/dead-letters/{dead_id}/replay"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    answers.push(body);
    dest.wait_delivered(2, Duration::from_secs(10)).await;

    // Broken configs: reloaded through the admin API and SIGHUP, and validated.
    let broken = [type_errors(&good), syntax_error(&good)];
    for (i, yaml) in broken.iter().enumerate() {
        std::fs::write(&config_path, yaml).expect("break the config");
        let (status, body) = admin(&client, &server, post.clone(), "/admin/api/reload").await;
        assert_eq!(status, 422, "{body}");
        assert!(body.contains("line "), "{body}");
        answers.push(body);
        hang_up(&server).await;
        let path = dir.path().join(format!("broken{i}.yaml"));
        std::fs::write(&path, yaml).expect("write broken config");
        let path = path.to_string_lossy().into_owned();
        let (code, stdout, stderr) =
            process::run(&bin(), &["validate", "--config", &path], &cli_env);
        assert_eq!(code, 1, "{stdout}{stderr}");
        assert!(stderr.contains("line "), "{stderr}");
        out.push_str(&stdout);
        out.push_str(&stderr);
    }
    assert!(
        out.contains("invalid type"),
        "a type error was reported: {out}"
    );
    assert!(
        out.contains("not valid YAML"),
        "a syntax error was reported: {out}"
    );

    let mut server = server;
    assert!(server.terminate(Duration::from_secs(15)), "clean shutdown");
    let log = server.log();
    assert!(log.contains("DEBUG"), "the server logged at debug level");
    for line in [
        "webhook accepted",
        "dry run: would send",
        "delivery failed, will retry",
        "delivery dead-lettered",
        "config not reloaded",
    ] {
        assert!(log.contains(line), "the log has {line:?}:\n{log}");
    }

    let everything = format!("{log}\n{out}\n{}", answers.join("\n"));
    for secret in all_secrets() {
        let at = everything.find(secret).map(|i| {
            let from = everything[..i]
                .char_indices()
                .rev()
                .nth(200)
                .map_or(0, |(p, _)| p);
            &everything[from..(i + secret.len())]
        });
        assert!(
            at.is_none(),
            "{secret} was written down:\n…{}",
            at.unwrap_or_default()
        );
    }
}

/// `validate` on config.example.yaml with no variables but these.
fn validate_example(vars: &[(&str, &str)]) -> (bool, String) {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.yaml");
    let out = std::process::Command::new(bin())
        .args(["validate", "--config", example])
        .env_clear()
        .envs(vars.iter().copied())
        .output()
        .expect("run validate");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn the_example_refuses_its_placeholder_secret_once_a_tenant_sends() {
    let (ok, text) = validate_example(&[("ACME_HUBSPOT_DRY_RUN", "false")]);
    assert!(!ok, "{text}");
    assert!(text.contains("1 error"), "{text}");
    assert!(
        text.contains("tenants.acme.signing_secrets[0]: is a public placeholder")
            && text.contains("set ACME_SLATIS_SECRET"),
        "{text}"
    );
    assert!(!text.contains("whsec_acme_example"), "{text}");
    let (ok, text) = validate_example(&[
        ("ACME_HUBSPOT_DRY_RUN", "false"),
        ("ACME_SLATIS_SECRET", "whsec_3b9c1e7a5d2f"),
    ]);
    assert!(ok, "{text}");
}
