//! The HubSpot mock, through reqwest: auth, OAuth, validation, uniqueness, search lag,
//! batch upsert, idProperty, delete, associations, rate limits and faults; every refusal
//! with its doc ([`strict`]); reads from the primary store ([`reads`]).

mod reads;
mod strict;

use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use slatis_testkit::mock::{Fault, HubSpotOptions, MockHubSpot};
use std::time::Duration;

const TOKEN: &str = "pat-test-token";

/// Default options, with search seeing changes at once.
fn quick() -> HubSpotOptions {
    HubSpotOptions {
        search_lag: Duration::ZERO,
        ..HubSpotOptions::default()
    }
}

struct Answer {
    status: u16,
    headers: HeaderMap,
    body: Value,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

async fn send_as(
    mock: &MockHubSpot,
    token: Option<&str>,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Answer {
    let mut request = reqwest::Client::new().request(method, format!("{}{path}", mock.url()));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("send");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.expect("body");
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).expect("JSON body")
    };
    Answer {
        status,
        headers,
        body,
    }
}

async fn send(mock: &MockHubSpot, method: Method, path: &str, body: Option<Value>) -> Answer {
    send_as(mock, Some(TOKEN), method, path, body).await
}

async fn create(mock: &MockHubSpot, object_type: &str, properties: Value) -> Answer {
    let path = format!("/crm/v3/objects/{object_type}");
    send(
        mock,
        Method::POST,
        &path,
        Some(json!({ "properties": properties })),
    )
    .await
}

async fn search_eq(mock: &MockHubSpot, object_type: &str, property: &str, value: &str) -> Answer {
    let path = format!("/crm/v3/objects/{object_type}/search");
    let body = json!({
        "filterGroups": [{ "filters": [{ "propertyName": property, "operator": "EQ", "value": value }] }],
        "properties": [property],
    });
    send(mock, Method::POST, &path, Some(body)).await
}

