//! HubSpot's rate limits as the mock keeps them: a rolling window over every authenticated call, a per-second limit on search calls, and an
//! optional daily limit that resets at a set time, then daily; and the daily-usage
//! endpoint that reports it.
//!
//! Invariants: every authenticated call counts, 429s included (so a client that keeps
//! calling stays limited); a call over a limit is 429 with HubSpot's body and no
//! `Retry-After` (HubSpot sends none); every counted answer carries the
//! `X-HubSpot-RateLimit-*` headers.

use super::super::chassis::Verdict;
use super::super::chassis::reply::{Headers, Reply};
use super::HubSpot;
use super::answers::{correlation_id, now_text, timestamp};
use chrono::Utc;
use serde_json::json;
use std::time::Instant;

/// The daily limit the usage endpoint reports when the options set none.
const UNLIMITED_DAILY: u64 = 250_000;

impl HubSpot {
    /// Counts an authenticated call against the limits: whether it is over one, and the
    /// rate-limit headers.
    pub(super) fn count_call(&mut self, search: bool) -> (Verdict, Headers) {
        let now = Instant::now();
        let in_window = self.window.record(now);
        self.daily.roll(Utc::now());
        self.daily.spend(1);
        let searches = if search { self.searches.record(now) } else { 0 };
        let limited = if self.daily.overspent() {
            Some((
                "daily",
                "DAILY",
                "publicapi:private_app-api-calls-daily:1:1",
            ))
        } else if in_window > self.options.max_per_window {
            Some((
                "ten_secondly_rolling",
                "TEN_SECONDLY_ROLLING",
                "publicapi:private_app-api-calls-ten-secondly:1:1",
            ))
        } else if search && searches > self.options.search_per_second {
            Some(("secondly", "SECONDLY", "publicapi:crm-search-secondly:1:1"))
        } else {
            None
        };
        let verdict = limited.map_or(Verdict::Pass, |(limit, policy, group)| {
            Verdict::Limited(Reply::json(
                429,
                json!({
                    "status": "error",
                    "message": format!("You have reached your {limit} limit."),
                    "errorType": "RATE_LIMIT",
                    "correlationId": correlation_id(),
                    "policyName": policy,
                    "groupName": group,
                }),
            ))
        });
        let mut headers = vec![
            (
                "x-hubspot-ratelimit-interval-milliseconds",
                self.options.window.as_millis().to_string(),
            ),
            (
                "x-hubspot-ratelimit-max",
                self.options.max_per_window.to_string(),
            ),
            (
                "x-hubspot-ratelimit-remaining",
                self.options
                    .max_per_window
                    .saturating_sub(in_window)
                    .to_string(),
            ),
        ];
        if let (Some(limit), Some(left)) = (self.daily.limit(), self.daily.left()) {
            headers.push(("x-hubspot-ratelimit-daily", limit.to_string()));
            headers.push(("x-hubspot-ratelimit-daily-remaining", left.to_string()));
        }
        (verdict, headers)
    }

    /// `GET /account-info/v3/api-usage/daily/private-apps`.
    pub(super) fn usage(&self) -> Reply {
        let resets_at = self
            .daily
            .resets_at()
            .unwrap_or(self.options.daily_resets_at);
        Reply::json(
            200,
            json!({
                "results": [{
                    "name": "private-apps-api-calls-daily",
                    "usageLimit": self.daily.limit().unwrap_or(UNLIMITED_DAILY),
                    "currentUsage": self.daily.spent(),
                    "resetsAt": timestamp(resets_at),
                    "fetchStatus": "SUCCESS",
                    "collectedAt": now_text(),
                }],
            }),
        )
    }
}
