//! The Slatis delivery envelope: `{event, timestamp, webhook_id, data}` (v1) or its
//! camelCase legacy form (`webhookId`, `data.startTime`).
//!
//! Invariants: parsing only requires a JSON object with a string `event`; everything else
//! is kept as sent, so mappings see exactly what Slatis delivered. The replay rule
//! ([`Envelope::check_fresh`]) reads the signed `timestamp` only: missing is accepted,
//! unreadable or older than the dedupe window is refused.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::time::Duration;

/// The dedupe key of a delivery: its signed `timestamp` in milliseconds (8 bytes,
/// big-endian; zero when it has none) followed by the SHA-256 of its raw body. Slatis
/// sends no event id, and a retry resends the same bytes, so the same body for the same
/// tenant is a duplicate: the hash decides. The time in front only orders the keys:
/// deliveries arrive roughly in event time, so a new key lands beside the latest ones in
/// the store's index instead of on a random page of a week of keys (which cost a page of
/// log per webhook).
pub fn dedupe_key(timestamp: Option<DateTime<Utc>>, raw: &[u8]) -> Vec<u8> {
    let ms = timestamp.map_or(0, |t| u64::try_from(t.timestamp_millis()).unwrap_or(0));
    let mut key = Vec::with_capacity(40);
    key.extend_from_slice(&ms.to_be_bytes());
    key.extend_from_slice(&Sha256::digest(raw));
    key
}

/// `raw` with its top-level `timestamp` set to `at` (RFC 3339 with milliseconds and `Z`,
/// as Slatis writes it), for a test delivery sent now; `None` when `raw` is not a JSON
/// object with a `timestamp`. The rest is kept (key order too), re-serialised compactly.
pub fn restamp(raw: &[u8], at: DateTime<Utc>) -> Option<Vec<u8>> {
    let Ok(Value::Object(mut body)) = serde_json::from_slice(raw) else {
        return None;
    };
    *body.get_mut("timestamp")? = at
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        .into();
    serde_json::to_vec(&body).ok()
}

/// An email address as it is stored and searched: trimmed and lower-cased (`None` when
/// empty).
pub fn normal_email(email: &str) -> Option<String> {
    let email = email.trim();
    (!email.is_empty()).then(|| email.to_lowercase())
}

/// Why a signed body is not a Slatis event (answered with 400).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvelopeError {
    /// The body is not JSON.
    #[error("body is not valid JSON: {0}")]
    NotJson(String),
    /// The JSON is not an object with a string `event`.
    #[error("body has no string \"event\" field")]
    NoEvent,
    /// The signed `timestamp` is there but is not an ISO 8601 / RFC 3339 time.
    #[error("\"timestamp\" is not an ISO 8601 time such as 2026-05-01T14:05:00.000Z")]
    BadTimestamp,
    /// The signed `timestamp` is older than the dedupe window: a replay, or a delivery
    /// too late to be told from one.
    #[error(
        "event timestamp {timestamp} is older than the replay window ({window}, storage.retention): refused as a possible replay"
    )]
    Stale {
        /// The event's time (RFC 3339).
        timestamp: String,
        /// The window (`storage.retention`), e.g. `7days`.
        window: String,
    },
}

/// A parsed delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    /// The event type, e.g. `BOOKING_CREATED`.
    pub event: String,
    /// The booking id (`data.id`), if the event carries one; numbers are turned into text.
    pub booking_id: Option<String>,
    /// The attendee's email (`data.attendee.email`), trimmed and lower-cased so a search
    /// finds it however it was typed; `None` when absent or empty.
    pub attendee_email: Option<String>,
    /// The whole body as JSON.
    pub body: Value,
}