async fn token_grant(mock: &MockHubSpot, form: &str) -> Answer {
    let response = reqwest::Client::new()
        .post(format!("{}/oauth/2026-03/token", mock.url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form.to_owned())
        .send()
        .await
        .expect("send");
    Answer {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        body: response.json().await.expect("JSON body"),
    }
}

/// The entries embedded in a "Property values were not valid: [...]" message.
fn invalid_entries(answer: &Answer) -> Vec<Value> {
    let message = answer.body["message"].as_str().expect("message");
    let list = message
        .strip_prefix("Property values were not valid: ")
        .unwrap_or_else(|| panic!("not a property validation message: {message}"));
    serde_json::from_str(list).expect("embedded JSON list")
}

#[tokio::test]
async fn missing_or_unknown_token_is_401_invalid_authentication() {
    let mock = MockHubSpot::start(quick()).await;
    for token in [None, Some("pat-wrong")] {
        let a = send_as(
            &mock,
            token,
            Method::GET,
            "/crm/v3/objects/contacts/101",
            None,
        )
        .await;
        assert_eq!(a.status, 401);
        assert_eq!(a.body["status"], "error");
        assert_eq!(a.body["message"], "Authentication credentials not found.");
        assert_eq!(a.body["category"], "INVALID_AUTHENTICATION");
        assert!(
            a.body["correlationId"]
                .as_str()
                .is_some_and(|c| !c.is_empty())
        );
        assert!(a.header("x-hubspot-ratelimit-max").is_none());
    }
    let a = send_as(
        &mock,
        None,
        Method::GET,
        "/account-info/v3/api-usage/daily/private-apps",
        None,
    )
    .await;
    assert_eq!(a.status, 401);
    let requests = mock.requests();
    assert_eq!(requests.len(), 3);
    assert!(requests.iter().all(|r| r.status == 401));
    assert_eq!(requests[1].token.as_deref(), Some("pat-wrong"));
    assert_eq!(requests[0].path, "/crm/v3/objects/contacts/101");
}

#[tokio::test]
async fn oauth_grants_tokens_that_expire() {
    let mock = MockHubSpot::start(HubSpotOptions {
        tokens: Vec::new(),
        oauth: Some(("cid".into(), "csecret".into(), "rt-1".into())),
        access_token_ttl: Duration::from_secs(60),
        ..quick()
    })
    .await;
    let bad = token_grant(
        &mock,
        "grant_type=refresh_token&client_id=cid&client_secret=csecret&refresh_token=rt-2",
    )
    .await;
    assert_eq!(bad.status, 400);
    assert_eq!(
        bad.body,
        json!({"error": "invalid_grant", "error_description": "refresh token is invalid, expired or revoked",
               "status": "BAD_REFRESH_TOKEN", "message": "refresh token is invalid, expired or revoked"})
    );
    let bad = token_grant(
        &mock,
        "grant_type=refresh_token&client_id=other&client_secret=csecret&refresh_token=rt-1",
    )
    .await;
    assert_eq!(bad.body["error"], "invalid_client");
    assert_eq!(mock.tokens_issued(), 0);

    let form = "grant_type=refresh_token&client_id=cid&client_secret=csecret&refresh_token=rt-1";
    let grant = token_grant(&mock, form).await;
    assert_eq!(grant.status, 200);
    assert_eq!(grant.body["refresh_token"], "rt-1");
    assert_eq!(grant.body["expires_in"], 60);
    assert_eq!(grant.body["token_type"], "bearer");
    assert!(grant.body["hub_id"].is_u64() && grant.body["scopes"].is_array());
    let access = grant.body["access_token"]
        .as_str()
        .expect("access token")
        .to_owned();
    assert_eq!(mock.tokens_issued(), 1);

    let ok = send_as(
        &mock,
        Some(&access),
        Method::POST,
        "/crm/v3/objects/contacts",
        Some(json!({"properties": {"email": "a@example.com"}})),
    )
    .await;
    assert_eq!(ok.status, 201);

    mock.expire_tokens_now();
    let expired = send_as(
        &mock,
        Some(&access),
        Method::GET,
        "/crm/v3/objects/contacts/101",
        None,
    )
    .await;
    assert_eq!(expired.status, 401);
    assert_eq!(expired.body["category"], "EXPIRED_AUTHENTICATION");
    assert_eq!(
        expired.body["message"],
        "The OAuth token used to make this call expired 0 second(s) ago."
    );

    let again = token_grant(&mock, form).await;
    let fresh = again.body["access_token"].as_str().expect("access token");
    assert_ne!(fresh, access);
    assert_eq!(mock.tokens_issued(), 2);
    let ok = send_as(
        &mock,
        Some(fresh),
        Method::GET,
        "/crm/v3/objects/contacts/101",
        None,
    )
    .await;
    assert_eq!(ok.status, 200);
    // A private-app token was not configured.
    let pat = send(&mock, Method::GET, "/crm/v3/objects/contacts/101", None).await;
    assert_eq!(pat.status, 401);
}

#[tokio::test]
async fn create_answers_hubspot_shape_and_duplicate_email_is_409() {
    let mock = MockHubSpot::start(quick()).await;
    let a = create(
        &mock,
        "contacts",
        json!({"email": "Ana@Example.com", "firstname": "Ana", "phone": 600123123}),
    )
    .await;
    assert_eq!(a.status, 201);
    assert_eq!(a.body["id"], "101");
    assert_eq!(a.body["archived"], false);
    assert_eq!(a.body["properties"]["email"], "Ana@Example.com");
    assert_eq!(a.body["properties"]["phone"], "600123123");
    assert_eq!(a.body["properties"]["hs_object_id"], "101");
    assert!(a.body["properties"]["createdate"].is_string());
    assert!(a.body["properties"]["lastmodifieddate"].is_string());
    assert!(a.body["createdAt"].is_string() && a.body["updatedAt"].is_string());

    let dup = create(&mock, "contacts", json!({"email": "ana@example.COM"})).await;
    assert_eq!(dup.status, 409);
    assert_eq!(dup.body["status"], "error");
    assert_eq!(
        dup.body["message"],
        "Contact already exists. Existing ID: 101"
    );
    assert_eq!(dup.body["category"], "CONFLICT");
    assert_eq!(mock.records("contacts").len(), 1);

    // A PATCH that would duplicate the email is refused the same way.
    let b = create(&mock, "contacts", json!({"email": "bo@example.com"})).await;
    assert_eq!(b.body["id"], "102");
    let clash = send(
        &mock,
        Method::PATCH,
        "/crm/v3/objects/contacts/102",
        Some(json!({"properties": {"email": "ANA@example.com"}})),
    )
    .await;
    assert_eq!(clash.status, 409);
    assert_eq!(
        clash.body["message"],
        "Contact already exists. Existing ID: 101"
    );
    assert_eq!(
        mock.record("contacts", "102")
            .expect("record")
            .prop("email"),
        Some("bo@example.com")
    );
}

#[tokio::test]
async fn search_does_not_see_a_record_until_the_lag_passed() {
    let mock = MockHubSpot::start(HubSpotOptions {
        // Long enough that a loaded machine still searches within it.
        search_lag: Duration::from_secs(2),
        ..HubSpotOptions::default()
    })
    .await;
    let created = create(&mock, "contacts", json!({"email": "lag@example.com"})).await;
    let id = created.body["id"].as_str().expect("id").to_owned();
    let early = search_eq(&mock, "contacts", "email", "LAG@example.com").await;
    assert_eq!(early.status, 200);
    assert_eq!(early.body, json!({"total": 0, "results": []}));
    // Everything else sees it at once.
    let got = send(
        &mock,
        Method::GET,
        &format!("/crm/v3/objects/contacts/{id}"),
        None,
    )
    .await;
    assert_eq!(got.status, 200);
    let dup = create(&mock, "contacts", json!({"email": "lag@example.com"})).await;
    assert_eq!(dup.status, 409);

    tokio::time::sleep(Duration::from_millis(2100)).await;
    let later = search_eq(&mock, "contacts", "email", "LAG@example.com").await;
    assert_eq!(later.body["total"], 1);
    let hit = &later.body["results"][0];
    assert_eq!(hit["id"], id.as_str());
    assert_eq!(hit["properties"]["email"], "lag@example.com");
    assert_eq!(hit["properties"]["hs_object_id"], id.as_str());
    assert_eq!(hit["archived"], false);

    // An update shows in search only after the lag too.
    let patched = send(
        &mock,
        Method::PATCH,
        &format!("/crm/v3/objects/contacts/{id}"),
        Some(json!({"properties": {"email": "moved@example.com"}})),
    )
    .await;
    assert_eq!(patched.status, 200);
    assert_eq!(
        search_eq(&mock, "contacts", "email", "moved@example.com")
            .await
            .body["total"],
        0
    );
    assert_eq!(
        search_eq(&mock, "contacts", "email", "lag@example.com")
            .await
            .body["total"],
        1
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(
        search_eq(&mock, "contacts", "email", "moved@example.com")
            .await
            .body["total"],
        1
    );
}

#[tokio::test]
async fn invalid_properties_are_400_validation_errors() {
    let mock = MockHubSpot::start(quick()).await;
    let unknown = create(
        &mock,
        "contacts",
        json!({"email": "a@example.com", "favourite_colour": "teal"}),
    )
    .await;
    assert_eq!(unknown.status, 400);
    assert_eq!(unknown.body["category"], "VALIDATION_ERROR");
    assert_eq!(
        unknown.body["message"],
        "Property values were not valid: [{\"isValid\":false,\"message\":\"Property \\\"favourite_colour\\\" does not exist\",\"error\":\"PROPERTY_DOESNT_EXIST\",\"name\":\"favourite_colour\",\"localizedErrorMessage\":\"Property \\\"favourite_colour\\\" does not exist\"}]"
    );

    let outcome = create(
        &mock,
        "meetings",
        json!({"hs_timestamp": "2025-03-01T10:00:00Z", "hs_meeting_outcome": "DONE"}),
    )
    .await;
    assert_eq!(outcome.status, 400);
    let entries = invalid_entries(&outcome);
    assert_eq!(entries[0]["error"], "INVALID_OPTION");
    assert_eq!(entries[0]["name"], "hs_meeting_outcome");
    assert_eq!(
        entries[0]["message"],
        "DONE was not one of the allowed options: [SCHEDULED, COMPLETED, RESCHEDULED, NO_SHOW, CANCELED]"
    );

    let no_time = create(&mock, "meetings", json!({"hs_meeting_title": "Intro"})).await;
    assert_eq!(no_time.status, 400);
    let entries = invalid_entries(&no_time);
    assert_eq!(entries[0]["error"], "REQUIRED_PROPERTY");
    assert!(
        entries[0]["message"]
            .as_str()
            .expect("message")
            .contains("hs_timestamp")
    );

    let nameless = create(&mock, "contacts", json!({"phone": "+34 600"})).await;
    assert_eq!(nameless.status, 400);
    assert_eq!(nameless.body["category"], "VALIDATION_ERROR");

    let bad_date = create(&mock, "meetings", json!({"hs_timestamp": "next tuesday"})).await;
    assert_eq!(bad_date.status, 400);
    let read_only = create(
        &mock,
        "contacts",
        json!({"email": "b@example.com", "hs_object_id": "7"}),
    )
    .await;
    assert_eq!(invalid_entries(&read_only)[0]["error"], "READ_ONLY_VALUE");

    let ok = create(
        &mock,
        "meetings",
        json!({"hs_timestamp": "1740823200000", "hs_meeting_outcome": "SCHEDULED"}),
    )
    .await;
    assert_eq!(ok.status, 201);
    assert!(ok.body["properties"]["hs_createdate"].is_string());
    // Nothing invalid was stored, and ids were not spent on refusals.
    assert_eq!(ok.body["id"], "101");
    assert!(mock.records("contacts").is_empty());
}

#[tokio::test]
async fn batch_upsert_creates_then_updates() {
    let mock = MockHubSpot::start(quick()).await;
    let path = "/crm/v3/objects/contacts/batch/upsert";
    let first = send(
        &mock,
        Method::POST,
        path,
        Some(json!({"inputs": [
            {"id": "up@example.com", "idProperty": "email", "properties": {"firstname": "Up"}},
            {"id": "two@example.com", "idProperty": "email", "properties": {"lastname": "Two"}},
        ]})),
    )
    .await;
    assert_eq!(first.status, 200);
    assert_eq!(first.body["status"], "COMPLETE");
    let results = first.body["results"].as_array().expect("results");
    assert_eq!(results.len(), 2);
    assert_eq!(results[0]["new"], true);
    assert_eq!(results[0]["id"], "101");
    assert_eq!(results[0]["properties"]["email"], "up@example.com");
    assert_eq!(results[0]["properties"]["firstname"], "Up");
    for key in ["requestedAt", "startedAt", "completedAt"] {
        assert!(first.body[key].is_string(), "{key}");
    }

    let second = send(&mock, Method::POST, path, Some(json!({"inputs": [
        {"id": "UP@example.com", "idProperty": "email", "properties": {"firstname": "Upper", "phone": "1"}},
    ]}))).await;
    assert_eq!(second.status, 200);
    let result = &second.body["results"][0];
    assert_eq!(result["new"], false);
    assert_eq!(result["id"], "101");
    assert_eq!(result["properties"]["firstname"], "Upper");
    let record = mock.record("contacts", "101").expect("record");
    assert_eq!(record.prop("email"), Some("up@example.com"));
    assert_eq!(record.prop("phone"), Some("1"));
    assert_eq!(mock.records("contacts").len(), 2);

    let not_unique = send(
        &mock,
        Method::POST,
        path,
        Some(json!({"inputs": [
            {"id": "x", "idProperty": "firstname", "properties": {}},
        ]})),
    )
    .await;
    assert_eq!(not_unique.status, 400);
    assert_eq!(not_unique.body["category"], "VALIDATION_ERROR");

    // One bad input refuses the whole batch.
    let half_bad = send(
        &mock,
        Method::POST,
        path,
        Some(json!({"inputs": [
            {"id": "three@example.com", "idProperty": "email", "properties": {}},
            {"id": "four@example.com", "idProperty": "email", "properties": {"nope": "1"}},
        ]})),
    )
    .await;
    assert_eq!(half_bad.status, 400);
    assert_eq!(
        invalid_entries(&half_bad)[0]["error"],
        "PROPERTY_DOESNT_EXIST"
    );
    assert_eq!(mock.records("contacts").len(), 2);
}

#[tokio::test]
async fn id_property_reads_and_updates() {
    let mock = MockHubSpot::start(quick()).await;
    create(
        &mock,
        "contacts",
        json!({"email": "ip+tag@example.com", "firstname": "Ip"}),
    )
    .await;
    let by_email = send(&mock, Method::GET, "/crm/v3/objects/contacts/IP%2Btag%40example.com?idProperty=email&properties=firstname,phone", None).await;
    assert_eq!(by_email.status, 200);
    assert_eq!(by_email.body["id"], "101");
    assert_eq!(by_email.body["properties"]["firstname"], "Ip");
    assert_eq!(by_email.body["properties"]["phone"], Value::Null);

    let patched = send(
        &mock,
        Method::PATCH,
        "/crm/v3/objects/contacts/ip%2Btag%40example.com?idProperty=email",
        Some(json!({"properties": {"lastname": "Patched", "firstname": ""}})),
    )
    .await;
    assert_eq!(patched.status, 200);
    assert_eq!(patched.body["properties"]["lastname"], "Patched");
    let record = mock.record("contacts", "101").expect("record");
    assert_eq!(record.prop("lastname"), Some("Patched"));
    assert_eq!(record.prop("firstname"), None, "\"\" clears");

    let missing = send(
        &mock,
        Method::GET,
        "/crm/v3/objects/contacts/nobody%40example.com?idProperty=email",
        None,
    )
    .await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.body["message"], "resource not found");
    let not_unique = send(
        &mock,
        Method::GET,
        "/crm/v3/objects/contacts/Ip?idProperty=firstname",
        None,
    )
    .await;
    assert_eq!(not_unique.status, 400);
    let missing_patch = send(
        &mock,
        Method::PATCH,
        "/crm/v3/objects/contacts/999",
        Some(json!({"properties": {"lastname": "x"}})),
    )
    .await;
    assert_eq!(missing_patch.status, 404);
}

#[tokio::test]
async fn delete_removes_the_record_everywhere() {
    let mock = MockHubSpot::start(quick()).await;
    create(&mock, "contacts", json!({"email": "del@example.com"})).await;
    create(
        &mock,
        "meetings",
        json!({"hs_timestamp": "2025-03-01T10:00:00Z"}),
    )
    .await;
    let linked = send(
        &mock,
        Method::PUT,
        "/crm/v4/objects/meetings/102/associations/default/contacts/101",
        None,
    )
    .await;
    assert_eq!(linked.status, 200);

    let deleted = send(&mock, Method::DELETE, "/crm/v3/objects/contacts/101", None).await;
    assert_eq!(deleted.status, 204);
    assert_eq!(deleted.body, Value::Null);
    assert_eq!(
        send(&mock, Method::GET, "/crm/v3/objects/contacts/101", None)
            .await
            .status,
        404
    );
    assert_eq!(
        send(&mock, Method::DELETE, "/crm/v3/objects/contacts/101", None)
            .await
            .status,
        404
    );
    assert_eq!(
        search_eq(&mock, "contacts", "email", "del@example.com")
            .await
            .body["total"],
        0
    );
    assert!(mock.associations().is_empty());
    // The email is free again; ids are never reused.
    let again = create(&mock, "contacts", json!({"email": "del@example.com"})).await;
    assert_eq!(again.body["id"], "103");
}

#[tokio::test]
async fn associations_default_and_labelled() {
    let mock = MockHubSpot::start(quick()).await;
    create(&mock, "contacts", json!({"email": "as@example.com"})).await;
    create(
        &mock,
        "meetings",
        json!({"hs_timestamp": "2025-03-01T10:00:00Z"}),
    )
    .await;
    let path = "/crm/v4/objects/meetings/102/associations/default/contacts/101";
    let a = send(&mock, Method::PUT, path, None).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.body["status"], "COMPLETE");
    assert_eq!(
        a.body["results"],
        json!([{"from": {"id": "102"}, "to": {"id": "101"}, "associationSpec": {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 200}}])
    );
    assert!(a.body["startedAt"].is_string() && a.body["completedAt"].is_string());
    // Idempotent.
    assert_eq!(send(&mock, Method::PUT, path, None).await.status, 200);
    assert_eq!(
        mock.associations(),
        vec![(
            "meetings".to_owned(),
            "102".to_owned(),
            "contacts".to_owned(),
            "101".to_owned(),
            200
        )]
    );

    let label = json!([{"associationCategory": "USER_DEFINED", "associationTypeId": 37}]);
    let undefined = send(
        &mock,
        Method::PUT,
        "/crm/v4/objects/contacts/101/associations/meetings/102",
        Some(label.clone()),
    )
    .await;
    assert_eq!(undefined.status, 400, "no such label in the account yet");
    mock.define_label("contacts", "meetings", 37);
    let labelled = send(
        &mock,
        Method::PUT,
        "/crm/v4/objects/contacts/101/associations/meetings/102",
        Some(json!([{"associationCategory": "USER_DEFINED", "associationTypeId": 37}])),
    )
    .await;
    assert_eq!(labelled.status, 200);
    assert_eq!(
        labelled.body["results"][0]["associationSpec"]["associationTypeId"],
        37
    );
    assert_eq!(mock.associations().len(), 2);
    assert_eq!(mock.associations()[1].4, 37);

    let wrong_way = send(
        &mock,
        Method::PUT,
        "/crm/v4/objects/contacts/101/associations/meetings/102",
        Some(json!([{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 200}])),
    )
    .await;
    assert_eq!(wrong_way.status, 400);

    let missing = send(
        &mock,
        Method::PUT,
        "/crm/v4/objects/meetings/102/associations/default/contacts/999",
        None,
    )
    .await;
    assert_eq!(missing.status, 404);
    let missing = send(
        &mock,
        Method::PUT,
        "/crm/v4/objects/meetings/101/associations/default/contacts/101",
        None,
    )
    .await;
    assert_eq!(missing.status, 404, "101 is a contact, not a meeting");

    // Associations given at creation are kept too.
    let with = send(&mock, Method::POST, "/crm/v3/objects/meetings", Some(json!({
        "properties": {"hs_timestamp": "2025-03-02T10:00:00Z"},
        "associations": [{"to": {"id": "101"}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 200}]}],
    }))).await;
    assert_eq!(with.status, 201);
    assert_eq!(
        mock.associations()[2],
        (
            "meetings".to_owned(),
            "103".to_owned(),
            "contacts".to_owned(),
            "101".to_owned(),
            200
        )
    );
}

