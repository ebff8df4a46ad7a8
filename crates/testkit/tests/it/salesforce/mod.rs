//! The Salesforce mock, through reqwest: the three OAuth grants, sessions, create / read /
//! update / delete with Salesforce's errors, upsert by external id, SOQL (escapes and
//! injection attempts included), duplicate and validation rules, the daily limit and
//! faults.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use slatis_testkit::mock::{Fault, MockSalesforce, SalesforceOptions};
use std::time::Duration;

mod model;
mod refusals;

const V: &str = "/services/data/v60.0";
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const PRIVATE_KEY: &[u8] = include_bytes!("../../../fixtures/salesforce_jwt_test_key.pem");

struct Answer {
    status: u16,
    headers: HeaderMap,
    body: Value,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `errorCode` of the first entry of a REST error list.
    fn code(&self) -> &str {
        self.body[0]["errorCode"].as_str().unwrap_or_default()
    }

    fn message(&self) -> &str {
        self.body[0]["message"].as_str().unwrap_or_default()
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

async fn grant(mock: &MockSalesforce, form: &[(&str, &str)]) -> Answer {
    let response = reqwest::Client::new()
        .post(format!("{}/services/oauth2/token", mock.url()))
        .form(form)
        .send()
        .await
        .expect("send");
    answer(response).await
}

/// An access token from the client-credentials grant.
async fn login(mock: &MockSalesforce) -> String {
    let a = grant(
        mock,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "sf-client"),
            ("client_secret", "sf-secret"),
        ],
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    a.body["access_token"]
        .as_str()
        .expect("access token")
        .to_owned()
}

async fn send_as(
    mock: &MockSalesforce,
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
    answer(request.send().await.expect("send")).await
}

/// A mock and a valid token.
async fn start(options: SalesforceOptions) -> (MockSalesforce, String) {
    let mock = MockSalesforce::start(options).await;
    let token = login(&mock).await;
    (mock, token)
}

async fn soql(mock: &MockSalesforce, token: &str, q: &str) -> Answer {
    let response = reqwest::Client::new()
        .get(format!("{}{V}/query", mock.url()))
        .bearer_auth(token)
        .query(&[("q", q)])
        .send()
        .await
        .expect("send");
    answer(response).await
}

/// The `Id`s of a query's records.
fn ids(a: &Answer) -> Vec<String> {
    a.body["records"]
        .as_array()
        .expect("records")
        .iter()
        .map(|r| r["Id"].as_str().expect("Id").to_owned())
        .collect()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn sign(claims: &Value) -> String {
    let key = EncodingKey::from_rsa_pem(PRIVATE_KEY).expect("test key");
    jsonwebtoken::encode(&Header::new(Algorithm::RS256), claims, &key).expect("sign")
}

/// Posts a JWT bearer grant with an assertion of `claims`, signed with the test key.
async fn jwt(mock: &MockSalesforce, claims: &Value) -> Answer {
    let assertion = sign(claims);
    grant(
        mock,
        &[
            ("grant_type", JWT_BEARER),
            ("assertion", assertion.as_str()),
        ],
    )
    .await
}

fn claims(iss: &str, sub: &str, aud: &str, exp: i64) -> Value {
    json!({"iss": iss, "sub": sub, "aud": aud, "exp": exp})
}

/// `value` as the body of a SOQL string literal (the connector's rules).
fn escape(value: &str) -> String {
    let mut out = String::new();
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c => out.push(c),
        }
    }
    out
}

#[tokio::test]
async fn client_credentials_and_refresh_token_grants() {
    let mock = MockSalesforce::start(SalesforceOptions::default()).await;
    let ok = grant(
        &mock,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "sf-client"),
            ("client_secret", "sf-secret"),
        ],
    )
    .await;
    assert_eq!(ok.status, 200);
    let token = ok.body["access_token"].as_str().expect("token");
    assert!(token.starts_with("00Dmock!") && token.len() > 10);
    assert_eq!(ok.body["instance_url"], mock.url());
    assert_eq!(ok.body["id"], format!("{}/id/00Dmock/005mock", mock.url()));
    assert_eq!(ok.body["token_type"], "Bearer");
    assert_eq!(ok.body["token_format"], "opaque");
    assert_eq!(ok.body["scope"], "api");
    assert!(ok.body["signature"].is_string());
    let issued_at: i64 = ok.body["issued_at"]
        .as_str()
        .expect("issued_at")
        .parse()
        .expect("epoch ms");
    assert!((issued_at / 1000 - now()).abs() < 5);
    assert!(ok.body.get("refresh_token").is_none());

    let bad_secret = grant(
        &mock,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "sf-client"),
            ("client_secret", "nope"),
        ],
    )
    .await;
    assert_eq!(bad_secret.status, 400);
    assert_eq!(
        bad_secret.body,
        json!({"error": "invalid_grant", "error_description": "authentication failure"})
    );
    let bad_client = grant(
        &mock,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "other"),
            ("client_secret", "sf-secret"),
        ],
    )
    .await;
    assert_eq!(
        bad_client.body,
        json!({"error": "invalid_client_id", "error_description": "client identifier invalid"})
    );
    let unsupported = grant(&mock, &[("grant_type", "password")]).await;
    assert_eq!(unsupported.status, 400);
    assert_eq!(
        unsupported.body,
        json!({"error": "unsupported_grant_type", "error_description": "grant type not supported"})
    );

    let refresh = |token: &'static str| {
        [
            ("grant_type", "refresh_token"),
            ("client_id", "sf-client"),
            ("client_secret", "sf-secret"),
            ("refresh_token", token),
        ]
    };
    let bad = grant(&mock, &refresh("other")).await;
    assert_eq!(bad.body["error"], "invalid_grant");
    let refreshed = grant(&mock, &refresh("sf-refresh")).await;
    assert_eq!(refreshed.status, 200);
    assert_ne!(refreshed.body["access_token"], ok.body["access_token"]);

    assert_eq!(mock.tokens_issued(), 2);
    assert_eq!(mock.tokens_issued_by("client_credentials"), 1);
    assert_eq!(mock.tokens_issued_by("refresh_token"), 1);
    // Both tokens work.
    for token in [
        token,
        refreshed.body["access_token"].as_str().expect("token"),
    ] {
        let limits = send_as(
            &mock,
            Some(token),
            Method::GET,
            &format!("{V}/limits"),
            None,
        )
        .await;
        assert_eq!(limits.status, 200);
    }
    let recorded = mock.requests();
    assert_eq!(
        recorded[0].form_field("grant_type").as_deref(),
        Some("client_credentials")
    );
    assert_eq!(recorded[0].status, 200);
    assert_eq!(recorded[1].status, 400);
}

