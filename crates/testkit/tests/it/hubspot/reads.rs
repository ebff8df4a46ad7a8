//! Reads from HubSpot's primary store (no search lag): batch read, association reads from
//! either end, and properties defined through the properties API.

use super::{create, send};
use reqwest::Method;
use serde_json::{Value, json};
use slatis_testkit::mock::{HubSpotOptions, MockHubSpot};
use std::time::Duration;

fn lagging() -> HubSpotOptions {
    HubSpotOptions {
        search_lag: Duration::from_secs(60),
        ..HubSpotOptions::default()
    }
}

#[tokio::test]
async fn a_custom_meeting_property_is_defined_through_the_properties_api() {
    let mock = MockHubSpot::start(lagging()).await;
    let defined = send(
        &mock,
        Method::POST,
        "/crm/v3/properties/meetings",
        Some(
            json!({"name": "slatis_booking_id", "label": "Slatis booking", "type": "string",
                    "fieldType": "text", "groupName": "meetinginformation"}),
        ),
    )
    .await;
    assert_eq!(defined.status, 201, "{}", defined.body);
    assert_eq!(defined.body["hasUniqueValue"], false);
    assert_eq!(defined.body["type"], "string");
    let made = create(
        &mock,
        "meetings",
        json!({"hs_timestamp": "1796205600000", "slatis_booking_id": "bkg_1"}),
    )
    .await;
    assert_eq!(made.status, 201);
    // unique values are refused on meetings: neither the API nor the helper defines one
    let refused = mock
        .define_property("meetings", "slatis_other", true)
        .expect_err("meetings cannot require unique values");
    assert!(
        refused.starts_with("400: Unique value properties are not supported on meetings"),
        "{refused}"
    );
    assert!(
        mock.define_property("deals", "slatis_booking_id", true)
            .is_ok()
    );
}

#[tokio::test]
async fn batch_read_answers_what_exists_and_names_what_does_not() {
    let mock = MockHubSpot::start(lagging()).await;
    mock.define_property("meetings", "slatis_booking_id", false)
        .expect("defined");
    for booking in ["bkg_1", "bkg_2"] {
        create(
            &mock,
            "meetings",
            json!({"hs_timestamp": "1796205600000", "slatis_booking_id": booking}),
        )
        .await;
    }
    let read = send(
        &mock,
        Method::POST,
        "/crm/v3/objects/meetings/batch/read",
        Some(
            json!({"inputs": [{"id": "101"}, {"id": "102"}], "properties": ["slatis_booking_id"]}),
        ),
    )
    .await;
    assert_eq!(read.status, 200, "{}", read.body);
    assert_eq!(read.body["status"], "COMPLETE");
    let results = read.body["results"].as_array().expect("results");
    assert_eq!(results.len(), 2, "created a moment ago, read at once");
    assert_eq!(results[1]["properties"]["slatis_booking_id"], "bkg_2");
    assert!(results[0]["createdAt"].is_string());
    let partly = send(
        &mock,
        Method::POST,
        "/crm/v3/objects/meetings/batch/read",
        Some(
            json!({"inputs": [{"id": "101"}, {"id": "999"}], "properties": ["slatis_booking_id"]}),
        ),
    )
    .await;
    assert_eq!(partly.status, 207);
    assert_eq!(partly.body["results"].as_array().map(Vec::len), Some(1));
    assert_eq!(partly.body["errors"][0]["category"], "OBJECT_NOT_FOUND");
    assert_eq!(partly.body["errors"][0]["context"]["ids"], json!(["999"]));
    let too_many: Vec<Value> = (0..101).map(|i| json!({"id": i.to_string()})).collect();
    let refused = send(
        &mock,
        Method::POST,
        "/crm/v3/objects/meetings/batch/read",
        Some(json!({"inputs": too_many})),
    )
    .await;
    assert_eq!(refused.status, 400);
}

#[tokio::test]
async fn associations_read_from_either_end_at_once() {
    let mock = MockHubSpot::start(lagging()).await;
    let contact = create(&mock, "contacts", json!({"email": "ada@example.com"})).await;
    assert_eq!(contact.body["id"], "101");
    let with = send(
        &mock,
        Method::POST,
        "/crm/v3/objects/meetings",
        Some(json!({
            "properties": {"hs_timestamp": "1796205600000"},
            "associations": [{"to": {"id": "101"}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 200}]}],
        })),
    )
    .await;
    assert_eq!(with.status, 201);
    create(&mock, "meetings", json!({"hs_timestamp": "1796205600000"})).await;
    send(
        &mock,
        Method::PUT,
        "/crm/v4/objects/contacts/101/associations/default/meetings/103",
        None,
    )
    .await;
    let from_contact = send(
        &mock,
        Method::GET,
        "/crm/v4/objects/contacts/101/associations/meetings",
        None,
    )
    .await;
    assert_eq!(from_contact.status, 200);
    assert_eq!(
        from_contact.body,
        json!({"results": [
            {"toObjectId": 102, "associationTypes": [{"category": "HUBSPOT_DEFINED", "typeId": 199, "label": null}]},
            {"toObjectId": 103, "associationTypes": [{"category": "HUBSPOT_DEFINED", "typeId": 199, "label": null}]},
        ]}),
        "both links, whichever end made them, as contact → meeting (199)"
    );
    let from_meeting = send(
        &mock,
        Method::GET,
        "/crm/v4/objects/meetings/102/associations/contacts",
        None,
    )
    .await;
    assert_eq!(from_meeting.body["results"][0]["toObjectId"], 101);
    assert_eq!(
        from_meeting.body["results"][0]["associationTypes"][0]["typeId"],
        200
    );
    let paged = send(
        &mock,
        Method::GET,
        "/crm/v4/objects/contacts/101/associations/meetings?limit=1",
        None,
    )
    .await;
    assert_eq!(paged.body["results"].as_array().map(Vec::len), Some(1));
    assert_eq!(paged.body["paging"]["next"]["after"], "1");
    let missing = send(
        &mock,
        Method::GET,
        "/crm/v4/objects/contacts/999/associations/meetings",
        None,
    )
    .await;
    assert_eq!(missing.status, 404);
}