#[tokio::test]
async fn rolling_window_limit_is_429_with_hubspot_body_and_headers() {
    let mock = MockHubSpot::start(HubSpotOptions {
        window: Duration::from_secs(1),
        max_per_window: 5,
        ..quick()
    })
    .await;
    let path = "/crm/v3/objects/contacts/101";
    for left in (0..5).rev() {
        let a = send(&mock, Method::GET, path, None).await;
        assert_eq!(a.status, 404);
        assert_eq!(
            a.header("x-hubspot-ratelimit-interval-milliseconds"),
            Some("1000")
        );
        assert_eq!(a.header("x-hubspot-ratelimit-max"), Some("5"));
        assert_eq!(
            a.header("x-hubspot-ratelimit-remaining"),
            Some(left.to_string().as_str())
        );
    }
    let limited = send(&mock, Method::GET, path, None).await;
    assert_eq!(limited.status, 429);
    assert_eq!(limited.header("x-hubspot-ratelimit-remaining"), Some("0"));
    assert_eq!(limited.header("x-hubspot-ratelimit-max"), Some("5"));
    assert!(limited.header("retry-after").is_none());
    let correlation = limited.body["correlationId"]
        .as_str()
        .expect("correlationId")
        .to_owned();
    assert_eq!(
        limited.body,
        json!({
            "status": "error",
            "message": "You have reached your ten_secondly_rolling limit.",
            "errorType": "RATE_LIMIT",
            "correlationId": correlation,
            "policyName": "TEN_SECONDLY_ROLLING",
            "groupName": "publicapi:private_app-api-calls-ten-secondly:1:1",
        })
    );
    assert_eq!(mock.rate_limited(), 1);
    assert_eq!(mock.requests().last().map(|r| r.status), Some(429));
}

