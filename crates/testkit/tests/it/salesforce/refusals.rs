//! Every refusal the strict mock Salesforce implements, each with the page it comes from:
//! one request a real org refuses, and the status and error the mock answers in
//! Salesforce's shape (`[{"message", "errorCode", "fields"}]`, or the token endpoint's
//! `{"error", "error_description"}`). A refused request changes nothing.

use super::{JWT_BEARER, V, answer, claims, now, send_as, sign, soql, start};
use reqwest::Method;
use serde_json::{Value, json};
use slatis_testkit::mock::{MockSalesforce, SalesforceOptions};

const ERRORCODES: &str =
    "https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/errorcodes.htm";
const CREATE: &str = "https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/dome_sobject_create.htm";
const CORE: &str = "https://developer.salesforce.com/docs/atlas.en-us.api.meta/api/sforce_api_calls_concepts_core_data_objects.htm";
const CONTACT: &str = "https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/sforce_api_objects_contact.htm";
const LEAD: &str = "https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/sforce_api_objects_lead.htm";
const EVENT: &str = "https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/sforce_api_objects_event.htm";
const UPSERT: &str = "https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_sobject_upsert_patch.htm";
const SOQL: &str = "https://developer.salesforce.com/docs/atlas.en-us.soql_sosl.meta/soql_sosl/sforce_api_calls_soql_select.htm";
const JWT: &str =
    "https://help.salesforce.com/s/articleView?id=xcloud.remoteaccess_oauth_jwt_flow.htm&type=5";
const LIMITS: &str = "https://developer.salesforce.com/docs/platform/salesforce-app-limits-cheatsheet/guide/salesforce-app-limits-platform-api.html";

/// A write the REST API refuses: `(what, source, object, body, errorCode)`, posted as a
/// create.
type Write = (
    &'static str,
    &'static str,
    &'static str,
    Value,
    &'static str,
);

