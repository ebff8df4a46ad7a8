//! The http connector against testkit's mock destination, run through the core's job
//! runner: requests as configured, replies classed, dry run recorded.

use slatis_core::DeliveryError;
use slatis_core::config::{Config, load_str};
use slatis_core::connector::{MemoryKeyLocks, MemoryRecordMap};
use slatis_core::job::{self, JobEvent, Progress, RunResult};
use slatis_testkit::fixtures::BOOKING_CREATED_FULL;
use slatis_testkit::mock::{Fault, MockHttp};
use std::time::Duration;

// Linked for its inventory registration.
use slatis_connector_http as _;

/// The instances' per-key locks, shared by every delivery of this test binary (as the
/// server shares them across deliveries).
static LOCKS: std::sync::LazyLock<MemoryKeyLocks> =
    std::sync::LazyLock::new(MemoryKeyLocks::default);

/// One tenant `t` with one http instance `api` (its keys beside the type) and `routes`
/// (YAML lines indented under `routes:`).
fn yaml(instance: &str, routes: &str) -> String {
    format!(
        "tenants:\n  t:\n    signing_secrets: [s]\n    connectors:\n      api: {{ type: http, timeout: 500ms, {instance} }}\n    routes:\n{routes}"
    )
}

fn config(dest: &str, dry_run: bool) -> Config {
    let instance = format!(
        r#"dry_run: {dry_run}, base_url: "{dest}/v2/", headers: {{ Authorization: "Bearer ${{HTTP_IT_TOKEN}}", X-Static: "yes" }}, sign: {{ secret: "${{HTTP_IT_SIGN}}" }}"#
    );
    let routes = r#"
      BOOKING_CREATED:
        - id: person
          connector: api
          action: request
          method: post
          path: /people
          headers: { X-Booking: "{{data.id}}" }
          json:
            name: "{{data.attendee.name}}"
            notes: "{{data.notes}}"
            tags: ["{{data.custom_fields.topic}}", 1, true, null]
        - connector: api
          action: request
          method: PUT
          path: "/people/{{steps.person.id}}/note"
          body: "Booked {{data.title}} at {{date data.start_time '%H:%M' 'Europe/Madrid'}}"
          content_type: text/plain
"#;
    let env = |name: &str| match name {
        "HTTP_IT_TOKEN" => Some("tok_http_it_secret".to_owned()),
        "HTTP_IT_SIGN" => Some("sign_http_it_secret".to_owned()),
        _ => None,
    };
    load_str(&yaml(&instance, routes), &env).unwrap_or_else(|e| panic!("{e}"))
}

async fn run(config: &Config) -> RunResult {
    let body: serde_json::Value = serde_json::from_str(BOOKING_CREATED_FULL).expect("fixture");
    run_body(config, &body).await
}

async fn run_body(config: &Config, body: &serde_json::Value) -> RunResult {
    let event = JobEvent {
        id: "evt_1",
        event_type: "BOOKING_CREATED",
        received_at: chrono::Utc::now(),
        body,
    };
    let job = job::Job {
        config,
        tenant: "t",
        instance: "api",
        event: &event,
        attempt: 1,
        record_only: false,
    };
    job::run(
        &job,
        Progress::default(),
        &MemoryRecordMap::default(),
        &*LOCKS,
    )
    .await
}

#[tokio::test]
async fn requests_are_sent_as_configured() {
    let dest = MockHttp::start().await;
    let config = config(&dest.url(), false);
    let result = run(&config).await;
    assert!(result.failure.is_none(), "{:?}", result.failure);
    let got = dest.received();
    assert_eq!(got.len(), 2);
    let (first, second) = (&got[0], &got[1]);
    assert_eq!(
        (first.method.as_str(), first.path.as_str()),
        ("POST", "/v2/people")
    );
    assert_eq!(first.headers["authorization"], "Bearer tok_http_it_secret");
    assert_eq!(first.headers["x-static"], "yes");
    assert_eq!(first.headers["x-booking"], "bkg_01HZX4M2Q9");
    assert_eq!(
        first.headers["x-slatis-signature"],
        slatis_testkit::signer::sign(b"sign_http_it_secret", &first.body)
    );
    assert_eq!(
        first.json(),
        serde_json::json!({"name": "José María García Pérez", "notes": "Asked about \"pricing\" & <enterprise> plan", "tags": ["Product demo", 1, true, null]})
    );
    assert_eq!(
        (second.method.as_str(), second.path.as_str()),
        ("PUT", "/v2/people/1/note"),
        "the id the first answer gave"
    );
    assert_eq!(second.headers["content-type"], "text/plain");
    assert_eq!(
        String::from_utf8_lossy(&second.body),
        "Booked Intro call at 16:00"
    );
    assert_eq!(result.progress.steps_done, 2);
    assert_eq!(
        result.progress.step_results["person"]["created"], true,
        "201 means created"
    );
}