#[tokio::test]
async fn jwt_bearer_grant_checks_signature_and_claims() {
    let mock = MockSalesforce::start(SalesforceOptions::default()).await;
    let user = "integration@example.com";
    let login_url = SalesforceOptions::PRODUCTION_AUDIENCE;

    let good = jwt(&mock, &claims("sf-client", user, login_url, now() + 180)).await;
    assert_eq!(good.status, 200, "{}", good.body);
    assert_eq!(good.body["instance_url"], mock.url());

    let wrong_iss = jwt(&mock, &claims("someone-else", user, login_url, now() + 60)).await;
    assert_eq!(wrong_iss.status, 400);
    assert_eq!(wrong_iss.body["error"], "invalid_client_id");
    let failure = json!({"error": "invalid_grant", "error_description": "authentication failure"});
    let wrong_sub = jwt(
        &mock,
        &claims("sf-client", "other@example.com", login_url, now() + 60),
    )
    .await;
    assert_eq!(wrong_sub.body, failure);
    let no_exp = jwt(
        &mock,
        &json!({"iss": "sf-client", "sub": user, "aud": login_url}),
    )
    .await;
    assert_eq!(no_exp.body, failure);

    // Not RS256, or not signed by the key.
    let hs256 = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims("sf-client", user, login_url, now() + 60),
        &EncodingKey::from_secret(b"secret"),
    )
    .expect("sign");
    let a = grant(&mock, &[("grant_type", JWT_BEARER), ("assertion", &hs256)]).await;
    assert_eq!(a.body, failure);
    let genuine = sign(&claims("sf-client", user, login_url, now() + 60));
    let forged_claims = claims("sf-client", "admin@example.com", login_url, now() + 60);
    let mut parts: Vec<String> = genuine.split('.').map(str::to_owned).collect();
    parts[1] = {
        use base64_url::encode;
        encode(&serde_json::to_vec(&forged_claims).expect("json"))
    };
    let forged = parts.join(".");
    let a = grant(&mock, &[("grant_type", JWT_BEARER), ("assertion", &forged)]).await;
    assert_eq!(a.body, failure);
    let a = grant(
        &mock,
        &[("grant_type", JWT_BEARER), ("assertion", "not.a.jwt")],
    )
    .await;
    assert_eq!(a.body, failure);

    assert_eq!(mock.tokens_issued(), 1);
    assert_eq!(mock.tokens_issued_by(JWT_BEARER), 1);
    // Every assertion whose signature checked out, accepted or not.
    let recorded = mock.jwt_claims();
    assert_eq!(recorded.len(), 4);
    assert_eq!(recorded[0]["aud"], login_url);
    assert_eq!(recorded[1]["iss"], "someone-else");
}

/// `aud` is the authorization server's URL — login.salesforce.com for a production org,
/// test.salesforce.com for a sandbox, or an Experience Cloud site — never a My Domain,
/// and `exp` is within the next 3 minutes; refusals are Salesforce's `invalid_grant`
/// ("audience is invalid", "expired authorization code").
#[tokio::test]
async fn jwt_bearer_aud_and_exp_follow_salesforces_rules() {
    let user = "integration@example.com";
    let invalid_audience =
        json!({"error": "invalid_grant", "error_description": "audience is invalid"});
    let production = MockSalesforce::start(SalesforceOptions::default()).await;
    let sandbox = MockSalesforce::start(SalesforceOptions {
        audience: SalesforceOptions::SANDBOX_AUDIENCE.to_owned(),
        ..SalesforceOptions::default()
    })
    .await;
    let site = "https://acme.my.site.com/customers";
    let community = MockSalesforce::start(SalesforceOptions {
        audience: site.to_owned(),
        ..SalesforceOptions::default()
    })
    .await;
    for (mock, accepted) in [
        (&production, SalesforceOptions::PRODUCTION_AUDIENCE),
        (&sandbox, SalesforceOptions::SANDBOX_AUDIENCE),
        (&community, site),
    ] {
        let ok = jwt(mock, &claims("sf-client", user, accepted, now() + 120)).await;
        assert_eq!(ok.status, 200, "{accepted}: {}", ok.body);
        for refused in [
            SalesforceOptions::PRODUCTION_AUDIENCE,
            SalesforceOptions::SANDBOX_AUDIENCE,
            "https://globex.my.salesforce.com",
            &mock.url(),
            "https://login.salesforce.com/",
        ] {
            if refused == accepted {
                continue;
            }
            let a = jwt(mock, &claims("sf-client", user, refused, now() + 120)).await;
            assert_eq!(a.status, 400, "{accepted} refuses {refused}");
            assert_eq!(a.body, invalid_audience, "{accepted} refuses {refused}");
        }
        // one string, not a list
        let listed =
            json!({"iss": "sf-client", "sub": user, "aud": [accepted], "exp": now() + 120});
        assert_eq!(jwt(mock, &listed).await.body, invalid_audience);
    }
    let login = SalesforceOptions::PRODUCTION_AUDIENCE;
    let expired = jwt(&production, &claims("sf-client", user, login, now() - 1)).await;
    assert_eq!(
        expired.body,
        json!({"error": "invalid_grant", "error_description": "expired authorization code"})
    );
    let too_far = jwt(&production, &claims("sf-client", user, login, now() + 240)).await;
    assert_eq!(too_far.status, 400);
    assert_eq!(too_far.body["error"], "invalid_grant");
    assert_eq!(production.tokens_issued(), 1);
}

/// Base64url without padding, for forging a JWT part.
mod base64_url {
    pub fn encode(bytes: &[u8]) -> String {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let b = [
                chunk[0],
                chunk.get(1).copied().unwrap_or(0),
                chunk.get(2).copied().unwrap_or(0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..=chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            }
        }
        out
    }
}

#[tokio::test]
async fn sessions_need_a_token_and_expire() {
    let (mock, token) = start(SalesforceOptions::default()).await;
    let path = format!("{V}/limits");
    for bad in [None, Some("00Dmock!forged")] {
        let a = send_as(&mock, bad, Method::GET, &path, None).await;
        assert_eq!(a.status, 401);
        assert_eq!(
            a.body,
            json!([{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}])
        );
        assert!(a.header("sforce-limit-info").is_none());
    }
    let ok = send_as(&mock, Some(&token), Method::GET, &path, None).await;
    assert_eq!(ok.status, 200);

    mock.expire_sessions();
    let expired = send_as(&mock, Some(&token), Method::GET, &path, None).await;
    assert_eq!(expired.status, 401);
    assert_eq!(expired.code(), "INVALID_SESSION_ID");
    let fresh = login(&mock).await;
    let ok = send_as(&mock, Some(&fresh), Method::GET, &path, None).await;
    assert_eq!(ok.status, 200);

    let requests = mock.requests();
    let statuses: Vec<u16> = requests.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 401, 401, 200, 401, 200, 200]);
    assert_eq!(requests[1].api_version.as_deref(), Some("60.0"));
    assert_eq!(requests[0].api_version, None);
    assert_eq!(requests[2].token.as_deref(), Some("00Dmock!forged"));
    assert_eq!(requests[3].path, path);
}

