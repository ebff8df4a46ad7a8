//! The conformance suite on SQLite, and what only a SQLite file has: one owner, and
//! durability across a reopen.

use chrono::Utc;
use slatis_core::config::StorageConfig;
use slatis_store::{Access, Ingested, Store, StoreError};
use std::sync::Arc;
use tempfile::TempDir;

/// Opens the SQLite store at `url`.
async fn open(url: &str, access: Access) -> slatis_store::Result<Arc<dyn Store>> {
    let storage = StorageConfig {
        url: url.to_owned(),
        ..StorageConfig::default()
    };
    slatis_store::open(&storage, access).await
}

async fn fresh() -> Option<(Arc<dyn Store>, TempDir)> {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    Some((open(&url, Access::Owner).await.expect("open"), dir))
}

/// The single owner of a SQLite file, restarting, takes back every running job (no other
/// process can be running them).
#[tokio::test]
async fn a_restarting_owner_reclaims_every_running_job() {
    let (store, _dir) = fresh().await.expect("sqlite");
    crate::conformance::one_running_job(&*store).await;
    assert_eq!(
        store.reclaim(Utc::now(), true).await.expect("reclaim all"),
        1
    );
    store.close().await;
}

#[tokio::test]
async fn migrate_lists_then_applies_the_pending_versions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let storage = StorageConfig {
        url: format!("sqlite://{}", dir.path().join("m.db").display()),
        ..StorageConfig::default()
    };
    let pending = slatis_store::migrate(&storage, true).await.expect("check");
    assert_eq!(pending.first().map(String::as_str), Some("0001_init"));
    assert!(!dir.path().join("m.db").exists(), "a check creates nothing");
    assert_eq!(
        slatis_store::migrate(&storage, false).await.expect("apply"),
        pending
    );
    assert!(
        slatis_store::migrate(&storage, true)
            .await
            .expect("check")
            .is_empty()
    );
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
    let events = store
        .events(&crate::conformance::events_of(None, 10))
        .await
        .expect("events");
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

#[cfg(unix)]
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// The database, its WAL and SHM and the lock file are the owner's alone.
#[cfg(unix)]
#[tokio::test]
async fn the_files_are_readable_by_their_owner_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("t.db");
    let store = open(&format!("sqlite://{}", db.display()), Access::Owner)
        .await
        .expect("open");
    store
        .ingest(crate::conformance::event(
            "acme",
            Some("b"),
            "private",
            &["crm"],
        ))
        .await
        .expect("ingest");
    for suffix in ["", "-wal", "-shm", ".lock"] {
        let file = dir.path().join(format!("t.db{suffix}"));
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
    store.close().await;
}

/// A database left readable by others (an older version, a copy) is tightened at open.
#[cfg(unix)]
#[tokio::test]
async fn looser_files_are_tightened_at_open() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("t.db");
    let url = format!("sqlite://{}", db.display());
    open(&url, Access::Owner)
        .await
        .expect("create")
        .close()
        .await;
    for suffix in ["", ".lock"] {
        let file = dir.path().join(format!("t.db{suffix}"));
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    }
    let store = open(&url, Access::Shared).await.expect("open");
    assert_eq!(mode(&db), 0o600);
    store.close().await;
    let store = open(&url, Access::Owner).await.expect("open");
    assert_eq!(mode(&dir.path().join("t.db.lock")), 0o600);
    store.close().await;
}

/// The lock follows the file, not the path written: a symlink, a `..` detour or a
/// relative path to a database that has an owner are refused.
#[cfg(unix)]
#[tokio::test]
async fn a_second_owner_by_another_path_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let real_dir = dir.path().join("data");
    std::fs::create_dir(&real_dir).expect("mkdir");
    std::fs::create_dir(dir.path().join("other")).expect("mkdir");
    let db = real_dir.join("t.db");
    let owner = open(&format!("sqlite://{}", db.display()), Access::Owner)
        .await
        .expect("owner");
    std::os::unix::fs::symlink(&db, dir.path().join("link.db")).expect("symlink");
    std::os::unix::fs::symlink(&real_dir, dir.path().join("linkdir")).expect("symlink");
    let cwd = std::env::current_dir().expect("cwd");
    let relative: std::path::PathBuf = cwd
        .components()
        .skip(1)
        .map(|_| std::path::Component::ParentDir.as_os_str())
        .chain(db.components().skip(1).map(|c| c.as_os_str()))
        .collect();
    let others = [
        dir.path().join("link.db"),
        dir.path().join("linkdir").join("t.db"),
        dir.path()
            .join("other")
            .join("..")
            .join("data")
            .join("t.db"),
        real_dir.join(".").join("t.db"),
        relative,
    ];
    for other in others {
        let err = open(&format!("sqlite://{}", other.display()), Access::Owner)
            .await
            .err()
            .unwrap_or_else(|| panic!("{} must be refused", other.display()));
        assert!(
            matches!(err, StoreError::Locked { .. }),
            "{}: {err}",
            other.display()
        );
    }
    owner.close().await;
}

/// A database made before the attendee email was a column gets it back-filled from the
/// stored bodies when it is migrated; a body that is not JSON is left without one.
#[tokio::test]
async fn migrating_back_fills_the_attendee_email_from_stored_bodies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("old.db");
    {
        let conn = rusqlite::Connection::open(&path).expect("open");
        for script in [
            include_str!("../../migrations/sqlite/0001_init.sql"),
            include_str!("../../migrations/sqlite/0002_lane_index.sql"),
            include_str!("../../migrations/sqlite/0003_rate_limited.sql"),
            include_str!("../../migrations/sqlite/0004_record_map_age.sql"),
        ] {
            conn.execute_batch(script).expect("old schema");
        }
        conn.pragma_update(None, "user_version", 4)
            .expect("version");
        let bodies: [&[u8]; 3] = [
            br#"{"event":"BOOKING_CREATED","data":{"id":"b1","attendee":{"email":" Jane@X.com "}}}"#,
            br#"{"event":"BOOKING_CREATED","data":{"id":"b2"}}"#,
            b"not json",
        ];
        for (i, body) in bodies.iter().enumerate() {
            conn.execute(
                "INSERT INTO events (id, tenant, event_type, booking_id, body, received_at, jobs) \
                 VALUES (?1, 'acme', 'BOOKING_CREATED', ?2, ?3, 0, 0)",
                rusqlite::params![format!("evt_{i}"), format!("b{}", i + 1), body],
            )
            .expect("old event");
        }
    }
    let store = open(&format!("sqlite://{}", path.display()), Access::Owner)
        .await
        .expect("migrate");
    let emails = crate::conformance::emails(&*store).await;
    let email = |id: &str| emails.get(id).cloned().flatten();
    assert_eq!(email("evt_0").as_deref(), Some("jane@x.com"));
    assert_eq!(email("evt_1"), None);
    assert_eq!(email("evt_2"), None);
    assert!(
        store
            .has_event("acme", "b1", "BOOKING_CREATED")
            .await
            .expect("has")
    );
    store.close().await;
}
