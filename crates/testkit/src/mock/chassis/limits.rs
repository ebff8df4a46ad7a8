//! The counters a mock's rate and usage limits are built from: a rolling window of calls
//! ([`RollingWindow`]) and a daily budget ([`DailyBudget`]). Which calls count, what they
//! cost and what an exhausted limit answers are each mock's own.
//!
//! Invariants: a window holds only the calls of its last `span`; a budget's spending goes
//! back to 0 at each reset time it passes (when it has one) and when told.

use chrono::{DateTime, TimeDelta, Utc};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The calls of the last `span`.
#[derive(Debug, Clone)]
pub struct RollingWindow {
    span: Duration,
    calls: VecDeque<Instant>,
}

impl RollingWindow {
    /// An empty window of `span`.
    pub fn new(span: Duration) -> Self {
        Self {
            span,
            calls: VecDeque::new(),
        }
    }

    /// How many calls the window holds at `now`.
    pub fn count(&mut self, now: Instant) -> usize {
        while self.calls.front().is_some_and(|at| *at + self.span <= now) {
            self.calls.pop_front();
        }
        self.calls.len()
    }

    /// Counts a call made at `now`; how many the window holds with it.
    pub fn record(&mut self, now: Instant) -> usize {
        self.calls.push_back(now);
        self.count(now)
    }

    /// Whole seconds until the oldest call leaves the window (the whole span when
    /// empty), at least 1.
    pub fn reset_secs(&self, now: Instant) -> u64 {
        let left = self.calls.front().map_or(self.span, |oldest| {
            (*oldest + self.span).saturating_duration_since(now)
        });
        (left.as_secs() + u64::from(left.subsec_nanos() > 0)).max(1)
    }
}

/// A day's allowance: calls, or tokens that calls cost.
#[derive(Debug, Clone)]
pub struct DailyBudget {
    /// The allowance (`None`: unlimited).
    limit: Option<u64>,
    spent: u64,
    /// When the spending next goes back to 0 (`None`: only when told).
    resets_at: Option<DateTime<Utc>>,
}

impl DailyBudget {
    /// A whole budget of `limit`, reset at `resets_at` and every day after.
    pub fn new(limit: Option<u64>, resets_at: Option<DateTime<Utc>>) -> Self {
        Self {
            limit,
            spent: 0,
            resets_at,
        }
    }

    /// Starts the days that began by `now`.
    pub fn roll(&mut self, now: DateTime<Utc>) {
        while let Some(at) = self.resets_at.filter(|at| now >= *at) {
            self.spent = 0;
            self.resets_at = at.checked_add_signed(TimeDelta::days(1));
        }
    }

    /// A new day: the budget is whole again.
    pub fn reset(&mut self) {
        self.spent = 0;
    }

    /// The allowance, if limited.
    pub fn limit(&self) -> Option<u64> {
        self.limit
    }

    /// What was spent today.
    pub fn spent(&self) -> u64 {
        self.spent
    }

    /// When the spending next goes back to 0, if it does by itself.
    pub fn resets_at(&self) -> Option<DateTime<Utc>> {
        self.resets_at
    }

    /// What is left today, if limited.
    pub fn left(&self) -> Option<u64> {
        self.limit.map(|l| l.saturating_sub(self.spent))
    }

    /// Whether more than the allowance was spent.
    pub fn overspent(&self) -> bool {
        self.limit.is_some_and(|l| self.spent > l)
    }

    /// Spends `cost`, over the allowance or not.
    pub fn spend(&mut self, cost: u64) {
        self.spent = self.spent.saturating_add(cost);
    }

    /// Spends `cost` if it fits in what is left; whether it did.
    pub fn try_spend(&mut self, cost: u64) -> bool {
        let fits = self.left().is_none_or(|left| left >= cost);
        if fits {
            self.spend(cost);
        }
        fits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_holds_only_the_calls_of_its_span() {
        let start = Instant::now();
        let mut window = RollingWindow::new(Duration::from_secs(2));
        assert_eq!(window.reset_secs(start), 2, "empty: the whole span");
        assert_eq!(window.record(start), 1);
        assert_eq!(window.record(start + Duration::from_millis(500)), 2);
        let later = start + Duration::from_millis(1500);
        assert_eq!(window.count(later), 2);
        assert_eq!(window.reset_secs(later), 1, "0.5 s rounds up to 1");
        assert_eq!(
            window.count(start + Duration::from_secs(2)),
            1,
            "the first left"
        );
        assert_eq!(window.count(start + Duration::from_secs(3)), 0);
    }

    #[test]
    fn a_budget_spends_what_fits_and_resets_each_day() {
        let midnight = DateTime::parse_from_rfc3339("2026-12-02T00:00:00Z")
            .expect("date")
            .with_timezone(&Utc);
        let mut budget = DailyBudget::new(Some(10), Some(midnight));
        assert!(budget.try_spend(6));
        assert!(!budget.try_spend(5), "5 does not fit in 4");
        assert_eq!(budget.left(), Some(4));
        budget.spend(5);
        assert!(budget.overspent());
        budget.roll(midnight - TimeDelta::seconds(1));
        assert_eq!(budget.spent(), 11, "the day has not ended");
        budget.roll(midnight + TimeDelta::days(2));
        assert_eq!(budget.spent(), 0);
        assert_eq!(budget.resets_at(), Some(midnight + TimeDelta::days(3)));
        let mut unlimited = DailyBudget::new(None, None);
        assert!(unlimited.try_spend(u64::MAX));
        assert_eq!(unlimited.left(), None);
    }
}