#[tokio::test]
async fn create_read_update_delete() {
    let (mock, token) = start(SalesforceOptions::default()).await;
    let t = Some(token.as_str());
    let created = send_as(
        &mock,
        t,
        Method::POST,
        &format!("{V}/sobjects/Contact/"),
        Some(json!({"firstname": "Ada", "LastName": "Lovelace", "Email": "ada@example.com", "attributes": {"type": "Contact"}})),
    )
    .await;
    assert_eq!(created.status, 201);
    assert_eq!(
        created.body,
        json!({"id": "003Mock00000000001", "success": true, "errors": []})
    );
    let id = "003Mock00000000001";
    assert_eq!(id.len(), 18);
    // No trailing slash, another object: the counter is shared.
    let account = send_as(
        &mock,
        t,
        Method::POST,
        &format!("{V}/sobjects/Account"),
        Some(json!({"Name": "Analytical Engines"})),
    )
    .await;
    assert_eq!(account.body["id"], "001Mock00000000002");

    let read = send_as(
        &mock,
        t,
        Method::GET,
        &format!("{V}/sobjects/Contact/{id}"),
        None,
    )
    .await;
    assert_eq!(read.status, 200);
    assert_eq!(
        read.body["attributes"],
        json!({"type": "Contact", "url": format!("{V}/sobjects/Contact/{id}")})
    );
    assert_eq!(read.body["Id"], id);
    assert_eq!(read.body["FirstName"], "Ada");
    assert_eq!(read.body["LastName"], "Lovelace");
    assert_eq!(read.body["Phone"], Value::Null);
    assert!(read.body.get("firstname").is_none());
    let narrowed = send_as(
        &mock,
        t,
        Method::GET,
        &format!("{V}/sobjects/Contact/{id}?fields=id,email"),
        None,
    )
    .await;
    assert_eq!(
        narrowed.body,
        json!({
            "attributes": {"type": "Contact", "url": format!("{V}/sobjects/Contact/{id}")},
            "Id": id,
            "Email": "ada@example.com",
        })
    );
    let bad_fields = send_as(
        &mock,
        t,
        Method::GET,
        &format!("{V}/sobjects/Contact/{id}?fields=Nope"),
        None,
    )
    .await;
    assert_eq!(bad_fields.status, 400);
    assert_eq!(bad_fields.code(), "INVALID_FIELD");

    let patched = send_as(
        &mock,
        t,
        Method::PATCH,
        &format!("{V}/sobjects/Contact/{id}"),
        Some(json!({"Phone": "+44 20 7946 0000", "FirstName": null, "Title": 7})),
    )
    .await;
    assert_eq!(patched.status, 204);
    assert_eq!(patched.body, Value::Null);
    let record = mock.record("Contact", id).expect("record");
    assert_eq!(record.text("phone"), Some("+44 20 7946 0000"));
    assert_eq!(
        record.field("Title"),
        Some(&json!("7")),
        "a text field keeps text"
    );
    assert_eq!(record.field("FirstName"), None);
    assert_eq!(record.object, "Contact");
    // Ids match ignoring case.
    assert!(mock.record("contact", &id.to_lowercase()).is_some());

    let unknown = send_as(
        &mock,
        t,
        Method::GET,
        &format!("{V}/sobjects/Contact/003Mock00000000099"),
        None,
    )
    .await;
    assert_eq!(unknown.status, 404);
    assert_eq!(
        unknown.body,
        json!([{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}])
    );
    // An Account's id is not a Contact's.
    let wrong_type = send_as(
        &mock,
        t,
        Method::GET,
        &format!("{V}/sobjects/Contact/001Mock00000000002"),
        None,
    )
    .await;
    assert_eq!(wrong_type.status, 404);

    let deleted = send_as(
        &mock,
        t,
        Method::DELETE,
        &format!("{V}/sobjects/Contact/{id}"),
        None,
    )
    .await;
    assert_eq!(deleted.status, 204);
    let gone = json!([{"errorCode": "ENTITY_IS_DELETED", "message": "entity is deleted"}]);
    for method in [Method::GET, Method::DELETE] {
        let a = send_as(
            &mock,
            t,
            method,
            &format!("{V}/sobjects/Contact/{id}"),
            None,
        )
        .await;
        assert_eq!(a.status, 404);
        assert_eq!(a.body, gone);
    }
    let a = send_as(
        &mock,
        t,
        Method::PATCH,
        &format!("{V}/sobjects/Contact/{id}"),
        Some(json!({"Phone": "1"})),
    )
    .await;
    assert_eq!(a.body, gone);
    let a = send_as(
        &mock,
        t,
        Method::DELETE,
        &format!("{V}/sobjects/Contact/003Mock00000000099"),
        None,
    )
    .await;
    assert_eq!(a.status, 404);
    assert_eq!(a.code(), "NOT_FOUND");
    assert!(mock.records("Contact").is_empty());
    assert!(mock.record("Contact", id).is_none());
    let deleted = mock.deleted_records("Contact");
    assert_eq!(deleted.len(), 1);
    assert!(deleted[0].deleted);
}

#[tokio::test]
async fn write_errors_change_nothing() {
    let (mock, token) = start(SalesforceOptions::default()).await;
    let t = Some(token.as_str());
    let post = |object: &str, body: Value| {
        let path = format!("{V}/sobjects/{object}/");
        let token = token.clone();
        let mock = &mock;
        async move { send_as(mock, Some(&token), Method::POST, &path, Some(body)).await }
    };

    let a = post("Nope", json!({"Name": "x"})).await;
    assert_eq!(a.status, 404);
    assert_eq!(
        a.body,
        json!([{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}])
    );
    let a = post("Contact", json!({"LastName": "L", "Foo": 1})).await;
    assert_eq!(a.status, 400);
    assert_eq!(
        a.body,
        json!([{"message": "No such column 'Foo' on sobject of type Contact", "errorCode": "INVALID_FIELD"}])
    );
    let a = post("Contact", json!({"FirstName": "F"})).await;
    assert_eq!(
        a.body,
        json!([{"message": "Required fields are missing: [LastName]", "errorCode": "REQUIRED_FIELD_MISSING", "fields": ["LastName"]}])
    );
    let a = post("Contact", json!({"LastName": ""})).await;
    assert_eq!(a.code(), "REQUIRED_FIELD_MISSING");
    let a = post("Lead", json!({"Email": "l@example.com"})).await;
    assert_eq!(
        a.message(),
        "Required fields are missing: [LastName, Company]"
    );
    assert_eq!(a.body[0]["fields"], json!(["LastName", "Company"]));
    let a = post(
        "Contact",
        json!({"LastName": "L", "Id": "003Mock00000000001"}),
    )
    .await;
    assert_eq!(
        a.body,
        json!([{"message": "The Id field should not be specified in the sobject data.", "errorCode": "INVALID_FIELD"}])
    );
    let a = post("Contact", json!({"LastName": "L", "Email": "not-an-email"})).await;
    assert_eq!(a.code(), "INVALID_EMAIL_ADDRESS");
    assert_eq!(a.body[0]["fields"], json!(["Email"]));
    let a = post("Contact", json!({"LastName": {"nested": true}})).await;
    assert_eq!(a.code(), "JSON_PARSER_ERROR");
    let a = post(
        "Event",
        json!({"StartDateTime": "tomorrow at ten", "DurationInMinutes": 30}),
    )
    .await;
    assert_eq!(a.code(), "JSON_PARSER_ERROR");
    assert!(a.message().contains("datetime"), "{}", a.message());
    let a = post(
        "Opportunity",
        json!({"Name": "N", "StageName": "Prospecting", "CloseDate": "2024-02-30"}),
    )
    .await;
    assert_eq!(a.code(), "JSON_PARSER_ERROR");
    let raw = reqwest::Client::new()
        .post(format!("{}{V}/sobjects/Contact/", mock.url()))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("send");
    let a = answer(raw).await;
    assert_eq!(a.status, 400);
    assert_eq!(a.code(), "JSON_PARSER_ERROR");
    assert!(mock.records("Contact").is_empty());
    assert!(mock.records("Lead").is_empty());

    // Updates: the same checks, and a required field cannot be emptied.
    let id = mock.seed("Contact", json!({"LastName": "Kept"}));
    for body in [
        json!({"LastName": null}),
        json!({"lastname": ""}),
        json!({"Foo": "x"}),
        json!({"Id": id}),
        json!({"Email": "nope"}),
    ] {
        let a = send_as(
            &mock,
            t,
            Method::PATCH,
            &format!("{V}/sobjects/Contact/{id}"),
            Some(body.clone()),
        )
        .await;
        assert_eq!(a.status, 400, "{body}");
    }
    let record = mock.record("Contact", &id).expect("record");
    assert_eq!(
        Value::Object(record.fields),
        json!({"LastName": "Kept", "OwnerId": "005Mock00000000001"}),
        "as seeded, with the defaulted owner"
    );
}