#[tokio::test]
async fn replies_are_classed() {
    let cases: Vec<(Fault, &str, &str)> = vec![
        (
            Fault::Status {
                status: 400,
                retry_after: None,
                body: r#"{"error":"name is required"}"#.into(),
            },
            "permanent",
            "HTTP 400: {\"error\":\"name is required\"}",
        ),
        (
            Fault::Status {
                status: 404,
                retry_after: None,
                body: String::new(),
            },
            "permanent",
            "HTTP 404",
        ),
        (
            Fault::Status {
                status: 408,
                retry_after: None,
                body: String::new(),
            },
            "retryable",
            "HTTP 408",
        ),
        (
            Fault::Status {
                status: 503,
                retry_after: Some(30),
                body: "down".into(),
            },
            "retryable",
            "HTTP 503: down",
        ),
        (
            Fault::Status {
                status: 429,
                retry_after: Some(5),
                body: "slow".into(),
            },
            "rate_limited",
            "HTTP 429: slow",
        ),
        (
            Fault::Slow(Duration::from_millis(900)),
            "retryable",
            "timed out after 500ms",
        ),
        (Fault::Drop, "retryable", "POST failed"),
    ];
    for (fault, class, text) in cases {
        let dest = MockHttp::start().await;
        dest.fail_next(1, fault.clone());
        let result = run(&config(&dest.url(), false)).await;
        let (step, error) = result
            .failure
            .unwrap_or_else(|| panic!("{fault:?} should fail"));
        assert_eq!(step, 0);
        assert_eq!(error.class(), class, "{fault:?}: {error}");
        assert!(error.message().contains(text), "{fault:?}: {error}");
        assert!(
            error
                .message()
                .contains("step 1 (tenants.t.routes.BOOKING_CREATED[0], http request)"),
            "{error}"
        );
        assert!(!error.message().contains("tok_http_it_secret"));
        match error {
            DeliveryError::Retryable {
                not_before: Some(t),
                ..
            } => assert!(t > chrono::Utc::now() + chrono::Duration::seconds(25)),
            DeliveryError::RateLimited { until, .. } => {
                assert!(until > chrono::Utc::now() + chrono::Duration::seconds(3))
            }
            _ => {}
        }
    }
}

#[tokio::test]
async fn a_dry_run_records_and_sends_nothing() {
    let dest = MockHttp::start().await;
    let config = config(&dest.url(), true);
    let result = run(&config).await;
    assert!(result.failure.is_none(), "{:?}", result.failure);
    assert!(dest.received().is_empty(), "nothing was sent");
    let requests: Vec<_> = result
        .trace
        .iter()
        .flat_map(|t| t.requests.clone())
        .collect();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].method, "POST");
    assert_eq!(requests[0].url, format!("{}/v2/people", dest.url()));
    assert_eq!(
        requests[1].url,
        format!("{}/v2/people/dry-run/note", dest.url()),
        "a dry run assumes an id, so the next path shows where it would go"
    );
    let header = |name: &str| {
        requests[0]
            .headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(
        header("authorization").as_deref(),
        Some("***"),
        "credentials are masked"
    );
    assert_eq!(header("x-static").as_deref(), Some("yes"));
    assert_eq!(
        header(slatis_core::signature::HEADER).as_deref(),
        Some("***"),
        "the body signature is marked sensitive"
    );
    let written = serde_json::to_string(&requests).expect("json");
    for secret in ["tok_http_it_secret", "sign_http_it_secret"] {
        assert!(!written.contains(secret), "{written}");
    }
    assert_eq!(
        requests[0].body.as_ref().expect("body")["name"],
        "José María García Pérez"
    );
    assert_eq!(
        requests[1].body,
        Some(serde_json::json!("Booked Intro call at 16:00"))
    );
}

