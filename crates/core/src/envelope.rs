//! The Slatis delivery envelope: `{event, timestamp, webhook_id, data}` (v1) or its
//! camelCase legacy form (`webhookId`, `data.startTime`).
//!
//! Invariant: parsing only requires a JSON object with a string `event`; everything else
//! is kept as sent, so mappings see exactly what Slatis delivered.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// The dedupe key of a delivery: SHA-256 of its raw body. Slatis sends no event id, and a
/// retry resends the same bytes, so the same body for the same tenant is a duplicate.
pub fn dedupe_key(raw: &[u8]) -> Vec<u8> {
    Sha256::digest(raw).to_vec()
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
}

/// A parsed delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    /// The event type, e.g. `BOOKING_CREATED`.
    pub event: String,
    /// The booking id (`data.id`), if the event carries one; numbers are turned into text.
    pub booking_id: Option<String>,
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
        Ok(Self {
            event,
            booking_id,
            body,
        })
    }

    /// The `data` object as sent (`null` if absent).
    pub fn data(&self) -> &Value {
        self.body.get("data").unwrap_or(&Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn an_event_without_booking_id_has_none() {
        let e = Envelope::parse(br#"{"event":"PING"}"#).expect("parse");
        assert_eq!(e.booking_id, None);
        assert!(e.data().is_null());
    }
}