#[tokio::test]
async fn events_need_times_and_valid_lookups() {
    let (mock, token) = start(SalesforceOptions::default()).await;
    let post = |body: Value| {
        let token = token.clone();
        let mock = &mock;
        async move {
            send_as(
                mock,
                Some(&token),
                Method::POST,
                &format!("{V}/sobjects/Event/"),
                Some(body),
            )
            .await
        }
    };
    let start = "2025-03-01T10:00:00.000+0000";
    let a = post(json!({"Subject": "Intro", "StartDateTime": start})).await;
    assert_eq!(
        a.body,
        json!([{"message": "Required fields are missing: [EndDateTime]", "errorCode": "REQUIRED_FIELD_MISSING", "fields": ["EndDateTime"]}])
    );
    let a = post(json!({"Subject": "Intro", "DurationInMinutes": 30})).await;
    assert_eq!(a.body[0]["fields"], json!(["StartDateTime"]));
    let a = post(json!({"StartDateTime": start, "EndDateTime": "2025-03-01T09:00:00Z"})).await;
    assert_eq!(a.code(), "FIELD_INTEGRITY_EXCEPTION");
    assert_eq!(a.body[0]["fields"], json!(["EndDateTime"]));

    let contact = mock.seed("Contact", json!({"LastName": "C"}));
    let lead = mock.seed("Lead", json!({"LastName": "L", "Company": "Co"}));
    let account = mock.seed("Account", json!({"Name": "A"}));
    let ok = post(json!({
        "StartDateTime": start,
        "EndDateTime": "2025-03-01T10:30:00Z",
        "WhoId": contact,
        "WhatId": account,
    }))
    .await;
    assert_eq!(ok.status, 201, "{}", ok.body);
    let all_day =
        post(json!({"ActivityDateTime": start, "IsAllDayEvent": true, "WhoId": lead})).await;
    assert_eq!(all_day.status, 201, "{}", all_day.body);
    let by_duration = post(json!({"StartDateTime": start, "DurationInMinutes": "45"})).await;
    assert_eq!(by_duration.status, 201, "{}", by_duration.body);

    let missing = "003Mock00000000999";
    let a = post(json!({"StartDateTime": start, "DurationInMinutes": 30, "WhoId": missing})).await;
    assert_eq!(
        a.body,
        json!([{"message": "invalid cross reference id", "errorCode": "INVALID_CROSS_REFERENCE_KEY", "fields": ["WhoId"]}])
    );
    let a = post(json!({"StartDateTime": start, "DurationInMinutes": 30, "WhatId": missing})).await;
    assert_eq!(a.code(), "INVALID_CROSS_REFERENCE_KEY");
    assert_eq!(a.body[0]["fields"], json!(["WhatId"]));
    let a = post(json!({"StartDateTime": start, "DurationInMinutes": 30, "WhoId": account})).await;
    assert_eq!(a.code(), "FIELD_INTEGRITY_EXCEPTION");
    assert_eq!(a.body[0]["fields"], json!(["WhoId"]));
    let a = post(json!({"StartDateTime": start, "DurationInMinutes": 30, "WhatId": contact})).await;
    assert_eq!(a.code(), "FIELD_INTEGRITY_EXCEPTION");
    let a = post(json!({"StartDateTime": start, "DurationInMinutes": 30, "WhoId": "bob"})).await;
    assert_eq!(a.code(), "MALFORMED_ID");
    let a = post(json!({
        "StartDateTime": start, "DurationInMinutes": 30, "WhoId": lead, "WhatId": account,
    }))
    .await;
    assert_eq!(a.code(), "FIELD_INTEGRITY_EXCEPTION");
    assert_eq!(a.body[0]["fields"], json!(["WhatId"]));

    let deleted = send_as(
        &mock,
        Some(&token),
        Method::DELETE,
        &format!("{V}/sobjects/Contact/{contact}"),
        None,
    )
    .await;
    assert_eq!(deleted.status, 204);
    let a = post(json!({"StartDateTime": start, "DurationInMinutes": 30, "WhoId": contact})).await;
    assert_eq!(a.code(), "ENTITY_IS_DELETED");
    assert_eq!(a.status, 400);
    assert_eq!(mock.records("Event").len(), 3);
    let read = send_as(
        &mock,
        Some(&token),
        Method::GET,
        &format!("{V}/sobjects/Event/{}", ok.body["id"].as_str().expect("id")),
        None,
    )
    .await;
    assert_eq!(read.body["IsAllDayEvent"], false);
    assert_eq!(read.body["StartDateTime"], start);
    assert!(read.body["Id"].as_str().expect("id").starts_with("00UMock"));
}

