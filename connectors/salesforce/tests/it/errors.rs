//! Salesforce's JSON-array errors, classed and kept in the failure.

use crate::harness::{CLIENT_CREDENTIALS, ROUTES, config, deliver, failure, org};
use chrono::Utc;
use slatis_core::DeliveryError;
use slatis_core::connector::MemoryRecordMap;
use slatis_testkit::fixtures::{self, BOOKING_CREATED};
use slatis_testkit::mock::{Fault, SalesforceOptions};

#[tokio::test]
async fn permanent_errors_keep_salesforces_code_and_message() {
    let sf = org(SalesforceOptions::default()).await;
    sf.validation_rule(
        "Contact",
        "LastName",
        "Blocked",
        "Last name Blocked is not allowed here",
    );
    let routes = r#"
    routes:
      BOOKING_CREATED:
        - { connector: sf, action: create, object: Lead, properties: { LastName: "{{last_name data.attendee.name}}", Email: "{{data.attendee.email}}" } }
      BOOKING_UPDATED:
        - { connector: sf, action: create, object: Contact, properties: { LastName: x, Favourite_Colour__c: blue } }
      BOOKING_COMPLETED:
        - { connector: sf, action: create, object: Contact, properties: { LastName: "{{last_name data.attendee.name}}" } }
"#;
    let config = config(&sf, CLIENT_CREDENTIALS, routes);
    let cases = [
        (
            "BOOKING_CREATED",
            "Ada Lovelace",
            "HTTP 400 REQUIRED_FIELD_MISSING: Required fields are missing: [Company]",
        ),
        (
            "BOOKING_UPDATED",
            "Ada Lovelace",
            "HTTP 400 INVALID_FIELD: No such column 'Favourite_Colour__c' on sobject of type Contact",
        ),
        (
            "BOOKING_COMPLETED",
            "Ada Blocked",
            "HTTP 400 FIELD_CUSTOM_VALIDATION_EXCEPTION: Last name Blocked is not allowed here",
        ),
    ];
    for (event, name, text) in cases {
        let body = fixtures::booking(event, "b", name, "ada@example.com");
        let e = failure(&deliver(&config, &MemoryRecordMap::default(), &body).await).clone();
        assert_eq!(e.class(), "permanent", "{event}: {e}");
        assert!(e.message().contains(text), "{event}: {e}");
    }
    assert!(sf.records("Lead").is_empty() && sf.records("Contact").is_empty());
}

#[tokio::test]
async fn lock_contention_and_server_errors_are_retried_and_the_daily_limit_pauses() {
    let sf = org(SalesforceOptions::default()).await;
    let config = config(&sf, CLIENT_CREDENTIALS, ROUTES);
    for fault in [
        Fault::Status { status: 400, retry_after: None, body: r#"[{"message":"unable to obtain exclusive access to this record","errorCode":"UNABLE_TO_LOCK_ROW"}]"#.into() },
        Fault::Status { status: 503, retry_after: None, body: String::new() },
        Fault::Slow(std::time::Duration::from_millis(800)),
    ] {
        sf.fail_next(1, fault.clone());
        let e = failure(&deliver(&config, &MemoryRecordMap::default(), BOOKING_CREATED).await).clone();
        assert_eq!(e.class(), "retryable", "{fault:?}: {e}");
    }
    let limited = org(SalesforceOptions {
        daily_limit: Some(1),
        ..SalesforceOptions::default()
    })
    .await;
    let config = crate::harness::config(&limited, CLIENT_CREDENTIALS, ROUTES);
    let e = failure(&deliver(&config, &MemoryRecordMap::default(), BOOKING_CREATED).await).clone();
    match &e {
        DeliveryError::RateLimited { until, message } => {
            assert!(message.contains("REQUEST_LIMIT_EXCEEDED"), "{message}");
            assert!(*until > Utc::now() + chrono::Duration::minutes(59));
        }
        other => panic!("{other:?}"),
    }
}
