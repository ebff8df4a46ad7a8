//! The Pipedrive mock, through reqwest: API-token and OAuth auth, the token in the URL,
//! records of every type with validation and custom fields, search with its lag, lists
//! by `updated_since`, a closed account, forbidden writes, rate limits and faults.

use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use slatis_testkit::mock::{Fault, MockPipedrive, PipedriveOptions, PipedriveRefusal};
use std::time::Duration;

const TOKEN: &str = "pd-test-token";

/// A custom field key (40 lowercase hex digits).
const BOOKING_KEY: &str = "0123456789abcdef0123456789abcdef01234567";

/// Default options, with search seeing changes at once.
fn quick() -> PipedriveOptions {
    PipedriveOptions {
        search_lag: Duration::ZERO,
        ..PipedriveOptions::default()
    }
}

/// Options with an OAuth app.
fn with_oauth() -> PipedriveOptions {
    PipedriveOptions {
        oauth: Some((
            "pd-client".to_owned(),
            "pd-secret".to_owned(),
            "pd-refresh".to_owned(),
        )),
        ..quick()
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

    /// The ids of a list's records or a search's items.
    fn ids(&self) -> Vec<i64> {
        let list = if self.body["data"].is_array() {
            &self.body["data"]
        } else {
            &self.body["data"]["items"]
        };
        list.as_array()
            .expect("a list")
            .iter()
            .map(|entry| {
                entry
                    .get("item")
                    .unwrap_or(entry)
                    .get("id")
                    .and_then(Value::as_i64)
                    .expect("an id")
            })
            .collect()
    }
}

async fn answer(response: reqwest::Response) -> Answer {
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

/// How a call authenticates.
enum Auth<'a> {
    None,
    ApiToken(&'a str),
    Bearer(&'a str),
}

async fn send_as(
    mock: &MockPipedrive,
    auth: Auth<'_>,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Answer {
    let mut request = reqwest::Client::new().request(method, format!("{}{path}", mock.url()));
    match auth {
        Auth::None => {}
        Auth::ApiToken(token) => request = request.header("x-api-token", token),
        Auth::Bearer(token) => request = request.bearer_auth(token),
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    answer(request.send().await.expect("send")).await
}

async fn send(mock: &MockPipedrive, method: Method, path: &str, body: Option<Value>) -> Answer {
    send_as(mock, Auth::ApiToken(TOKEN), method, path, body).await
}

async fn create(mock: &MockPipedrive, object: &str, body: Value) -> Answer {
    send(mock, Method::POST, &format!("/api/v2/{object}"), Some(body)).await
}

async fn get(mock: &MockPipedrive, path: &str) -> Answer {
    send(mock, Method::GET, path, None).await
}

async fn search(mock: &MockPipedrive, object: &str, query: &[(&str, &str)]) -> Answer {
    let response = reqwest::Client::new()
        .get(format!("{}/api/v2/{object}/search", mock.url()))
        .header("x-api-token", TOKEN)
        .query(query)
        .send()
        .await
        .expect("send");
    answer(response).await
}

async fn grant(mock: &MockPipedrive, client: (&str, &str), refresh_token: &str) -> Answer {
    let response = reqwest::Client::new()
        .post(format!("{}/oauth/token", mock.url()))
        .basic_auth(client.0, Some(client.1))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ])
        .send()
        .await
        .expect("send");
    answer(response).await
}

fn person(name: &str, email: &str) -> Value {
    json!({ "name": name, "emails": [{ "value": email, "primary": true, "label": "work" }] })
}

/// v2's answer to a refused body.
fn refused(message: &str) -> Value {
    json!({ "success": false, "error": message, "code": "ERR_BAD_REQUEST" })
}

fn error_body(message: &str) -> Value {
    error_body_with(
        message,
        "Please check developers.pipedrive.com for more information about Pipedrive API.",
    )
}

fn error_body_with(message: &str, info: &str) -> Value {
    json!({
        "success": false,
        "error": message,
        "error_info": info,
        "data": null,
        "additional_data": null,
    })
}

#[tokio::test]
async fn x_api_token_authenticates_and_anything_else_is_401() {
    let mock = MockPipedrive::start(quick()).await;
    let unauthorized = json!({
        "success": false,
        "error": "unauthorized access",
        "errorCode": 401,
        "error_info": "Please check developers.pipedrive.com for more information about Pipedrive API.",
        "data": null,
        "additional_data": null,
    });
    for auth in [Auth::None, Auth::ApiToken("pd-wrong"), Auth::Bearer(TOKEN)] {
        let a = send_as(&mock, auth, Method::GET, "/api/v2/persons/1", None).await;
        assert_eq!(a.status, 401);
        assert_eq!(a.body, unauthorized);
        assert!(a.header("x-ratelimit-limit").is_none());
    }
    let v1 = send_as(&mock, Auth::None, Method::GET, "/api/v1/users/me", None).await;
    assert_eq!(v1.status, 401, "v1 paths need auth too");

    let a = get(&mock, "/api/v2/persons/1").await;
    assert_eq!(a.status, 404);
    assert_eq!(a.body, error_body("Person not found"));
    assert_eq!(a.header("x-ratelimit-limit"), Some("20"));
    assert_eq!(a.header("x-ratelimit-remaining"), Some("19"));
    assert_eq!(a.header("x-ratelimit-reset"), Some("2"));
    for (path, noun) in [
        ("/api/v2/organizations/1", "Organization not found"),
        ("/api/v2/deals/1", "Deal not found"),
        ("/api/v2/activities/1", "Activity not found"),
    ] {
        assert_eq!(get(&mock, path).await.body["error"], noun);
    }
    assert_eq!(get(&mock, "/api/v1/users/me").await.status, 404);
    assert_eq!(get(&mock, "/api/v2/persons/abc").await.status, 400);
    let elsewhere = send_as(&mock, Auth::None, Method::GET, "/v2/persons", None).await;
    assert_eq!(elsewhere.status, 404, "not an API path: no auth needed");

    let requests = mock.requests();
    assert_eq!(requests[0].api_token, None);
    assert_eq!(requests[1].api_token.as_deref(), Some("pd-wrong"));
    assert_eq!(requests[2].token.as_deref(), Some(TOKEN));
    assert_eq!(requests[0].status, 401);
    assert!(requests.iter().all(|r| !r.token_in_url));
}

#[tokio::test]
async fn api_token_in_the_url_works_but_is_recorded() {
    let mock = MockPipedrive::start(quick()).await;
    let id = mock.seed("persons", person("Ada", "ada@example.com"));
    let response = reqwest::Client::new()
        .get(format!(
            "{}/api/v2/persons/{id}?api_token={TOKEN}",
            mock.url()
        ))
        .send()
        .await
        .expect("send");
    let a = answer(response).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.body["data"]["name"], "Ada");
    let bad = reqwest::Client::new()
        .get(format!("{}/api/v2/persons/{id}?api_token=nope", mock.url()))
        .send()
        .await
        .expect("send");
    assert_eq!(bad.status().as_u16(), 401);
    assert_eq!(
        get(&mock, &format!("/api/v2/persons/{id}")).await.status,
        200
    );

    let requests = mock.requests();
    assert!(requests[0].token_in_url);
    assert_eq!(requests[0].api_token, None);
    assert_eq!(
        requests[0].path,
        format!("/api/v2/persons/{id}?api_token={TOKEN}")
    );
    assert!(requests[1].token_in_url);
    assert!(!requests[2].token_in_url);
    assert_eq!(requests[2].api_token.as_deref(), Some(TOKEN));
}

#[tokio::test]
async fn oauth_grants_tokens_that_expire() {
    let mock = MockPipedrive::start(with_oauth()).await;
    let bad_client = grant(&mock, ("pd-client", "wrong"), "pd-refresh").await;
    assert_eq!(bad_client.status, 401);
    assert_eq!(
        bad_client.body,
        json!({"error": "invalid_client", "error_description": "Invalid client"})
    );
    let no_basic = answer(
        reqwest::Client::new()
            .post(format!("{}/oauth/token", mock.url()))
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", "pd-refresh"),
            ])
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(no_basic.status, 401);
    let bad_refresh = grant(&mock, ("pd-client", "pd-secret"), "other").await;
    assert_eq!(bad_refresh.status, 400);
    assert_eq!(
        bad_refresh.body,
        json!({"error": "invalid_grant", "error_description": "Invalid refresh token"})
    );
    assert_eq!(mock.tokens_issued(), 0);

    let granted = grant(&mock, ("pd-client", "pd-secret"), "pd-refresh").await;
    assert_eq!(granted.status, 200);
    let token = granted.body["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned();
    assert!(!token.is_empty());
    assert_eq!(granted.body["token_type"], "Bearer");
    assert_eq!(granted.body["refresh_token"], "pd-refresh");
    assert_eq!(
        granted.body["scope"],
        "base,contacts:full,deals:full,activities:full"
    );
    assert_eq!(granted.body["expires_in"], 3599);
    assert_eq!(granted.body["api_domain"], mock.url());
    assert_eq!(mock.tokens_issued(), 1);
    let again = grant(&mock, ("pd-client", "pd-secret"), "pd-refresh").await;
    assert_ne!(again.body["access_token"], granted.body["access_token"]);

    let a = send_as(
        &mock,
        Auth::Bearer(&token),
        Method::GET,
        "/api/v2/deals/1",
        None,
    )
    .await;
    assert_eq!(a.status, 404, "authenticated");
    mock.expire_tokens_now();
    let a = send_as(
        &mock,
        Auth::Bearer(&token),
        Method::GET,
        "/api/v2/deals/1",
        None,
    )
    .await;
    assert_eq!(a.status, 401);
    assert_eq!(a.body["error"], "unauthorized access");
    assert_eq!(
        get(&mock, "/api/v2/deals/1").await.status,
        404,
        "API tokens stay valid"
    );

    // A short-lived token expires by itself.
    let mock = MockPipedrive::start(PipedriveOptions {
        access_token_ttl: Duration::from_millis(400),
        ..with_oauth()
    })
    .await;
    let granted = grant(&mock, ("pd-client", "pd-secret"), "pd-refresh").await;
    let token = granted.body["access_token"]
        .as_str()
        .expect("token")
        .to_owned();
    let path = "/api/v2/deals/1";
    assert_eq!(
        send_as(&mock, Auth::Bearer(&token), Method::GET, path, None)
            .await
            .status,
        404
    );
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(
        send_as(&mock, Auth::Bearer(&token), Method::GET, path, None)
            .await
            .status,
        401
    );
}

#[tokio::test]
async fn persons_are_created_in_v2_shape_and_may_share_an_email() {
    let mock = MockPipedrive::start(quick()).await;
    let a = create(
        &mock,
        "persons",
        json!({
            "name": "Ada Lovelace",
            "emails": [{ "value": "Ada@Example.com" }, { "value": "ada@work.example", "label": "other" }],
            "phones": [{ "value": "+44 20 1234 5678", "primary": true, "label": "mobile" }],
            "visible_to": 7,
        }),
    )
    .await;
    assert_eq!(a.status, 200);
    assert_eq!(a.body["success"], true);
    assert_eq!(a.body["additional_data"], Value::Null);
    let data = &a.body["data"];
    assert_eq!(data["id"], 1);
    assert_eq!(data["name"], "Ada Lovelace");
    assert_eq!(
        (&data["first_name"], &data["last_name"]),
        (&json!("Ada"), &json!("Lovelace")),
        "Pipedrive splits the name"
    );
    assert_eq!(data["owner_id"], 1);
    assert_eq!(data["org_id"], Value::Null);
    assert_eq!(
        data["emails"],
        json!([
            { "value": "Ada@Example.com", "primary": true, "label": "work" },
            { "value": "ada@work.example", "primary": false, "label": "other" },
        ])
    );
    assert_eq!(
        data["phones"],
        json!([{ "value": "+44 20 1234 5678", "primary": true, "label": "mobile" }])
    );
    assert_eq!(data["visible_to"], 7);
    assert_eq!(data["label_ids"], json!([]));
    assert_eq!(data["custom_fields"], json!({}));
    let add_time = data["add_time"].as_str().expect("add_time");
    assert!(
        add_time.ends_with('Z') && !add_time.contains('.'),
        "{add_time}"
    );
    assert!(chrono::DateTime::parse_from_rfc3339(add_time).is_ok());
    assert_eq!(data["update_time"], data["add_time"]);

    let twin = create(&mock, "persons", person("Ada Twin", "ada@example.com")).await;
    assert_eq!(twin.status, 200, "emails are not unique");
    assert_eq!(twin.body["data"]["id"], 2);
    let records = mock.records("persons");
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].emails(), ["Ada@Example.com", "ada@work.example"]);
    assert_eq!(records[1].emails(), ["ada@example.com"]);
    assert_eq!(records[1].object, "persons");
    let read = get(&mock, "/api/v2/persons/1").await;
    assert_eq!(read.status, 200);
    assert_eq!(read.body["data"], a.body["data"]);
    assert_eq!(mock.record("person", 1).map(|r| r.id), Some(1));

    for (body, message) in [
        (
            json!({"name": "X", "email": "x@example.com"}),
            "Unknown field 'email'",
        ),
        (json!({"name": "X", "id": 5}), "Unknown field 'id'"),
        (
            json!({"name": "X", "first_name": "X"}),
            "Unknown field 'first_name'",
        ),
        (
            json!({"emails": [{"value": "x@example.com"}]}),
            "Field 'name' is required",
        ),
        (
            json!({"name": "X", "emails": [{"value": "not-an-email"}]}),
            "Invalid value for field 'emails': not-an-email is not a valid email address",
        ),
        (
            json!({"name": "X", "org_id": 9}),
            "Invalid value for field 'org_id': Organization 9 not found",
        ),
        (
            json!({"name": "X", "visible_to": 2}),
            "Invalid value for field 'visible_to': expected one of 1, 3, 5, 7",
        ),
        (
            json!({"name": "X", "emails": ["x@example.com"]}),
            "Invalid value for field 'emails': expected an array of {\"value\": string, \"primary\": boolean, \"label\": string}",
        ),
    ] {
        let a = create(&mock, "persons", body).await;
        assert_eq!(a.status, 400, "{message}");
        assert_eq!(a.body, refused(message));
    }
    let not_json = send(&mock, Method::POST, "/api/v2/persons", Some(json!([1]))).await;
    assert_eq!(not_json.status, 400);
    assert_eq!(
        mock.records("persons").len(),
        2,
        "failed writes change nothing"
    );
}