/// The refusals of a create (`POST …/sobjects/{Object}/`).
fn writes(account: &str, contact: &str) -> Vec<Write> {
    let start = "2026-12-01T15:00:00Z";
    let event = |extra: Value| {
        let mut body = json!({"Subject": "Intro", "StartDateTime": start, "EndDateTime": "2026-12-01T15:30:00Z"});
        if let (Some(b), Value::Object(extra)) = (body.as_object_mut(), extra) {
            b.extend(extra);
        }
        body
    };
    let long_email = format!("{}@example.com", "a".repeat(70));
    vec![
        (
            "a field the object lacks",
            ERRORCODES,
            "Contact",
            json!({"LastName": "L", "Favourite__c": "x"}),
            "INVALID_FIELD",
        ),
        (
            "an Event custom field on a Contact",
            ERRORCODES,
            "Contact",
            json!({"LastName": "L", "Booking_Uid__c": "b"}),
            "INVALID_FIELD",
        ),
        (
            "Id in the body",
            CREATE,
            "Contact",
            json!({"LastName": "L", "Id": contact}),
            "INVALID_FIELD",
        ),
        (
            "a read-only audit field",
            CORE,
            "Contact",
            json!({"LastName": "L", "CreatedDate": start}),
            "INVALID_FIELD_FOR_INSERT_UPDATE",
        ),
        (
            "Contact.Name (compound, read-only)",
            CONTACT,
            "Contact",
            json!({"LastName": "L", "Name": "Ada L"}),
            "INVALID_FIELD_FOR_INSERT_UPDATE",
        ),
        (
            "Event.AccountId (derived, read-only)",
            EVENT,
            "Event",
            event(json!({"AccountId": account})),
            "INVALID_FIELD_FOR_INSERT_UPDATE",
        ),
        (
            "a date-time that is not one",
            EVENT,
            "Event",
            event(json!({"StartDateTime": "tomorrow at ten"})),
            "JSON_PARSER_ERROR",
        ),
        (
            "a fraction for an int",
            EVENT,
            "Event",
            json!({"StartDateTime": start, "DurationInMinutes": 1.5}),
            "JSON_PARSER_ERROR",
        ),
        (
            "a list for a string",
            CORE,
            "Contact",
            json!({"LastName": ["L"]}),
            "JSON_PARSER_ERROR",
        ),
        (
            "Event.Subject past 255 characters",
            EVENT,
            "Event",
            event(json!({"Subject": "s".repeat(256)})),
            "STRING_TOO_LONG",
        ),
        (
            "Contact.LastName past 80 characters",
            CONTACT,
            "Contact",
            json!({"LastName": "l".repeat(81)}),
            "STRING_TOO_LONG",
        ),
        (
            "Contact.FirstName past 40 characters",
            CONTACT,
            "Contact",
            json!({"LastName": "L", "FirstName": "f".repeat(41)}),
            "STRING_TOO_LONG",
        ),
        (
            "an email past 80 characters",
            CORE,
            "Contact",
            json!({"LastName": "L", "Email": long_email}),
            "STRING_TOO_LONG",
        ),
        (
            "Event.ShowAs outside Busy, OutOfOffice, Free",
            EVENT,
            "Event",
            event(json!({"ShowAs": "Tentative"})),
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
        ),
        (
            "an email that is no address",
            CORE,
            "Contact",
            json!({"LastName": "L", "Email": "not-an-email"}),
            "INVALID_EMAIL_ADDRESS",
        ),
        (
            "a lookup that is no id",
            CORE,
            "Event",
            event(json!({"WhoId": "ada"})),
            "MALFORMED_ID",
        ),
        (
            "WhoId naming an Account",
            EVENT,
            "Event",
            event(json!({"WhoId": account})),
            "FIELD_INTEGRITY_EXCEPTION",
        ),
        (
            "a lookup to no record",
            CORE,
            "Event",
            event(json!({"WhoId": "003Mock00000009999"})),
            "INVALID_CROSS_REFERENCE_KEY",
        ),
        (
            "OwnerId that is no user",
            EVENT,
            "Event",
            event(json!({"OwnerId": contact})),
            "FIELD_INTEGRITY_EXCEPTION",
        ),
        (
            "a Contact without LastName",
            CONTACT,
            "Contact",
            json!({"FirstName": "F"}),
            "REQUIRED_FIELD_MISSING",
        ),
        (
            "a Lead without Company",
            LEAD,
            "Lead",
            json!({"LastName": "L"}),
            "REQUIRED_FIELD_MISSING",
        ),
        (
            "a timed Event without an end",
            EVENT,
            "Event",
            json!({"StartDateTime": start}),
            "REQUIRED_FIELD_MISSING",
        ),
        (
            "an Event without a start",
            EVENT,
            "Event",
            json!({"DurationInMinutes": 30}),
            "REQUIRED_FIELD_MISSING",
        ),
        (
            "an Event ending before it starts",
            EVENT,
            "Event",
            event(json!({"EndDateTime": "2026-12-01T14:00:00Z"})),
            "FIELD_INTEGRITY_EXCEPTION",
        ),
        (
            "an Event longer than 14 days",
            EVENT,
            "Event",
            event(json!({"EndDateTime": "2026-12-20T15:00:00Z"})),
            "FIELD_INTEGRITY_EXCEPTION",
        ),
        (
            "DurationInMinutes and EndDateTime disagreeing",
            EVENT,
            "Event",
            event(json!({"DurationInMinutes": 45})),
            "FIELD_INTEGRITY_EXCEPTION",
        ),
        (
            "StartDateTime and ActivityDateTime differing",
            EVENT,
            "Event",
            event(json!({"ActivityDateTime": "2026-12-01T16:00:00Z"})),
            "FIELD_INTEGRITY_EXCEPTION",
        ),
    ]
}

