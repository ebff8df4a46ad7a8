//! The faults of a hostile CRM, as every mock serves them: headers sent exactly as given
//! (over the mock's own), bodies that never end or drip in, redirects, and token answers
//! whose `expires_in` says anything.

use futures_util::StreamExt;
use serde_json::{Value, json};
use slatis_testkit::mock::{
    Fault, HubSpotOptions, MockHttp, MockHubSpot, MockPipedrive, PipedriveOptions,
};
use std::time::{Duration, Instant};

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

#[tokio::test]
async fn header_faults_send_any_value_in_place_of_the_mocks_own() {
    let pd = MockPipedrive::start(PipedriveOptions::default()).await;
    pd.fail_next(
        1,
        Fault::header(429, "x-ratelimit-reset", "99999999999999999"),
    );
    let answer = client()
        .get(format!("{}/api/v2/persons", pd.url()))
        .header("x-api-token", "pd-test-token")
        .send()
        .await
        .expect("send");
    assert_eq!(answer.status(), 429);
    let resets: Vec<_> = answer
        .headers()
        .get_all("x-ratelimit-reset")
        .iter()
        .collect();
    assert_eq!(resets, ["99999999999999999"], "the fault's value alone");
    let body: Value = answer.json().await.expect("Pipedrive's error envelope");
    assert_eq!(body["success"], false);

    let http = MockHttp::start().await;
    http.fail_next(1, Fault::redirect("https://evil.example/x?token=t"));
    http.fail_next(
        1,
        Fault::header(503, "retry-after", "Wed, 21 Oct 2037 07:28:00 GMT"),
    );
    let redirect = client().post(http.url()).send().await.expect("send");
    assert_eq!(redirect.status(), 302);
    assert_eq!(
        redirect.headers()["location"],
        "https://evil.example/x?token=t"
    );
    let later = client().post(http.url()).send().await.expect("send");
    assert_eq!(
        (
            later.status().as_u16(),
            later.headers()["retry-after"].to_str().expect("text")
        ),
        (503, "Wed, 21 Oct 2037 07:28:00 GMT")
    );
    assert_eq!(
        http.received().iter().map(|r| r.status).collect::<Vec<_>>(),
        [302, 503]
    );
}

#[tokio::test]
async fn an_endless_body_never_ends_and_a_drip_comes_a_byte_at_a_time() {
    let http = MockHttp::start().await;
    http.fail_next(1, Fault::Endless);
    http.fail_next(1, Fault::Drip(Duration::from_millis(30)));
    let endless = client().post(http.url()).send().await.expect("send");
    assert_eq!(endless.status(), 201);
    let mut stream = endless.bytes_stream();
    let mut read = 0;
    while read < 8 << 20 {
        read += stream.next().await.expect("more").expect("bytes").len();
    }
    drop(stream);
    let started = Instant::now();
    let drip = client().post(http.url()).send().await.expect("send");
    let mut stream = drip.bytes_stream();
    let mut body = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.expect("bytes");
        assert_eq!(chunk.len(), 1, "one byte at a time");
        body.extend_from_slice(&chunk);
    }
    assert_eq!(
        serde_json::from_slice::<Value>(&body).expect("JSON"),
        json!({ "id": "2" })
    );
    assert!(
        started.elapsed() >= Duration::from_millis(30) * 10,
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        http.received().iter().map(|r| r.status).collect::<Vec<_>>(),
        [0, 0],
        "neither answer completed as far as the mock knows"
    );
}

#[tokio::test]
async fn token_answers_say_the_expires_in_they_are_told() {
    let hs = MockHubSpot::start(HubSpotOptions {
        oauth: Some(("c".into(), "s".into(), "r".into())),
        token_expires_in: Some(json!(-5)),
        ..HubSpotOptions::default()
    })
    .await;
    let grant: Value = client()
        .post(format!("{}/oauth/2026-03/token", hs.url()))
        .form(&[
            ("grant_type", "refresh_token"),
            ("client_id", "c"),
            ("client_secret", "s"),
            ("refresh_token", "r"),
        ])
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("JSON");
    assert_eq!(grant["expires_in"], -5);
    // the token still lives its real lifetime
    let token = grant["access_token"].as_str().expect("token");
    let contacts = client()
        .get(format!("{}/crm/v3/objects/contacts", hs.url()))
        .bearer_auth(token)
        .send()
        .await
        .expect("send");
    assert_eq!(contacts.status(), 200);
}