#[tokio::test]
async fn patch_keeps_what_is_not_sent_and_delete_removes_everywhere() {
    let mock = MockPipedrive::start(quick()).await;
    mock.define_field("persons", BOOKING_KEY, "Booking id");
    let other = "fedcba9876543210fedcba9876543210fedcba98";
    mock.define_field("persons", other, "Source");
    let org = mock.seed("organizations", json!({"name": "Analytical Engines"}));
    let id = mock.seed(
        "persons",
        json!({
            "name": "Ada",
            "emails": [{"value": "ada@example.com"}],
            "custom_fields": { BOOKING_KEY: "b-1", other: "slatis" },
        }),
    );
    let before = mock.record("persons", id).expect("seeded");
    let a = send(
        &mock,
        Method::PATCH,
        &format!("/api/v2/persons/{id}"),
        Some(json!({"org_id": org, "custom_fields": { BOOKING_KEY: "b-2" }})),
    )
    .await;
    assert_eq!(a.status, 200);
    let data = &a.body["data"];
    assert_eq!(data["org_id"], org);
    assert_eq!(data["name"], "Ada");
    assert_eq!(data["emails"][0]["value"], "ada@example.com");
    assert_eq!(
        data["custom_fields"],
        json!({ BOOKING_KEY: "b-2", other: "slatis" })
    );
    assert_eq!(data["add_time"], before.data["add_time"]);
    let after = mock.record("persons", id).expect("still there");
    assert_eq!(after.custom(BOOKING_KEY), Some(&json!("b-2")));
    // null clears a custom field.
    let a = send(
        &mock,
        Method::PATCH,
        &format!("/api/v2/persons/{id}"),
        Some(json!({"custom_fields": { other: null }})),
    )
    .await;
    assert_eq!(a.body["data"]["custom_fields"][other], Value::Null);
    let missing = send(
        &mock,
        Method::PATCH,
        "/api/v2/persons/99",
        Some(json!({"name": "X"})),
    )
    .await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.body["error"], "Person not found");

    let deleted = send(
        &mock,
        Method::DELETE,
        &format!("/api/v2/persons/{id}"),
        None,
    )
    .await;
    assert_eq!(deleted.status, 200);
    assert_eq!(deleted.body, json!({"success": true, "data": {"id": id}}));
    assert_eq!(
        get(&mock, &format!("/api/v2/persons/{id}")).await.status,
        404
    );
    assert!(mock.records("persons").is_empty());
    assert!(get(&mock, "/api/v2/persons").await.ids().is_empty());
    assert!(
        search(&mock, "persons", &[("term", "ada")])
            .await
            .ids()
            .is_empty()
    );
    let again = send(
        &mock,
        Method::DELETE,
        &format!("/api/v2/persons/{id}"),
        None,
    )
    .await;
    assert_eq!(again.status, 404);
    let deal = create(&mock, "deals", json!({"title": "Intro", "person_id": id})).await;
    assert_eq!(deal.status, 400, "a deleted person cannot be linked");
    let next = create(&mock, "persons", json!({"name": "Bob"})).await;
    assert_eq!(next.body["data"]["id"], id + 1, "ids are not reused");
}