#[tokio::test]
async fn search_has_its_own_secondly_limit() {
    let mock = MockHubSpot::start(HubSpotOptions {
        search_per_second: 2,
        ..quick()
    })
    .await;
    for _ in 0..2 {
        assert_eq!(
            search_eq(&mock, "contacts", "email", "x@example.com")
                .await
                .status,
            200
        );
    }
    let limited = search_eq(&mock, "contacts", "email", "x@example.com").await;
    assert_eq!(limited.status, 429);
    assert_eq!(limited.body["policyName"], "SECONDLY");
    assert_eq!(
        limited.body["message"],
        "You have reached your secondly limit."
    );
    assert_eq!(limited.body["errorType"], "RATE_LIMIT");
    // Other calls are not held back by it.
    assert_eq!(
        send(&mock, Method::GET, "/crm/v3/objects/contacts/101", None)
            .await
            .status,
        404
    );
    assert_eq!(mock.rate_limited(), 1);
}

#[tokio::test]
async fn daily_limit_and_usage() {
    let mock = MockHubSpot::start(HubSpotOptions {
        daily_limit: Some(3),
        ..quick()
    })
    .await;
    let usage = send(
        &mock,
        Method::GET,
        "/account-info/v3/api-usage/daily/private-apps",
        None,
    )
    .await;
    assert_eq!(usage.status, 200);
    let entry = &usage.body["results"][0];
    assert_eq!(entry["name"], "private-apps-api-calls-daily");
    assert_eq!(entry["usageLimit"], 3);
    assert_eq!(
        entry["currentUsage"], 0,
        "the usage endpoint does not count itself"
    );
    assert_eq!(entry["fetchStatus"], "SUCCESS");
    assert!(entry["resetsAt"].is_string() && entry["collectedAt"].is_string());
    for _ in 0..3 {
        send(&mock, Method::GET, "/crm/v3/objects/contacts/101", None).await;
    }
    let limited = send(&mock, Method::GET, "/crm/v3/objects/contacts/101", None).await;
    assert_eq!(limited.status, 429);
    assert_eq!(limited.body["policyName"], "DAILY");
    assert_eq!(
        limited.body["message"],
        "You have reached your daily limit."
    );
    let usage = send(
        &mock,
        Method::GET,
        "/account-info/v3/api-usage/daily/private-apps",
        None,
    )
    .await;
    assert_eq!(
        usage.status, 200,
        "answered while the daily limit is reached"
    );
}

