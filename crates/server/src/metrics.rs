//! Prometheus metrics, recorded through the `metrics` facade.
//!
//! Names (labels are bounded: tenant and connector come from the config, never from a
//! request path, and `/metrics` is open, so it must not tell which tenants exist):
//! - `slatis_webhooks_received_total{tenant, outcome}`: every request once. Before its
//!   signature verified, `tenant` is `(unauthenticated)` (never a tenant name) and the
//!   outcome `invalid_signature` (also an unknown tenant), `too_large`, `timeout` or
//!   `bad_request` (an unreadable body); after, `tenant` is the tenant and the outcome
//!   `accepted`, `unrouted`, `duplicate`, `bad_request`, `stale` (signed timestamp older
//!   than `storage.retention`), `unavailable` or `timeout` (not answered in time)
//! - `slatis_deliveries_total{tenant, connector, outcome}`: `done`, `retry`,
//!   `rate_limited`, `dead`
//! - `slatis_delivery_duration_seconds{tenant, connector}`
//! - `slatis_queue_jobs{status}`, `slatis_queue_oldest_due_seconds`, `slatis_jobs_in_flight`
//! - `slatis_store_write_batch_size`

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the Prometheus recorder once per process.
pub fn install() {
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets(&[
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ])
            .ok()?
            .build_recorder();
        let handle = recorder.handle();
        metrics::set_global_recorder(recorder).ok()?;
        Some(handle)
    });
}

/// The metrics in Prometheus text format.
pub fn render() -> String {
    HANDLE
        .get()
        .and_then(Option::as_ref)
        .map(PrometheusHandle::render)
        .unwrap_or_default()
}
