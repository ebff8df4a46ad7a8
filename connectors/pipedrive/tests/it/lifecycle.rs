//! A booking's whole life in Pipedrive: a person, a meeting activity, moved, marked done,
//! deleted.

use crate::harness::{
    PERSON_FIELD, ROUTES, TOKEN, account, activity, config, deliver, failure, ok, quick,
};
use serde_json::json;
use slatis_core::connector::MemoryRecordMap;
use slatis_testkit::fixtures::{
    self, BOOKING_CANCELLED, BOOKING_CREATED, BOOKING_CREATED_FULL, BOOKING_RESCHEDULED,
};

#[tokio::test]
async fn a_booking_lives_once_in_pipedrive() {
    let pd = account(quick()).await;
    let config = config(&pd, TOKEN, ROUTES);
    let records = MemoryRecordMap::default();
    ok(&config, &records, BOOKING_CREATED).await;
    ok(&config, &records, BOOKING_CREATED_FULL).await;
    let persons = pd.records("persons");
    assert_eq!(persons.len(), 2);
    let ada = persons
        .iter()
        .find(|p| p.emails() == vec!["ada@example.com"])
        .expect("Ada");
    assert_eq!(ada.text("name"), Some("Ada Lovelace"));
    assert_eq!(ada.custom(PERSON_FIELD), Some(&json!("bkg_01HZX4M2Q8")));
    let jose = persons
        .iter()
        .find(|p| p.emails() == vec!["jose.garcia@example.com"])
        .expect("José (email lower-cased)");
    assert_eq!(jose.text("name"), Some("José María García Pérez"));
    assert_eq!(
        (jose.text("first_name"), jose.text("last_name")),
        (Some("José"), Some("María García Pérez"))
    );
    assert_eq!(
        jose.field("phones"),
        Some(&json!([{"value": "+34 600 000 000", "primary": true, "label": "work"}]))
    );

    let activity = |booking: &str| activity(&pd, booking).unwrap_or_else(|| panic!("{booking}"));
    let a = activity("bkg_01HZX4M2Q8");
    assert_eq!(a.text("note"), Some("<p>[slatis:bkg_01HZX4M2Q8]</p>"));
    assert_eq!(
        activity("bkg_01HZX4M2Q9").text("note"),
        Some("Asked about \"pricing\" & <enterprise> plan<p>[slatis:bkg_01HZX4M2Q9]</p>"),
        "the booking's notes, then the reference"
    );
    assert_eq!(a.text("type"), Some("meeting"));
    assert_eq!(
        (a.text("due_date"), a.text("due_time"), a.text("duration")),
        (Some("2026-12-01"), Some("15:00"), Some("00:30"))
    );
    assert_eq!(
        a.field("person_id"),
        Some(&json!(ada.id)),
        "linked to the person through the primary participant"
    );
    assert_eq!(
        a.field("participants"),
        Some(&json!([{"person_id": ada.id, "primary": true}]))
    );

    ok(&config, &records, BOOKING_RESCHEDULED).await;
    assert_eq!(
        pd.records("activities").len(),
        2,
        "the reschedule moved the activity"
    );
    let moved = activity("bkg_01HZX4M2Q8");
    assert_eq!(
        (moved.text("due_date"), moved.text("due_time")),
        (Some("2026-12-02"), Some("10:00"))
    );
    assert_eq!(pd.records("persons").len(), 2);

    ok(&config, &records, BOOKING_CANCELLED).await;
    let cancelled = activity("bkg_01HZX4M2Q8");
    assert_eq!(cancelled.field("done"), Some(&json!(true)));
    assert_eq!(
        cancelled.text("subject"),
        Some("Canceled: Slatis booking with Ada Lovelace")
    );

    let no_show = fixtures::booking(
        "BOOKING_NO_SHOW",
        "bkg_01HZX4M2Q9",
        "José",
        "jose.garcia@example.com",
    );
    ok(&config, &records, &no_show).await;
    assert_eq!(pd.records("activities").len(), 1, "deleted");
    ok(&config, &records, &no_show).await; // already gone: fine
}

#[tokio::test]
async fn a_person_upsert_uses_the_oldest_of_several_with_the_email_keeps_its_name_and_makes_none() {
    let pd = account(quick()).await;
    let older = pd.seed(
        "persons",
        json!({"name": "Ada (old)", "emails": [{"value": "ada@example.com"}]}),
    );
    pd.seed(
        "persons",
        json!({"name": "Ada (new)", "emails": [{"value": "ADA@example.com"}]}),
    );
    let config = config(&pd, TOKEN, ROUTES);
    let r = ok(&config, &MemoryRecordMap::default(), BOOKING_CREATED).await;
    assert_eq!(
        r.progress.step_results["person"],
        json!({"id": older.to_string(), "created": false})
    );
    assert_eq!(pd.records("persons").len(), 2, "no third person");
    let person = pd.record("persons", older).expect("older");
    assert_eq!(
        person.text("name"),
        Some("Ada (old)"),
        "name is written on: empty, and the person has one"
    );
    assert_eq!(person.custom(PERSON_FIELD), None, "written on: create only");
    assert_eq!(
        person.emails(),
        ["ada@example.com"],
        "the email it has: not added again"
    );
}