/// A POST to `path` (written into a YAML double-quoted string) under `{dest}/v2`.
fn path_yaml(base_url: &str, path: &str) -> String {
    yaml(
        &format!(
            r#"base_url: "{base_url}/v2", headers: {{ Authorization: "Bearer tok_http_it_secret" }}"#
        ),
        &format!(
            "      BOOKING_CREATED:\n        - {{ connector: api, action: request, method: POST, path: \"{path}\", json: {{ id: \"{{{{data.id}}}}\" }} }}\n"
        ),
    )
}

fn path_config(dest: &str, path: &str) -> Config {
    load_str(&path_yaml(dest, path), &|_| None).unwrap_or_else(|e| panic!("{e}"))
}

/// A hostile booking id never moves the request: it is one segment under base_url, or
/// the step fails (permanently) and nothing is sent.
#[tokio::test]
async fn a_hostile_id_stays_one_path_segment() {
    let sent: &[(&str, &str)] = &[
        (
            "../../admin/users/1?x=",
            "..%2F..%2Fadmin%2Fusers%2F1%3Fx%3D",
        ),
        ("%2e%2e", "%252e%252e"),
        ("%2E%2E%2Fadmin", "%252E%252E%252Fadmin"),
        ("?", "%3F"),
        ("#top", "%23top"),
        ("//evil.com", "%2F%2Fevil.com"),
        ("..\\admin", "..%5Cadmin"),
        ("José Ñandú/1", "Jos%C3%A9%20%C3%91and%C3%BA%2F1"),
        ("a\nb\tc", "a%0Ab%09c"),
        ("...", "..."),
        ("bkg_1", "bkg_1"),
    ];
    let dest = MockHttp::start().await;
    let config = path_config(&dest.url(), "/people/{{data.id}}/note?src=slatis");
    for (id, segment) in sent {
        let mut body: serde_json::Value =
            serde_json::from_str(BOOKING_CREATED_FULL).expect("fixture");
        body["data"]["id"] = (*id).into();
        let result = run_body(&config, &body).await;
        assert!(result.failure.is_none(), "{id:?}: {:?}", result.failure);
        let got = dest.received();
        let last = got.last().expect("sent");
        assert_eq!(
            last.path,
            format!("/v2/people/{segment}/note?src=slatis"),
            "{id:?}"
        );
        assert_eq!(last.json()["id"], *id, "the body holds the value as sent");
    }
    let before = dest.received().len();
    for id in ["..", ".", ""] {
        let mut body: serde_json::Value =
            serde_json::from_str(BOOKING_CREATED_FULL).expect("fixture");
        body["data"]["id"] = id.into();
        let (step, error) = run_body(&config, &body)
            .await
            .failure
            .unwrap_or_else(|| panic!("{id:?} must fail"));
        assert_eq!(step, 0);
        assert_eq!(error.class(), "permanent", "{id:?}: {error}");
        assert!(
            error
                .message()
                .contains("tenants.t.routes.BOOKING_CREATED[0].path"),
            "{id:?}: {error}"
        );
    }
    assert_eq!(dest.received().len(), before, "nothing was sent for them");
}

/// What the operator wrote keeps its structure, but even it cannot leave base_url.
#[tokio::test]
async fn the_written_path_keeps_its_structure_but_not_past_base_url() {
    let dest = MockHttp::start().await;
    let config = path_config(&dest.url(), "a/b/{{data.id}}?x=1&y={{data.id}}");
    assert!(run(&config).await.failure.is_none());
    assert_eq!(
        dest.received()[0].path,
        "/v2/a/b/bkg_01HZX4M2Q9?x=1&y=bkg_01HZX4M2Q9"
    );
    // A tab inside `..` survives the dot-segment check, and URL parsers drop it: the
    // final check still keeps the request under base_url.
    let config = path_config(&dest.url(), "x/.\\t./.\\t./admin/{{data.id}}");
    let (_, error) = run(&config).await.failure.expect("refused");
    assert_eq!(error.class(), "permanent", "{error}");
    assert!(error.message().contains("outside base_url"), "{error}");
    assert_eq!(dest.received().len(), 1, "nothing more was sent");
    for (path, want) in [
        ("a/../../admin", "the path holds the segment"),
        ("a/{{{data.id}}}", "unescaped"),
    ] {
        let Err(err) = load_str(&path_yaml("http://127.0.0.1:1", path), &|_| None) else {
            panic!("{path} must not load");
        };
        let err = err.to_string();
        assert!(
            err.contains("tenants.t.routes.BOOKING_CREATED[0].path") && err.contains(want),
            "{path}: {err}"
        );
    }
}
