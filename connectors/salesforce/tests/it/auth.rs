//! The three server flows, the instance URL, and a session expiring mid-run.

use crate::harness::{CLIENT_CREDENTIALS, ROUTES, config, deliver, failure, ok, org};
use slatis_core::connector::MemoryRecordMap;
use slatis_testkit::fixtures::{self, BOOKING_CREATED};
use slatis_testkit::mock::SalesforceOptions;

#[tokio::test]
async fn each_flow_gets_a_token_and_an_expired_session_is_minted_again_once() {
    let flows = [
        ("client_credentials", CLIENT_CREDENTIALS.to_owned()),
        ("refresh_token", "auth: { flow: refresh_token, client_id: sf-client, client_secret: sf-secret, refresh_token: sf-refresh }".to_owned()),
        ("urn:ietf:params:oauth:grant-type:jwt-bearer", JWT_KEYS.to_owned()),
    ];
    for (grant, keys) in flows {
        let sf = org(SalesforceOptions::default()).await;
        let config = config(&sf, &keys, ROUTES);
        let records = MemoryRecordMap::default();
        ok(&config, &records, BOOKING_CREATED).await;
        assert_eq!(
            sf.tokens_issued_by(grant),
            1,
            "{grant}: one token for the whole job"
        );
        sf.expire_sessions();
        let renamed = fixtures::booking(
            "BOOKING_UPDATED",
            "bkg_01HZX4M2Q8",
            "Ada King",
            "ada@example.com",
        );
        ok(&config, &records, &renamed).await;
        assert_eq!(
            sf.tokens_issued_by(grant),
            2,
            "{grant}: minted again after INVALID_SESSION_ID"
        );
        assert!(sf.requests().iter().any(|r| r.status == 401), "{grant}");
        assert_eq!(sf.records("Contact")[0].text("LastName"), Some("King"));
    }
}

const JWT_KEYS: &str = "auth: { flow: jwt_bearer, client_id: sf-client, username: integration@example.com, private_key: \"${SF_TEST_KEY}\" }";

#[tokio::test]
async fn the_jwt_assertion_carries_the_claims_salesforce_checks() {
    // login_url is the mock's own URL, standing for a production My Domain: the assertion
    // names login.salesforce.com, not the My Domain.
    let sf = org(SalesforceOptions::default()).await;
    ok(
        &config(&sf, JWT_KEYS, ROUTES),
        &MemoryRecordMap::default(),
        BOOKING_CREATED,
    )
    .await;
    let claims = sf.jwt_claims();
    assert_eq!(claims.len(), 1);
    assert_eq!(claims[0]["iss"], "sf-client");
    assert_eq!(claims[0]["sub"], "integration@example.com");
    assert_eq!(claims[0]["aud"], "https://login.salesforce.com");
    let exp = claims[0]["exp"].as_i64().expect("exp");
    let ahead = exp - chrono::Utc::now().timestamp();
    assert!(
        (60..=180).contains(&ahead),
        "exp {ahead} s ahead: within 3 minutes"
    );
}

#[tokio::test]
async fn a_sandbox_needs_the_sandbox_audience() {
    let sandbox = org(SalesforceOptions {
        audience: SalesforceOptions::SANDBOX_AUDIENCE.to_owned(),
        ..SalesforceOptions::default()
    })
    .await;
    let refused = failure(
        &deliver(
            &config(&sandbox, JWT_KEYS, ROUTES),
            &MemoryRecordMap::default(),
            BOOKING_CREATED,
        )
        .await,
    )
    .clone();
    assert_eq!(refused.class(), "permanent");
    assert!(
        refused.message().contains("invalid_grant")
            && refused.message().contains("audience is invalid"),
        "{refused}"
    );
    let keys = JWT_KEYS.replace(" }", ", audience: \"https://test.salesforce.com\" }");
    ok(
        &config(&sandbox, &keys, ROUTES),
        &MemoryRecordMap::default(),
        BOOKING_CREATED,
    )
    .await;
    assert_eq!(
        sandbox.jwt_claims()[1]["aud"],
        "https://test.salesforce.com"
    );
    assert_eq!(sandbox.tokens_issued(), 1);
}

#[tokio::test]
async fn refused_credentials_are_permanent_and_name_no_secret() {
    let sf = org(SalesforceOptions::default()).await;
    let keys =
        "auth: { flow: client_credentials, client_id: sf-client, client_secret: hunter2-wrong }";
    let e = failure(
        &deliver(
            &config(&sf, keys, ROUTES),
            &MemoryRecordMap::default(),
            BOOKING_CREATED,
        )
        .await,
    )
    .clone();
    assert_eq!(e.class(), "permanent");
    assert!(
        e.message()
            .contains("refused the client_credentials token request")
            && e.message().contains("invalid_grant"),
        "{e}"
    );
    assert!(!e.message().contains("hunter2"));
}

#[test]
fn bad_auth_config_is_a_load_error_naming_the_key() {
    let cases = [
        (
            "auth: { flow: refresh_token, client_id: c, client_secret: s }",
            "auth.refresh_token",
        ),
        (
            "auth: { flow: jwt_bearer, client_id: c, username: u, private_key: not-a-key }",
            "auth.private_key: is not an RSA private key",
        ),
        (
            "auth: { flow: jwt_bearer, client_id: c, private_key: x }",
            "auth.username",
        ),
        ("auth: { flow: password, client_id: c }", "auth.flow"),
        (
            "api_version: v66, auth: { flow: client_credentials, client_id: c, client_secret: s }",
            "api_version",
        ),
    ];
    for (keys, want) in cases {
        let yaml = format!(
            "tenants:\n  t:\n    signing_secrets: [s]\n    connectors:\n      sf: {{ type: salesforce, {keys} }}\n"
        );
        let e = slatis_core::config::load_str(&yaml, &|_| None)
            .err()
            .unwrap_or_else(|| panic!("{keys} should fail"));
        let text = e.to_string();
        assert!(
            text.contains(&format!("tenants.t.connectors.sf.{want}")),
            "{keys}: {text}"
        );
    }
}