#[tokio::test]
async fn slow_fault_applies_the_change_before_answering() {
    let mock = MockHubSpot::start(quick()).await;
    mock.fail_next(1, Fault::Slow(Duration::from_millis(400)));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(100))
        .build()
        .expect("client");
    let outcome = client
        .post(format!("{}/crm/v3/objects/contacts", mock.url()))
        .bearer_auth(TOKEN)
        .json(&json!({"properties": {"email": "slow@example.com"}}))
        .send()
        .await;
    assert!(outcome.is_err(), "the client should have timed out");
    assert!(
        mock.wait_until(|m| m.records("contacts").len() == 1, Duration::from_secs(1))
            .await
    );
    // The retry finds the contact already made: the lost-response race.
    let retry = create(&mock, "contacts", json!({"email": "slow@example.com"})).await;
    assert_eq!(retry.status, 409);
    assert_eq!(
        retry.body["message"],
        "Contact already exists. Existing ID: 101"
    );
}

#[tokio::test]
async fn status_fault_changes_nothing() {
    let mock = MockHubSpot::start(quick()).await;
    mock.fail_next(
        1,
        Fault::Status {
            status: 503,
            retry_after: Some(2),
            body: String::new(),
        },
    );
    mock.fail_next(
        1,
        Fault::Status {
            status: 502,
            retry_after: None,
            body: "{\"oops\":true}".into(),
        },
    );
    let first = create(&mock, "contacts", json!({"email": "f@example.com"})).await;
    assert_eq!(first.status, 503);
    assert_eq!(first.header("retry-after"), Some("2"));
    assert_eq!(first.body["message"], "internal error");
    assert_eq!(first.body["category"], "INTERNAL_ERROR");
    assert!(first.header("x-hubspot-ratelimit-max").is_some());
    let second = create(&mock, "contacts", json!({"email": "f@example.com"})).await;
    assert_eq!(second.status, 502);
    assert_eq!(second.body, json!({"oops": true}));
    assert!(mock.records("contacts").is_empty());
    let third = create(&mock, "contacts", json!({"email": "f@example.com"})).await;
    assert_eq!(third.status, 201);
    assert_eq!(third.body["id"], "101");
}