#[tokio::test]
async fn upsert_by_external_id() {
    let (mock, token) = start(SalesforceOptions::default()).await;
    mock.define_field("Contact", "Booking_Uid__c", true);
    mock.define_field("Contact", "Notes__c", false);
    let upsert = |version: &'static str, field: &'static str, value: &'static str, body: Value| {
        let token = token.clone();
        let mock = &mock;
        async move {
            let path = format!("/services/data/v{version}/sobjects/Contact/{field}/{value}");
            send_as(mock, Some(&token), Method::PATCH, &path, Some(body)).await
        }
    };

    let a = upsert("60.0", "Notes__c", "x", json!({"LastName": "L"})).await;
    assert_eq!(a.status, 404);
    assert_eq!(a.code(), "NOT_FOUND");
    let a = upsert("60.0", "Nope__c", "x", json!({"LastName": "L"})).await;
    assert_eq!(a.status, 404);
    let a = upsert("60.0", "booking_uid__c", "bk-1", json!({"FirstName": "F"})).await;
    assert_eq!(a.code(), "REQUIRED_FIELD_MISSING");

    let created = upsert("60.0", "booking_uid__c", "bk-1", json!({"LastName": "One"})).await;
    assert_eq!(created.status, 201);
    let id = created.body["id"].as_str().expect("id").to_owned();
    assert_eq!(
        created.body,
        json!({"id": id, "success": true, "errors": [], "created": true})
    );
    let record = mock.record("Contact", &id).expect("record");
    assert_eq!(record.text("Booking_Uid__c"), Some("bk-1"));

    let updated = upsert("60.0", "Booking_Uid__c", "BK-1", json!({"LastName": "Uno"})).await;
    assert_eq!(updated.status, 200);
    assert_eq!(
        updated.body,
        json!({"id": id, "success": true, "errors": [], "created": false})
    );
    let old = upsert("45.0", "Booking_Uid__c", "bk-1", json!({"Title": "Dr"})).await;
    assert_eq!(old.status, 204);
    assert_eq!(old.body, Value::Null);
    let old_create = upsert("45.0", "Booking_Uid__c", "bk-2", json!({"LastName": "Two"})).await;
    assert_eq!(old_create.status, 201);
    assert!(old_create.body.get("created").is_none());
    let record = mock.record("Contact", &id).expect("record");
    assert_eq!(record.text("LastName"), Some("Uno"));
    assert_eq!(record.text("Title"), Some("Dr"));

    // The body names neither Id nor the external id, not even with the same value.
    let ok = upsert("60.0", "Booking_Uid__c", "bk-1", json!({"Phone": "1"})).await;
    assert_eq!(ok.status, 200);
    for body in [
        json!({"booking_uid__c": "bk-1", "Phone": "2"}),
        json!({"Booking_Uid__c": "bk-9", "Phone": "2"}),
        json!({"Id": id, "Phone": "2"}),
    ] {
        let refused = upsert("60.0", "Booking_Uid__c", "bk-1", body.clone()).await;
        assert_eq!(refused.status, 400, "{body}");
        assert_eq!(refused.code(), "INVALID_FIELD", "{body}");
    }
    assert_eq!(
        mock.record("Contact", &id).expect("record").text("Phone"),
        Some("1")
    );

    let got = send_as(
        &mock,
        Some(&token),
        Method::GET,
        &format!("{V}/sobjects/Contact/Booking_Uid__c/bk-1?fields=Id"),
        None,
    )
    .await;
    assert_eq!(got.status, 200);
    assert_eq!(got.body["Id"], id);
    let none = send_as(
        &mock,
        Some(&token),
        Method::GET,
        &format!("{V}/sobjects/Contact/Booking_Uid__c/bk-404"),
        None,
    )
    .await;
    assert_eq!(none.status, 404);
    assert_eq!(none.code(), "NOT_FOUND");

    // Two records with one value: 300 with their URLs (in no documented order: the mock
    // lists the newest first), and nothing changes.
    let twin = mock.seed(
        "Contact",
        json!({"LastName": "Twin", "Booking_Uid__c": "Bk-1"}),
    );
    let several = upsert("60.0", "Booking_Uid__c", "bk-1", json!({"Title": "Prof"})).await;
    assert_eq!(several.status, 300);
    assert_eq!(
        several.body,
        json!([
            format!("{V}/sobjects/Contact/{twin}"),
            format!("{V}/sobjects/Contact/{id}"),
        ])
    );
    assert_eq!(
        mock.record("Contact", &id).expect("record").text("Title"),
        Some("Dr")
    );
    let got = send_as(
        &mock,
        Some(&token),
        Method::GET,
        &format!("{V}/sobjects/Contact/Booking_Uid__c/bk-1"),
        None,
    )
    .await;
    assert_eq!(got.status, 300);

    let deleted = send_as(
        &mock,
        Some(&token),
        Method::DELETE,
        &format!("{V}/sobjects/Contact/Booking_Uid__c/bk-2"),
        None,
    )
    .await;
    assert_eq!(deleted.status, 204);
    assert_eq!(mock.records("Contact").len(), 2);
    // A deleted record no longer matches: the next upsert creates.
    let again = upsert(
        "60.0",
        "Booking_Uid__c",
        "bk-2",
        json!({"LastName": "Two again"}),
    )
    .await;
    assert_eq!(again.status, 201);
}