impl Envelope {
    /// Parses a raw body.
    ///
    /// # Errors
    /// [`EnvelopeError`] when the body is not JSON or has no string `event`.
    pub fn parse(raw: &[u8]) -> Result<Self, EnvelopeError> {
        let body: Value =
            serde_json::from_slice(raw).map_err(|e| EnvelopeError::NotJson(e.to_string()))?;
        let event = body
            .get("event")
            .and_then(Value::as_str)
            .ok_or(EnvelopeError::NoEvent)?
            .to_owned();
        let booking_id = match body.get("data").and_then(|d| d.get("id")) {
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        let attendee_email = body
            .pointer("/data/attendee/email")
            .and_then(Value::as_str)
            .and_then(normal_email);
        Ok(Self {
            event,
            booking_id,
            attendee_email,
            body,
        })
    }

    /// The `data` object as sent (`null` if absent).
    pub fn data(&self) -> &Value {
        self.body.get("data").unwrap_or(&Value::Null)
    }

    /// The signed `timestamp` (`None` when absent or null).
    ///
    /// # Errors
    /// [`EnvelopeError::BadTimestamp`] when it is there but not an RFC 3339 time (the
    /// ISO 8601 form Slatis documents, `2026-05-01T14:05:00.000Z`, with any offset).
    pub fn timestamp(&self) -> Result<Option<DateTime<Utc>>, EnvelopeError> {
        match self.body.get("timestamp") {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => DateTime::parse_from_rfc3339(s)
                .map(|t| Some(t.with_timezone(&Utc)))
                .map_err(|_| EnvelopeError::BadTimestamp),
            Some(_) => Err(EnvelopeError::BadTimestamp),
        }
    }

    /// Refuses a delivery that may be a replay: one whose signed `timestamp` is older
    /// than `now - window`, where `window` is how long dedupe keys are kept
    /// (`storage.retention`). Inside the window a replay is caught as a duplicate; past
    /// it, only this rule can tell.
    ///
    /// A delivery with no `timestamp` is accepted: the signature covers the body, so a
    /// timestamp can be neither removed from nor added to a captured delivery, and
    /// Slatis documents the field in one example only (its legacy CRM guide types the
    /// body without it), so refusing would risk refusing real deliveries. One whose
    /// `timestamp` cannot be read is refused ([`EnvelopeError::BadTimestamp`]): a time
    /// that cannot be checked would reopen the replay window for every body of its
    /// shape, and both versions of the docs give the one format. A time in the future
    /// is accepted (clocks differ; it is no replay).
    ///
    /// # Errors
    /// [`EnvelopeError::BadTimestamp`] or [`EnvelopeError::Stale`].
    pub fn check_fresh(&self, now: DateTime<Utc>, window: Duration) -> Result<(), EnvelopeError> {
        let Some(at) = self.timestamp()? else {
            return Ok(());
        };
        // A window too long to subtract from now leaves nothing outside it.
        let oldest = chrono::Duration::from_std(window)
            .ok()
            .and_then(|w| now.checked_sub_signed(w));
        match oldest {
            Some(oldest) if at < oldest => Err(EnvelopeError::Stale {
                timestamp: at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                window: humantime::format_duration(window).to_string(),
            }),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same body gives the same key; another body another key; and keys sort by the
    /// event time first, whatever the bodies hash to.
    #[test]
    fn dedupe_keys_are_the_body_s_hash_ordered_by_event_time() {
        let at = |s: &str| Some(DateTime::parse_from_rfc3339(s).expect("time").to_utc());
        let (early, late) = (
            at("2026-11-27T10:05:00.000Z"),
            at("2026-11-27T10:05:00.001Z"),
        );
        assert_eq!(dedupe_key(early, b"a"), dedupe_key(early, b"a"));
        assert_ne!(dedupe_key(early, b"a"), dedupe_key(early, b"b"));
        for (x, y) in [(b"a", b"b"), (b"b", b"a")] {
            assert!(dedupe_key(early, x) < dedupe_key(late, y));
        }
        assert!(
            dedupe_key(None, b"z") < dedupe_key(early, b"a"),
            "no time sorts first"
        );
        assert_eq!(dedupe_key(early, b"a").len(), 40);
        assert_eq!(
            &dedupe_key(early, b"a")[8..],
            Sha256::digest(b"a").as_slice()
        );
    }

    #[test]
    fn reads_both_spellings() {
        let v1 = Envelope::parse(br#"{"event":"BOOKING_CREATED","webhook_id":"wh","data":{"id":"bkg_1","start_time":"x"}}"#)
            .expect("v1");
        assert_eq!(v1.booking_id.as_deref(), Some("bkg_1"));
        let legacy = Envelope::parse(
            br#"{"event":"BOOKING_CREATED","webhookId":"wh","data":{"id":7,"startTime":"x"}}"#,
        )
        .expect("legacy");
        assert_eq!(legacy.booking_id.as_deref(), Some("7"));
        assert_eq!(legacy.data()["startTime"], "x");
    }

    #[test]
    fn rejects_non_events() {
        assert!(matches!(
            Envelope::parse(b"not json"),
            Err(EnvelopeError::NotJson(_))
        ));
        assert_eq!(Envelope::parse(b"[1,2]"), Err(EnvelopeError::NoEvent));
        assert_eq!(
            Envelope::parse(br#"{"event":5}"#),
            Err(EnvelopeError::NoEvent)
        );
        assert_eq!(
            Envelope::parse(b""),
            Err(EnvelopeError::NotJson(
                "EOF while parsing a value at line 1 column 0".into()
            ))
        );
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("time")
            .with_timezone(&Utc)
    }

    const WEEK: Duration = Duration::from_secs(7 * 86_400);

    fn with_timestamp(ts: &str) -> Envelope {
        Envelope::parse(format!(r#"{{"event":"BOOKING_CREATED","timestamp":{ts}}}"#).as_bytes())
            .expect("parse")
    }

    #[test]
    fn a_timestamp_inside_the_window_is_fresh() {
        let now = at("2026-05-08T14:05:00Z");
        let e = with_timestamp(r#""2026-05-01T14:05:00.000Z""#);
        assert_eq!(e.timestamp(), Ok(Some(at("2026-05-01T14:05:00Z"))));
        assert_eq!(e.check_fresh(now, WEEK), Ok(()), "exactly at the edge");
        let offset = with_timestamp(r#""2026-05-01T16:05:01+02:00""#);
        assert_eq!(offset.check_fresh(now, WEEK), Ok(()), "any offset");
        let future = with_timestamp(r#""2099-01-01T00:00:00Z""#);
        assert_eq!(future.check_fresh(now, WEEK), Ok(()));
    }

    #[test]
    fn a_timestamp_past_the_window_is_stale() {
        let now = at("2026-05-08T14:05:00Z");
        let e = with_timestamp(r#""2026-05-01T14:04:59.999Z""#);
        let err = e.check_fresh(now, WEEK).expect_err("stale");
        assert_eq!(
            err,
            EnvelopeError::Stale {
                timestamp: "2026-05-01T14:04:59.999Z".into(),
                window: "7days".into()
            }
        );
        assert!(err.to_string().contains("replay"), "{err}");
    }

    #[test]
    fn a_missing_timestamp_is_accepted_and_an_unreadable_one_refused() {
        let now = at("2026-05-08T14:05:00Z");
        for missing in [
            r#"{"event":"PING"}"#,
            r#"{"event":"PING","timestamp":null}"#,
        ] {
            let e = Envelope::parse(missing.as_bytes()).expect("parse");
            assert_eq!(e.timestamp(), Ok(None));
            assert_eq!(e.check_fresh(now, WEEK), Ok(()));
        }
        for bad in [
            r#""yesterday""#,
            "1714572300",
            r#""2026-05-01""#,
            r#""""#,
            "{}",
        ] {
            assert_eq!(
                with_timestamp(bad).check_fresh(now, WEEK),
                Err(EnvelopeError::BadTimestamp),
                "{bad}"
            );
        }
    }

    #[test]
    fn restamping_sets_only_the_top_level_timestamp() {
        let raw =
            br#"{"event":"A","timestamp":"2020-01-01T00:00:00.000Z","data":{"timestamp":"x"}}"#;
        let out = restamp(raw, at("2026-05-01T14:05:00Z")).expect("restamped");
        assert_eq!(
            out,
            br#"{"event":"A","timestamp":"2026-05-01T14:05:00.000Z","data":{"timestamp":"x"}}"#
        );
        assert_eq!(restamp(br#"{"event":"A"}"#, Utc::now()), None);
        assert_eq!(restamp(b"not json", Utc::now()), None);
    }

    #[test]
    fn a_window_too_long_to_subtract_refuses_nothing() {
        let e = with_timestamp(r#""1970-01-01T00:00:00Z""#);
        assert_eq!(e.check_fresh(Utc::now(), Duration::MAX), Ok(()));
    }

    #[test]
    fn an_event_without_booking_id_has_none() {
        let e = Envelope::parse(br#"{"event":"PING"}"#).expect("parse");
        assert_eq!(e.booking_id, None);
        assert_eq!(e.attendee_email, None);
        assert!(e.data().is_null());
    }

    #[test]
    fn the_attendee_email_is_kept_trimmed_and_lower_cased() {
        let e = Envelope::parse(
            br#"{"event":"BOOKING_CREATED","data":{"id":"b","attendee":{"email":" Jane@Example.COM "}}}"#,
        )
        .expect("parse");
        assert_eq!(e.attendee_email.as_deref(), Some("jane@example.com"));
        let blank =
            Envelope::parse(br#"{"event":"X","data":{"attendee":{"email":" "}}}"#).expect("parse");
        assert_eq!(blank.attendee_email, None);
    }
}
