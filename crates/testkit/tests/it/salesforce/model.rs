//! What the mock keeps as Salesforce does: audit fields (`CreatedDate` to the second,
//! read-only), queries ordered by several keys, Activity custom fields on Event and
//! Task, and an Event's end and duration following each other.

use super::{V, ids, send_as, soql, start};
use chrono::{TimeZone, Utc};
use reqwest::Method;
use serde_json::json;
use slatis_testkit::mock::{MockSalesforce, SalesforceOptions};

#[tokio::test]
async fn created_date_orders_records_and_ties_fall_back_to_the_id() {
    let (mock, token) = start(SalesforceOptions::default()).await;
    let first = mock.seed(
        "Contact",
        json!({"LastName": "First", "Email": "twin@example.com"}),
    );
    let second = mock.seed(
        "Contact",
        json!({"LastName": "Second", "Email": "twin@example.com"}),
    );
    let third = mock.seed(
        "Contact",
        json!({"LastName": "Third", "Email": "twin@example.com"}),
    );
    // the third was created first; the other two in one second
    let at = |h| {
        Utc.with_ymd_and_hms(2026, 1, 5, h, 0, 0)
            .single()
            .expect("time")
    };
    mock.set_created(&third, at(9));
    mock.set_created(&first, at(10));
    mock.set_created(&second, at(10));
    let q = |order: &str| {
        format!(
            "SELECT Id, CreatedDate FROM Contact WHERE Email = 'twin@example.com' ORDER BY {order}"
        )
    };
    let oldest_first = soql(&mock, &token, &q("CreatedDate ASC, Id ASC")).await;
    assert_eq!(oldest_first.status, 200, "{}", oldest_first.body);
    assert_eq!(
        ids(&oldest_first),
        [third.clone(), first.clone(), second.clone()]
    );
    assert_eq!(
        oldest_first.body["records"][0]["CreatedDate"],
        "2026-01-05T09:00:00.000+0000"
    );
    let newest = soql(
        &mock,
        &token,
        &format!("{} LIMIT 1", q("CreatedDate DESC, Id DESC")),
    )
    .await;
    assert_eq!(ids(&newest), [second]);
    let read = send_as(
        &mock,
        Some(&token),
        Method::GET,
        &format!(
            "{V}/sobjects/Contact/{first}?fields=CreatedDate,CreatedById,IsDeleted,Name,OwnerId"
        ),
        None,
    )
    .await;
    assert_eq!(read.body["CreatedDate"], "2026-01-05T10:00:00.000+0000");
    assert_eq!(read.body["CreatedById"], "005Mock00000000001");
    assert_eq!(read.body["OwnerId"], "005Mock00000000001");
    assert_eq!(read.body["IsDeleted"], false);
    assert_eq!(read.body["Name"], "First");
    let a = send_as(
        &mock,
        Some(&token),
        Method::PATCH,
        &format!("{V}/sobjects/Contact/{first}"),
        Some(json!({"CreatedDate": "2020-01-01T00:00:00Z"})),
    )
    .await;
    assert_eq!(a.status, 400);
    assert_eq!(a.code(), "INVALID_FIELD_FOR_INSERT_UPDATE");
}

#[tokio::test]
#[should_panic(expected = "define it on Activity")]
async fn event_custom_fields_are_activity_fields() {
    let mock = MockSalesforce::start(SalesforceOptions::default()).await;
    mock.define_field("Activity", "Booking_Uid__c", true);
    let event = mock.seed("Event", json!({"StartDateTime": "2026-12-01T15:00:00Z", "DurationInMinutes": 30, "Booking_Uid__c": "b-1"}));
    let task = mock.seed("Task", json!({"Subject": "Call", "Booking_Uid__c": "b-2"}));
    assert_eq!(
        mock.record("Event", &event)
            .and_then(|e| e.text("Booking_Uid__c").map(str::to_owned))
            .as_deref(),
        Some("b-1")
    );
    let task = mock.record("Task", &task).expect("task");
    assert_eq!(
        (task.text("Status"), task.text("Priority")),
        (Some("Not Started"), Some("Normal")),
        "defaulted on create"
    );
    mock.define_field("Event", "Other__c", false);
}

#[tokio::test]
async fn an_events_end_and_duration_follow_each_other_through_the_api() {
    let (mock, token) = start(SalesforceOptions::default()).await;
    let made = send_as(&mock, Some(&token), Method::POST, &format!("{V}/sobjects/Event/"), Some(json!({"Subject": "Intro", "StartDateTime": "2026-12-01T16:00:00+01:00", "EndDateTime": "2026-12-01T15:30:00Z"}))).await;
    assert_eq!(made.status, 201, "{}", made.body);
    let id = made.body["id"].as_str().expect("id").to_owned();
    let event = mock.record("Event", &id).expect("event");
    assert_eq!(
        event.text("StartDateTime"),
        Some("2026-12-01T15:00:00.000+0000"),
        "normalised to UTC"
    );
    assert_eq!(event.field("DurationInMinutes"), Some(&json!(30)));
    assert_eq!(event.text("ShowAs"), Some("Busy"), "defaulted on create");
    let moved = send_as(
        &mock,
        Some(&token),
        Method::PATCH,
        &format!("{V}/sobjects/Event/{id}"),
        Some(json!({"StartDateTime": "2026-12-02T10:00:00Z"})),
    )
    .await;
    assert_eq!(moved.status, 204, "{}", moved.body);
    let event = mock.record("Event", &id).expect("event");
    assert_eq!(
        event.text("EndDateTime"),
        Some("2026-12-02T10:30:00.000+0000"),
        "a moved start keeps the duration"
    );
    assert_eq!(
        event.text("ActivityDateTime"),
        Some("2026-12-02T10:00:00.000+0000")
    );
}