#[tokio::test]
async fn soql_selects_filters_sorts_and_limits() {
    let (mock, token) = start(SalesforceOptions::default()).await;
    let ada = mock.seed(
        "Contact",
        json!({"FirstName": "Ada", "LastName": "Lovelace", "Email": "Ada@Example.com"}),
    );
    let alan = mock.seed(
        "Contact",
        json!({"FirstName": "Alan", "LastName": "Turing", "Email": "alan@example.com"}),
    );
    let grace = mock.seed("Contact", json!({"LastName": "Hopper", "Title": "RADM"}));

    let all = soql(&mock, &token, "select id, lastname from contact").await;
    assert_eq!(all.status, 200);
    assert_eq!(all.body["totalSize"], 3);
    assert_eq!(all.body["done"], true);
    assert_eq!(ids(&all), [ada.as_str(), alan.as_str(), grace.as_str()]);
    assert_eq!(
        all.body["records"][0],
        json!({
            "attributes": {"type": "Contact", "url": format!("{V}/sobjects/Contact/{ada}")},
            "Id": ada,
            "LastName": "Lovelace",
        })
    );

    let by_email = soql(
        &mock,
        &token,
        "SELECT Id FROM Contact WHERE Email = 'ada@example.COM' LIMIT 10",
    )
    .await;
    assert_eq!(ids(&by_email), [ada.as_str()]);
    let by_id = soql(
        &mock,
        &token,
        &format!("SELECT Id, FirstName FROM Contact WHERE Id = '{alan}'"),
    )
    .await;
    assert_eq!(ids(&by_id), [alan.as_str()]);
    assert_eq!(by_id.body["records"][0]["FirstName"], "Alan");
    let no_id = soql(&mock, &token, "SELECT LastName FROM Contact LIMIT 1").await;
    assert!(no_id.body["records"][0].get("Id").is_none());
    assert_eq!(no_id.body["totalSize"], 1);

    let nulls = soql(
        &mock,
        &token,
        "SELECT Id FROM Contact WHERE FirstName = null",
    )
    .await;
    assert_eq!(ids(&nulls), [grace.as_str()]);
    let not_null = soql(
        &mock,
        &token,
        "SELECT Id FROM Contact WHERE FirstName != NULL",
    )
    .await;
    assert_eq!(ids(&not_null), [ada.as_str(), alan.as_str()]);
    // `!=` keeps records where the field is null, as in SOQL.
    let not_ada = soql(
        &mock,
        &token,
        "SELECT Id FROM Contact WHERE FirstName <> 'ADA'",
    )
    .await;
    assert_eq!(ids(&not_ada), [alan.as_str(), grace.as_str()]);
    let both = soql(
        &mock,
        &token,
        "SELECT Id FROM Contact WHERE FirstName != null AND LastName = 'turing'",
    )
    .await;
    assert_eq!(ids(&both), [alan.as_str()]);
    let listed = soql(
        &mock,
        &token,
        "SELECT Id FROM Contact WHERE LastName IN ('hopper', 'Lovelace') ORDER BY LastName",
    )
    .await;
    assert_eq!(ids(&listed), [grace.as_str(), ada.as_str()]);
    let not_listed = soql(
        &mock,
        &token,
        "SELECT Id FROM Contact WHERE LastName NOT IN ('hopper', 'Lovelace')",
    )
    .await;
    assert_eq!(ids(&not_listed), [alan.as_str()]);

    let desc = soql(
        &mock,
        &token,
        "SELECT Id FROM Contact ORDER BY FirstName DESC LIMIT 2",
    )
    .await;
    assert_eq!(ids(&desc), [alan.as_str(), ada.as_str()]);
    let asc = soql(
        &mock,
        &token,
        "SELECT Id FROM Contact ORDER BY FirstName ASC",
    )
    .await;
    assert_eq!(ids(&asc), [grace.as_str(), ada.as_str(), alan.as_str()]);
    let nulls_last = soql(
        &mock,
        &token,
        "SELECT Id FROM Contact ORDER BY FirstName NULLS LAST",
    )
    .await;
    assert_eq!(
        ids(&nulls_last),
        [ada.as_str(), alan.as_str(), grace.as_str()]
    );
    let none = soql(&mock, &token, "SELECT Id FROM Contact LIMIT 0").await;
    assert_eq!(none.body["totalSize"], 0);

    let unknown_field = soql(&mock, &token, "SELECT Id, Nope FROM Contact").await;
    assert_eq!(unknown_field.status, 400);
    assert_eq!(unknown_field.code(), "INVALID_FIELD");
    assert!(
        unknown_field
            .message()
            .contains("No such column 'Nope' on entity 'Contact'")
    );
    let unknown_where = soql(&mock, &token, "SELECT Id FROM Contact WHERE Nope = 'x'").await;
    assert_eq!(unknown_where.code(), "INVALID_FIELD");
    let unknown_object = soql(&mock, &token, "SELECT Id FROM Foo").await;
    assert_eq!(unknown_object.status, 400);
    assert_eq!(unknown_object.code(), "INVALID_TYPE");
    assert!(
        unknown_object
            .message()
            .starts_with("sObject type 'Foo' is not supported.")
    );
    for unsupported in [
        "SELECT * FROM Contact",
        "SELECT Id FROM Contact WHERE LastName LIKE 'T%'",
        "SELECT Id FROM Contact WHERE LastName = 'a' OR LastName = 'b'",
        "SELECT Id FROM Contact LIMIT",
        "SELECT Id FROM Contact WHERE",
        "SELECT Id Contact",
        "",
    ] {
        let a = soql(&mock, &token, unsupported).await;
        assert_eq!(a.status, 400, "{unsupported}");
        assert_eq!(a.code(), "MALFORMED_QUERY", "{unsupported}");
    }
    // Deleted records are not found.
    send_as(
        &mock,
        Some(&token),
        Method::DELETE,
        &format!("{V}/sobjects/Contact/{ada}"),
        None,
    )
    .await;
    let after = soql(&mock, &token, "SELECT Id FROM Contact").await;
    assert_eq!(ids(&after), [alan.as_str(), grace.as_str()]);
}

#[tokio::test]
async fn soql_literals_unescape_and_never_widen() {
    let (mock, token) = start(SalesforceOptions::default()).await;
    let values = [
        "O'Brien",
        "OBrien",
        "O\\'Brien",
        "a\\b",
        "a\\\\b",
        "x' OR LastName != 'y",
        "quote\"d",
        "tab\there",
        "line\nbreak",
        "under_score 100%",
        "\\",
        "'",
    ];
    let mut by_value = Vec::new();
    for value in values {
        by_value.push((value, mock.seed("Contact", json!({"LastName": value}))));
    }
    // The connector's escaping finds exactly the record, whatever the value.
    for (value, id) in &by_value {
        let q = format!(
            "SELECT Id, LastName FROM Contact WHERE LastName = '{}'",
            escape(value)
        );
        let a = soql(&mock, &token, &q).await;
        assert_eq!(a.status, 200, "{q}: {}", a.body);
        assert_eq!(ids(&a), [id.as_str()], "{q}");
        assert_eq!(a.body["records"][0]["LastName"], *value);
    }
    let exact = soql(
        &mock,
        &token,
        r"SELECT Id FROM Contact WHERE LastName = 'O\'Brien'",
    )
    .await;
    assert_eq!(ids(&exact), [by_value[0].1.as_str()]);
    let backslash = soql(
        &mock,
        &token,
        r"SELECT Id FROM Contact WHERE LastName = 'a\\b'",
    )
    .await;
    assert_eq!(ids(&backslash), [by_value[3].1.as_str()]);
    let like_escapes = soql(
        &mock,
        &token,
        r"SELECT Id FROM Contact WHERE LastName = 'under\_score 100\%'",
    )
    .await;
    assert_eq!(ids(&like_escapes), [by_value[9].1.as_str()]);

    // Injection attempts: one literal that matches nothing, or malformed; never more.
    let escaped = soql(
        &mock,
        &token,
        r"SELECT Id FROM Contact WHERE LastName = 'nobody\' OR LastName != \'y'",
    )
    .await;
    assert_eq!(escaped.status, 200);
    assert_eq!(escaped.body["totalSize"], 0);
    for attempt in [
        "SELECT Id FROM Contact WHERE LastName = 'x' OR LastName != 'y'",
        "SELECT Id FROM Contact WHERE LastName = 'O'Brien'",
        "SELECT Id FROM Contact WHERE LastName = 'x' OR Name != 'y' LIMIT 10",
        r"SELECT Id FROM Contact WHERE LastName = 'x\\' OR LastName != 'y'",
        r"SELECT Id FROM Contact WHERE LastName = 'x\q'",
        r"SELECT Id FROM Contact WHERE LastName = 'unterminated",
        r"SELECT Id FROM Contact WHERE LastName = 'ends in backslash\",
        "SELECT Id FROM Contact WHERE LastName = 'x'; DELETE",
        "SELECT Id FROM Contact WHERE LastName = 'x' --",
        "SELECT Id FROM Contact WHERE LastName = 'x' 'y'",
    ] {
        let a = soql(&mock, &token, attempt).await;
        assert_eq!(a.status, 400, "{attempt}: {}", a.body);
        assert_eq!(a.code(), "MALFORMED_QUERY", "{attempt}");
    }
    let bad_escape = soql(
        &mock,
        &token,
        r"SELECT Id FROM Contact WHERE LastName = 'x\q'",
    )
    .await;
    assert!(
        bad_escape
            .message()
            .contains("Illegal character sequence '\\q'")
    );
    let stray = soql(
        &mock,
        &token,
        "SELECT Id FROM Contact WHERE LastName = 'O'Brien'",
    )
    .await;
    assert!(
        stray.message().contains("unexpected token"),
        "{}",
        stray.message()
    );
    let garbage = soql(
        &mock,
        &token,
        "SELECT Id FROM Contact WHERE LastName = 'O' Brien",
    )
    .await;
    assert_eq!(garbage.code(), "MALFORMED_QUERY");
    assert!(
        garbage.message().contains("unexpected token: 'Brien'"),
        "{}",
        garbage.message()
    );
}