#[tokio::test]
async fn exact_search_ignores_case_and_waits_for_the_index() {
    let mock = MockPipedrive::start(PipedriveOptions {
        search_lag: Duration::from_millis(300),
        search_burst: 100,
        ..PipedriveOptions::default()
    })
    .await;
    let org = mock.seed(
        "organizations",
        json!({"name": "Analytical Engines", "address": {"value": "12 St James's Sq, London"}}),
    );
    let created = create(
        &mock,
        "persons",
        json!({
            "name": "Ada Lovelace",
            "org_id": org,
            "emails": [{"value": "Ada@Example.com"}, {"value": "ada@work.example"}],
            "phones": [{"value": "+441234"}],
        }),
    )
    .await;
    let id = created.body["data"]["id"].as_i64().expect("id");
    let exact = [
        ("term", "ada@example.COM"),
        ("fields", "email"),
        ("exact_match", "true"),
    ];
    let early = search(&mock, "persons", &exact).await;
    assert_eq!(early.status, 200);
    assert_eq!(early.body["data"]["items"], json!([]), "not indexed yet");
    assert_eq!(
        get(&mock, &format!("/api/v2/persons/{id}")).await.status,
        200
    );

    tokio::time::sleep(Duration::from_millis(350)).await;
    let found = search(&mock, "persons", &exact).await;
    assert_eq!(found.ids(), [id]);
    assert_eq!(found.body["additional_data"], json!({"next_cursor": null}));
    let entry = &found.body["data"]["items"][0];
    assert_eq!(entry["result_score"], 1.0);
    let item = &entry["item"];
    assert_eq!(item["type"], "person");
    assert_eq!(item["name"], "Ada Lovelace");
    assert_eq!(
        item["emails"],
        json!(["Ada@Example.com", "ada@work.example"]),
        "search items carry emails as strings"
    );
    assert_eq!(item["phones"], json!(["+441234"]));
    assert_eq!(item["owner"], json!({"id": 1}));
    assert_eq!(
        item["organization"],
        json!({"id": org, "name": "Analytical Engines", "address": "12 St James's Sq, London"})
    );
    assert_eq!(item["custom_fields"], json!([]));
    assert_eq!(item["notes"], json!([]));
    assert_eq!(item["visible_to"], 3);

    let partial = [
        ("term", "ada@example"),
        ("fields", "email"),
        ("exact_match", "true"),
    ];
    assert!(search(&mock, "persons", &partial).await.ids().is_empty());
    let substring = [("term", "EXAMPLE"), ("fields", "email")];
    assert_eq!(search(&mock, "persons", &substring).await.ids(), [id]);
    let by_name = [("term", "lovelace"), ("fields", "name,phone")];
    assert_eq!(search(&mock, "persons", &by_name).await.ids(), [id]);
    let wrong_field = [("term", "lovelace"), ("fields", "email")];
    assert!(
        search(&mock, "persons", &wrong_field)
            .await
            .ids()
            .is_empty()
    );
    let by_org = [("term", "lovelace"), ("organization_id", "99")];
    assert!(search(&mock, "persons", &by_org).await.ids().is_empty());

    // An update hides the record from search until the index catches up.
    let a = send(
        &mock,
        Method::PATCH,
        &format!("/api/v2/persons/{id}"),
        Some(json!({"name": "Ada King"})),
    )
    .await;
    assert_eq!(a.status, 200);
    assert!(search(&mock, "persons", &exact).await.ids().is_empty());
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(search(&mock, "persons", &exact).await.ids(), [id]);

    let short = search(&mock, "persons", &[("term", "a")]).await;
    assert_eq!(short.status, 400);
    assert_eq!(short.body["success"], false);
    let one_exact = search(&mock, "persons", &[("term", "a"), ("exact_match", "true")]).await;
    assert_eq!(one_exact.status, 200, "exact_match allows one character");
    let bad_fields = search(&mock, "persons", &[("term", "ada"), ("fields", "title")]).await;
    assert_eq!(bad_fields.status, 400);
    let activities = get(&mock, "/api/v2/activities/search?term=call").await;
    assert_eq!(activities.status, 404);
}

