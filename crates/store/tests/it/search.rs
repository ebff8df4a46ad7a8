//! Conformance, continued: what the admin API reads. Filtered pages that continue without
//! gaps or repeats while events arrive, replay by filter, a booking's history, the
//! backfill's "already received?" check, and the dashboard's counts.

use crate::conformance::{claim_req, event, finish};
use chrono::{Duration as Delta, SubsecRound, Utc};
use slatis_store::*;
use std::collections::HashSet;
use std::sync::Arc;

/// Stores an event of `kind` for `booking` with `email`, received `ago_s` seconds ago.
async fn put(
    store: &dyn Store,
    tenant: &str,
    kind: &str,
    booking: &str,
    email: Option<&str>,
    ago_s: i64,
) -> String {
    let mut ev = event(
        tenant,
        Some(booking),
        &format!("{tenant}/{kind}/{booking}/{ago_s}"),
        &["crm"],
    );
    ev.event_type = kind.into();
    ev.attendee_email = email.map(Into::into);
    // whole seconds: events put in the same second tie on their arrival time
    ev.received_at = Utc::now().trunc_subsecs(0) - Delta::seconds(ago_s);
    match store.ingest(ev).await.expect("ingest") {
        Ingested::New { event_id, .. } => event_id,
        other => panic!("new: {other:?}"),
    }
}

fn by(filter: Filter) -> JobQuery {
    JobQuery {
        filter,
        ..JobQuery::default()
    }
}

pub async fn pages_are_filtered_and_continue_without_gaps(store: Arc<dyn Store>) {
    for i in 0..23 {
        // several events share one arrival time: the id breaks the tie
        put(
            &*store,
            "acme",
            "BOOKING_CREATED",
            &format!("b{i}"),
            None,
            i / 3,
        )
        .await;
    }
    put(&*store, "globex", "BOOKING_CREATED", "g", None, 0).await;
    let mut seen = Vec::new();
    let mut query = EventQuery {
        filter: Filter {
            tenant: Some("acme".into()),
            ..Filter::default()
        },
        before: None,
        limit: 5,
    };
    let mut pages = 0;
    loop {
        let page = store.events(&query).await.expect("page");
        pages += 1;
        if pages == 2 {
            // arrivals while paging land before the first page, never in a later one
            put(&*store, "acme", "BOOKING_CREATED", "late", None, 0).await;
        }
        let Some(last) = page.last() else { break };
        query.before = Some(EventKey {
            received_at: last.received_at,
            id: last.id.clone(),
        });
        seen.extend(page.iter().map(|e| e.id.clone()));
        assert!(page.iter().all(|e| e.tenant == "acme"));
        if page.len() < 5 {
            break;
        }
    }
    assert_eq!(seen.len(), 23, "{seen:?}");
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 23, "no repeats");
    assert_eq!(pages, 5);

    let mut jobs = Vec::new();
    let mut query = JobQuery {
        limit: 4,
        ..JobQuery::default()
    };
    loop {
        let page = store.jobs(&query).await.expect("page");
        jobs.extend(page.iter().map(|j| j.id));
        match page.last() {
            Some(last) if page.len() == 4 => query.before = Some(last.id),
            _ => break,
        }
    }
    assert_eq!(jobs.len(), 25);
    assert!(
        jobs.windows(2).all(|w| w[0] > w[1]),
        "newest first, once each"
    );
}

