//! `/readyz` says more than "storage answers a read": failing writes (a full disk) and a
//! background task that died each take readiness down, with a reason.

use crate::support::{call, world};
use async_trait::async_trait;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::{DateTime, Utc};
use serde_json::json;
use slatis_server::Shared;
use slatis_store::*;
use std::sync::{Arc, Mutex};

/// A store whose reads work but whose writes are said to fail (as on a full disk), until
/// told otherwise: the rest is the real store.
struct FullDisk {
    inner: Arc<dyn Store>,
    failure: Mutex<Option<String>>,
}

#[async_trait]
impl Store for FullDisk {
    async fn ingest(&self, event: NewEvent) -> Result<Ingested> {
        self.inner.ingest(event).await
    }
    async fn claim(&self, req: ClaimRequest) -> Result<Vec<ClaimedJob>> {
        self.inner.claim(req).await
    }
    async fn heartbeat(&self, worker: &str, jobs: &[JobId], until: DateTime<Utc>) -> Result<()> {
        self.inner.heartbeat(worker, jobs, until).await
    }
    async fn finish_all(&self, batch: Vec<Finish>) -> Result<Vec<bool>> {
        self.inner.finish_all(batch).await
    }
    async fn release(&self, worker: &str, jobs: &[JobId]) -> Result<u64> {
        self.inner.release(worker, jobs).await
    }
    async fn reclaim(&self, now: DateTime<Utc>, all_running: bool) -> Result<u64> {
        self.inner.reclaim(now, all_running).await
    }
    async fn record_get(&self, key: &RecordKey) -> Result<Option<String>> {
        self.inner.record_get(key).await
    }
    async fn record_put(&self, key: &RecordKey, record_id: Option<&str>) -> Result<()> {
        self.inner.record_put(key, record_id).await
    }
    async fn jobs(&self, query: &JobQuery) -> Result<Vec<JobSummary>> {
        self.inner.jobs(query).await
    }
    async fn job(&self, id: JobId) -> Result<Option<JobDetail>> {
        self.inner.job(id).await
    }
    async fn events(&self, query: &EventQuery) -> Result<Vec<EventSummary>> {
        self.inner.events(query).await
    }
    async fn booking_attempts(
        &self,
        tenant: Option<&str>,
        booking_id: &str,
        limit: u32,
    ) -> Result<Vec<AttemptRecord>> {
        self.inner.booking_attempts(tenant, booking_id, limit).await
    }
    async fn has_event(&self, tenant: &str, booking_id: &str, event_type: &str) -> Result<bool> {
        self.inner.has_event(tenant, booking_id, event_type).await
    }
    async fn tenant_counts(&self) -> Result<Vec<TenantCounts>> {
        self.inner.tenant_counts().await
    }
    async fn activity(
        &self,
        tenant: Option<&str>,
        since: DateTime<Utc>,
    ) -> Result<Vec<MinuteCounts>> {
        self.inner.activity(tenant, since).await
    }
    async fn replay(&self, which: Replay) -> Result<Vec<JobId>> {
        self.inner.replay(which).await
    }
    async fn purge(&self, before: PurgeBefore) -> Result<Purged> {
        self.inner.purge(before).await
    }
    async fn stats(&self) -> Result<QueueStats> {
        self.inner.stats().await
    }
    async fn lock(&self, key: &str) -> Result<slatis_core::connector::KeyGuard> {
        self.inner.lock(key).await
    }
    fn write_failure(&self) -> Option<String> {
        self.failure
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
    async fn close(&self) {
        self.inner.close().await;
    }
}

async fn readyz(shared: &Arc<Shared>) -> (StatusCode, serde_json::Value) {
    let get = || Request::get("/readyz").body(Body::empty()).expect("req");
    let ingress = call(slatis_server::ingress::router(Arc::clone(shared)), get()).await;
    let admin = call(slatis_server::admin::router(Arc::clone(shared)), get()).await;
    assert_eq!(ingress, admin, "both listeners answer the same");
    ingress
}

#[tokio::test]
async fn failing_writes_and_a_dead_background_task_take_readiness_down() {
    let w = world("rdy1", "").await;
    let disk = Arc::new(FullDisk {
        inner: Arc::clone(&w.shared.store),
        failure: Mutex::new(None),
    });
    let config = slatis_core::config::load_file(&w.dir.path().join("config.yaml"))
        .unwrap_or_else(|e| panic!("{e}"));
    let shared = Shared::new(config, Arc::clone(&disk) as Arc<dyn Store>, None);
    assert_eq!(
        readyz(&shared).await,
        (StatusCode::OK, json!({ "status": "ready" }))
    );

    *disk.failure.lock().expect("lock") = Some("database or disk is full".into());
    let (status, answer) = readyz(&shared).await;
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "reads alone still work"
    );
    assert_eq!(
        answer,
        json!({ "status": "not ready", "reasons": ["storage writes are failing"] }),
        "a short reason; the details go to the log"
    );
    *disk.failure.lock().expect("lock") = None;
    assert_eq!(
        readyz(&shared).await.0,
        StatusCode::OK,
        "ready once writes go through"
    );

    shared.health.fail("housekeeping", "panicked");
    assert_eq!(
        readyz(&shared).await,
        (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({ "status": "not ready", "reasons": ["background task housekeeping panicked"] })
        )
    );
    disk.close().await;
}
