//! The conformance suite on SQLite, and what only a SQLite file has: one owner, and
//! durability across a reopen.

use slatis_store::{Access, Ingested, Store, StoreError, open};
use std::sync::Arc;
use tempfile::TempDir;

async fn fresh() -> (Arc<dyn Store>, TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    (open(&url, Access::Owner).await.expect("open"), dir)
}

mod conformance_sqlite {
    crate::all_conformance_tests!(super::fresh);
}

#[tokio::test]
async fn a_second_owner_is_refused_but_a_shared_reader_is_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let owner = open(&url, Access::Owner).await.expect("owner");
    let err = open(&url, Access::Owner).await.err().expect("refused");
    assert!(matches!(err, StoreError::Locked { .. }));
    assert!(
        err.to_string()
            .contains("another slatis-sync serve already owns"),
        "{err}"
    );
    let shared = open(&url, Access::Shared).await.expect("shared");
    shared
        .ingest(crate::conformance::event("acme", None, "from-cli", &[]))
        .await
        .expect("write beside the owner");
    shared.close().await;
    owner.close().await;
    drop(owner);
    let again = open(&url, Access::Owner)
        .await
        .expect("the lock is released with its owner");
    again.close().await;
}

#[tokio::test]
async fn committed_events_survive_a_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let store = open(&url, Access::Owner).await.expect("open");
    let Ingested::New { event_id, .. } = store
        .ingest(crate::conformance::event(
            "acme",
            Some("b"),
            "kept",
            &["crm"],
        ))
        .await
        .expect("ingest")
    else {
        panic!("new")
    };
    store.close().await;
    drop(store);
    let store = open(&url, Access::Owner).await.expect("reopen");
    let events = store.events(None, 10).await.expect("events");
    assert_eq!(events[0].id, event_id);
    assert_eq!(store.stats().await.expect("stats").pending, 1);
    store.close().await;
}

#[tokio::test]
async fn bad_urls_are_refused() {
    for url in ["mysql://x", "sqlite::memory:"] {
        assert!(
            matches!(
                open(url, Access::Owner).await,
                Err(StoreError::UnsupportedUrl(_))
            ),
            "{url}"
        );
    }
}
