//! Counting each webhook once in `slatis_webhooks_received_total{tenant, outcome}`, under
//! a label that tells nothing about which tenants exist.
//!
//! Invariants:
//! - every request is counted exactly once;
//! - until its signature has verified, a request is counted under [`UNAUTHENTICATED`],
//!   which can never be a tenant name (those are `[A-Za-z0-9._-]+`), so the open
//!   `/metrics` cannot be used to find tenant names;
//! - a request dropped before it was answered (`server.request_timeout`, shutdown) is
//!   counted `timeout`.

/// The `tenant` label of every request whose signature did not (or not yet) verify.
pub const UNAUTHENTICATED: &str = "(unauthenticated)";

/// The count of one request, made when it is answered, or as `timeout` when dropped.
pub(super) struct Tally {
    tenant: Option<String>,
    counted: bool,
}

impl Tally {
    /// A request whose signature has not verified yet.
    pub(super) fn new() -> Self {
        Self {
            tenant: None,
            counted: false,
        }
    }

    /// The signature verified for `tenant`: from now on it is counted under its name.
    pub(super) fn authenticated(&mut self, tenant: &str) {
        self.tenant = Some(tenant.to_owned());
    }

    /// Counts the request with `outcome`.
    pub(super) fn count(mut self, outcome: &'static str) {
        self.record(outcome);
    }

    fn record(&mut self, outcome: &'static str) {
        self.counted = true;
        let tenant = self
            .tenant
            .take()
            .unwrap_or_else(|| UNAUTHENTICATED.to_owned());
        metrics::counter!("slatis_webhooks_received_total", "tenant" => tenant, "outcome" => outcome)
            .increment(1);
    }
}

impl Drop for Tally {
    fn drop(&mut self) {
        if !self.counted {
            self.record("timeout");
        }
    }
}