#[tokio::test]
async fn drop_fault_applies_the_change_and_breaks_the_body() {
    let mock = MockHubSpot::start(quick()).await;
    mock.fail_next(1, Fault::Drop);
    let response = reqwest::Client::new()
        .post(format!("{}/crm/v3/objects/contacts", mock.url()))
        .bearer_auth(TOKEN)
        .json(&json!({"properties": {"email": "drop@example.com"}}))
        .send()
        .await;
    let body = match response {
        Ok(r) => r.bytes().await.map(|_| ()),
        Err(e) => Err(e),
    };
    assert!(body.is_err(), "the body should break off");
    assert_eq!(mock.records("contacts").len(), 1);
    assert_eq!(mock.requests()[0].status, 0);
}

#[tokio::test]
async fn custom_objects_and_unique_properties() {
    let mock = MockHubSpot::start(quick()).await;
    let unknown = create(&mock, "p_bookings", json!({"booking_id": "b1"})).await;
    assert_eq!(unknown.status, 400);
    assert_eq!(
        unknown.body["message"],
        "Unable to infer object type from: p_bookings"
    );

    mock.define_property("p_bookings", "booking_id", true)
        .expect("custom objects take unique properties");
    mock.define_property("p_bookings", "title", false)
        .expect("defined");
    let first = create(
        &mock,
        "p_bookings",
        json!({"booking_id": "b1", "title": "Intro"}),
    )
    .await;
    assert_eq!(first.status, 201);
    assert!(first.body["properties"]["hs_createdate"].is_string());
    let dup = create(&mock, "p_bookings", json!({"booking_id": "b1"})).await;
    assert_eq!(dup.status, 409);
    assert_eq!(
        dup.body["message"],
        "An object with the unique value \"b1\" for property \"booking_id\" already exists. Existing ID: 101"
    );
    assert_eq!(dup.body["category"], "CONFLICT");
    let by_key = send(
        &mock,
        Method::GET,
        "/crm/v3/objects/p_bookings/b1?idProperty=booking_id&properties=title",
        None,
    )
    .await;
    assert_eq!(by_key.body["properties"]["title"], "Intro");

    mock.define_property("contacts", "slatis_id", true)
        .expect("contacts take unique properties");
    let upsert = send(
        &mock,
        Method::POST,
        "/crm/v3/objects/contacts/batch/upsert",
        Some(json!({"inputs": [
            {"id": "s-1", "idProperty": "slatis_id", "properties": {"email": "s1@example.com"}},
        ]})),
    )
    .await;
    assert_eq!(upsert.status, 200);
    assert_eq!(upsert.body["results"][0]["id"], "102");
    assert_eq!(mock.records("contacts")[0].prop("slatis_id"), Some("s-1"));
}

