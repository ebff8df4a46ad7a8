//! Per-key locks seen from a connector: work on one key (e.g. an upsert of one match value)
//! runs one at a time.
//!
//! Invariants:
//! - a lock set handed to a connector is already scoped to one tenant and one connector
//!   instance ([`ScopedKeyLocks`]), and is shared by every delivery to that instance, so
//!   two concurrent deliveries locking the same key wait for each other;
//! - a lock is held until its [`KeyGuard`] is dropped; waiting is fair (first come, first
//!   served) in [`MemoryKeyLocks`];
//! - [`MemoryKeyLocks`] keeps an entry only while someone holds or waits for it.
//!
//! The trait lets the locks later live in the database, so replicas share them.

use crate::delivery::DeliveryError;
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// Held while the work on one key runs; dropping it releases the key.
pub struct KeyGuard {
    _held: Box<dyn Send + Sync>,
}

impl KeyGuard {
    /// A guard that releases its key when `held` is dropped.
    pub fn new(held: impl Send + Sync + 'static) -> Self {
        Self {
            _held: Box::new(held),
        }
    }
}

impl std::fmt::Debug for KeyGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyGuard")
    }
}

/// Locks by key.
#[async_trait]
pub trait KeyLocks: Send + Sync {
    /// Waits until no one else holds `key`, then holds it until the guard is dropped.
    ///
    /// # Errors
    /// A retryable error when the lock's storage is unavailable.
    async fn lock(&self, key: &str) -> Result<KeyGuard, DeliveryError>;
}

type Table = Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>;

/// Locks in this process's memory.
#[derive(Debug, Default, Clone)]
pub struct MemoryKeyLocks(Table);

/// A held in-memory lock; the last holder removes the table's entry.
struct Held {
    table: Table,
    key: String,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Drop for Held {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut table = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        if table
            .get(&self.key)
            .is_some_and(|l| Arc::strong_count(l) == 1)
        {
            table.remove(&self.key);
        }
    }
}

impl MemoryKeyLocks {
    /// How many keys are held or waited for.
    pub fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// Whether no key is held or waited for.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl KeyLocks for MemoryKeyLocks {
    async fn lock(&self, key: &str) -> Result<KeyGuard, DeliveryError> {
        let mutex = {
            let mut table = self.0.lock().unwrap_or_else(PoisonError::into_inner);
            Arc::clone(table.entry(key.to_owned()).or_default())
        };
        let guard = mutex.lock_owned().await;
        Ok(KeyGuard::new(Held {
            table: Arc::clone(&self.0),
            key: key.to_owned(),
            guard: Some(guard),
        }))
    }
}

/// Some locks scoped to one tenant's connector instance: its keys never meet another
/// instance's.
pub struct ScopedKeyLocks<'a> {
    /// The locks of every instance.
    pub locks: &'a dyn KeyLocks,
    /// The tenant.
    pub tenant: &'a str,
    /// The connector instance.
    pub instance: &'a str,
}

#[async_trait]
impl KeyLocks for ScopedKeyLocks<'_> {
    async fn lock(&self, key: &str) -> Result<KeyGuard, DeliveryError> {
        let scoped = format!("{}\u{0}{}\u{0}{key}", self.tenant, self.instance);
        self.locks.lock(&scoped).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn one_key_is_held_once_others_are_free_and_entries_go() {
        let locks = MemoryKeyLocks::default();
        let a = locks.lock("a").await.expect("a");
        let b = locks.lock("b").await.expect("b, another key");
        let waiting = tokio::time::timeout(Duration::from_millis(50), locks.lock("a")).await;
        assert!(waiting.is_err(), "a is held");
        drop(a);
        let again = tokio::time::timeout(Duration::from_millis(50), locks.lock("a"))
            .await
            .expect("a is free")
            .expect("a");
        drop((again, b));
        assert!(locks.is_empty(), "no entry outlives its holders");
    }

    #[tokio::test]
    async fn scopes_do_not_share_keys() {
        let all = MemoryKeyLocks::default();
        let one = ScopedKeyLocks {
            locks: &all,
            tenant: "t",
            instance: "one",
        };
        let two = ScopedKeyLocks {
            locks: &all,
            tenant: "t",
            instance: "two",
        };
        let held = one.lock("k").await.expect("one");
        let other = tokio::time::timeout(Duration::from_millis(50), two.lock("k")).await;
        assert!(other.is_ok(), "another instance's key is free");
        let same = tokio::time::timeout(Duration::from_millis(50), one.lock("k")).await;
        assert!(same.is_err(), "the instance's own key is held");
        drop(held);
    }
}