#[tokio::test]
async fn the_token_is_a_header_never_a_url_parameter() {
    let pd = account(quick()).await;
    ok(
        &config(&pd, TOKEN, ROUTES),
        &MemoryRecordMap::default(),
        BOOKING_CREATED,
    )
    .await;
    let requests = pd.requests();
    assert!(!requests.is_empty());
    assert!(
        requests
            .iter()
            .all(|r| !r.token_in_url && r.api_token.as_deref() == Some("pd-test-token")),
        "{requests:?}"
    );
}

#[tokio::test]
async fn oauth_uses_the_api_domain_and_refreshes_after_a_401() {
    let pd = account(slatis_testkit::mock::PipedriveOptions {
        api_tokens: vec![],
        oauth: Some(("pd-client".into(), "pd-secret".into(), "pd-refresh".into())),
        ..quick()
    })
    .await;
    let keys = format!(
        "oauth: {{ client_id: pd-client, client_secret: pd-secret, refresh_token: pd-refresh, token_url: \"{}/oauth/token\" }}, rate_limit: {{ requests: 1000, per: 1s }}",
        pd.url()
    );
    // base_url points nowhere: the token's api_domain is what is used
    let yaml = format!(
        "tenants:\n  t:\n    signing_secrets: [s]\n    connectors:\n      pd: {{ type: pipedrive, base_url: \"http://127.0.0.1:9\", timeout: 500ms, {keys} }}\n{ROUTES}"
    );
    let config = slatis_core::config::load_str(&yaml, &|_| None).unwrap_or_else(|e| panic!("{e}"));
    let records = MemoryRecordMap::default();
    ok(&config, &records, BOOKING_CREATED).await;
    assert_eq!(pd.tokens_issued(), 1);
    pd.expire_tokens_now();
    ok(&config, &records, BOOKING_RESCHEDULED).await;
    assert_eq!(pd.tokens_issued(), 2, "refreshed after the 401");
    assert!(pd.requests().iter().any(|r| r.status == 401));
}

#[tokio::test]
async fn a_dry_run_sends_nothing() {
    let pd = account(quick()).await;
    let config = config(&pd, &format!("{TOKEN}, dry_run: true"), ROUTES);
    let r = ok(&config, &MemoryRecordMap::default(), BOOKING_CREATED).await;
    assert!(pd.requests().is_empty());
    let calls: Vec<String> = r
        .trace
        .iter()
        .flat_map(|t| {
            t.requests.iter().map(|q| {
                format!(
                    "{} {}",
                    q.method,
                    q.url.split('?').next().unwrap_or_default()
                )
            })
        })
        .collect();
    let base = pd.url();
    assert_eq!(
        calls,
        vec![
            format!("GET {base}/api/v2/persons/search"),
            format!("POST {base}/api/v2/persons"),
            format!("POST {base}/api/v2/activities")
        ]
    );
    let token = r.trace[0].requests[0]
        .headers
        .iter()
        .find(|(k, _)| k == "x-api-token")
        .map(|(_, v)| v.as_str());
    assert_eq!(token, Some("***"));
    // and an unknown activity to update in dry run is assumed found
    let e = deliver(&config, &MemoryRecordMap::default(), BOOKING_CANCELLED).await;
    assert!(
        e.failure.is_none(),
        "{:?}",
        e.failure.as_ref().map(|f| failure_text(&f.1))
    );
}

fn failure_text(e: &slatis_core::DeliveryError) -> String {
    e.to_string()
}

#[tokio::test]
async fn an_update_with_nothing_to_update_is_retried() {
    let pd = account(quick()).await;
    let config = config(&pd, TOKEN, ROUTES);
    let e =
        failure(&deliver(&config, &MemoryRecordMap::default(), BOOKING_CANCELLED).await).clone();
    assert_eq!(e.class(), "retryable", "{e}");
    assert!(e.message().contains("no activities with note_ref"), "{e}");
}

/// A record id taken from the booking (`match: {property: id}`) is one path segment.
#[tokio::test]
async fn an_id_from_the_booking_stays_one_path_segment() {
    let pd = account(quick()).await;
    let routes = r#"
    routes:
      BOOKING_CREATED:
        - { connector: pd, action: update, object: deals, match: { property: id, value: "{{data.id}}" }, properties: { title: x } }
      BOOKING_CANCELLED:
        - { connector: pd, action: delete, object: deals, match: { property: id, value: "{{data.id}}" } }
"#;
    let config = config(&pd, &format!("{TOKEN}, dry_run: true"), routes);
    let records = MemoryRecordMap::default();
    let body = |event: &str, id: &str| {
        json!({"event": event, "timestamp": "2026-01-01T00:00:00Z", "data": {"id": id}}).to_string()
    };
    let r = ok(
        &config,
        &records,
        &body("BOOKING_CREATED", "1/../../persons/2?x="),
    )
    .await;
    let url = &r.trace[0].requests[0].url;
    assert_eq!(
        *url,
        format!("{}/api/v2/deals/1%2F..%2F..%2Fpersons%2F2%3Fx%3D", pd.url())
    );
    for (event, id) in [("BOOKING_CREATED", ".."), ("BOOKING_CANCELLED", ".")] {
        let r = deliver(&config, &records, &body(event, id)).await;
        let e = failure(&r);
        assert_eq!(e.class(), "permanent", "{event} {id}: {e}");
    }
    assert!(pd.requests().is_empty());
}