#[tokio::test]
async fn search_pages_with_a_cursor_and_covers_organizations_and_deals() {
    let mock = MockPipedrive::start(quick()).await;
    for n in 0..5 {
        mock.seed(
            "persons",
            person(&format!("Guest {n}"), "guest@example.com"),
        );
    }
    // Search has no sort: its own relevance order, here the most recently changed first.
    mock.seed("persons", person("Guest 5", "guest@example.com"));
    let first = search(&mock, "persons", &[("term", "guest"), ("limit", "2")]).await;
    assert_eq!(first.ids(), [6, 5]);
    let cursor = first.body["additional_data"]["next_cursor"]
        .as_str()
        .expect("a next cursor")
        .to_owned();
    let second = search(
        &mock,
        "persons",
        &[("term", "guest"), ("limit", "2"), ("cursor", &cursor)],
    )
    .await;
    assert_eq!(second.ids(), [4, 3]);
    let bad = search(&mock, "persons", &[("term", "guest"), ("cursor", "%%%")]).await;
    assert_eq!(bad.status, 400);

    let org = mock.seed(
        "organizations",
        json!({"name": "Engines Ltd", "address": {"value": "1 Main St, Springfield"}}),
    );
    let by_address = search(
        &mock,
        "organizations",
        &[("term", "springfield"), ("fields", "address")],
    )
    .await;
    assert_eq!(by_address.ids(), [org]);
    let item = &by_address.body["data"]["items"][0]["item"];
    assert_eq!(item["type"], "organization");
    assert_eq!(item["address"], "1 Main St, Springfield");

    let deal = mock.seed(
        "deals",
        json!({"title": "Intro call", "person_id": 1, "org_id": org, "value": 120, "currency": "EUR"}),
    );
    mock.seed("deals", json!({"title": "Intro call", "status": "won"}));
    let open = search(&mock, "deals", &[("term", "intro"), ("status", "open")]).await;
    assert_eq!(open.ids(), [deal]);
    let item = &open.body["data"]["items"][0]["item"];
    assert_eq!(item["type"], "deal");
    assert_eq!(item["title"], "Intro call");
    assert_eq!(item["status"], "open");
    assert_eq!(item["value"], 120);
    assert_eq!(item["currency"], "EUR");
    assert_eq!(item["person"], json!({"id": 1, "name": "Guest 0"}));
    assert_eq!(item["organization"]["id"], org);
}

#[tokio::test]
async fn custom_fields_are_kept_searched_and_checked() {
    let mock = MockPipedrive::start(quick()).await;
    mock.define_field("deals", BOOKING_KEY, "Slatis booking id");
    let a = create(
        &mock,
        "deals",
        json!({"title": "Intro", "custom_fields": { BOOKING_KEY: "bk_123" }}),
    )
    .await;
    assert_eq!(a.status, 200);
    assert_eq!(
        a.body["data"]["custom_fields"],
        json!({ BOOKING_KEY: "bk_123" })
    );
    let id = a.body["data"]["id"].as_i64().expect("id");
    let record = mock.record("deals", id).expect("record");
    assert_eq!(record.custom(BOOKING_KEY), Some(&json!("bk_123")));
    assert_eq!(record.text("title"), Some("Intro"));

    let unknown_key = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let a = create(
        &mock,
        "deals",
        json!({"title": "X", "custom_fields": { unknown_key: "v" }}),
    )
    .await;
    assert_eq!(a.status, 400);
    assert_eq!(
        a.body,
        refused(&format!("Custom field {unknown_key} does not exist"))
    );
    // Defined for deals only.
    let a = create(
        &mock,
        "persons",
        json!({"name": "X", "custom_fields": { BOOKING_KEY: "v" }}),
    )
    .await;
    assert_eq!(a.status, 400);
    // Top-level custom keys are v1 style, unknown to v2.
    let a = create(&mock, "deals", json!({"title": "X", BOOKING_KEY: "v"})).await;
    assert_eq!(a.body["error"], format!("Unknown field '{BOOKING_KEY}'"));
    assert_eq!(mock.records("deals").len(), 1);

    let exact = [
        ("term", "BK_123"),
        ("fields", "custom_fields"),
        ("exact_match", "true"),
    ];
    let found = search(&mock, "deals", &exact).await;
    assert_eq!(found.ids(), [id]);
    assert_eq!(
        found.body["data"]["items"][0]["item"]["custom_fields"],
        json!(["bk_123"])
    );
}