#[tokio::test]
async fn duplicate_rule_answers_duplicates_detected() {
    let (mock, token) = start(SalesforceOptions::default()).await;
    mock.duplicate_rule("contact", "email");
    let existing = mock.seed(
        "Contact",
        json!({"LastName": "Lovelace", "Email": "ada@example.com"}),
    );
    let a = send_as(
        &mock,
        Some(&token),
        Method::POST,
        &format!("{V}/sobjects/Contact/"),
        Some(json!({"LastName": "Byron", "Email": "ADA@example.com"})),
    )
    .await;
    assert_eq!(a.status, 400);
    assert_eq!(
        a.body,
        json!([{
            "message": "Use one of these records?",
            "errorCode": "DUPLICATES_DETECTED",
            "fields": [],
            "duplicateResult": {
                "allowSave": false,
                "duplicateRule": "Standard_Contact_Duplicate_Rule",
                "duplicateRuleEntityType": "Contact",
                "errorMessage": "You're creating a duplicate record. We recommend you use an existing record instead.",
                "matchResults": [{
                    "entityType": "Contact",
                    "errors": [],
                    "matchEngine": "FuzzyMatchEngine",
                    "matchRecords": [{
                        "additionalInformation": [],
                        "fieldDiffs": [],
                        "matchConfidence": 100.0,
                        "record": {
                            "attributes": {
                                "type": "Contact",
                                "url": format!("{V}/sobjects/Contact/{existing}"),
                            },
                            "Id": existing,
                        },
                    }],
                    "rule": "Standard_Contact_Match_Rule_v1_0",
                    "size": 1,
                    "success": true,
                }],
            },
        }])
    );
    assert_eq!(mock.records("Contact").len(), 1);

    let other = mock.seed(
        "Contact",
        json!({"LastName": "Other", "Email": "o@example.com"}),
    );
    // Saving a record keeps matching others, not itself.
    let a = send_as(
        &mock,
        Some(&token),
        Method::PATCH,
        &format!("{V}/sobjects/Contact/{existing}"),
        Some(json!({"Title": "Countess"})),
    )
    .await;
    assert_eq!(a.status, 204);
    let a = send_as(
        &mock,
        Some(&token),
        Method::PATCH,
        &format!("{V}/sobjects/Contact/{other}"),
        Some(json!({"Email": "Ada@Example.com"})),
    )
    .await;
    assert_eq!(a.code(), "DUPLICATES_DETECTED");
    assert_eq!(
        mock.record("Contact", &other)
            .expect("record")
            .text("Email"),
        Some("o@example.com")
    );
}

#[tokio::test]
async fn validation_rule_answers_field_custom_validation_exception() {
    let (mock, token) = start(SalesforceOptions::default()).await;
    mock.validation_rule("Lead", "Status", "Closed - Bad", "Pick a real status");
    let post = |body: Value| {
        let token = token.clone();
        let mock = &mock;
        async move {
            send_as(
                mock,
                Some(&token),
                Method::POST,
                &format!("{V}/sobjects/Lead/"),
                Some(body),
            )
            .await
        }
    };
    let a = post(json!({"LastName": "L", "Company": "C", "Status": "Closed - Bad"})).await;
    assert_eq!(a.status, 400);
    assert_eq!(
        a.body,
        json!([{"message": "Pick a real status", "errorCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION", "fields": ["Status"]}])
    );
    let ok = post(json!({"LastName": "L", "Company": "C", "Status": "Open"})).await;
    assert_eq!(ok.status, 201);
    let id = ok.body["id"].as_str().expect("id");
    let a = send_as(
        &mock,
        Some(&token),
        Method::PATCH,
        &format!("{V}/sobjects/Lead/{id}"),
        Some(json!({"status": "Closed - Bad"})),
    )
    .await;
    assert_eq!(a.code(), "FIELD_CUSTOM_VALIDATION_EXCEPTION");
    assert_eq!(
        mock.record("Lead", id).expect("record").text("Status"),
        Some("Open")
    );
}

#[tokio::test]
async fn daily_limit_and_usage_header() {
    let (mock, token) = start(SalesforceOptions {
        daily_limit: Some(3),
        ..SalesforceOptions::default()
    })
    .await;
    let path = format!("{V}/limits");
    for n in 1..=3 {
        let a = send_as(&mock, Some(&token), Method::GET, &path, None).await;
        assert_eq!(a.status, 200);
        assert_eq!(
            a.header("sforce-limit-info"),
            Some(format!("api-usage={n}/3").as_str())
        );
        assert_eq!(
            a.body,
            json!({"DailyApiRequests": {"Max": 3, "Remaining": 3 - n}})
        );
    }
    let over = send_as(
        &mock,
        Some(&token),
        Method::POST,
        &format!("{V}/sobjects/Account/"),
        Some(json!({"Name": "A"})),
    )
    .await;
    assert_eq!(over.status, 403);
    assert_eq!(
        over.body,
        json!([{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}])
    );
    assert_eq!(over.header("sforce-limit-info"), Some("api-usage=3/3"));
    assert!(mock.records("Account").is_empty());
    assert_eq!(mock.api_usage(), 3);
    assert_eq!(mock.rate_limited(), 1, "the one call past the limit");
    // The token endpoint does not count.
    login(&mock).await;
    assert_eq!(mock.api_usage(), 3);

    let (mock, token) = start(SalesforceOptions::default()).await;
    let a = send_as(&mock, Some(&token), Method::GET, &path, None).await;
    assert_eq!(a.header("sforce-limit-info"), Some("api-usage=1/100000"));
    assert_eq!(a.body["DailyApiRequests"]["Remaining"], 99_999);
    let failed = soql(&mock, &token, "SELECT Id FROM Nope").await;
    assert_eq!(
        failed.header("sforce-limit-info"),
        Some("api-usage=2/100000")
    );
}

#[tokio::test]
async fn status_fault_changes_nothing() {
    let (mock, token) = start(SalesforceOptions::default()).await;
    let lock_body = r#"[{"message":"unable to obtain exclusive access to this record","errorCode":"UNABLE_TO_LOCK_ROW"}]"#;
    mock.fail_next(
        1,
        Fault::Status {
            status: 400,
            retry_after: None,
            body: lock_body.into(),
        },
    );
    mock.fail_next(
        1,
        Fault::Status {
            status: 503,
            retry_after: Some(3),
            body: String::new(),
        },
    );
    // Faults are not taken by the token endpoint.
    let token2 = login(&mock).await;
    assert_ne!(token, token2);
    let create = || {
        let token = token.clone();
        let mock = &mock;
        async move {
            send_as(
                mock,
                Some(&token),
                Method::POST,
                &format!("{V}/sobjects/Account/"),
                Some(json!({"Name": "A"})),
            )
            .await
        }
    };
    let locked = create().await;
    assert_eq!(locked.status, 400);
    assert_eq!(locked.code(), "UNABLE_TO_LOCK_ROW");
    assert!(locked.header("sforce-limit-info").is_some());
    let unavailable = create().await;
    assert_eq!(unavailable.status, 503);
    assert_eq!(unavailable.header("retry-after"), Some("3"));
    assert_eq!(
        unavailable.body,
        json!([{"message": "An unexpected error occurred.", "errorCode": "UNKNOWN_EXCEPTION"}])
    );
    assert!(mock.records("Account").is_empty());
    let ok = create().await;
    assert_eq!(ok.status, 201);
    assert_eq!(mock.records("Account").len(), 1);
}