#[tokio::test]
async fn search_filters_groups_and_paging() {
    let mock = MockHubSpot::start(HubSpotOptions {
        search_per_second: 100,
        ..quick()
    })
    .await;
    for (email, name) in [("a@x.com", "Ann"), ("b@x.com", "Bob"), ("c@x.com", "")] {
        create(
            &mock,
            "contacts",
            json!({"email": email, "firstname": name}),
        )
        .await;
    }
    let search = |body: Value| {
        let mock = &mock;
        async move {
            send(
                mock,
                Method::POST,
                "/crm/v3/objects/contacts/search",
                Some(body),
            )
            .await
        }
    };
    let ids = |a: &Answer| -> Vec<String> {
        a.body["results"]
            .as_array()
            .expect("results")
            .iter()
            .map(|r| r["id"].as_str().expect("id").to_owned())
            .collect()
    };
    let or = search(json!({"filterGroups": [
        {"filters": [{"propertyName": "email", "operator": "EQ", "value": "A@X.COM"}]},
        {"filters": [{"propertyName": "firstname", "operator": "EQ", "value": "Bob"}]},
    ]}))
    .await;
    assert_eq!(ids(&or), ["101", "102"]);
    let and = search(json!({"filterGroups": [{"filters": [
        {"propertyName": "firstname", "operator": "HAS_PROPERTY"},
        {"propertyName": "email", "operator": "NEQ", "value": "a@x.com"},
    ]}]}))
    .await;
    assert_eq!(ids(&and), ["102"]);
    let paged = search(json!({"limit": 2})).await;
    assert_eq!(paged.body["total"], 3);
    assert_eq!(ids(&paged), ["101", "102"]);
    assert_eq!(paged.body["paging"]["next"]["after"], "2");
    let rest = search(json!({"limit": 2, "after": "2"})).await;
    assert_eq!(ids(&rest), ["103"]);
    assert!(rest.body.get("paging").is_none());
    // Asked-for properties that are unset come back null; defaults otherwise.
    let props = search(json!({"properties": ["phone"], "limit": 1})).await;
    assert_eq!(props.body["results"][0]["properties"]["phone"], Value::Null);
    assert!(
        props.body["results"][0]["properties"]
            .get("email")
            .is_none()
    );
    let bad = search(json!({"filterGroups": [{"filters": [{"propertyName": "email", "operator": "LIKE", "value": "a"}]}]})).await;
    assert_eq!(bad.status, 400);
    let sorted =
        search(json!({"sorts": [{"propertyName": "email", "direction": "DESCENDING"}]})).await;
    assert_eq!(ids(&sorted), ["103", "102", "101"]);
    let query = search(json!({"query": "bo"})).await;
    assert_eq!(ids(&query), ["102"]);
    let within = search(json!({"filterGroups": [{"filters": [
        {"propertyName": "hs_object_id", "operator": "BETWEEN", "value": "102", "highValue": 103},
        {"propertyName": "email", "operator": "IN", "values": ["C@X.COM", "b@x.com"]},
    ]}]}))
    .await;
    assert_eq!(ids(&within), ["102", "103"]);
    let too_many = search(json!({"limit": 201})).await;
    assert_eq!(too_many.status, 400);
}

