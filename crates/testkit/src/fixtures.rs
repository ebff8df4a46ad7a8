//! Sample Slatis deliveries and signature test vectors made by an independent
//! implementation (see `fixtures/README.md`).

use serde::Deserialize;

/// A `BOOKING_CREATED` for Ada Lovelace.
pub const BOOKING_CREATED: &str = include_str!("../fixtures/booking_created.json");
/// A `BOOKING_CREATED` with every illustrative field: a four-word Spanish name, a
/// mixed-case email, quotes, `&` and `<` in the notes.
pub const BOOKING_CREATED_FULL: &str = include_str!("../fixtures/booking_created_full.json");
/// The cancellation of [`BOOKING_CREATED`]'s booking.
pub const BOOKING_CANCELLED: &str = include_str!("../fixtures/booking_cancelled.json");
/// The reschedule of [`BOOKING_CREATED`]'s booking.
pub const BOOKING_RESCHEDULED: &str = include_str!("../fixtures/booking_rescheduled.json");
/// A booking whose attendee has a one-word name.
pub const SINGLE_NAME: &str = include_str!("../fixtures/single_name.json");
/// The signature vectors.
pub const SIGNATURE_VECTORS: &str = include_str!("../fixtures/signature_vectors.json");

/// One signature vector.
#[derive(Debug, Deserialize)]
pub struct Vector {
    /// The fixture file signed, if the body is a file.
    pub file: Option<String>,
    /// A name, for bodies given inline.
    pub name: Option<String>,
    /// The body in hex, for bodies given inline.
    pub body_hex: Option<String>,
    /// The signing secret.
    pub secret: String,
    /// The expected header value.
    #[serde(rename = "x-slatis-signature")]
    pub signature: String,
}

impl Vector {
    /// The exact bytes that were signed.
    ///
    /// # Panics
    /// On a vector that names an unknown file or has bad hex (a broken fixture).
    pub fn body(&self) -> Vec<u8> {
        if let Some(hex) = &self.body_hex {
            return (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("fixture hex"))
                .collect();
        }
        let text = match self.file.as_deref() {
            Some("booking_created.json") => BOOKING_CREATED,
            Some("booking_created_full.json") => BOOKING_CREATED_FULL,
            Some("booking_cancelled.json") => BOOKING_CANCELLED,
            Some("booking_rescheduled.json") => BOOKING_RESCHEDULED,
            Some("single_name.json") => SINGLE_NAME,
            other => panic!("unknown fixture {other:?}"),
        };
        text.as_bytes().to_vec()
    }
}

/// Every signature vector.
///
/// # Panics
/// If the vectors file is broken.
pub fn signature_vectors() -> Vec<Vector> {
    serde_json::from_str(SIGNATURE_VECTORS).expect("signature_vectors.json")
}

/// A `BOOKING_*` event for booking `id` with attendee `name` / `email`, as Slatis sends
/// it (v1 envelope).
pub fn booking(event: &str, id: &str, name: &str, email: &str) -> String {
    serde_json::json!({
        "event": event,
        "timestamp": "2026-11-27T10:05:00.000Z",
        "webhook_id": "wh_test",
        "data": {
            "id": id,
            "status": "SCHEDULED",
            "start_time": "2026-12-01T15:00:00.000Z",
            "end_time": "2026-12-01T15:30:00.000Z",
            "attendee": { "name": name, "email": email }
        }
    })
    .to_string()
}