#[tokio::test]
#[should_panic(expected = "not 40 lowercase hex digits")]
async fn define_field_wants_a_pipedrive_key() {
    let mock = MockPipedrive::start(quick()).await;
    mock.define_field("persons", "booking_id", "Booking id");
}

#[tokio::test]
#[should_panic(expected = "Unknown field 'email'")]
async fn seed_checks_like_the_api() {
    let mock = MockPipedrive::start(quick()).await;
    mock.seed("persons", json!({"name": "X", "email": "x@example.com"}));
}

#[tokio::test]
async fn activities_are_validated_and_link_their_person_through_the_primary_participant() {
    let mock = MockPipedrive::start(PipedriveOptions {
        burst: 100,
        ..quick()
    })
    .await;
    let person = mock.seed("persons", person("Ada", "ada@example.com"));
    let deal = mock.seed("deals", json!({"title": "Intro", "person_id": person}));
    let a = create(
        &mock,
        "activities",
        json!({
            "subject": "Intro call",
            "type": "meeting",
            "deal_id": deal,
            "due_date": "2030-05-01",
            "due_time": "09:30",
            "duration": "01:00",
            "busy": true,
            "location": { "value": "Room 4" },
            "participants": [{ "person_id": person, "primary": true }],
            "attendees": [{ "email": "ada@example.com", "name": "Ada" }],
            "public_description": "Booked via Slatis",
            "note": "<p>hello</p>",
            "priority": 2,
        }),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let data = &a.body["data"];
    assert_eq!(data["type"], "meeting");
    assert_eq!(data["due_time"], "09:30");
    assert_eq!(data["location"], json!({ "value": "Room 4" }));
    assert_eq!(
        data["participants"],
        json!([{ "person_id": person, "primary": true }])
    );
    assert_eq!(
        data["person_id"], person,
        "set from the primary participant"
    );
    assert_eq!(data["done"], false);
    assert!(data.get("custom_fields").is_none(), "activities have none");
    let plain = create(&mock, "activities", json!({"due_date": "2030-05-02"})).await;
    assert_eq!(plain.status, 200);
    assert_eq!(plain.body["data"]["type"], "call");
    assert_eq!(plain.body["data"]["subject"], "Call");
    assert_eq!(plain.body["data"]["person_id"], Value::Null);
    assert_eq!(
        create(&mock, "activities", json!({})).await.status,
        200,
        "no field is required"
    );

    for (body, field) in [
        (json!({"due_date": "01/05/2030"}), "due_date"),
        (json!({"due_date": "2030-02-30"}), "due_date"),
        (json!({"due_time": "9:30"}), "due_time"),
        (json!({"due_time": "24:00"}), "due_time"),
        (json!({"duration": "1h"}), "duration"),
        (json!({"busy": "yes"}), "busy"),
        (json!({"done": 1}), "done"),
        (json!({"location": "Zoom"}), "location"),
        (json!({"type": "webinar"}), "type"),
        (json!({"person_id": person}), "person_id"),
        (json!({"deal_id": 99}), "deal_id"),
        (json!({"deal_id": "3"}), "deal_id"),
        (json!({"org_id": 99}), "org_id"),
        (json!({"custom_fields": {}}), "custom_fields"),
        (
            json!({"participants": [{"person_id": 99, "primary": false}]}),
            "participants",
        ),
    ] {
        let a = create(&mock, "activities", body.clone()).await;
        assert_eq!(a.status, 400, "{body}");
        let message = a.body["error"].as_str().expect("error");
        assert!(
            message.contains(&format!("'{field}'")),
            "{message} should name {field}"
        );
    }
    assert_eq!(mock.records("activities").len(), 3);

    let done = send(
        &mock,
        Method::PATCH,
        &format!("/api/v2/activities/{}", data["id"]),
        Some(json!({"done": true})),
    )
    .await;
    assert_eq!(done.body["data"]["done"], true);
    assert_eq!(done.body["data"]["subject"], "Intro call");
    let listed = get(&mock, "/api/v2/activities?done=true").await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert_eq!(listed.ids(), [data["id"].as_i64().expect("id")]);
    let hers = get(&mock, &format!("/api/v2/activities?person_id={person}")).await;
    assert_eq!(hers.status, 200, "{}", hers.body);
    assert_eq!(hers.ids(), [data["id"].as_i64().expect("id")]);
}

#[tokio::test]
async fn updated_since_lists_the_store_without_lag() {
    let mock = MockPipedrive::start(PipedriveOptions {
        search_lag: Duration::from_secs(60),
        ..PipedriveOptions::default()
    })
    .await;
    let first = create(&mock, "persons", person("Old", "old@example.com")).await;
    let first_id = first.body["data"]["id"].as_i64().expect("id");
    let first_time = first.body["data"]["update_time"]
        .as_str()
        .expect("update_time")
        .to_owned();
    let listed = reqwest::Client::new()
        .get(format!("{}/api/v2/persons", mock.url()))
        .header("x-api-token", TOKEN)
        .query(&[("updated_since", first_time.as_str())])
        .send()
        .await
        .expect("send");
    let listed = answer(listed).await;
    assert_eq!(listed.status, 200);
    assert_eq!(listed.ids(), [first_id], "no index lag for lists");
    assert_eq!(
        listed.body["data"][0]["emails"][0]["value"],
        "old@example.com"
    );
    assert_eq!(listed.body["additional_data"], json!({"next_cursor": null}));
    assert!(
        search(
            &mock,
            "persons",
            &[("term", "old@example.com"), ("exact_match", "true")]
        )
        .await
        .ids()
        .is_empty(),
        "search still lags"
    );

    // Wait for the next whole second, so the next records are strictly newer.
    let first_at = chrono::DateTime::parse_from_rfc3339(&first_time).expect("time");
    while chrono::Utc::now() < first_at + chrono::TimeDelta::seconds(1) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let since = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut new_ids = Vec::new();
    for n in 0..3 {
        let a = create(
            &mock,
            "persons",
            person(&format!("New {n}"), "new@example.com"),
        )
        .await;
        new_ids.push(a.body["data"]["id"].as_i64().expect("id"));
    }
    let page = |cursor: Option<String>| {
        let mut query = vec![
            ("updated_since".to_owned(), since.clone()),
            ("limit".to_owned(), "2".to_owned()),
        ];
        if let Some(cursor) = cursor {
            query.push(("cursor".to_owned(), cursor));
        }
        let request = reqwest::Client::new()
            .get(format!("{}/api/v2/persons", mock.url()))
            .header("x-api-token", TOKEN)
            .query(&query);
        async move { answer(request.send().await.expect("send")).await }
    };
    let one = page(None).await;
    assert_eq!(one.ids(), new_ids[..2]);
    let cursor = one.body["additional_data"]["next_cursor"]
        .as_str()
        .expect("cursor")
        .to_owned();
    let two = page(Some(cursor)).await;
    assert_eq!(two.ids(), new_ids[2..]);
    assert_eq!(two.body["additional_data"]["next_cursor"], Value::Null);

    let all = get(&mock, "/api/v2/persons").await;
    assert_eq!(all.ids().len(), 4);
    let bad = get(&mock, "/api/v2/persons?updated_since=yesterday").await;
    assert_eq!(bad.status, 400);
    let too_many = get(&mock, "/api/v2/persons?limit=501").await;
    assert_eq!(too_many.status, 400);
}

#[tokio::test]
async fn deals_link_existing_persons_and_organizations() {
    let mock = MockPipedrive::start(quick()).await;
    let person = mock.seed("persons", person("Ada", "ada@example.com"));
    let org = mock.seed("organizations", json!({"name": "Engines"}));
    let a = create(
        &mock,
        "deals",
        json!({
            "title": "Intro",
            "value": 99.5,
            "currency": "EUR",
            "person_id": person,
            "org_id": org,
            "expected_close_date": "2030-06-30",
        }),
    )
    .await;
    assert_eq!(a.status, 200);
    let data = &a.body["data"];
    assert_eq!(data["person_id"], person);
    assert_eq!(data["org_id"], org);
    assert_eq!(data["status"], "open");
    assert_eq!(data["pipeline_id"], 1);
    assert_eq!(data["value"], 99.5);
    let won = send(
        &mock,
        Method::PATCH,
        &format!("/api/v2/deals/{}", data["id"]),
        Some(json!({"status": "won"})),
    )
    .await;
    assert_eq!(won.body["data"]["status"], "won");
    assert_eq!(won.body["data"]["person_id"], person);

    for (body, message) in [
        (
            json!({"title": "X", "person_id": 42}),
            "Invalid value for field 'person_id': Person 42 not found",
        ),
        (
            json!({"title": "X", "org_id": 42}),
            "Invalid value for field 'org_id': Organization 42 not found",
        ),
        (
            json!({"title": "X", "status": "pending"}),
            "Invalid value for field 'status': expected one of open, won, lost",
        ),
        (
            json!({"title": "X", "expected_close_date": "2030-06-30T00:00:00Z"}),
            "Invalid value for field 'expected_close_date': expected a date (YYYY-MM-DD)",
        ),
        (json!({"value": 5}), "Field 'title' is required"),
    ] {
        let a = create(&mock, "deals", body).await;
        assert_eq!(a.status, 400);
        assert_eq!(a.body, refused(message));
    }
    assert_eq!(mock.records("deals").len(), 1);
    let by_person = get(&mock, &format!("/api/v2/deals?person_id={person}")).await;
    assert_eq!(by_person.ids().len(), 1);
}

#[tokio::test]
async fn closed_account_is_402() {
    let mock = MockPipedrive::start(PipedriveOptions {
        account_open: false,
        ..quick()
    })
    .await;
    let a = create(&mock, "persons", person("Ada", "ada@example.com")).await;
    assert_eq!(a.status, 402);
    assert_eq!(
        a.body,
        json!({
            "success": false,
            "error": "Company account is not open",
            "error_info": "Please check that you have an active subscription.",
            "data": null,
            "additional_data": null,
        })
    );
    assert!(a.header("x-ratelimit-limit").is_some());
    assert!(mock.records("persons").is_empty());
    assert_eq!(get(&mock, "/api/v2/persons").await.status, 402);
    let unauthenticated = send_as(&mock, Auth::None, Method::GET, "/api/v2/persons", None).await;
    assert_eq!(unauthenticated.status, 401);
    mock.set_account_open(true);
    assert_eq!(get(&mock, "/api/v2/persons").await.status, 200);
}

#[tokio::test]
async fn forbidden_writes_are_403() {
    let mock = MockPipedrive::start(quick()).await;
    let existing = mock.seed("deals", json!({"title": "Seeded"}));
    mock.forbid("deals");
    let path = format!("/api/v2/deals/{existing}");
    let writes = [
        create(&mock, "deals", json!({"title": "Intro"})).await,
        send(
            &mock,
            Method::PATCH,
            &path,
            Some(json!({"title": "Renamed"})),
        )
        .await,
        send(&mock, Method::DELETE, &path, None).await,
    ];
    for a in writes {
        assert_eq!(a.status, 403);
        assert_eq!(
            a.body,
            error_body("You do not have permission to perform this action")
        );
    }
    assert_eq!(get(&mock, &path).await.status, 200, "reads are allowed");
    assert_eq!(mock.records("deals").len(), 1);
    assert_eq!(
        mock.record("deals", existing)
            .and_then(|r| r.text("title").map(str::to_owned)),
        Some("Seeded".to_owned())
    );
    assert_eq!(
        create(&mock, "persons", json!({"name": "Ada"}))
            .await
            .status,
        200
    );
    mock.allow("deals");
    assert_eq!(
        create(&mock, "deals", json!({"title": "Intro"}))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn burst_limit_is_429_with_headers_per_token() {
    let mock = MockPipedrive::start(PipedriveOptions {
        api_tokens: vec![TOKEN.to_owned(), "pd-other".to_owned()],
        burst: 3,
        burst_window: Duration::from_secs(1),
        ..quick()
    })
    .await;
    for left in (0..3).rev() {
        let a = get(&mock, "/api/v2/persons").await;
        assert_eq!(a.status, 200);
        assert_eq!(a.header("x-ratelimit-limit"), Some("3"));
        assert_eq!(
            a.header("x-ratelimit-remaining"),
            Some(left.to_string().as_str())
        );
        assert_eq!(a.header("x-ratelimit-reset"), Some("1"));
    }
    let limited = get(&mock, "/api/v2/persons").await;
    assert_eq!(limited.status, 429);
    assert_eq!(
        limited.body,
        json!({
            "success": false,
            "error": "Request over limit",
            "error_info": "Please check developers.pipedrive.com",
            "data": null,
            "additional_data": null,
        })
    );
    assert_eq!(limited.header("x-ratelimit-limit"), Some("3"));
    assert_eq!(limited.header("x-ratelimit-remaining"), Some("0"));
    assert_eq!(limited.header("x-ratelimit-reset"), Some("1"));
    assert_eq!(limited.header("retry-after"), Some("1"));
    assert_eq!(mock.rate_limited(), 1);
    assert_eq!(mock.requests().last().map(|r| r.status), Some(429));
    let other = send_as(
        &mock,
        Auth::ApiToken("pd-other"),
        Method::GET,
        "/api/v2/persons",
        None,
    )
    .await;
    assert_eq!(other.status, 200, "each token has its own window");

    tokio::time::sleep(Duration::from_millis(1050)).await;
    assert_eq!(
        get(&mock, "/api/v2/persons").await.status,
        200,
        "the window rolled"
    );
    assert_eq!(mock.rate_limited(), 1);
}

#[tokio::test]
async fn search_has_its_own_burst() {
    let mock = MockPipedrive::start(PipedriveOptions {
        search_burst: 2,
        ..quick()
    })
    .await;
    for _ in 0..2 {
        assert_eq!(
            search(&mock, "persons", &[("term", "ada")]).await.status,
            200
        );
    }
    let limited = search(&mock, "deals", &[("term", "intro")]).await;
    assert_eq!(limited.status, 429);
    assert_eq!(limited.body["error"], "Request over limit");
    assert_eq!(limited.header("x-ratelimit-limit"), Some("2"));
    assert_eq!(limited.header("x-ratelimit-remaining"), Some("0"));
    assert_eq!(limited.header("retry-after"), Some("2"));
    assert_eq!(
        get(&mock, "/api/v2/persons").await.status,
        200,
        "other calls go on"
    );
    assert_eq!(mock.rate_limited(), 1);
}

#[tokio::test]
async fn status_fault_changes_nothing() {
    let mock = MockPipedrive::start(with_oauth()).await;
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
    // The token endpoint takes no fault.
    assert_eq!(
        grant(&mock, ("pd-client", "pd-secret"), "pd-refresh")
            .await
            .status,
        200
    );
    let first = create(&mock, "persons", person("Ada", "ada@example.com")).await;
    assert_eq!(first.status, 503);
    assert_eq!(first.header("retry-after"), Some("2"));
    assert_eq!(first.body["success"], false);
    assert_eq!(first.body["error"], "Internal server error");
    assert_eq!(first.body["data"], Value::Null);
    assert!(first.header("x-ratelimit-limit").is_some());
    let second = create(&mock, "persons", person("Ada", "ada@example.com")).await;
    assert_eq!(second.status, 502);
    assert_eq!(second.body, json!({"oops": true}));
    assert!(mock.records("persons").is_empty());
    let third = create(&mock, "persons", person("Ada", "ada@example.com")).await;
    assert_eq!(third.status, 200);
    assert_eq!(third.body["data"]["id"], 1);
}

#[tokio::test]
async fn slow_fault_applies_the_change_before_answering() {
    let mock = MockPipedrive::start(quick()).await;
    mock.fail_next(1, Fault::Slow(Duration::from_millis(400)));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(100))
        .build()
        .expect("client");
    let outcome = client
        .post(format!("{}/api/v2/persons", mock.url()))
        .header("x-api-token", TOKEN)
        .json(&person("Slow", "slow@example.com"))
        .send()
        .await;
    assert!(outcome.is_err(), "the client should have timed out");
    assert!(
        mock.wait_until(|m| m.records("persons").len() == 1, Duration::from_secs(1))
            .await
    );
    // Emails are not unique: a blind retry makes a duplicate, which is why a connector
    // searches first.
    let retry = create(&mock, "persons", person("Slow", "slow@example.com")).await;
    assert_eq!(retry.status, 200);
    assert_eq!(mock.records("persons").len(), 2);
}

#[tokio::test]
async fn drop_fault_applies_the_change_and_breaks_the_body() {
    let mock = MockPipedrive::start(quick()).await;
    mock.fail_next(1, Fault::Drop);
    let response = reqwest::Client::new()
        .post(format!("{}/api/v2/organizations", mock.url()))
        .header("x-api-token", TOKEN)
        .json(&json!({"name": "Dropped Ltd"}))
        .send()
        .await;
    let body = match response {
        Ok(r) => r.bytes().await.map(|_| ()),
        Err(e) => Err(e),
    };
    assert!(body.is_err(), "the body should break off");
    assert_eq!(mock.records("organizations").len(), 1);
    assert_eq!(mock.requests()[0].status, 0);
}

/// Each refusal the mock implements, with the doc it comes from: the answer is v2's 400,
/// the mock records why, and nothing changes.
#[tokio::test]
async fn each_refusal_is_a_400_with_the_doc_it_comes_from() {
    let mock = MockPipedrive::start(PipedriveOptions {
        burst: 100,
        ..quick()
    })
    .await;
    mock.define_field("persons", BOOKING_KEY, "Slatis booking");
    let ada = mock.seed("persons", person("Ada", "ada@example.com"));
    let migration = "https://pipedrive.readme.io/docs/pipedrive-api-v2-migration-guide";
    let custom = "https://pipedrive.readme.io/docs/core-api-concepts-custom-fields";
    let cases: Vec<(PipedriveRefusal, &str, Method, &str, Option<Value>)> = vec![
        (
            PipedriveRefusal::NotAnObject,
            migration,
            Method::POST,
            "/api/v2/persons",
            Some(json!([{"name": "X"}])),
        ),
        (
            PipedriveRefusal::UnknownField,
            migration,
            Method::POST,
            "/api/v2/persons",
            Some(json!({"name": "X", "email": "x@example.com"})),
        ),
        (
            PipedriveRefusal::UnknownField,
            migration,
            Method::POST,
            "/api/v2/deals",
            Some(json!({"title": "X", BOOKING_KEY: "v1 style"})),
        ),
        (
            PipedriveRefusal::UnknownField,
            migration,
            Method::POST,
            "/api/v2/activities",
            Some(json!({"busy_flag": true})),
        ),
        (
            PipedriveRefusal::NoCustomFields,
            custom,
            Method::POST,
            "/api/v2/activities",
            Some(json!({"subject": "X", "custom_fields": {BOOKING_KEY: "bkg_1"}})),
        ),
        (
            PipedriveRefusal::UnknownCustomField,
            custom,
            Method::POST,
            "/api/v2/deals",
            Some(json!({"title": "X", "custom_fields": {BOOKING_KEY: "only persons have it"}})),
        ),
        (
            PipedriveRefusal::ReadOnlyField,
            "https://devcommunity.pipedrive.com/t/api-v1-to-v2-upgrade-post-activities-http-400-responses/19734",
            Method::POST,
            "/api/v2/activities",
            Some(json!({"person_id": ada})),
        ),
        (
            PipedriveRefusal::WrongType,
            migration,
            Method::POST,
            "/api/v2/activities",
            Some(json!({"participants": [{"person_id": ada.to_string(), "primary": true}]})),
        ),
        (
            PipedriveRefusal::WrongType,
            migration,
            Method::POST,
            "/api/v2/activities",
            Some(json!({"done": 0})),
        ),
        (
            PipedriveRefusal::WrongType,
            migration,
            Method::POST,
            "/api/v2/activities",
            Some(json!({"location": "Zoom"})),
        ),
        (
            PipedriveRefusal::BadFormat,
            "https://developers.pipedrive.com/docs/api/v1/Activities#addActivity",
            Method::POST,
            "/api/v2/activities",
            Some(json!({"due_time": "10:00:00"})),
        ),
        (
            PipedriveRefusal::BadFormat,
            "https://developers.pipedrive.com/docs/api/v1/Activities#addActivity",
            Method::POST,
            "/api/v2/persons",
            Some(json!({"name": "X", "emails": [{"value": "nope"}]})),
        ),
        (
            PipedriveRefusal::BadEnum,
            "https://developers.pipedrive.com/docs/api/v1/ActivityTypes",
            Method::POST,
            "/api/v2/activities",
            Some(json!({"type": "webinar"})),
        ),
        (
            PipedriveRefusal::BadEnum,
            "https://developers.pipedrive.com/docs/api/v1/ActivityTypes",
            Method::POST,
            "/api/v2/persons",
            Some(json!({"name": "X", "visible_to": 2})),
        ),
        (
            PipedriveRefusal::Required,
            "https://github.com/pipedrive/client-nodejs/blob/master/src/versions/v2/models/add-deal-request.ts",
            Method::POST,
            "/api/v2/deals",
            Some(json!({"value": 5})),
        ),
        (
            PipedriveRefusal::MissingLink,
            migration,
            Method::POST,
            "/api/v2/deals",
            Some(json!({"title": "X", "person_id": 999})),
        ),
        (
            PipedriveRefusal::BadQuery,
            "https://github.com/pipedrive/client-nodejs/blob/master/src/versions/v2/api/persons-api.ts",
            Method::GET,
            "/api/v2/persons?limit=501",
            None,
        ),
        (
            PipedriveRefusal::BadQuery,
            "https://github.com/pipedrive/client-nodejs/blob/master/src/versions/v2/api/persons-api.ts",
            Method::GET,
            "/api/v2/activities?sort_by=subject",
            None,
        ),
    ];
    let mut seen = std::collections::HashSet::new();
    for (why, doc, method, path, body) in cases {
        assert_eq!(why.doc(), doc, "{why:?}");
        let a = send(&mock, method, path, body.clone()).await;
        assert_eq!(a.status, 400, "{why:?} {body:?}");
        assert_eq!(a.body["success"], false);
        assert_eq!(a.body["code"], "ERR_BAD_REQUEST");
        assert!(a.body["error"].is_string());
        let recorded = mock.requests().last().and_then(|r| r.refusal);
        assert_eq!(recorded, Some(why), "{body:?}: {}", a.body);
        seen.insert(why);
    }
    for why in PipedriveRefusal::ALL {
        assert!(seen.contains(&why), "no case shows {why:?}");
    }
    assert_eq!(mock.records("persons").len(), 1);
    assert!(mock.records("deals").is_empty() && mock.records("activities").is_empty());
}

#[tokio::test]
async fn the_daily_budget_is_spent_by_cost_and_refuses_everything_until_it_resets() {
    let mock = MockPipedrive::start(PipedriveOptions {
        daily_budget: Some(16),
        ..quick()
    })
    .await;
    let list = get(&mock, "/api/v2/persons").await;
    assert_eq!(list.status, 200);
    assert_eq!(list.header("x-daily-ratelimit-token-limit"), Some("16"));
    assert_eq!(
        list.header("x-daily-ratelimit-token-remaining"),
        Some("6"),
        "a list costs 10"
    );
    let made = create(&mock, "persons", person("Ada", "ada@example.com")).await;
    assert_eq!(
        made.header("x-daily-ratelimit-token-remaining"),
        Some("1"),
        "a create costs 5"
    );
    let spent = create(&mock, "persons", person("Bob", "bob@example.com")).await;
    assert_eq!(spent.status, 429);
    assert_eq!(
        spent.body,
        error_body_with(
            "Request over limit",
            "Please check developers.pipedrive.com"
        )
    );
    assert_eq!(spent.header("x-daily-ratelimit-token-remaining"), Some("0"));
    assert_eq!(
        spent.header("retry-after"),
        None,
        "the day's end is not a window"
    );
    assert_ne!(
        spent.header("x-ratelimit-remaining"),
        Some("0"),
        "the burst window has room"
    );
    let read = get(&mock, "/api/v2/persons/1").await;
    assert_eq!(read.status, 200, "a read costs 1");
    assert_eq!(mock.daily_tokens_left(), Some(0));
    assert_eq!(get(&mock, "/api/v2/persons/1").await.status, 429);
    assert_eq!(
        mock.records("persons").len(),
        1,
        "a refused call changes nothing"
    );
    assert_eq!(mock.rate_limited(), 2);
    mock.reset_daily_budget();
    let next_day = create(&mock, "persons", person("Bob", "bob@example.com")).await;
    assert_eq!(next_day.status, 200);
    assert_eq!(
        next_day.header("x-daily-ratelimit-token-remaining"),
        Some("11")
    );
}

#[tokio::test]
async fn lists_take_ids_and_sort_by_creation() {
    let mock = MockPipedrive::start(quick()).await;
    for n in 1..=4 {
        mock.seed("persons", person(&format!("P{n}"), "same@example.com"));
    }
    let some = get(
        &mock,
        "/api/v2/persons?ids=3,1,4&sort_by=add_time&sort_direction=asc",
    )
    .await;
    assert_eq!(some.ids(), [1, 3, 4]);
    let newest = get(
        &mock,
        "/api/v2/persons?ids=3,1,4&sort_by=add_time&sort_direction=desc",
    )
    .await;
    assert_eq!(newest.ids(), [4, 3, 1]);
    let bad = get(&mock, "/api/v2/persons?ids=1,x").await;
    assert_eq!(bad.status, 400);
}
