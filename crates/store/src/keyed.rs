//! Named locks inside one process (the lock of a store that one process owns: SQLite).
//!
//! Invariants: one holder per name at a time, waiters served in order (tokio's fair
//! mutex); a name's entry lives only while it is held or waited for, so the map does not
//! grow with every name ever locked.

use crate::HeldLock;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::OwnedMutexGuard;

type Entries = Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>;

/// Named locks of one process.
#[derive(Default, Clone)]
pub(crate) struct KeyedLocks {
    entries: Arc<Entries>,
}

/// A held name; dropping it releases the name and forgets it if nobody waits.
struct Held {
    entries: Arc<Entries>,
    key: String,
    guard: Option<OwnedMutexGuard<()>>,
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        drop(self.guard.take());
        // Only the map's own reference left: nobody holds or waits for it.
        if entries
            .get(&self.key)
            .is_some_and(|m| Arc::strong_count(m) == 1)
        {
            entries.remove(&self.key);
        }
    }
}

impl KeyedLocks {
    /// Waits for the name `key`, then holds it until the returned lock is dropped.
    pub(crate) async fn lock(&self, key: &str) -> HeldLock {
        let mutex = {
            let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
            Arc::clone(entries.entry(key.to_owned()).or_default())
        };
        let guard = mutex.lock_owned().await;
        HeldLock::new(Held {
            entries: Arc::clone(&self.entries),
            key: key.to_owned(),
            guard: Some(guard),
        })
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_name_has_one_holder_and_is_forgotten_when_free() {
        let locks = KeyedLocks::default();
        let held = locks.lock("a").await;
        let other = tokio::time::timeout(Duration::from_millis(50), locks.lock("b")).await;
        assert!(other.is_ok(), "another name is free");
        drop(other);
        let waiter = {
            let locks = locks.clone();
            tokio::spawn(async move { locks.lock("a").await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiter.is_finished(), "the name is held");
        drop(held);
        let again = waiter.await.expect("the waiter gets it");
        assert_eq!(locks.len(), 1);
        drop(again);
        assert_eq!(locks.len(), 0, "a free name is forgotten");
    }
}
