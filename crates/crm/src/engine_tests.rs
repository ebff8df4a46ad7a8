//! The engine's idempotency rules, against the in-memory [`Fake`] CRM.
//!
//! Invariant: each test builds its own CRM, record map and locks; nothing is shared.

use crate::engine::execute;
use crate::fake::{Fake, FakeApi};
use serde_json::{Map, Value, json};
use slatis_core::DeliveryError;
use slatis_core::connector::{
    KeyLocks, MemoryKeyLocks, MemoryRecordMap, RecordMap, Recorder, StepContext, StepOutput,
    Transport,
};
use slatis_core::redact::Redactor;
use slatis_core::step::{Action, OnMany, RenderedMatch, RenderedStep, WriteMode};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// The world a delivery runs in.
#[derive(Default)]
struct World {
    crm: Fake,
    records: MemoryRecordMap,
    locks: MemoryKeyLocks,
}

fn step(action: Action, property: &str, value: &str, props: Value) -> RenderedStep {
    RenderedStep {
        place: "t.steps[0]".into(),
        id: None,
        action,
        object: Some("contacts".into()),
        matcher: Some(RenderedMatch {
            property: property.into(),
            value: value.into(),
            external_id: false,
            on_many: OnMany::Oldest,
        }),
        properties: props.as_object().cloned().unwrap_or_default(),
        write_modes: BTreeMap::new(),
        associate: Vec::new(),
        extras: Map::new(),
        optional: false,
    }
}

fn upsert(email: &str) -> RenderedStep {
    step(
        Action::Upsert,
        "email",
        email,
        json!({"email": email, "name": "Ada"}),
    )
}

impl World {
    async fn run_at(
        &self,
        step: RenderedStep,
        attempt: u32,
        dry_run: bool,
    ) -> Result<StepOutput, DeliveryError> {
        let transport = Transport::new(
            (None, None),
            Duration::from_secs(5),
            dry_run,
            Redactor::default(),
        );
        let recorder = Recorder::default();
        let cx = StepContext {
            tenant: "t",
            instance: "crm",
            event_id: "evt_1",
            received_at: chrono::Utc::now() - chrono::TimeDelta::seconds(1),
            attempt,
            http: transport.outbound(&recorder),
            records: &self.records as &dyn RecordMap,
            locks: &self.locks as &dyn KeyLocks,
        };
        let api = FakeApi {
            crm: &self.crm,
            step,
            dry_run,
        };
        execute(&api, &cx).await
    }

    async fn run(&self, step: RenderedStep) -> Result<StepOutput, DeliveryError> {
        self.run_at(step, 1, false).await
    }

    async fn remembered(&self, value: &str) -> Option<String> {
        self.records
            .get("contacts", "email", value)
            .await
            .expect("record map")
    }
}

#[tokio::test]
async fn an_upsert_finds_before_it_creates() {
    let w = World::default();
    let first = w.run(upsert("ada@example.com")).await.expect("first");
    assert!(first.created);
    assert_eq!(w.remembered("ada@example.com").await, first.id);
    // the record map finds it, though search has not seen it yet
    let again = w.run(upsert("ada@example.com")).await.expect("again");
    assert_eq!((again.id.clone(), again.created), (first.id.clone(), false));
    // with nothing in the record map, search finds it (ignoring case)
    let w2 = World::default();
    let seeded = w2.crm.seed(json!({"email": "ADA@example.com"}));
    let found = w2.run(upsert("ada@example.com")).await.expect("found");
    assert_eq!((found.id, found.created), (Some(seeded), false));
    assert_eq!(w2.crm.count("create"), 0);
    assert_eq!(w.crm.live().len(), 1);
}

