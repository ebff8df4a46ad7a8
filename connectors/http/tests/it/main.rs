//! The http connector against testkit's mock destination, run through the core's job
//! runner: requests as configured, replies classed, dry run recorded.

use slatis_core::DeliveryError;
use slatis_core::config::{Config, load_str};
use slatis_core::connector::MemoryRecordMap;
use slatis_core::job::{self, JobEvent, Progress, RunResult};
use slatis_testkit::fixtures::BOOKING_CREATED_FULL;
use slatis_testkit::mock::{Fault, MockHttp};
use std::time::Duration;

// Linked for its inventory registration.
use slatis_connector_http as _;

fn config(dest: &str, dry_run: bool) -> Config {
    let yaml = format!(
        r#"
tenants:
  t:
    signing_secrets: [s]
    connectors:
      api:
        type: http
        dry_run: {dry_run}
        base_url: "{dest}/v2/"
        timeout: 500ms
        headers: {{ Authorization: "Bearer ${{HTTP_IT_TOKEN}}", X-Static: "yes" }}
        sign: {{ secret: "${{HTTP_IT_SIGN}}" }}
    routes:
      BOOKING_CREATED:
        - id: person
          connector: api
          action: request
          method: post
          path: /people
          headers: {{ X-Booking: "{{{{data.id}}}}" }}
          json:
            name: "{{{{data.attendee.name}}}}"
            notes: "{{{{data.notes}}}}"
            tags: ["{{{{data.custom_fields.topic}}}}", 1, true, null]
        - connector: api
          action: request
          method: PUT
          path: "/people/{{{{steps.person.id}}}}/note"
          body: "Booked {{{{data.title}}}} at {{{{date data.start_time '%H:%M' 'Europe/Madrid'}}}}"
          content_type: text/plain
"#
    );
    let env = |name: &str| match name {
        "HTTP_IT_TOKEN" => Some("tok_http_it_secret".to_owned()),
        "HTTP_IT_SIGN" => Some("sign_http_it_secret".to_owned()),
        _ => None,
    };
    load_str(&yaml, &env).unwrap_or_else(|e| panic!("{e}"))
}

async fn run(config: &Config) -> RunResult {
    let body: serde_json::Value = serde_json::from_str(BOOKING_CREATED_FULL).expect("fixture");
    let tenant = &config.tenants["t"];
    let instance = &tenant.connectors["api"];
    let event = JobEvent {
        id: "evt_1",
        event_type: "BOOKING_CREATED",
        received_at: chrono::Utc::now(),
        body: &body,
    };
    let job = job::Job {
        config,
        tenant,
        instance,
        transport: &instance.transport,
        event: &event,
        attempt: 1,
    };
    job::run(&job, Progress::default(), &MemoryRecordMap::default()).await
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