#[tokio::test]
async fn each_refusal_the_mock_implements_with_its_source() {
    let (mock, token) = start(SalesforceOptions::default()).await;
    mock.define_field("Activity", "Booking_Uid__c", true);
    mock.define_field("Contact", "Notes__c", false);
    let account = mock.seed("Account", json!({"Name": "Acme"}));
    let contact = mock.seed("Contact", json!({"LastName": "Kept"}));
    let counts =
        |m: &MockSalesforce| ["Contact", "Lead", "Event", "Account"].map(|o| m.records(o).len());
    let before = counts(&mock);
    let mut listed = Vec::new();
    for (what, doc, object, body, code) in writes(&account, &contact) {
        let a = send_as(
            &mock,
            Some(&token),
            Method::POST,
            &format!("{V}/sobjects/{object}/"),
            Some(body.clone()),
        )
        .await;
        assert_eq!(a.status, 400, "{what}: {body} → {}", a.body);
        assert_eq!(a.code(), code, "{what}: {}", a.body);
        assert!(a.message().len() > 5, "{what}: a message");
        assert!(
            a.body[0].as_object().is_some_and(|e| e.keys().all(|k| [
                "message",
                "errorCode",
                "fields"
            ]
            .contains(&k.as_str()))),
            "{what}: Salesforce's shape: {}",
            a.body
        );
        listed.push((what, code, doc));
    }

    // by external id (sObject Rows by External ID)
    let path = |field: &str, value: &str| format!("{V}/sobjects/Contact/{field}/{value}");
    let by_plain_field = send_as(
        &mock,
        Some(&token),
        Method::PATCH,
        &path("Notes__c", "x"),
        Some(json!({"LastName": "L"})),
    )
    .await;
    assert_eq!(
        (by_plain_field.status, by_plain_field.code()),
        (404, "NOT_FOUND")
    );
    listed.push((
        "an upsert on a field that is no External ID",
        "NOT_FOUND",
        UPSERT,
    ));
    mock.define_field("Contact", "Uid__c", true);
    let named = send_as(
        &mock,
        Some(&token),
        Method::PATCH,
        &path("Uid__c", "u-1"),
        Some(json!({"LastName": "L", "Uid__c": "u-1"})),
    )
    .await;
    assert_eq!((named.status, named.code()), (400, "INVALID_FIELD"));
    listed.push((
        "an upsert whose body names the external id",
        "INVALID_FIELD",
        UPSERT,
    ));

    // queries
    for (what, q, code) in [
        (
            "a query of an unknown column",
            "SELECT Id, Nope FROM Contact",
            "INVALID_FIELD",
        ),
        (
            "a query filtering a long text area",
            "SELECT Id FROM Contact WHERE Description = 'x'",
            "INVALID_FIELD",
        ),
        (
            "a query of an unknown object",
            "SELECT Id FROM Nope",
            "INVALID_TYPE",
        ),
    ] {
        let a = soql(&mock, &token, q).await;
        assert_eq!((a.status, a.code()), (400, code), "{what}: {}", a.body);
        listed.push((what, code, SOQL));
    }

    // sessions and limits
    let a = send_as(
        &mock,
        Some("00Dmock!stale"),
        Method::GET,
        &format!("{V}/limits"),
        None,
    )
    .await;
    assert_eq!((a.status, a.code()), (401, "INVALID_SESSION_ID"));
    listed.push((
        "a call without a valid session",
        "INVALID_SESSION_ID",
        ERRORCODES,
    ));
    let (spent, spent_token) = start(SalesforceOptions {
        daily_limit: Some(0),
        ..SalesforceOptions::default()
    })
    .await;
    let a = send_as(
        &spent,
        Some(&spent_token),
        Method::GET,
        &format!("{V}/limits"),
        None,
    )
    .await;
    assert_eq!((a.status, a.code()), (403, "REQUEST_LIMIT_EXCEEDED"));
    listed.push((
        "a call past the daily allocation",
        "REQUEST_LIMIT_EXCEEDED",
        LIMITS,
    ));

    // the JWT bearer token endpoint
    let user = "integration@example.com";
    for (what, aud, exp, description) in [
        (
            "an assertion whose aud is a My Domain",
            "https://globex.my.salesforce.com",
            now() + 120,
            "audience is invalid",
        ),
        (
            "an assertion for a sandbox sent to a production org",
            SalesforceOptions::SANDBOX_AUDIENCE,
            now() + 120,
            "audience is invalid",
        ),
        (
            "an expired assertion",
            SalesforceOptions::PRODUCTION_AUDIENCE,
            now() - 1,
            "expired authorization code",
        ),
    ] {
        let assertion = sign(&claims("sf-client", user, aud, exp));
        let response = reqwest::Client::new()
            .post(format!("{}/services/oauth2/token", mock.url()))
            .form(&[
                ("grant_type", JWT_BEARER),
                ("assertion", assertion.as_str()),
            ])
            .send()
            .await
            .expect("send");
        let a = answer(response).await;
        assert_eq!(a.status, 400, "{what}");
        assert_eq!(
            a.body,
            json!({"error": "invalid_grant", "error_description": description}),
            "{what}"
        );
        listed.push((what, "invalid_grant", JWT));
    }

    assert_eq!(counts(&mock), before, "no refused request changed anything");
    assert!(
        mock.records("Contact")
            .iter()
            .all(|c| c.text("Uid__c").is_none())
    );
    for (what, code, doc) in &listed {
        assert!(
            doc.starts_with("https://developer.salesforce.com/")
                || doc.starts_with("https://help.salesforce.com/"),
            "{what} ({code}): {doc}"
        );
    }
    assert_eq!(
        listed.len(),
        27 + 2 + 3 + 2 + 3,
        "every refusal listed once"
    );
}
