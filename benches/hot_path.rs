//! The per-webhook CPU work, measured with criterion (`cargo bench --bench hot_path`):
//! verifying a signature, parsing an envelope, and rendering a typical step of five
//! properties the way the worker does.

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};
use slatis_core::job::{self, JobEvent};
use slatis_core::{Envelope, signature};
use std::hint::black_box;

// The http connector registers the step's connector type.
use slatis_connector_http as _;

/// A ~300-byte booking, as Slatis sends it.
fn body() -> Vec<u8> {
    json!({
        "event": "BOOKING_CREATED",
        "timestamp": "2026-11-27T10:05:00.000Z",
        "webhook_id": "wh_bench",
        "data": {
            "id": "bkg_01HZX9Q2R3",
            "title": "Intro call",
            "start_time": "2026-12-01T15:00:00Z",
            "end_time": "2026-12-01T15:30:00Z",
            "attendee": { "name": "Ada Lovelace", "email": "Ada@Example.com", "phone": "+44 20 7946 0000" },
            "notes": "Wants to talk about the analytical engine"
        }
    })
    .to_string()
    .into_bytes()
}

const CONFIG: &str = r#"
tenants:
  bench:
    signing_secrets: ["whsec_bench_secret"]
    connectors:
      api: { type: http, base_url: "https://crm.example.com", dry_run: true }
    routes:
      BOOKING_CREATED:
        - connector: api
          action: request
          method: PUT
          path: "/contacts/{{lower data.attendee.email}}"
          json:
            email: "{{lower data.attendee.email}}"
            first_name: "{{first_name data.attendee.name}}"
            last_name: "{{last_name data.attendee.name}}"
            starts_ms: { value: "{{epoch_ms data.start_time}}", type: integer }
            notes: "{{default data.notes ''}}"
"#;

fn hot_path(c: &mut Criterion) {
    let body = body();
    let secret = b"whsec_bench_secret".to_vec();
    let header = signature::sign(&secret, &body);
    c.bench_function("verify a signature (1 secret)", |b| {
        b.iter(|| signature::verify(Some(black_box(&header)), &[&secret], black_box(&body), 1));
    });
    c.bench_function("verify a signature (padded to 3 secrets)", |b| {
        b.iter(|| signature::verify(Some(black_box(&header)), &[&secret], black_box(&body), 3));
    });
    c.bench_function("parse an envelope", |b| {
        b.iter(|| Envelope::parse(black_box(&body)).expect("envelope"));
    });

    let config = slatis_core::config::load_str(CONFIG, &|_| None).expect("config");
    let tenant = &config.tenants["bench"];
    let step = tenant
        .steps("BOOKING_CREATED", "api")
        .next()
        .expect("the step");
    let envelope: Value = serde_json::from_slice(&body).expect("json");
    let event = JobEvent {
        id: "evt_bench",
        event_type: "BOOKING_CREATED",
        received_at: chrono::Utc::now(),
        body: &envelope,
    };
    c.bench_function("render a five-property step", |b| {
        b.iter(|| {
            let cx = job::context("bench", &event, &json!({}));
            step.render(&config.templates, &cx).expect("render")
        });
    });
}

criterion_group!(benches, hot_path);
criterion_main!(benches);
