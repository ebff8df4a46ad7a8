//! What a list, a count or a replay is asked for: filters, cursor and limit, as the admin
//! API's query string and the CLI's flags give them, checked into the store's queries.
//!
//! Invariants: every value is checked here, and a wrong one is an [`super::OpsError::Invalid`]
//! naming the parameter and what it takes; an empty value counts as absent (forms send
//! `tenant=`); a cursor is opaque to callers (base64url of the last item's sort key, with
//! the list it belongs to), so pages stay stable while events arrive: new items sort
//! before the first page, never into a later one.

use super::OpsError;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, TimeZone, Utc};
use serde::Deserialize;
use slatis_store::{EventKey, Filter, JobId, JobStatus};
use utoipa::IntoParams;

/// Items per page when no `limit` is given.
pub const DEFAULT_LIMIT: u32 = 50;
/// The most items a page holds (a larger `limit` is cut to this).
pub const MAX_LIMIT: u32 = 500;

/// Filters of the lists and of a replay by filter; every one given must match.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(default)]
pub struct Filters {
    /// Only this tenant.
    pub tenant: Option<String>,
    /// Jobs in this state: `pending`, `running`, `done` or `dead` (events: with a job in
    /// it).
    pub status: Option<String>,
    /// Only this event type, e.g. `BOOKING_CREATED`.
    pub event_type: Option<String>,
    /// Only this booking (`data.id`).
    pub booking_id: Option<String>,
    /// Only this attendee email (any case).
    pub email: Option<String>,
    /// A booking id or, when it holds `@`, an attendee email (the dashboard's search box).
    pub q: Option<String>,
    /// Only this event (jobs: of it).
    pub event_id: Option<String>,
    /// Received at or after this RFC 3339 time, e.g. `2026-05-01T14:05:00Z`.
    pub since: Option<String>,
    /// Received before this RFC 3339 time.
    pub until: Option<String>,
}

/// A page: where to continue and how many.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(default)]
pub struct Paging {
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Items per page: 1 to 500 (more is cut to 500), 50 if absent.
    #[param(value_type = Option<u32>)]
    pub limit: Option<String>,
}

/// `Some` of a value that is not blank.
fn given(v: Option<&String>) -> Option<String> {
    v.map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn time(name: &str, v: Option<&String>) -> Result<Option<DateTime<Utc>>, OpsError> {
    given(v)
        .map(|s| {
            DateTime::parse_from_rfc3339(&s)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| {
                    OpsError::Invalid(format!(
                        "{name} is not an RFC 3339 time such as 2026-05-01T14:05:00Z: {s:?}"
                    ))
                })
        })
        .transpose()
}

impl Filters {
    /// The store's filter.
    ///
    /// # Errors
    /// [`OpsError::Invalid`] for an unknown status, an unreadable time, or `since` not
    /// before `until`.
    pub fn to_filter(&self) -> Result<Filter, OpsError> {
        let status = given(self.status.as_ref())
            .map(|s| {
                JobStatus::parse(&s).ok_or_else(|| {
                    OpsError::Invalid(format!(
                        "status is pending, running, done or dead, not {s:?}"
                    ))
                })
            })
            .transpose()?;
        let mut filter = Filter {
            tenant: given(self.tenant.as_ref()),
            status,
            event_type: given(self.event_type.as_ref()),
            booking_id: given(self.booking_id.as_ref()),
            attendee_email: given(self.email.as_ref()).map(|e| e.to_lowercase()),
            event_id: given(self.event_id.as_ref()),
            since: time("since", self.since.as_ref())?,
            until: time("until", self.until.as_ref())?,
        };
        if let Some(q) = given(self.q.as_ref()) {
            let (slot, q) = if q.contains('@') {
                (&mut filter.attendee_email, q.to_lowercase())
            } else {
                (&mut filter.booking_id, q)
            };
            if slot.is_some() {
                return Err(OpsError::Invalid(
                    "q is a booking id or an email: give it or booking_id/email, not both"
                        .to_owned(),
                ));
            }
            *slot = Some(q);
        }
        if let (Some(since), Some(until)) = (filter.since, filter.until)
            && since >= until
        {
            return Err(OpsError::Invalid("since must be before until".to_owned()));
        }
        Ok(filter)
    }
}

impl Paging {
    /// The page size: [`DEFAULT_LIMIT`] if absent, at most [`MAX_LIMIT`].
    ///
    /// # Errors
    /// [`OpsError::Invalid`] when it is not a positive whole number.
    pub fn limit(&self) -> Result<u32, OpsError> {
        match given(self.limit.as_ref()) {
            None => Ok(DEFAULT_LIMIT),
            Some(s) => match s.parse::<u64>() {
                Ok(n) if n > 0 => {
                    Ok(u32::try_from(n.min(u64::from(MAX_LIMIT))).unwrap_or(MAX_LIMIT))
                }
                _ => Err(OpsError::Invalid(format!(
                    "limit is a whole number from 1 to {MAX_LIMIT}, not {s:?}"
                ))),
            },
        }
    }

