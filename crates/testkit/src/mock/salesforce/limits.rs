//! The daily API request limit as the mock keeps it
//! (<https://developer.salesforce.com/docs/platform/salesforce-app-limits-cheatsheet/guide/salesforce-app-limits-platform-api.html>):
//! every authenticated REST call counts; with [`super::SalesforceOptions::daily_limit`]
//! set, a call past it is 403 `REQUEST_LIMIT_EXCEEDED`; `GET …/limits` answers
//! `DailyApiRequests`.
//!
//! Invariants: a call past the limit does not count; every authenticated answer carries
//! `Sforce-Limit-Info: api-usage=N/MAX`; the limit is a hard one and never resets by
//! itself (the mock's day does not end).

use super::super::chassis::Verdict;
use super::super::chassis::reply::{Headers, Reply};
use super::Salesforce;
use super::answers::api_error;
use serde_json::json;

/// The daily API request allowance reported when the options set no limit.
const DEFAULT_DAILY_MAX: u64 = 100_000;

impl Salesforce {
    /// The allowance reported.
    fn daily_max(&self) -> u64 {
        self.usage.limit().unwrap_or(DEFAULT_DAILY_MAX)
    }

    /// Counts an authenticated call: past the limit it is refused (and not counted).
    pub(super) fn count_call(&mut self) -> (Verdict, Headers) {
        let verdict = if self.usage.try_spend(1) {
            Verdict::Pass
        } else {
            Verdict::Limited(api_error(
                403,
                "REQUEST_LIMIT_EXCEEDED",
                "TotalRequests Limit exceeded.",
                None,
            ))
        };
        let usage = format!("api-usage={}/{}", self.usage.spent(), self.daily_max());
        (verdict, vec![("sforce-limit-info", usage)])
    }

    /// `GET …/limits`.
    pub(super) fn limits(&self) -> Reply {
        let max = self.daily_max();
        Reply::json(
            200,
            json!({
                "DailyApiRequests": {
                    "Max": max,
                    "Remaining": max.saturating_sub(self.usage.spent()),
                },
            }),
        )
    }
}