pub async fn jobs_are_filtered_by_booking_email_type_and_time(store: Arc<dyn Store>) {
    let old = put(
        &*store,
        "acme",
        "BOOKING_CREATED",
        "b1",
        Some("jane@x.com"),
        7200,
    )
    .await;
    let moved = put(
        &*store,
        "acme",
        "BOOKING_RESCHEDULED",
        "b1",
        Some("jane@x.com"),
        60,
    )
    .await;
    put(
        &*store,
        "acme",
        "BOOKING_CREATED",
        "b2",
        Some("joe@x.com"),
        30,
    )
    .await;
    put(&*store, "globex", "BOOKING_CREATED", "b1", None, 10).await;
    let count = |filter: Filter| {
        let store = Arc::clone(&store);
        async move {
            let jobs = store.jobs(&by(filter.clone())).await.expect("jobs");
            let events = store
                .events(&EventQuery {
                    filter,
                    before: None,
                    limit: 100,
                })
                .await
                .expect("events");
            assert_eq!(jobs.len(), events.len(), "one job per event here");
            jobs
        }
    };
    let b1 = count(Filter {
        booking_id: Some("b1".into()),
        ..Filter::default()
    })
    .await;
    assert_eq!(b1.len(), 3, "every tenant's");
    let acme_b1 = Filter {
        booking_id: Some("b1".into()),
        tenant: Some("acme".into()),
        ..Filter::default()
    };
    assert_eq!(count(acme_b1.clone()).await.len(), 2);
    let jane = count(Filter {
        attendee_email: Some("Jane@X.com".into()),
        ..Filter::default()
    })
    .await;
    assert_eq!(jane.len(), 2, "compared lower-cased");
    assert_eq!(jane[0].attendee_email.as_deref(), Some("jane@x.com"));
    let rescheduled = count(Filter {
        event_type: Some("BOOKING_RESCHEDULED".into()),
        ..Filter::default()
    })
    .await;
    assert_eq!(rescheduled[0].event_id, moved);
    let last_hour = Filter {
        since: Some(Utc::now() - Delta::hours(1)),
        ..acme_b1.clone()
    };
    assert_eq!(count(last_hour).await[0].event_id, moved);
    let before = Filter {
        until: Some(Utc::now() - Delta::hours(1)),
        ..acme_b1
    };
    assert_eq!(count(before).await[0].event_id, old);
    let one_event = Filter {
        event_id: Some(old.clone()),
        ..Filter::default()
    };
    assert_eq!(count(one_event).await.len(), 1);
    let pending = Filter {
        status: Some(JobStatus::Pending),
        ..Filter::default()
    };
    assert_eq!(count(pending).await.len(), 4);
    let dead = Filter {
        status: Some(JobStatus::Dead),
        ..Filter::default()
    };
    assert!(count(dead).await.is_empty());

    assert!(
        store
            .has_event("acme", "b1", "BOOKING_RESCHEDULED")
            .await
            .expect("has")
    );
    assert!(
        !store
            .has_event("acme", "b2", "BOOKING_RESCHEDULED")
            .await
            .expect("has")
    );
    assert!(
        !store
            .has_event("initech", "b1", "BOOKING_CREATED")
            .await
            .expect("has")
    );
}

/// Dead-letters every due job.
async fn kill_all(store: &dyn Store) {
    for j in store.claim(claim_req("w", 100)).await.expect("claim") {
        assert!(
            store
                .finish(finish(&j, "w", Outcome::Dead))
                .await
                .expect("dead")
        );
    }
}

pub async fn dead_letters_replay_by_filter(store: Arc<dyn Store>) {
    put(&*store, "acme", "BOOKING_CREATED", "b1", Some("a@x.com"), 5).await;
    put(
        &*store,
        "acme",
        "BOOKING_CANCELLED",
        "b2",
        Some("b@x.com"),
        4,
    )
    .await;
    put(
        &*store,
        "globex",
        "BOOKING_CREATED",
        "b3",
        Some("a@x.com"),
        3,
    )
    .await;
    kill_all(&*store).await;
    let replay = |filter: Filter| {
        let store = Arc::clone(&store);
        async move {
            store
                .replay(Replay::Matching(filter))
                .await
                .expect("replay")
        }
    };
    let by_email = replay(Filter {
        attendee_email: Some("a@x.com".into()),
        tenant: Some("acme".into()),
        ..Filter::default()
    })
    .await;
    assert_eq!(by_email.len(), 1);
    let again = replay(Filter {
        booking_id: Some("b1".into()),
        ..Filter::default()
    })
    .await;
    assert!(again.is_empty(), "only dead jobs replay");
    let by_type = replay(Filter {
        event_type: Some("BOOKING_CANCELLED".into()),
        // a status in the filter changes nothing: only dead jobs replay
        status: Some(JobStatus::Done),
        ..Filter::default()
    })
    .await;
    assert_eq!(by_type.len(), 1);
    let dead = store
        .jobs(&by(Filter {
            status: Some(JobStatus::Dead),
            ..Filter::default()
        }))
        .await
        .expect("dead");
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].tenant, "globex");
}

