//! Every refusal the HubSpot mock implements, each with the HubSpot page it comes from:
//! a request the real API refuses is refused here, in the same shape.

use super::{TOKEN, quick};
use reqwest::Method;
use serde_json::{Value, json};
use slatis_testkit::mock::MockHubSpot;

const PROPERTIES: &str = "https://developers.hubspot.com/docs/api/crm/properties";
const ERRORS: &str = "https://developers.hubspot.com/docs/faq/api-error-responses";
const MEETINGS: &str =
    "https://developers.hubspot.com/docs/api-reference/latest/crm/activities/meetings/guide";
const CONTACTS: &str = "https://developers.hubspot.com/docs/api/crm/contacts";
const DEALS: &str = "https://developers.hubspot.com/docs/api/crm/deals";
const COMPANIES: &str = "https://developers.hubspot.com/docs/api/crm/companies";
const TIMESTAMPS: &str =
    "https://developers.hubspot.com/docs/faq/how-should-timestamps-be-formatted-for-hubspots-apis";
const UNIQUE: &str = "https://knowledge.hubspot.com/properties/set-validation-rules-for-properties";
const UPSERT: &str = "https://developers.hubspot.com/docs/api-reference/legacy/crm/objects/contacts/batch/upsert-contacts";
const ASSOCIATIONS: &str =
    "https://developers.hubspot.com/docs/api-reference/latest/crm/associations/overview";
const SEARCH: &str = "https://developers.hubspot.com/docs/api/crm/search";
const SEARCH_LIMITS: &str = "https://developers.hubspot.com/changelog/breaking-change-expanded-filtering-capabilities-and-error-messaging-in-hubspots-search-api";
const OAUTH: &str = "https://developers.hubspot.com/docs/api-reference/legacy/authentication/oauth-tokens/v1/migration-guide";
const OAUTH_ERRORS: &str = "https://developers.hubspot.com/changelog/new-oauth-v3-api-endpoints-and-standardized-error-responses";

/// One refusal: what, the page it comes from, the request, and the answer's status and
/// a text its body holds.
struct Refusal {
    what: &'static str,
    doc: &'static str,
    method: Method,
    path: &'static str,
    body: Value,
    status: u16,
    says: &'static str,
}

