//! The record map seen from a connector: which CRM record a `match` resolved to.
//!
//! Invariant: a map handed to a connector is already scoped to one tenant and one
//! connector instance; keys are `(object, property, value)`.

use crate::delivery::DeliveryError;
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::Mutex;

/// Which CRM record each `match` resolved to, so an `update` finds a record this service
/// created even where the CRM's search index lags.
#[async_trait]
pub trait RecordMap: Send + Sync {
    /// The record id remembered for `object` where `property` = `value`.
    ///
    /// # Errors
    /// A retryable error when storage is unavailable.
    async fn get(
        &self,
        object: &str,
        property: &str,
        value: &str,
    ) -> Result<Option<String>, DeliveryError>;

    /// Remembers that `object` where `property` = `value` is record `id`.
    ///
    /// # Errors
    /// A retryable error when storage is unavailable.
    async fn put(
        &self,
        object: &str,
        property: &str,
        value: &str,
        id: &str,
    ) -> Result<(), DeliveryError>;

    /// Forgets the record (it was deleted).
    ///
    /// # Errors
    /// A retryable error when storage is unavailable.
    async fn forget(&self, object: &str, property: &str, value: &str) -> Result<(), DeliveryError>;
}

/// A record map in memory, for `slatis-sync render` and tests.
#[derive(Debug, Default)]
pub struct MemoryRecordMap(Mutex<HashMap<(String, String, String), String>>);

impl MemoryRecordMap {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String, String), String>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl RecordMap for MemoryRecordMap {
    async fn get(
        &self,
        object: &str,
        property: &str,
        value: &str,
    ) -> Result<Option<String>, DeliveryError> {
        Ok(self
            .lock()
            .get(&(object.into(), property.into(), value.into()))
            .cloned())
    }

    async fn put(
        &self,
        object: &str,
        property: &str,
        value: &str,
        id: &str,
    ) -> Result<(), DeliveryError> {
        self.lock()
            .insert((object.into(), property.into(), value.into()), id.into());
        Ok(())
    }

    async fn forget(&self, object: &str, property: &str, value: &str) -> Result<(), DeliveryError> {
        self.lock()
            .remove(&(object.into(), property.into(), value.into()));
        Ok(())
    }
}
