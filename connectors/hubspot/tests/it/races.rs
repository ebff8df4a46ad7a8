//! Lost answers and 409 races: whatever HubSpot did before the answer was lost, a retry
//! leaves one contact per email and one meeting per booking — meetings without a unique
//! property, found among their contact's meetings.

use crate::harness::{PLAIN, ROUTES, TOKEN, config, deliver, deliver_from, mock, quick};
use slatis_core::connector::MemoryRecordMap;
use slatis_testkit::fixtures::BOOKING_CREATED;
use slatis_testkit::mock::{Fault, HubSpotOptions};
use std::time::Duration;

#[tokio::test]
async fn a_contact_made_elsewhere_moments_ago_is_updated_not_duplicated() {
    let hs = mock(HubSpotOptions {
        search_lag: Duration::from_secs(5),
        ..HubSpotOptions::default()
    })
    .await;
    // another system creates Ada just before the booking: search will not see her for 5 s
    let made = reqwest::Client::new()
        .post(format!("{}/crm/v3/objects/contacts", hs.url()))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"properties": {"email": "ADA@example.com", "phone": "+44 20 0000"}}))
        .send()
        .await
        .expect("create");
    assert_eq!(made.status(), 201);
    let config = config(&hs, PLAIN, ROUTES);
    let r = deliver(&config, &MemoryRecordMap::default(), BOOKING_CREATED).await;
    assert!(r[0].failure.is_none(), "{:?}", r[0].failure);
    let contacts = hs.records("contacts");
    assert_eq!(
        contacts.len(),
        1,
        "the 409 was resolved to the existing contact"
    );
    assert_eq!(contacts[0].prop("firstname"), Some("Ada"));
    assert_eq!(
        contacts[0].prop("phone"),
        Some("+44 20 0000"),
        "what the CRM had is kept"
    );
    assert!(
        hs.requests().iter().any(|q| q.status == 409),
        "the race happened"
    );
    assert_eq!(
        r[0].progress.step_results["contact"]["id"],
        contacts[0].id.as_str()
    );
    assert_eq!(r[0].progress.step_results["contact"]["created"], false);
}

#[tokio::test]
async fn lost_answers_to_creates_make_no_duplicates() {
    let hs = mock(HubSpotOptions {
        search_lag: Duration::from_secs(5),
        ..quick()
    })
    .await;
    let config = config(&hs, PLAIN, ROUTES);
    let records = MemoryRecordMap::default();
    // search answers in time; the contact create is applied but its answer comes after the 500 ms timeout
    hs.fail_next(1, Fault::Slow(Duration::from_millis(10)));
    hs.fail_next(1, Fault::Slow(Duration::from_millis(900)));
    let first = deliver(&config, &records, BOOKING_CREATED).await.remove(0);
    let (step, e) = first.failure.clone().expect("timed out");
    assert_eq!((step, e.class()), (0, "retryable"), "{e}");
    assert_eq!(
        hs.records("contacts").len(),
        1,
        "HubSpot made the contact anyway"
    );
    // the retry: search still lags, the create is refused with 409, the 409 names the contact
    let retry = deliver_from(&config, &records, BOOKING_CREATED, Some(first.progress))
        .await
        .remove(0);
    assert!(retry.failure.is_none(), "{:?}", retry.failure);
    assert_eq!(hs.records("contacts").len(), 1);

    // the meeting (in the record map now): its update is applied but the answer is lost,
    // twice (a timeout, then a dropped connection); each retry resumes at the meeting step
    let moved = slatis_testkit::fixtures::booking(
        "BOOKING_RESCHEDULED",
        "bkg_01HZX4M2Q8",
        "Ada Lovelace",
        "ada@example.com",
    );
    hs.fail_next(1, Fault::Slow(Duration::from_millis(10))); // the contact PATCH (record map) answers in time
    hs.fail_next(1, Fault::Slow(Duration::from_millis(900))); // the meeting PATCH is applied, answered too late
    let r = deliver(&config, &records, &moved).await.remove(0);
    assert_eq!(
        r.failure.as_ref().map(|(step, e)| (*step, e.class())),
        Some((1, "retryable"))
    );
    hs.fail_next(1, Fault::Drop);
    let r = deliver_from(&config, &records, &moved, Some(r.progress))
        .await
        .remove(0);
    assert_eq!(r.failure.as_ref().map(|(step, _)| *step), Some(1));
    let r = deliver_from(&config, &records, &moved, Some(r.progress))
        .await
        .remove(0);
    assert!(r.failure.is_none(), "{:?}", r.failure);
    assert_eq!(hs.records("contacts").len(), 1);
    let meetings = hs.records("meetings");
    assert_eq!(
        meetings.len(),
        1,
        "an update of the known meeting never duplicates it"
    );
    assert_eq!(meetings[0].prop("hs_meeting_outcome"), Some("RESCHEDULED"));
    let links = hs
        .associations()
        .into_iter()
        .filter(|l| l.0 == "meetings")
        .count();
    assert_eq!(links, 1, "associating again changes nothing");
}

#[tokio::test]
async fn a_meeting_whose_create_answer_was_lost_is_found_among_the_contacts_meetings() {
    // search would not see the meeting for a minute: only the association read can
    let hs = mock(HubSpotOptions {
        search_lag: Duration::from_secs(60),
        ..quick()
    })
    .await;
    let config = config(&hs, PLAIN, ROUTES);
    // contact search, contact create and the meeting lookup answer; the meeting create is
    // applied, then its answer dropped
    hs.fail_next(3, Fault::Slow(Duration::ZERO));
    hs.fail_next(1, Fault::Drop);
    let first = deliver(&config, &MemoryRecordMap::default(), BOOKING_CREATED)
        .await
        .remove(0);
    let (step, e) = first.failure.clone().expect("the answer was lost");
    assert_eq!((step, e.class()), (1, "retryable"), "{e}");
    assert_eq!(
        hs.records("meetings").len(),
        1,
        "HubSpot made the meeting anyway"
    );
    // the retry, with nothing in the record map
    let retry = deliver_from(
        &config,
        &MemoryRecordMap::default(),
        BOOKING_CREATED,
        Some(first.progress),
    )
    .await
    .remove(0);
    assert!(retry.failure.is_none(), "{:?}", retry.failure);
    let meetings = hs.records("meetings");
    assert_eq!(meetings.len(), 1, "not made twice: {meetings:?}");
    assert_eq!(
        retry.progress.step_results["meeting"],
        serde_json::json!({"id": meetings[0].id, "created": false})
    );
    let contact = &hs.records("contacts")[0].id;
    let links: Vec<_> = hs
        .associations()
        .into_iter()
        .filter(|l| l.0 == "meetings" && l.1 == meetings[0].id)
        .collect();
    assert_eq!(links.len(), 1, "{links:?}");
    assert_eq!(
        (&links[0].3, links[0].4),
        (contact, 200),
        "made with the create"
    );
    let paths: Vec<String> = hs.requests().iter().map(|r| r.path.clone()).collect();
    assert!(
        paths.iter().any(|p| p.starts_with(&format!(
            "/crm/v4/objects/contacts/{contact}/associations/meetings"
        ))) && paths
            .iter()
            .any(|p| p == "/crm/v3/objects/meetings/batch/read"),
        "{paths:?}"
    );
    assert!(
        !paths.iter().any(|p| p == "/crm/v3/objects/meetings/search"),
        "never the lagging search: {paths:?}"
    );
}
