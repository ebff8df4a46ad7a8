//! Several Contacts with one email (Salesforce keeps Email unique only under an optional
//! duplicate rule): `match.on_many` picks the oldest (the default), the newest, or
//! fails naming them — by SOQL, and when an external-id lookup answers 300. Creation
//! order is made to differ from id order, so the pick follows `CreatedDate`.

use crate::harness::{CLIENT_CREDENTIALS, config, deliver, failure, ok, param};
use chrono::{Duration, TimeZone, Utc};
use serde_json::json;
use slatis_core::connector::MemoryRecordMap;
use slatis_testkit::fixtures;
use slatis_testkit::mock::{MockSalesforce, SalesforceOptions};

const EMAIL: &str = "twins@example.com";

/// Routes that touch one Contact of [`EMAIL`]: an update by Email (SOQL), an upsert by
/// Email, and an upsert by the external id `Email_Key__c` (300 when several hold it).
fn routes(on_many: &str) -> String {
    format!(
        r#"
    routes:
      BOOKING_UPDATED:
        - {{ connector: sf, action: update, object: Contact, match: {{ property: Email, value: "{{{{data.attendee.email}}}}", on_many: {on_many} }}, properties: {{ Title: Updated }} }}
      BOOKING_CREATED:
        - {{ connector: sf, action: upsert, object: Contact, match: {{ property: Email, value: "{{{{data.attendee.email}}}}", on_many: {on_many} }}, properties: {{ LastName: New, Email: "{{{{data.attendee.email}}}}", Title: Upserted }} }}
      BOOKING_RESCHEDULED:
        - {{ connector: sf, action: upsert, object: Contact, match: {{ property: Email_Key__c, value: "{{{{data.attendee.email}}}}", external_id: true, on_many: {on_many} }}, properties: {{ LastName: New, Title: Native }} }}
"#
    )
}

/// `n` Contacts of [`EMAIL`], seeded in id order but created in the reverse order: the
/// first seeded is the newest. Oldest first.
async fn twins(n: usize) -> (MockSalesforce, Vec<String>) {
    let sf = MockSalesforce::start(SalesforceOptions::default()).await;
    sf.define_field("Contact", "Email_Key__c", true);
    let base = Utc
        .with_ymd_and_hms(2026, 1, 5, 9, 0, 0)
        .single()
        .expect("time");
    let mut ids = Vec::new();
    for i in 0..n {
        let id = sf.seed(
            "Contact",
            json!({"LastName": format!("Twin {i}"), "Email": EMAIL, "Email_Key__c": EMAIL}),
        );
        let hours = i64::try_from(n - i).expect("small");
        sf.set_created(&id, base + Duration::hours(hours));
        ids.push(id);
    }
    ids.reverse();
    (sf, ids)
}

fn title(sf: &MockSalesforce, id: &str) -> Option<String> {
    sf.record("Contact", id)
        .and_then(|c| c.text("Title").map(str::to_owned))
}

#[tokio::test]
async fn oldest_and_newest_pick_by_creation_for_two_and_three_contacts() {
    for n in [2, 3] {
        for (on_many, pick) in [("oldest", 0), ("newest", n - 1)] {
            for (event, expected) in [
                ("BOOKING_UPDATED", "Updated"),
                ("BOOKING_CREATED", "Upserted"),
                ("BOOKING_RESCHEDULED", "Native"),
            ] {
                let (sf, oldest_first) = twins(n).await;
                let config = config(&sf, CLIENT_CREDENTIALS, &routes(on_many));
                let body = fixtures::booking(event, "b", "A B", EMAIL);
                let r = ok(&config, &MemoryRecordMap::default(), &body).await;
                let what = format!("{n} contacts, {on_many}, {event}");
                let chosen = &oldest_first[pick];
                assert_eq!(
                    r.trace[0]
                        .output
                        .as_ref()
                        .and_then(|o| o.id.clone())
                        .as_deref(),
                    Some(chosen.as_str()),
                    "{what}"
                );
                for id in &oldest_first {
                    let want = (id == chosen).then(|| expected.to_owned());
                    assert_eq!(title(&sf, id), want, "{what}: {id}");
                }
                assert_eq!(sf.records("Contact").len(), n, "{what}: none created");
                if event == "BOOKING_RESCHEDULED" {
                    assert!(
                        sf.requests().iter().any(|q| q.status == 300),
                        "{what}: the native upsert met several"
                    );
                }
            }
        }
    }
}

#[tokio::test]
async fn fail_names_every_contact_and_changes_none() {
    for n in [2, 3] {
        for event in ["BOOKING_UPDATED", "BOOKING_CREATED", "BOOKING_RESCHEDULED"] {
            let (sf, oldest_first) = twins(n).await;
            let config = config(&sf, CLIENT_CREDENTIALS, &routes("fail"));
            let body = fixtures::booking(event, "b", "A B", EMAIL);
            let e = failure(&deliver(&config, &MemoryRecordMap::default(), &body).await).clone();
            let what = format!("{n} contacts, {event}");
            assert_eq!(e.class(), "permanent", "{what}: {e}");
            assert!(
                e.message().contains(&format!("{n} Contact records have")),
                "{what}: {e}"
            );
            assert!(
                e.message().contains(&oldest_first.join(", ")),
                "{what}: oldest first: {e}"
            );
            for id in &oldest_first {
                assert_eq!(title(&sf, id), None, "{what}: {id} untouched");
            }
            assert_eq!(sf.records("Contact").len(), n, "{what}");
        }
    }
}

#[tokio::test]
async fn one_contact_is_simply_the_match_and_none_is_created_once() {
    for on_many in ["oldest", "newest", "fail"] {
        let (sf, ids) = twins(1).await;
        let config = config(&sf, CLIENT_CREDENTIALS, &routes(on_many));
        let records = MemoryRecordMap::default();
        ok(
            &config,
            &records,
            &fixtures::booking("BOOKING_UPDATED", "b", "A B", EMAIL),
        )
        .await;
        assert_eq!(title(&sf, &ids[0]).as_deref(), Some("Updated"), "{on_many}");
        // nobody holds this one: the upsert creates it, once
        let other = fixtures::booking("BOOKING_CREATED", "b", "C D", "solo@example.com");
        ok(&config, &records, &other).await;
        ok(&config, &MemoryRecordMap::default(), &other).await;
        assert_eq!(sf.records("Contact").len(), 2, "{on_many}");
    }
}

#[tokio::test]
async fn the_search_asks_only_for_the_record_it_picks() {
    for (on_many, tail) in [
        ("oldest", "ORDER BY CreatedDate ASC, Id ASC LIMIT 1"),
        ("newest", "ORDER BY CreatedDate DESC, Id DESC LIMIT 1"),
        ("fail", "ORDER BY CreatedDate ASC, Id ASC LIMIT 10"),
    ] {
        let (sf, _) = twins(1).await;
        let config = config(&sf, CLIENT_CREDENTIALS, &routes(on_many));
        ok(
            &config,
            &MemoryRecordMap::default(),
            &fixtures::booking("BOOKING_UPDATED", "b", "A B", EMAIL),
        )
        .await;
        let queries: Vec<String> = sf
            .requests()
            .iter()
            .filter(|q| q.path.contains("/query"))
            .filter_map(|q| param(q, "q"))
            .collect();
        assert_eq!(queries.len(), 1, "{on_many}: {queries:?}");
        assert!(queries[0].ends_with(tail), "{on_many}: {}", queries[0]);
    }
}