#[tokio::test]
async fn a_lost_create_answer_is_found_on_the_next_attempt() {
    let w = World::default();
    w.crm.lose_next_create.store(true, Ordering::SeqCst);
    let lost = w.run(upsert("ada@example.com")).await.expect_err("lost");
    assert_eq!(lost.class(), "retryable");
    assert_eq!(w.remembered("ada@example.com").await, None);
    // search still lags; attempt 2 finds the record in the primary store
    let retried = w
        .run_at(upsert("ada@example.com"), 2, false)
        .await
        .expect("retried");
    assert_eq!(retried.id.as_deref(), Some("1"));
    assert!(!retried.created);
    assert_eq!(w.crm.live().len(), 1);
    assert_eq!(w.crm.count("recent"), 1);
    // a first attempt does not look there
    let other = w.run(upsert("bob@example.com")).await.expect("bob");
    assert!(other.created);
    assert_eq!(w.crm.count("recent"), 1);
}

#[tokio::test]
async fn a_record_gone_from_the_crm_is_forgotten_then_made_again_or_retried() {
    let w = World::default();
    let first = w.run(upsert("ada@example.com")).await.expect("first");
    let old = first.id.clone().expect("id");
    w.crm.remove(&old);
    let again = w.run(upsert("ada@example.com")).await.expect("again");
    assert!(again.created);
    assert_ne!(again.id.as_deref(), Some(old.as_str()));
    assert_eq!(w.remembered("ada@example.com").await, again.id);
    // an update of a gone record is forgotten and retried
    w.crm.remove(again.id.as_deref().unwrap_or_default());
    let update = step(
        Action::Update,
        "email",
        "ada@example.com",
        json!({"name": "B"}),
    );
    let e = w.run(update).await.expect_err("gone");
    assert_eq!(e.class(), "retryable");
    assert!(e.message().contains("no contacts with email"), "{e}");
    assert_eq!(w.remembered("ada@example.com").await, None);
    // another record holding the value is updated instead
    w.run(upsert("ada@example.com")).await.expect("made");
    w.crm.index();
    let newest = w.crm.seed(json!({"email": "ada@example.com"}));
    w.crm.remove("3");
    let moved = w
        .run(step(
            Action::Update,
            "email",
            "ada@example.com",
            json!({"name": "C"}),
        ))
        .await
        .expect("moved");
    assert_eq!(moved.id, Some(newest));
}

#[tokio::test]
async fn on_many_takes_the_oldest_the_newest_or_fails() {
    let w = World::default();
    let older = w.crm.seed(json!({"email": "ada@example.com"}));
    let newer = w.crm.seed(json!({"email": "ada@example.com"}));
    for (on_many, want) in [(OnMany::Oldest, &older), (OnMany::Newest, &newer)] {
        let mut s = step(Action::Find, "email", "ada@example.com", json!({}));
        if let Some(m) = s.matcher.as_mut() {
            m.on_many = on_many;
        }
        let out = w.run(s).await.expect("found");
        assert_eq!(out.id.as_ref(), Some(want), "{on_many:?}");
    }
    let mut s = step(
        Action::Update,
        "email",
        "ada@example.com",
        json!({"name": "X"}),
    );
    if let Some(m) = s.matcher.as_mut() {
        m.on_many = OnMany::Fail;
    }
    let e = w.run(s).await.expect_err("several");
    assert_eq!(e.class(), "permanent");
    assert!(e.message().contains("merge them"), "{e}");
    assert_eq!(w.crm.count("update"), 0);
    // a unique property that several hold: chosen the same way
    let mut s = step(Action::Find, "email", "ada@example.com", json!({}));
    if let Some(m) = s.matcher.as_mut() {
        m.external_id = true;
        m.on_many = OnMany::Newest;
    }
    assert_eq!(w.run(s).await.expect("found").id, Some(newer));
}

