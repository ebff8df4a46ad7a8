//! Pipedrive's error envelope, classed and kept in the failure.

use crate::harness::{ROUTES, TOKEN, account, config, deliver, failure, ok, quick};
use chrono::Utc;
use slatis_core::DeliveryError;
use slatis_core::connector::MemoryRecordMap;
use slatis_testkit::fixtures::{self, BOOKING_CREATED};
use slatis_testkit::mock::{Fault, PipedriveOptions};

#[tokio::test]
async fn errors_are_classed_with_pipedrives_message() {
    let pd = account(quick()).await;
    let routes = r#"
    routes:
      BOOKING_CREATED:
        - { connector: pd, action: create, object: persons, properties: { name: "{{data.attendee.name}}", favourite_colour: blue } }
      BOOKING_UPDATED:
        - { connector: pd, action: create, object: deals, properties: { title: "{{data.id}}" } }
"#;
    let config = config(&pd, TOKEN, routes);
    let e = failure(&deliver(&config, &MemoryRecordMap::default(), BOOKING_CREATED).await).clone();
    assert_eq!(e.class(), "permanent");
    assert!(
        e.message()
            .contains("HTTP 400: Unknown field 'favourite_colour'"),
        "{e}"
    );
    pd.forbid("deals");
    let updated = fixtures::booking("BOOKING_UPDATED", "b", "A B", "a@b.co");
    let e = failure(&deliver(&config, &MemoryRecordMap::default(), &updated).await).clone();
    assert_eq!(e.class(), "permanent");
    assert!(
        e.message().contains("HTTP 403: You do not have permission"),
        "{e}"
    );

    let closed = account(PipedriveOptions {
        account_open: false,
        ..quick()
    })
    .await;
    let e = failure(
        &deliver(
            &crate::harness::config(&closed, TOKEN, ROUTES),
            &MemoryRecordMap::default(),
            BOOKING_CREATED,
        )
        .await,
    )
    .clone();
    assert_eq!(e.class(), "permanent");
    assert!(
        e.message()
            .contains("HTTP 402: Company account is not open"),
        "{e}"
    );
}

#[tokio::test]
async fn rate_limits_wait_for_the_window_and_server_errors_retry() {
    // the connector's limit set above the mock's: Pipedrive answers 429
    let pd = account(PipedriveOptions {
        burst: 1,
        burst_window: std::time::Duration::from_secs(2),
        ..quick()
    })
    .await;
    let config = config(&pd, TOKEN, ROUTES);
    let e = failure(&deliver(&config, &MemoryRecordMap::default(), BOOKING_CREATED).await).clone();
    match &e {
        DeliveryError::RateLimited { until, message } => {
            assert!(
                message.contains("HTTP 429: Request over limit"),
                "{message}"
            );
            assert!(
                *until > Utc::now() && *until <= Utc::now() + chrono::Duration::seconds(3),
                "{until}"
            );
        }
        other => panic!("{other:?}"),
    }
    let pd = account(quick()).await;
    let config = crate::harness::config(&pd, TOKEN, ROUTES);
    for fault in [
        Fault::Status {
            status: 500,
            retry_after: None,
            body: String::new(),
        },
        Fault::Slow(std::time::Duration::from_millis(800)),
    ] {
        pd.fail_next(1, fault.clone());
        let e =
            failure(&deliver(&config, &MemoryRecordMap::default(), BOOKING_CREATED).await).clone();
        assert_eq!(e.class(), "retryable", "{fault:?}: {e}");
    }
}

#[tokio::test]
async fn searches_stay_under_their_own_limit() {
    let pd = account(PipedriveOptions {
        search_burst: 3,
        burst_window: std::time::Duration::from_secs(1),
        ..quick()
    })
    .await;
    let keys = "api_token: pd-test-token, rate_limit: { requests: 1000, per: 1s }, search_rate_limit: { requests: 3, per: 1s }";
    let config = config(&pd, keys, ROUTES);
    for i in 0..7 {
        let body = fixtures::booking(
            "BOOKING_CREATED",
            &format!("b{i}"),
            "Ada Lovelace",
            &format!("a{i}@example.com"),
        );
        let r = deliver(&config, &MemoryRecordMap::default(), &body).await;
        assert!(r.failure.is_none(), "{:?}", r.failure);
    }
    assert_eq!(pd.rate_limited(), 0);
}

