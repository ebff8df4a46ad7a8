//! The `WHERE` clauses of the filtered lists and replays, written once for both backends.
//!
//! Invariants: only the conditions a [`Filter`] sets are written, so each query can use
//! the index its filter names (an `? IS NULL OR …` would hide it from the planner); every
//! value is a bound parameter, never spliced into the text; `j` is `jobs` and `e` is
//! `events` in every clause.

use crate::{EventQuery, Filter, JobQuery};
use chrono::{DateTime, Utc};

/// A bound value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Arg {
    /// Text.
    Text(String),
    /// An integer (a job id).
    Int(i64),
    /// A time (SQLite: Unix milliseconds; PostgreSQL: `timestamptz`).
    Time(DateTime<Utc>),
}

/// A clause with its parameters, numbered from `?1` (SQLite) or `$1` (PostgreSQL).
#[derive(Debug, Default)]
pub(crate) struct Clause {
    /// `cond AND cond …` (`TRUE` when nothing is filtered).
    pub text: String,
    /// The parameters, in placeholder order.
    pub args: Vec<Arg>,
    dollar: bool,
    conds: Vec<String>,
}

impl Clause {
    fn new(dollar: bool) -> Self {
        Self {
            dollar,
            ..Self::default()
        }
    }

    /// The next placeholder, bound to `arg`.
    pub(crate) fn bind(&mut self, arg: Arg) -> String {
        self.args.push(arg);
        format!("{}{}", if self.dollar { '$' } else { '?' }, self.args.len())
    }

    fn when(&mut self, value: Option<&String>, cond: impl FnOnce(&str) -> String) {
        if let Some(v) = value {
            let p = self.bind(Arg::Text(v.clone()));
            self.conds.push(cond(&p));
        }
    }

    fn when_time(&mut self, value: Option<DateTime<Utc>>, cond: impl FnOnce(&str) -> String) {
        if let Some(v) = value {
            let p = self.bind(Arg::Time(v));
            self.conds.push(cond(&p));
        }
    }

    /// The filter's conditions on events (`e`); `tenant` and `at` name the columns the
    /// tenant and the time range read.
    fn events(&mut self, f: &Filter, tenant: &str, at: &str) {
        self.when(f.tenant.as_ref(), |p| format!("{tenant} = {p}"));
        self.when(f.event_type.as_ref(), |p| format!("e.event_type = {p}"));
        self.when(f.booking_id.as_ref(), |p| format!("e.booking_id = {p}"));
        let email = f.attendee_email.as_ref().map(|e| e.to_lowercase());
        self.when(email.as_ref(), |p| format!("e.attendee_email = {p}"));
        self.when_time(f.since, |p| format!("{at} >= {p}"));
        self.when_time(f.until, |p| format!("{at} < {p}"));
    }

    fn done(mut self) -> Self {
        self.text = if self.conds.is_empty() {
            "TRUE".to_owned()
        } else {
            self.conds.join(" AND ")
        };
        self
    }
}

/// The conditions of a job list or replay over `jobs j JOIN events e` (the time range
/// reads the job's creation, which is its event's arrival).
pub(crate) fn jobs(filter: &Filter, before: Option<i64>, dollar: bool) -> Clause {
    let mut c = Clause::new(dollar);
    c.events(filter, "j.tenant", "j.created_at");
    let status = filter.status.map(|s| s.as_str().to_owned());
    c.when(status.as_ref(), |p| format!("j.status = {p}"));
    c.when(filter.event_id.as_ref(), |p| format!("j.event_id = {p}"));
    if let Some(id) = before {
        let p = c.bind(Arg::Int(id));
        c.conds.push(format!("j.id < {p}"));
    }
    c.done()
}

/// The conditions of a replay of the dead jobs `filter` takes (its own `status` is
/// replaced: only dead jobs are replayed).
pub(crate) fn dead(filter: &Filter, dollar: bool) -> Clause {
    let dead = Filter {
        status: Some(crate::JobStatus::Dead),
        ..filter.clone()
    };
    jobs(&dead, None, dollar)
}

/// The columns a job summary is read from (`j` = jobs, `e` = events), on both backends.
macro_rules! job_columns {
    () => {
        "j.id, j.event_id, j.tenant, j.connector, e.event_type, e.booking_id, e.attendee_email, \
         j.status, j.attempts, j.run_at, j.last_error, j.created_at, j.updated_at"
    };
}
pub(crate) use job_columns;

/// The whole statement of a job page: `text` is the `SELECT`.
pub(crate) fn job_page(q: &JobQuery, dollar: bool) -> Clause {
    let mut c = jobs(&q.filter, q.before, dollar);
    let limit = c.bind(Arg::Int(i64::from(q.limit)));
    c.text = format!(
        concat!(
            "SELECT ",
            job_columns!(),
            " FROM jobs j JOIN events e ON e.id = j.event_id WHERE {} ORDER BY j.id DESC LIMIT {}"
        ),
        c.text, limit
    );
    c
}

/// The whole statement of an event page: `text` is the `SELECT`.
pub(crate) fn event_page(q: &EventQuery, dollar: bool) -> Clause {
    let f = &q.filter;
    let mut c = Clause::new(dollar);
    c.events(f, "e.tenant", "e.received_at");
    c.when(f.event_id.as_ref(), |p| format!("e.id = {p}"));
    let status = f.status.map(|s| s.as_str().to_owned());
    c.when(status.as_ref(), |p| {
        format!("EXISTS (SELECT 1 FROM jobs j WHERE j.event_id = e.id AND j.status = {p})")
    });
    if let Some(key) = &q.before {
        let at = c.bind(Arg::Time(key.received_at));
        let id = c.bind(Arg::Text(key.id.clone()));
        c.conds
            .push(format!("(e.received_at, e.id) < ({at}, {id})"));
    }
    let mut c = c.done();
    let limit = c.bind(Arg::Int(i64::from(q.limit)));
    c.text = format!(
        "SELECT e.id, e.tenant, e.event_type, e.booking_id, e.attendee_email, e.received_at, e.jobs \
         FROM events e WHERE {} ORDER BY e.received_at DESC, e.id DESC LIMIT {limit}",
        c.text
    );
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EventKey, JobStatus};

    #[test]
    fn only_the_filters_given_are_written() {
        let c = jobs(&Filter::default(), None, false);
        assert_eq!(c.text, "TRUE");
        assert!(c.args.is_empty());
        let f = Filter {
            tenant: Some("acme".into()),
            status: Some(JobStatus::Dead),
            attendee_email: Some("Jane@X.com".into()),
            ..Filter::default()
        };
        let c = jobs(&f, Some(7), true);
        assert_eq!(
            c.text,
            "j.tenant = $1 AND e.attendee_email = $2 AND j.status = $3 AND j.id < $4"
        );
        assert_eq!(c.args[1], Arg::Text("jane@x.com".into()), "lower-cased");
    }

    #[test]
    fn an_event_page_continues_after_its_key() {
        let at = Utc::now();
        let q = EventQuery {
            filter: Filter::default(),
            before: Some(EventKey {
                received_at: at,
                id: "evt_1".into(),
            }),
            limit: 5,
        };
        let c = event_page(&q, false);
        assert!(
            c.text.ends_with(
                "WHERE (e.received_at, e.id) < (?1, ?2) ORDER BY e.received_at DESC, e.id DESC LIMIT ?3"
            ),
            "{}",
            c.text
        );
        assert_eq!(
            c.args,
            vec![Arg::Time(at), Arg::Text("evt_1".into()), Arg::Int(5)]
        );
    }
}