fn refusal(
    what: &'static str,
    doc: &'static str,
    (method, path): (Method, &'static str),
    body: Value,
    (status, says): (u16, &'static str),
) -> Refusal {
    Refusal {
        what,
        doc,
        method,
        path,
        body,
        status,
        says,
    }
}

fn meeting(extra: &Value) -> Value {
    let mut props = json!({"hs_timestamp": "2026-12-01T10:00:00Z", "hs_meeting_title": "Intro"});
    if let (Some(p), Some(e)) = (props.as_object_mut(), extra.as_object()) {
        p.extend(e.clone());
    }
    json!({ "properties": props })
}

#[allow(clippy::too_many_lines)]
fn refusals() -> Vec<Refusal> {
    let post = |path| (Method::POST, path);
    let get = |path| (Method::GET, path);
    let put = |path| (Method::PUT, path);
    let validation = |says| (400, says);
    vec![
        refusal(
            "an unknown property",
            PROPERTIES,
            post("/crm/v3/objects/contacts"),
            json!({"properties": {"email": "x@example.com", "favourite_colour": "teal"}}),
            validation(r#"\"error\":\"PROPERTY_DOESNT_EXIST\""#),
        ),
        refusal(
            "a custom meeting property not created in the account",
            PROPERTIES,
            post("/crm/v3/objects/meetings"),
            meeting(&json!({"slatis_booking_id": "bkg_1"})),
            validation(r#"Property \\\"slatis_booking_id\\\" does not exist"#),
        ),
        refusal(
            "a read-only property",
            PROPERTIES,
            post("/crm/v3/objects/contacts"),
            json!({"properties": {"email": "x@example.com", "hs_object_id": "7"}}),
            validation("READ_ONLY_VALUE"),
        ),
        refusal(
            "a value that is not one of an enumeration's options",
            MEETINGS,
            post("/crm/v3/objects/meetings"),
            meeting(&json!({"hs_meeting_outcome": "CANCELLED"})),
            validation(
                "CANCELLED was not one of the allowed options: [SCHEDULED, COMPLETED, RESCHEDULED, NO_SHOW, CANCELED]",
            ),
        ),
        refusal(
            "a meeting without hs_timestamp",
            MEETINGS,
            post("/crm/v3/objects/meetings"),
            json!({"properties": {"hs_meeting_title": "Intro"}}),
            validation("hs_timestamp"),
        ),
        refusal(
            "a datetime that is neither epoch milliseconds nor ISO 8601",
            TIMESTAMPS,
            post("/crm/v3/objects/meetings"),
            json!({"properties": {"hs_timestamp": "next tuesday"}}),
            validation("INVALID_DATE"),
        ),
        refusal(
            "a date property not at midnight UTC",
            TIMESTAMPS,
            post("/crm/v3/objects/deals"),
            json!({"properties": {"dealname": "d", "dealstage": "appointmentscheduled", "slatis_day": "1796205600000"}}),
            validation("not midnight"),
        ),
        refusal(
            "a number property given text",
            PROPERTIES,
            post("/crm/v3/objects/deals"),
            json!({"properties": {"dealname": "d", "dealstage": "appointmentscheduled", "amount": "a lot"}}),
            validation("INVALID_FLOAT"),
        ),
        refusal(
            "an object value for a property",
            PROPERTIES,
            post("/crm/v3/objects/contacts"),
            json!({"properties": {"email": "x@example.com", "firstname": {"a": 1}}}),
            validation("INVALID_VALUE"),
        ),
        refusal(
            "an invalid email",
            CONTACTS,
            post("/crm/v3/objects/contacts"),
            json!({"properties": {"email": "not an email"}}),
            validation("INVALID_EMAIL"),
        ),
        refusal(
            "a contact with none of email, firstname, lastname",
            CONTACTS,
            post("/crm/v3/objects/contacts"),
            json!({"properties": {"phone": "+34 600"}}),
            validation("REQUIRED_PROPERTY"),
        ),
        refusal(
            "a deal without dealstage",
            DEALS,
            post("/crm/v3/objects/deals"),
            json!({"properties": {"dealname": "d"}}),
            validation("dealstage"),
        ),
        refusal(
            "a company without name or domain",
            COMPANIES,
            post("/crm/v3/objects/companies"),
            json!({"properties": {"city": "Paris"}}),
            validation("REQUIRED_PROPERTY"),
        ),
        refusal(
            "a second contact with an email in use",
            CONTACTS,
            post("/crm/v3/objects/contacts"),
            json!({"properties": {"email": "ADA@example.com"}}),
            (409, "Contact already exists. Existing ID: 101"),
        ),
        refusal(
            "an unknown object type",
            ERRORS,
            post("/crm/v3/objects/p_nothing"),
            json!({"properties": {}}),
            validation("Unable to infer object type from: p_nothing"),
        ),
        refusal(
            "a batch upsert by a non-unique property",
            UPSERT,
            post("/crm/v3/objects/meetings/batch/upsert"),
            json!({"inputs": [{"id": "bkg_1", "idProperty": "hs_meeting_title", "properties": {}}]}),
            validation(
                "Unable to perform update/upsert by non-unique 0-47 property hs_meeting_title",
            ),
        ),
        refusal(
            "a read by a non-unique idProperty",
            UPSERT,
            get("/crm/v3/objects/contacts/Ada?idProperty=firstname"),
            Value::Null,
            validation("Unable to perform update/upsert by non-unique 0-1 property firstname"),
        ),
        refusal(
            "a unique-value property on meetings (activities cannot have one)",
            UNIQUE,
            post("/crm/v3/properties/meetings"),
            json!({"name": "slatis_booking_id", "label": "Slatis booking", "type": "string", "fieldType": "text", "hasUniqueValue": true}),
            validation("Unique value properties are not supported on meetings (0-47)"),
        ),
        refusal(
            "a property that exists already",
            PROPERTIES,
            post("/crm/v3/properties/contacts"),
            json!({"name": "email", "label": "Email", "type": "string", "fieldType": "text"}),
            (409, "already exists"),
        ),
        refusal(
            "an association type defined for another pair of types",
            ASSOCIATIONS,
            put("/crm/v4/objects/contacts/101/associations/meetings/102"),
            json!([{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 200}]),
            validation(
                "Association type HUBSPOT_DEFINED 200 is not defined from contacts to meetings",
            ),
        ),
        refusal(
            "a create whose association type does not fit the pair",
            ASSOCIATIONS,
            post("/crm/v3/objects/meetings"),
            json!({"properties": {"hs_timestamp": "1796205600000"},
                   "associations": [{"to": {"id": "101"}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 279}]}]}),
            validation("not defined from meetings to contacts"),
        ),
        refusal(
            "an association label the account does not have",
            ASSOCIATIONS,
            put("/crm/v4/objects/meetings/102/associations/contacts/101"),
            json!([{"associationCategory": "USER_DEFINED", "associationTypeId": 37}]),
            validation("USER_DEFINED 37"),
        ),
        refusal(
            "two sorting rules",
            SEARCH,
            post("/crm/v3/objects/contacts/search"),
            json!({"sorts": [{"propertyName": "createdate"}, {"propertyName": "email"}]}),
            validation("only one sorting rule"),
        ),
        refusal(
            "a filter on a property that does not exist",
            SEARCH,
            post("/crm/v3/objects/meetings/search"),
            json!({"filterGroups": [{"filters": [{"propertyName": "slatis_booking_id", "operator": "EQ", "value": "b"}]}]}),
            validation("property \\\"slatis_booking_id\\\" does not exist"),
        ),
        refusal(
            "an unknown filter operator",
            SEARCH,
            post("/crm/v3/objects/contacts/search"),
            json!({"filterGroups": [{"filters": [{"propertyName": "email", "operator": "LIKE", "value": "a"}]}]}),
            validation("Unknown filter operator \\\"LIKE\\\""),
        ),
        refusal(
            "more than 5 filter groups",
            SEARCH_LIMITS,
            post("/crm/v3/objects/contacts/search"),
            json!({"filterGroups": [{"filters": []}, {"filters": []}, {"filters": []}, {"filters": []}, {"filters": []}, {"filters": []}]}),
            validation("at most 5 filterGroups"),
        ),
        refusal(
            "a search limit above 200",
            SEARCH,
            post("/crm/v3/objects/contacts/search"),
            json!({"limit": 201}),
            validation("limit"),
        ),
        refusal(
            "the retired OAuth v1 token endpoint",
            OAUTH,
            post("/oauth/v1/token"),
            Value::Null,
            (404, "resource not found"),
        ),
    ]
}

#[tokio::test]
async fn each_refusal_answers_hubspots_error_in_hubspots_shape() {
    let mock = MockHubSpot::start(quick()).await;
    let ada = mock.seed(
        "contacts",
        json!({"email": "ada@example.com", "firstname": "Ada"}),
    );
    let intro = mock.seed("meetings", json!({"hs_timestamp": "1796205600000"}));
    assert_eq!((ada.as_str(), intro.as_str()), ("101", "102"));
    mock.define(
        "deals",
        &json!({"name": "slatis_day", "label": "Day", "type": "date", "fieldType": "date"}),
    )
    .expect("a date property");
    let client = reqwest::Client::new();
    let refusals = refusals();
    for r in &refusals {
        let mut request = client
            .request(r.method.clone(), format!("{}{}", mock.url(), r.path))
            .bearer_auth(TOKEN);
        if !r.body.is_null() {
            request = request.json(&r.body);
        }
        let answer = request.send().await.expect("send");
        let status = answer.status().as_u16();
        let body: Value = answer.json().await.expect("a JSON body");
        let doc = r.doc;
        assert_eq!(status, r.status, "{} ({doc}): {body}", r.what);
        assert!(
            body.to_string().contains(r.says),
            "{} ({doc}): wanted {:?} in {body}",
            r.what,
            r.says
        );
        if status == 400 || status == 409 {
            assert_eq!(body["status"], "error", "{} ({doc}): the envelope", r.what);
            assert!(body["correlationId"].is_string(), "{}: {body}", r.what);
            let category = if status == 409 {
                "CONFLICT"
            } else {
                "VALIDATION_ERROR"
            };
            assert_eq!(body["category"], category, "{} ({doc})", r.what);
        }
    }
    assert_eq!(
        refusals.len(),
        28,
        "the list above is the mock's whole list"
    );
    // a refusal changes nothing
    assert_eq!(mock.records("contacts").len(), 1);
    assert_eq!(mock.records("meetings").len(), 1);
    assert!(mock.records("deals").is_empty() && mock.associations().is_empty());
    // and the token endpoint refuses in RFC 6749's terms, beside HubSpot's own
    let refused: Value = client
        .post(format!("{}/oauth/2026-03/token", mock.url()))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", "r")])
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        refused["error"], "invalid_client",
        "{OAUTH_ERRORS}: {refused}"
    );
    assert!(refused["error_description"].is_string() && refused["status"].is_string());
}