#[test]
fn bad_config_is_a_load_error_naming_the_key() {
    let cases = [
        (
            "api_token: t",
            "base_url: an api_token needs the company domain",
        ),
        ("base_url: \"https://x.pipedrive.com\"", "needs api_token"),
    ];
    for (keys, want) in cases {
        let yaml = format!(
            "tenants:\n  t:\n    signing_secrets: [s]\n    connectors:\n      pd: {{ type: pipedrive, {keys} }}\n"
        );
        let text = slatis_core::config::load_str(&yaml, &|_| None)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(text.contains(want), "{keys}: {text}");
    }
    let step = "tenants:\n  t:\n    signing_secrets: [s]\n    connectors:\n      pd: { type: pipedrive, base_url: \"https://x.pipedrive.com\", api_token: t }\n    routes:\n      BOOKING_CREATED:\n        - { connector: pd, action: upsert, object: leads, match: { property: email, value: x } }\n        - { connector: pd, action: upsert, object: deals, match: { property: email, value: x } }\n";
    let text = slatis_core::config::load_str(step, &|_| None)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(text.contains("BOOKING_CREATED[0].object: `leads` is not one of persons, organizations, deals, activities"), "{text}");
    assert!(
        text.contains(
            "BOOKING_CREATED[1].match.property: Pipedrive cannot search deals by `email`"
        ),
        "{text}"
    );
}

#[tokio::test]
async fn a_spent_daily_budget_pauses_until_the_budget_resets() {
    // enough for one booking (search 20, create 5, create 5), not for a second
    let pd = account(PipedriveOptions {
        daily_budget: Some(40),
        ..quick()
    })
    .await;
    let zone = "America/New_York";
    let config = config(
        &pd,
        &format!("{TOKEN}, daily_budget_time_zone: {zone}"),
        ROUTES,
    );
    ok(&config, &MemoryRecordMap::default(), BOOKING_CREATED).await;
    let second = fixtures::booking("BOOKING_CREATED", "b2", "Bo Bright", "bo@example.com");
    let e = failure(&deliver(&config, &MemoryRecordMap::default(), &second).await).clone();
    let DeliveryError::RateLimited { until, message } = &e else {
        panic!("{e:?}");
    };
    assert!(
        message.contains("daily API token budget is spent"),
        "{message}"
    );
    let local = until.with_timezone(&zone.parse::<chrono_tz::Tz>().expect("zone"));
    assert_eq!(
        local.time(),
        chrono::NaiveTime::MIN,
        "midnight in the budget's zone: {local}"
    );
    assert!(*until > Utc::now() && *until <= Utc::now() + chrono::Duration::days(1));
    assert_eq!(pd.records("persons").len(), 1, "nothing more was written");
    pd.reset_daily_budget();
    ok(&config, &MemoryRecordMap::default(), &second).await;
    assert_eq!(pd.records("persons").len(), 2);
}

#[test]
fn steps_pipedrive_v2_would_refuse_are_load_errors() {
    let instance = "tenants:\n  t:\n    signing_secrets: [s]\n    connectors:\n      pd: { type: pipedrive, base_url: \"https://x.pipedrive.com\", api_token: t, daily_budget_time_zone: Mars/Olympus }\n";
    let text = slatis_core::config::load_str(instance, &|_| None)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        text.contains("connectors.pd.daily_budget_time_zone: is not an IANA time zone"),
        "{text}"
    );
    let yaml = "tenants:\n  t:\n    signing_secrets: [s]\n    connectors:\n      pd: { type: pipedrive, base_url: \"https://x.pipedrive.com\", api_token: t }\n    routes:\n      BOOKING_CREATED:\n        - { connector: pd, action: upsert, object: activities, match: { property: 3b8e1f6a9c2d5e7f0a4b6c8d1e3f5a7b9c0d2e4f, value: x }, properties: { 3b8e1f6a9c2d5e7f0a4b6c8d1e3f5a7b9c0d2e4f: x, person_id: \"1\" } }\n        - { connector: pd, action: upsert, object: persons, match: { property: note_ref, value: x } }\n        - { connector: pd, action: update, object: activities, match: { property: subject, value: x } }\n";
    let text = slatis_core::config::load_str(yaml, &|_| None)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    for want in [
        "BOOKING_CREATED[0].match.property: Pipedrive activities have no custom fields and no search",
        "BOOKING_CREATED[0].properties.3b8e1f6a9c2d5e7f0a4b6c8d1e3f5a7b9c0d2e4f: Pipedrive activities have no custom fields",
        "https://pipedrive.readme.io/docs/core-api-concepts-custom-fields",
        "BOOKING_CREATED[0].properties.person_id: an activity's person_id is read-only",
        "BOOKING_CREATED[1].match.property: `note_ref` names activities",
        "BOOKING_CREATED[2].match.property: Pipedrive activities have no custom fields and no search",
    ] {
        assert!(text.contains(want), "wanted {want:?} in:\n{text}");
    }
}
