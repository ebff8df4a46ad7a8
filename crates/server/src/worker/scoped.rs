//! What a connector sees of the store: its record map, scoped to one tenant and instance
//! ([`ScopedRecords`]), and its per-key locks ([`StoreLocks`], scoped by core's
//! `ScopedKeyLocks`) — the store's, so that on PostgreSQL both hold across every replica.

use async_trait::async_trait;
use slatis_core::DeliveryError;
use slatis_core::connector::{KeyGuard, KeyLocks, RecordMap};
use slatis_store::{RecordKey, Store};

/// [`RecordMap`] over the store for one tenant's connector instance.
pub struct ScopedRecords<'a> {
    /// The store.
    pub store: &'a dyn Store,
    /// The tenant.
    pub tenant: &'a str,
    /// The connector instance.
    pub connector: &'a str,
}

impl ScopedRecords<'_> {
    fn key(&self, object: &str, property: &str, value: &str) -> RecordKey {
        RecordKey {
            tenant: self.tenant.to_owned(),
            connector: self.connector.to_owned(),
            object: object.to_owned(),
            property: property.to_owned(),
            value: value.to_owned(),
        }
    }
}

fn unavailable(e: &slatis_store::StoreError) -> DeliveryError {
    DeliveryError::retryable(format!("record map unavailable: {e}"))
}

#[async_trait]
impl RecordMap for ScopedRecords<'_> {
    async fn get(
        &self,
        object: &str,
        property: &str,
        value: &str,
    ) -> Result<Option<String>, DeliveryError> {
        self.store
            .record_get(&self.key(object, property, value))
            .await
            .map_err(|e| unavailable(&e))
    }

    async fn put(
        &self,
        object: &str,
        property: &str,
        value: &str,
        id: &str,
    ) -> Result<(), DeliveryError> {
        self.store
            .record_put(&self.key(object, property, value), Some(id))
            .await
            .map_err(|e| unavailable(&e))
    }

    async fn forget(&self, object: &str, property: &str, value: &str) -> Result<(), DeliveryError> {
        self.store
            .record_put(&self.key(object, property, value), None)
            .await
            .map_err(|e| unavailable(&e))
    }
}

/// [`KeyLocks`] over the store's named locks (across replicas on PostgreSQL, in this
/// process on SQLite).
pub struct StoreLocks<'a>(pub &'a dyn Store);

#[async_trait]
impl KeyLocks for StoreLocks<'_> {
    async fn lock(&self, key: &str) -> Result<KeyGuard, DeliveryError> {
        self.0
            .lock(key)
            .await
            .map_err(|e| DeliveryError::retryable(format!("lock unavailable: {e}")))
    }
}
