//! Pipedrive's two rate limits, as the mock keeps them
//! (<https://pipedrive.readme.io/docs/core-api-concepts-rate-limiting>):
//! - **burst**: per token, a rolling window of calls (20 per 2 s for an API token on the
//!   entry plan), and for search a lower one (10 per 2 s on every plan); over either is
//!   429 with `x-ratelimit-*` and `Retry-After`;
//! - **the daily token budget**: per company, each call costs tokens by what it does (v2
//!   costs, about half of v1's: get 1, list 10, create and update 5, delete 3, search 20);
//!   once the day's budget is spent every call is 429 until it resets, with
//!   `x-daily-ratelimit-token-remaining: 0` and no `Retry-After`.
//!
//! Invariants: a call over a limit takes no slot and spends no tokens; every
//! authenticated answer carries the burst headers and, when a budget is set, the daily
//! ones (`x-daily-ratelimit-token-limit`, `x-daily-ratelimit-token-remaining`); the budget
//! resets only when a test says so ([`Limits::reset_day`]).

use super::super::chassis::Verdict;
use super::super::chassis::limits::{DailyBudget, RollingWindow};
use super::super::chassis::reply::Headers;
use super::answers::over_limit;
use super::routes::Route;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// What a call does, for its token cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Cost {
    Get,
    List,
    Write,
    Delete,
    Search,
}

impl Cost {
    /// What a call of `route` costs.
    pub(super) fn of(route: &Route) -> Self {
        match route {
            Route::Search(_) => Self::Search,
            Route::List(_) => Self::List,
            Route::Create(_) | Route::Patch(..) => Self::Write,
            Route::Delete(..) => Self::Delete,
            Route::Get(..) | Route::BadId(_) | Route::NotFound => Self::Get,
        }
    }

    fn tokens(self) -> u64 {
        match self {
            Self::Get => 1,
            Self::List => 10,
            Self::Write => 5,
            Self::Delete => 3,
            Self::Search => 20,
        }
    }
}

/// The burst windows of each token and the company's day.
#[derive(Debug)]
pub(super) struct Limits {
    burst: usize,
    search_burst: usize,
    window: Duration,
    budget: DailyBudget,
    calls: HashMap<String, RollingWindow>,
    searches: HashMap<String, RollingWindow>,
}

impl Limits {
    pub(super) fn new(
        burst: usize,
        search_burst: usize,
        window: Duration,
        budget: Option<u64>,
    ) -> Self {
        Self {
            burst,
            search_burst,
            window,
            budget: DailyBudget::new(budget, None),
            calls: HashMap::new(),
            searches: HashMap::new(),
        }
    }

    /// The day's tokens left, if the company has a budget.
    pub(super) fn left(&self) -> Option<u64> {
        self.budget.left()
    }

    /// A new day: the budget is whole again.
    pub(super) fn reset_day(&mut self) {
        self.budget.reset();
    }

    /// Counts a call of `token`: whether it is over a limit (then it takes nothing), and
    /// the headers its answer carries.
    pub(super) fn count(&mut self, token: &str, cost: Cost) -> (Verdict, Headers) {
        let now = Instant::now();
        let search = cost == Cost::Search;
        let window = |windows: &mut HashMap<String, RollingWindow>| {
            let w = windows
                .entry(token.to_owned())
                .or_insert_with(|| RollingWindow::new(self.window));
            let n = w.count(now);
            (n, w.reset_secs(now))
        };
        let (calls, calls_reset) = window(&mut self.calls);
        let (searches, searches_reset) = window(&mut self.searches);
        let burst_full = if calls >= self.burst {
            Some((self.burst, calls_reset))
        } else if search && searches >= self.search_burst {
            Some((self.search_burst, searches_reset))
        } else {
            None
        };
        let left = self.budget.left();
        if let Some((limit, reset)) = burst_full {
            let mut headers = vec![
                ("x-ratelimit-limit", limit.to_string()),
                ("x-ratelimit-remaining", "0".to_owned()),
                ("x-ratelimit-reset", reset.to_string()),
                ("retry-after", reset.to_string()),
            ];
            headers.extend(self.daily_headers(left));
            return (Verdict::Limited(over_limit()), headers);
        }
        let mut headers = vec![
            ("x-ratelimit-limit", self.burst.to_string()),
            (
                "x-ratelimit-remaining",
                self.burst.saturating_sub(calls + 1).to_string(),
            ),
            ("x-ratelimit-reset", calls_reset.to_string()),
        ];
        if !self.budget.try_spend(cost.tokens()) {
            headers.extend(self.daily_headers(Some(0)));
            return (Verdict::Limited(over_limit()), headers);
        }
        let record = |windows: &mut HashMap<String, RollingWindow>| {
            if let Some(w) = windows.get_mut(token) {
                w.record(now);
            }
        };
        record(&mut self.calls);
        if search {
            record(&mut self.searches);
        }
        headers.extend(self.daily_headers(self.budget.left()));
        (Verdict::Pass, headers)
    }

    /// The daily budget's headers, when the company has one.
    fn daily_headers(&self, left: Option<u64>) -> Headers {
        match (self.budget.limit(), left) {
            (Some(budget), Some(left)) => vec![
                ("x-daily-ratelimit-token-limit", budget.to_string()),
                ("x-daily-ratelimit-token-remaining", left.to_string()),
            ],
            _ => Vec::new(),
        }
    }
}