#[tokio::test]
async fn slow_fault_applies_the_change_before_answering() {
    let (mock, token) = start(SalesforceOptions::default()).await;
    mock.fail_next(1, Fault::Slow(Duration::from_millis(400)));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(100))
        .build()
        .expect("client");
    let outcome = client
        .post(format!("{}{V}/sobjects/Account/", mock.url()))
        .bearer_auth(&token)
        .json(&json!({"Name": "Slow"}))
        .send()
        .await;
    assert!(outcome.is_err(), "the client should have timed out");
    assert!(
        mock.wait_until(|m| m.records("Account").len() == 1, Duration::from_secs(1))
            .await
    );
}

#[tokio::test]
async fn drop_fault_applies_the_change_and_breaks_the_body() {
    let (mock, token) = start(SalesforceOptions::default()).await;
    mock.define_field("Contact", "Uid__c", true);
    mock.fail_next(2, Fault::Drop);
    for path in [
        format!("{V}/sobjects/Contact/"),
        "/services/data/v45.0/sobjects/Contact/Uid__c/u-1".to_owned(),
    ] {
        let method = if path.ends_with('/') {
            Method::POST
        } else {
            Method::PATCH
        };
        let response = reqwest::Client::new()
            .request(method, format!("{}{path}", mock.url()))
            .bearer_auth(&token)
            .json(&json!({"LastName": "Dropped"}))
            .send()
            .await;
        let body = match response {
            Ok(r) => r.bytes().await.map(|_| ()),
            Err(e) => Err(e),
        };
        assert!(body.is_err(), "the body should break off: {path}");
    }
    assert_eq!(mock.records("Contact").len(), 2);
    let statuses: Vec<u16> = mock.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 0, 0]);
}

#[tokio::test]
async fn custom_objects() {
    let (mock, token) = start(SalesforceOptions::default()).await;
    let path = format!("{V}/sobjects/Booking__c/");
    let a = send_as(
        &mock,
        Some(&token),
        Method::POST,
        &path,
        Some(json!({"Name": "b"})),
    )
    .await;
    assert_eq!(a.status, 404);

    mock.define_field("Booking__c", "Uid__c", true);
    mock.define_field("Booking__c", "Starts__c", false);
    mock.define_field("Survey__c", "Score__c", false);
    let a = send_as(
        &mock,
        Some(&token),
        Method::POST,
        &path,
        Some(json!({"uid__c": "b-1", "Starts__c": "2025-03-01T10:00:00Z", "Paid__c": true})),
    )
    .await;
    assert_eq!(a.status, 400);
    assert_eq!(
        a.message(),
        "No such column 'Paid__c' on sobject of type Booking__c"
    );
    let a = send_as(
        &mock,
        Some(&token),
        Method::POST,
        &path,
        Some(json!({"uid__c": "b-1", "Starts__c": 1_740_823_200})),
    )
    .await;
    assert_eq!(a.status, 201);
    let id = a.body["id"].as_str().expect("id");
    assert!(id.starts_with("a00Mock") && id.len() == 18, "{id}");
    let survey = mock.seed("survey__c", json!({"Score__c": 5, "Name": "S"}));
    assert!(survey.starts_with("a01Mock"), "{survey}");
    let record = mock.record("Booking__c", id).expect("record");
    assert_eq!(record.field("Uid__c"), Some(&json!("b-1")));
    assert_eq!(record.field("Starts__c"), Some(&json!(1_740_823_200)));
    let q = soql(
        &mock,
        &token,
        "SELECT Id, Name, Starts__c FROM booking__c WHERE Uid__c = 'B-1' AND Starts__c = 1740823200",
    )
    .await;
    assert_eq!(q.status, 200, "{}", q.body);
    assert_eq!(q.body["records"][0]["attributes"]["type"], "Booking__c");
    assert_eq!(q.body["records"][0]["Name"], Value::Null);
    assert_eq!(q.body["records"][0]["Starts__c"], 1_740_823_200);
}

#[tokio::test]
async fn unknown_endpoints_and_methods() {
    let (mock, token) = start(SalesforceOptions::default()).await;
    let t = Some(token.as_str());
    let a = send_as(&mock, None, Method::GET, "/nope", None).await;
    assert_eq!(a.status, 404);
    assert_eq!(a.code(), "NOT_FOUND");
    let a = send_as(&mock, None, Method::GET, &format!("{V}/nope"), None).await;
    assert_eq!(a.status, 401);
    let a = send_as(&mock, t, Method::GET, &format!("{V}/nope"), None).await;
    assert_eq!(a.status, 404);
    let a = send_as(&mock, t, Method::GET, "/services/data/latest/limits", None).await;
    assert_eq!(a.status, 404);
    let a = send_as(
        &mock,
        t,
        Method::PUT,
        &format!("{V}/sobjects/Contact/003Mock00000000001"),
        Some(json!({})),
    )
    .await;
    assert_eq!(a.status, 405);
    assert_eq!(a.code(), "METHOD_NOT_ALLOWED");
    let a = send_as(&mock, t, Method::GET, "/services/oauth2/token", None).await;
    assert_eq!(a.status, 404);
}

#[tokio::test]
#[should_panic(expected = "REQUIRED_FIELD_MISSING")]
async fn seed_checks_like_the_api() {
    let mock = MockSalesforce::start(SalesforceOptions::default()).await;
    mock.seed("Contact", json!({"FirstName": "No last name"}));
}

#[tokio::test]
async fn the_request_log_keeps_the_error_code_of_a_refusal() {
    let (mock, token) = start(SalesforceOptions::default()).await;
    let contacts = format!("{V}/sobjects/Contact/");
    let long = json!({"LastName": "l".repeat(81)});
    let refused = send_as(&mock, Some(&token), Method::POST, &contacts, Some(long)).await;
    assert_eq!((refused.status, refused.code()), (400, "STRING_TOO_LONG"));
    let made = json!({"LastName": "L"});
    let created = send_as(&mock, Some(&token), Method::POST, &contacts, Some(made)).await;
    assert_eq!(created.status, 201);
    let absent = format!("{contacts}003Mock99999999999");
    let missing = send_as(&mock, Some(&token), Method::GET, &absent, None).await;
    assert_eq!(missing.status, 404);
    let log = mock.requests();
    assert_eq!(log.len(), 4, "the grant, then three calls");
    assert_eq!(log[0].refusal, None, "the token endpoint is not the schema");
    assert_eq!(log[1].refusal.as_deref(), Some("STRING_TOO_LONG"));
    assert_eq!((&log[2].refusal, &log[3].refusal), (&None, &None));
}