pub async fn a_booking_s_attempts_and_events_are_found(store: Arc<dyn Store>) {
    put(&*store, "acme", "BOOKING_CREATED", "b1", None, 20).await;
    put(&*store, "acme", "BOOKING_CANCELLED", "b1", None, 10).await;
    put(&*store, "globex", "BOOKING_CREATED", "b1", None, 5).await;
    for j in store.claim(claim_req("w", 100)).await.expect("claim") {
        let retry = finish(&j, "w", Outcome::Retry(Utc::now()));
        assert!(store.finish(retry).await.expect("retry"));
    }
    for j in store.claim(claim_req("w", 100)).await.expect("claim") {
        assert!(
            store
                .finish(finish(&j, "w", Outcome::Done))
                .await
                .expect("done")
        );
    }
    let acme = store
        .booking_attempts(Some("acme"), "b1", 100)
        .await
        .expect("attempts");
    // the cancellation waits for the creation (one booking runs in order): 2 + 2 or
    // fewer, depending on what the claims took
    assert!(acme.len() >= 2, "{acme:?}");
    assert!(
        acme.windows(2)
            .all(|w| w[0].finished_at <= w[1].finished_at),
        "oldest first"
    );
    let all = store
        .booking_attempts(None, "b1", 100)
        .await
        .expect("attempts");
    assert!(all.len() > acme.len(), "every tenant's");
    assert_eq!(
        store
            .booking_attempts(None, "b1", 1)
            .await
            .expect("limit")
            .len(),
        1
    );
    assert!(
        store
            .booking_attempts(None, "nope", 10)
            .await
            .expect("none")
            .is_empty()
    );
}

pub async fn counts_per_tenant_and_per_minute(store: Arc<dyn Store>) {
    put(&*store, "acme", "BOOKING_CREATED", "b1", None, 0).await;
    put(&*store, "acme", "BOOKING_CREATED", "b2", None, 0).await;
    put(&*store, "acme", "BOOKING_CREATED", "b3", None, 0).await;
    put(&*store, "globex", "BOOKING_CREATED", "g1", None, 0).await;
    put(&*store, "acme", "BOOKING_CREATED", "b0", None, 7200).await;
    let claimed = store.claim(claim_req("w", 100)).await.expect("claim");
    assert_eq!(claimed.len(), 5);
    // b0 (the old one) dead, b1 delivered, b2 retrying, b3 running, g1 rate limited
    let later = Utc::now() + Delta::hours(1);
    let outcomes = [
        ("/b0/", Outcome::Dead),
        ("/b1/", Outcome::Done),
        ("/b2/", Outcome::Retry(later)),
        ("/g1/", Outcome::RateLimited(later)),
    ];
    for (booking, outcome) in outcomes {
        let job = claimed
            .iter()
            .find(|j| String::from_utf8_lossy(&j.body).contains(booking))
            .expect("claimed");
        assert!(
            store
                .finish(finish(job, "w", outcome))
                .await
                .expect("finish")
        );
    }
    let counts = store.tenant_counts().await.expect("counts");
    assert_eq!(
        counts,
        vec![
            TenantCounts {
                tenant: "acme".into(),
                received: 4,
                queued: 0,
                running: 1,
                retrying: 1,
                delivered: 1,
                dead: 1,
            },
            TenantCounts {
                tenant: "globex".into(),
                received: 1,
                retrying: 1,
                ..TenantCounts::default()
            },
        ]
    );
    let hour = store
        .activity(None, Utc::now() - Delta::hours(1))
        .await
        .expect("activity");
    let sum = |f: fn(&MinuteCounts) -> u64| hour.iter().map(f).sum::<u64>();
    assert_eq!(sum(|m| m.received), 4, "the old event is outside the hour");
    assert_eq!(sum(|m| m.delivered), 1);
    assert_eq!(
        sum(|m| m.failed),
        2,
        "retry and dead; a rate limit is no failure"
    );
    assert!(hour.windows(2).all(|w| w[0].minute < w[1].minute));
    let now_minute = Utc::now().timestamp().div_euclid(60);
    assert!(
        hour.iter()
            .all(|m| m.minute <= now_minute && m.minute >= now_minute - 61)
    );
    let globex = store
        .activity(Some("globex"), Utc::now() - Delta::hours(1))
        .await
        .expect("activity");
    assert_eq!(globex.iter().map(|m| m.received).sum::<u64>(), 1);
    assert_eq!(globex.iter().map(|m| m.failed).sum::<u64>(), 0);
}