#[tokio::test]
async fn write_modes_hold_on_update() {
    let w = World::default();
    let id = w
        .crm
        .seed(json!({"email": "ada@example.com", "source": "web", "phone": ""}));
    let mut s = step(
        Action::Upsert,
        "email",
        "ada@example.com",
        json!({"email": "ada@example.com", "source": "slatis", "phone": "+1", "owner": "me", "name": "Ada"}),
    );
    s.write_modes = BTreeMap::from([
        ("source".into(), WriteMode::Empty),
        ("phone".into(), WriteMode::Empty),
        ("owner".into(), WriteMode::Create),
    ]);
    w.run(s.clone()).await.expect("upsert");
    let rec = w.crm.live().into_iter().find(|r| r.id == id).expect("rec");
    assert_eq!(rec.fields["source"], "web", "filled in: kept");
    assert_eq!(rec.fields["phone"], "+1", "empty: written");
    assert_eq!(rec.fields["name"], "Ada", "always: written");
    assert!(
        rec.fields.get("owner").is_none(),
        "create only: not on update"
    );
    // nothing left to send: no update, the record is confirmed by the read
    let before = w.crm.count("update");
    s.properties.remove("name");
    s.properties.remove("email");
    w.run(s.clone()).await.expect("unchanged");
    assert_eq!(w.crm.count("update"), before);
    // a create sends every property
    s.properties
        .insert("email".into(), json!("bob@example.com"));
    if let Some(m) = s.matcher.as_mut() {
        m.value = "bob@example.com".into();
    }
    let made = w.run(s).await.expect("create");
    let rec = w
        .crm
        .live()
        .into_iter()
        .find(|r| Some(&r.id) == made.id.as_ref());
    assert_eq!(rec.expect("made").fields["owner"], "me");
}

#[tokio::test]
async fn a_dry_run_writes_nothing_and_shows_the_write_to_an_assumed_record() {
    let w = World::default();
    let out = w
        .run_at(upsert("ada@example.com"), 1, true)
        .await
        .expect("upsert");
    assert_eq!((out.id.as_deref(), out.created), (Some("0"), true));
    assert_eq!(w.remembered("ada@example.com").await, None);
    let update = step(
        Action::Update,
        "email",
        "ada@example.com",
        json!({"name": "B"}),
    );
    let out = w.run_at(update, 1, true).await.expect("update");
    assert_eq!(out.id.as_deref(), Some("0"));
    assert_eq!(w.crm.count("update"), 1, "the update is shown");
    assert!(w.crm.live().is_empty());
}

#[tokio::test]
async fn concurrent_upserts_of_one_value_make_one_record() {
    let w = World::default();
    // search lags: without the lock each would create
    let runs = (0..8).map(|_| w.run(upsert("ada@example.com")));
    let outs = futures_util::future::join_all(runs).await;
    assert!(outs.iter().all(Result::is_ok), "{outs:?}");
    assert_eq!(w.crm.live().len(), 1, "one record");
    assert_eq!(
        outs.iter()
            .filter(|o| o.as_ref().is_ok_and(|o| o.created))
            .count(),
        1
    );
    assert!(w.locks.is_empty());
}

#[tokio::test]
async fn a_create_refused_as_existing_updates_and_a_native_upsert_is_used_while_it_can_be() {
    let w = World {
        crm: Fake {
            unique: Some("email"),
            native: true,
            ..Fake::default()
        },
        ..World::default()
    };
    let id = w.crm.seed(json!({"email": "ada@example.com"}));
    let create = step(
        Action::Create,
        "email",
        "ada@example.com",
        json!({"email": "ada@example.com", "name": "A"}),
    );
    let out = w.run(create).await.expect("create");
    assert_eq!((out.id.as_ref(), out.created), (Some(&id), false));
    let mut s = upsert("ada@example.com");
    if let Some(m) = s.matcher.as_mut() {
        m.external_id = true;
    }
    w.run(s.clone()).await.expect("native");
    assert_eq!(
        (w.crm.count("native_upsert"), w.crm.count("read_unique")),
        (1, 0)
    );
    s.write_modes = BTreeMap::from([("name".into(), WriteMode::Empty)]);
    w.run(s).await.expect("conditional");
    assert_eq!(
        (w.crm.count("native_upsert"), w.crm.count("read_unique")),
        (1, 1)
    );
    assert_eq!(w.crm.live().len(), 1);
}
