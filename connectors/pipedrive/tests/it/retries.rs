//! Retried jobs and concurrent upserts make no second person or activity.

use crate::harness::{ROUTES, TOKEN, account, activity, config, deliver, deliver_at, quick};
use slatis_core::connector::MemoryRecordMap;
use slatis_testkit::fixtures::{self, BOOKING_CREATED};
use slatis_testkit::mock::{Fault, PipedriveOptions};
use std::time::Duration;

#[tokio::test]
async fn a_retry_after_a_failed_activity_does_not_redo_the_person() {
    let pd = account(quick()).await;
    let config = config(&pd, TOKEN, ROUTES);
    let records = MemoryRecordMap::default();
    pd.fail_next(2, Fault::Slow(Duration::from_millis(5))); // search, person create
    pd.fail_next(
        1,
        Fault::Status {
            status: 503,
            retry_after: None,
            body: String::new(),
        },
    ); // the activity
    let first = deliver(&config, &records, BOOKING_CREATED).await;
    assert_eq!(
        first.failure.as_ref().map(|(s, e)| (*s, e.class())),
        Some((1, "retryable"))
    );
    let retry = deliver_at(&config, &records, BOOKING_CREATED, Some(first.progress), 2).await;
    assert!(retry.failure.is_none(), "{:?}", retry.failure);
    assert_eq!(pd.records("persons").len(), 1);
    assert_eq!(pd.records("activities").len(), 1);
}

#[tokio::test]
async fn lost_answers_make_no_second_person_or_activity() {
    // search lags 5 s: only the primary store can show what a lost answer made
    let pd = account(PipedriveOptions {
        search_lag: Duration::from_secs(5),
        ..quick()
    })
    .await;
    let config = config(&pd, TOKEN, ROUTES);
    pd.fail_next(1, Fault::Slow(Duration::from_millis(5))); // search answers
    pd.fail_next(1, Fault::Slow(Duration::from_millis(900))); // the person is made, the answer lost
    let first = deliver(&config, &MemoryRecordMap::default(), BOOKING_CREATED).await;
    assert_eq!(first.failure.as_ref().map(|(s, _)| *s), Some(0));
    assert_eq!(
        pd.records("persons").len(),
        1,
        "Pipedrive made the person anyway"
    );
    // the worker's retry: a new process could hold an empty record map; attempt 2 looks at recent records
    let records = MemoryRecordMap::default();
    pd.fail_next(4, Fault::Slow(Duration::from_millis(5))); // search, recent persons, person read, recent activities
    pd.fail_next(1, Fault::Drop); // the activity is made, the connection dropped
    let second = deliver_at(&config, &records, BOOKING_CREATED, Some(first.progress), 2).await;
    assert_eq!(
        second.failure.as_ref().map(|(s, _)| *s),
        Some(1),
        "{:?}",
        second.failure
    );
    let third = deliver_at(&config, &records, BOOKING_CREATED, Some(second.progress), 3).await;
    assert!(third.failure.is_none(), "{:?}", third.failure);
    assert_eq!(pd.records("persons").len(), 1, "no second person");
    assert_eq!(pd.records("activities").len(), 1, "no second activity");
    let made = activity(&pd, "bkg_01HZX4M2Q8").expect("the activity");
    let ada = pd.records("persons")[0].id;
    let looked = pd
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET" && r.path.starts_with("/api/v2/activities?"))
        .map(|r| r.path)
        .collect::<Vec<_>>();
    assert!(
        looked
            .iter()
            .any(|p| p.contains("updated_since=") && p.contains(&format!("person_id={ada}"))),
        "the retry read Ada's recent activities: {looked:?}"
    );
    assert_eq!(made.field("person_id"), Some(&serde_json::json!(ada)));
}

#[tokio::test]
async fn concurrent_bookings_of_one_attendee_make_one_person() {
    let pd = account(PipedriveOptions {
        search_lag: Duration::from_secs(5),
        ..quick()
    })
    .await;
    let config = config(&pd, TOKEN, ROUTES);
    let records = MemoryRecordMap::default();
    let bodies: Vec<String> = (0..4)
        .map(|i| {
            fixtures::booking(
                "BOOKING_CREATED",
                &format!("bkg_c{i}"),
                "Ada Lovelace",
                "ada@example.com",
            )
        })
        .collect();
    let runs = bodies.iter().map(|b| deliver(&config, &records, b));
    for r in futures_util::future::join_all(runs).await {
        assert!(r.failure.is_none(), "{:?}", r.failure);
    }
    assert_eq!(
        pd.records("persons").len(),
        1,
        "one person for four simultaneous bookings"
    );
    assert_eq!(pd.records("activities").len(), 4);
}
