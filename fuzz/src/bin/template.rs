//! Fuzz target: compiling and rendering a mapping template.
//!
//! Input: the template, a NUL byte, then the event's `data` as JSON (an empty object when
//! absent or not JSON). Properties: compiling and rendering never panic.

use serde_json::json;
use slatis_core::template::{RenderContext, Templates};

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let (src, rest) = match data.iter().position(|b| *b == 0) {
            Some(i) => (&data[..i], &data[i + 1..]),
            None => (data, &[][..]),
        };
        let Ok(src) = std::str::from_utf8(src) else {
            return;
        };
        let event_data = serde_json::from_slice(rest).unwrap_or_else(|_| json!({}));
        let mut templates = Templates::default();
        let Ok(text) = templates.compile("fuzz", src) else {
            return;
        };
        let cx = RenderContext::new(json!({
            "event": "BOOKING_CREATED",
            "data": event_data,
            "tenant": "fuzz",
            "delivery": { "id": "evt_fuzz", "received_at": "2026-05-01T14:05:00.000Z" },
            "steps": { "contact": { "id": "1", "created": true } },
        }));
        let _ = templates.render(&text, &cx);
    });
}
