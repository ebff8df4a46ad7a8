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
//! ones (`x-daily-ratelimit-token-limit`, `x-daily-ratelimit-token-remaining`).

use std::collections::{HashMap, VecDeque};
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

/// Which limit refused a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Over {
    Burst,
    Daily,
}

/// Answer headers.
pub(super) type Headers = Vec<(&'static str, String)>;

/// The burst windows and the day's spending.
#[derive(Debug)]
pub(super) struct Limits {
    burst: usize,
    search_burst: usize,
    window: Duration,
    /// The company's tokens per day, if limited.
    budget: Option<u64>,
    spent: u64,
    calls: HashMap<String, VecDeque<Instant>>,
    searches: HashMap<String, VecDeque<Instant>>,
}

fn prune(calls: &mut VecDeque<Instant>, now: Instant, window: Duration) {
    while calls.front().is_some_and(|at| *at + window <= now) {
        calls.pop_front();
    }
}

/// Whole seconds until the oldest call leaves the window, at least 1.
fn reset_secs(calls: &VecDeque<Instant>, now: Instant, window: Duration) -> u64 {
    let left = calls.front().map_or(window, |oldest| {
        (*oldest + window).saturating_duration_since(now)
    });
    (left.as_secs() + u64::from(left.subsec_nanos() > 0)).max(1)
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
            budget,
            spent: 0,
            calls: HashMap::new(),
            searches: HashMap::new(),
        }
    }

    /// The day's tokens left, if the company has a budget.
    pub(super) fn left(&self) -> Option<u64> {
        self.budget.map(|b| b.saturating_sub(self.spent))
    }

    /// A new day: the budget is whole again.
    pub(super) fn reset_day(&mut self) {
        self.spent = 0;
    }

    /// Counts a call of `token`: which limit it is over (then it takes nothing), and the
    /// headers its answer carries.
    pub(super) fn count(&mut self, token: &str, cost: Cost) -> (Option<Over>, Headers) {
        let now = Instant::now();
        let window = self.window;
        let search = cost == Cost::Search;
        let left = self.left();
        let daily = |left: Option<u64>| daily_headers(self.budget, left);
        let calls = self.calls.entry(token.to_owned()).or_default();
        prune(calls, now, window);
        let searches = self.searches.entry(token.to_owned()).or_default();
        prune(searches, now, window);
        let burst_full = if calls.len() >= self.burst {
            Some((self.burst, reset_secs(calls, now, window)))
        } else if search && searches.len() >= self.search_burst {
            Some((self.search_burst, reset_secs(searches, now, window)))
        } else {
            None
        };
        if let Some((limit, reset)) = burst_full {
            let mut headers = vec![
                ("x-ratelimit-limit", limit.to_string()),
                ("x-ratelimit-remaining", "0".to_owned()),
                ("x-ratelimit-reset", reset.to_string()),
                ("retry-after", reset.to_string()),
            ];
            headers.extend(daily(left));
            return (Some(Over::Burst), headers);
        }
        let mut headers = vec![
            ("x-ratelimit-limit", self.burst.to_string()),
            (
                "x-ratelimit-remaining",
                self.burst.saturating_sub(calls.len() + 1).to_string(),
            ),
            (
                "x-ratelimit-reset",
                reset_secs(calls, now, window).to_string(),
            ),
        ];
        if left.is_some_and(|l| l < cost.tokens()) {
            headers.extend(daily(Some(0)));
            return (Some(Over::Daily), headers);
        }
        calls.push_back(now);
        if search {
            searches.push_back(now);
        }
        headers.extend(daily(left.map(|l| l - cost.tokens())));
        self.spent = self.spent.saturating_add(cost.tokens());
        (None, headers)
    }
}

/// The daily budget's headers, when the company has one.
fn daily_headers(budget: Option<u64>, left: Option<u64>) -> Headers {
    match (budget, left) {
        (Some(budget), Some(left)) => vec![
            ("x-daily-ratelimit-token-limit", budget.to_string()),
            ("x-daily-ratelimit-token-remaining", left.to_string()),
        ],
        _ => Vec::new(),
    }
}