    fn cursor(&self, list: char) -> Result<Option<String>, OpsError> {
        let Some(c) = given(self.cursor.as_ref()) else {
            return Ok(None);
        };
        let bad = bad_cursor;
        let text = URL_SAFE_NO_PAD
            .decode(c.as_bytes())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(bad)?;
        let rest = text
            .strip_prefix(list)
            .and_then(|r| r.strip_prefix(':'))
            .ok_or_else(bad)?;
        Ok(Some(rest.to_owned()))
    }

    /// Where a job page continues (after which id).
    ///
    /// # Errors
    /// [`OpsError::Invalid`] for a cursor this list did not give.
    pub fn job_cursor(&self) -> Result<Option<JobId>, OpsError> {
        self.cursor('j')?
            .map(|rest| rest.parse().map_err(|_| bad_cursor()))
            .transpose()
    }

    /// Where an event page continues.
    ///
    /// # Errors
    /// [`OpsError::Invalid`] for a cursor this list did not give.
    pub fn event_cursor(&self) -> Result<Option<EventKey>, OpsError> {
        self.cursor('e')?
            .map(|rest| {
                let (micros, id) = rest.split_once(':').unwrap_or_default();
                let at = micros
                    .parse::<i64>()
                    .ok()
                    .and_then(|m| Utc.timestamp_micros(m).single());
                match at {
                    Some(received_at) if !id.is_empty() => Ok(EventKey {
                        received_at,
                        id: id.to_owned(),
                    }),
                    _ => Err(bad_cursor()),
                }
            })
            .transpose()
    }
}

fn bad_cursor() -> OpsError {
    OpsError::Invalid("cursor is not one this list gave: start again without it".to_owned())
}

/// The cursor after job `id`.
pub fn job_cursor(id: JobId) -> String {
    URL_SAFE_NO_PAD.encode(format!("j:{id}"))
}

/// The cursor after the event `key`.
pub fn event_cursor(key: &EventKey) -> String {
    URL_SAFE_NO_PAD.encode(format!(
        "e:{}:{}",
        key.received_at.timestamp_micros(),
        key.id
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paging(cursor: &str) -> Paging {
        Paging {
            cursor: Some(cursor.to_owned()),
            limit: None,
        }
    }

    #[test]
    fn cursors_come_back_as_they_were_given_and_only_to_their_list() {
        assert_eq!(paging(&job_cursor(42)).job_cursor().expect("job"), Some(42));
        let key = EventKey {
            received_at: Utc
                .timestamp_micros(1_777_000_000_123_456)
                .single()
                .expect("t"),
            id: "evt_01:x".into(),
        };
        assert_eq!(
            paging(&event_cursor(&key)).event_cursor().expect("event"),
            Some(key)
        );
        assert!(
            paging(&job_cursor(1)).event_cursor().is_err(),
            "another list's"
        );
        for bad in ["%%%", "ZTo", "ajpub3Q", "ZTox"] {
            assert!(paging(bad).job_cursor().is_err(), "{bad}");
            assert!(paging(bad).event_cursor().is_err(), "{bad}");
        }
    }

    #[test]
    fn limits_default_and_are_bounded() {
        let limit = |s: Option<&str>| {
            Paging {
                cursor: None,
                limit: s.map(str::to_owned),
            }
            .limit()
        };
        assert_eq!(limit(None).expect("default"), DEFAULT_LIMIT);
        assert_eq!(limit(Some("7")).expect("given"), 7);
        assert_eq!(limit(Some("100000")).expect("cut"), MAX_LIMIT);
        for bad in ["0", "-1", "ten"] {
            assert!(limit(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn filters_are_checked_and_q_searches_booking_or_email() {
        let f = Filters {
            q: Some("Jane@X.com".into()),
            status: Some("dead".into()),
            tenant: Some(" ".into()),
            since: Some("2026-05-01T14:05:00+02:00".into()),
            ..Filters::default()
        }
        .to_filter()
        .expect("filter");
        assert_eq!(f.attendee_email.as_deref(), Some("jane@x.com"));
        assert_eq!(f.status, Some(JobStatus::Dead));
        assert_eq!(f.tenant, None, "blank is absent");
        assert_eq!(
            f.since.map(|t| t.to_rfc3339()).as_deref(),
            Some("2026-05-01T12:05:00+00:00")
        );
        let booking = Filters {
            q: Some("BKG_1".into()),
            ..Filters::default()
        };
        assert_eq!(
            booking.to_filter().expect("q").booking_id.as_deref(),
            Some("BKG_1")
        );
        let wrong = [
            Filters {
                status: Some("gone".into()),
                ..Filters::default()
            },
            Filters {
                since: Some("yesterday".into()),
                ..Filters::default()
            },
            Filters {
                since: Some("2026-05-02T00:00:00Z".into()),
                until: Some("2026-05-01T00:00:00Z".into()),
                ..Filters::default()
            },
            Filters {
                q: Some("b".into()),
                booking_id: Some("c".into()),
                ..Filters::default()
            },
        ];
        for w in wrong {
            assert!(matches!(w.to_filter(), Err(OpsError::Invalid(_))), "{w:?}");
        }
    }
}
