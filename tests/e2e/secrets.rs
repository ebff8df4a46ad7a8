//! DESIGN §6 "secrets": no signing secret, token or key in the logs, even at debug level.

use crate::support::{QUICK, Setup, wait_until};
use slatis_testkit::fixtures::BOOKING_CREATED;
use slatis_testkit::mock::{Fault, MockHttp};
use slatis_testkit::signer::post_signed;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_the_logs_at_debug_level() {
    const SIGNING: &str = "whsec_TOPSECRET_signing_9d8e7f";
    const TOKEN: &str = "pat-TOPSECRET-crm-token-1a2b3c";
    const SIGN: &str = "TOPSECRET_forwarding_key_77";
    let dest = MockHttp::start().await;
    dest.fail_next(
        1,
        Fault::Status {
            status: 401,
            retry_after: None,
            body: "bad token".into(),
        },
    );
    let setup = Setup::new(&dest.url(), QUICK);
    let env = [
        ("RUST_LOG", "debug"),
        ("ACME_SECRET", SIGNING),
        ("API_TOKEN", TOKEN),
        ("SIGN_SECRET", SIGN),
    ];
    let server = setup.start_with(&env);
    let client = reqwest::Client::new();
    // a good delivery that fails with 401, a bad signature, an unknown tenant
    let (status, _) = post_signed(
        &client,
        &server.webhook("acme"),
        SIGNING,
        BOOKING_CREATED.as_bytes(),
    )
    .await
    .expect("post");
    assert_eq!(status, 200);
    assert_eq!(
        post_signed(&client, &server.webhook("acme"), "guess", b"{}")
            .await
            .expect("post")
            .0,
        401
    );
    assert_eq!(
        post_signed(&client, &server.webhook("ghost"), SIGNING, b"{}")
            .await
            .expect("post")
            .0,
        401
    );
    let other = slatis_testkit::fixtures::booking(
        "BOOKING_CREATED",
        "bkg_2",
        "Grace Hopper",
        "grace@example.com",
    );
    assert_eq!(
        post_signed(&client, &server.webhook("acme"), SIGNING, other.as_bytes())
            .await
            .expect("post")
            .0,
        200
    );
    wait_until(
        "the second booking delivered",
        Duration::from_secs(15),
        || dest.delivered().len() >= 2,
    )
    .await;
    let (_, dlq, _) = setup.cli(&["dlq", "list"]);
    let log = server.log();
    assert!(log.contains("DEBUG"), "the server logged at debug level");
    assert!(log.contains("webhook accepted"));
    assert!(
        dest.received()[0].headers["authorization"].contains(TOKEN),
        "the token was sent to the destination"
    );
    for secret in [SIGNING, TOKEN, SIGN] {
        assert!(!log.contains(secret), "{secret} appears in the log:\n{log}");
        assert!(!dlq.contains(secret), "{secret} appears in `dlq list`");
    }
}