#[tokio::test]
async fn unknown_endpoints_are_404() {
    let mock = MockHubSpot::start(quick()).await;
    let a = send_as(&mock, None, Method::GET, "/nothing/here", None).await;
    assert_eq!(a.status, 404);
    assert_eq!(a.body["message"], "resource not found");
    // Under /crm, auth comes first.
    assert_eq!(
        send_as(&mock, None, Method::GET, "/crm/v9/whatever", None)
            .await
            .status,
        401
    );
    assert_eq!(
        send(&mock, Method::GET, "/crm/v9/whatever", None)
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn seeded_records_are_searchable_at_once() {
    let mock = MockHubSpot::start(HubSpotOptions::default()).await;
    let id = mock.seed(
        "contact",
        json!({"email": "seed@example.com", "firstname": "Seed"}),
    );
    assert_eq!(id, "101");
    let found = search_eq(&mock, "contacts", "email", "seed@example.com").await;
    assert_eq!(found.body["total"], 1);
    let record = mock.record("contacts", &id).expect("record");
    assert_eq!(record.object_type, "contacts");
    assert_eq!(record.prop("firstname"), Some("Seed"));
    let created = create(&mock, "contacts", json!({"email": "SEED@example.com"})).await;
    assert_eq!(created.status, 409);
    let request = &mock.requests()[1];
    assert_eq!(request.method, "POST");
    assert_eq!(request.json()["properties"]["email"], "SEED@example.com");
}

#[tokio::test]
async fn the_request_log_keeps_what_a_refusal_said() {
    let mock = MockHubSpot::start(quick()).await;
    let refused = create(
        &mock,
        "contacts",
        json!({"email": "x@example.com", "favourite_colour": "teal"}),
    )
    .await;
    assert_eq!(refused.status, 400);
    assert_eq!(
        create(&mock, "contacts", json!({"email": "x@example.com"}))
            .await
            .status,
        201
    );
    let taken = create(&mock, "contacts", json!({"email": "x@example.com"})).await;
    assert_eq!(taken.status, 409);
    let log = mock.requests();
    let said = log[0].refusal.as_deref().expect("the 400 is kept");
    assert_eq!(Some(said), refused.body["message"].as_str());
    assert!(said.contains("PROPERTY_DOESNT_EXIST"), "{said}");
    assert_eq!(log[1].refusal, None);
    assert_eq!(
        log[2].refusal, None,
        "a conflict is not the schema's refusal"
    );
}
