//! The mock's Slatis organisation: API keys with their scopes, webhooks (with their
//! secret and failure count), bookings, and the delivery log. Shared between the request
//! path (under the chassis' lock) and the delivery tasks, which lock only this.
//!
//! Invariants:
//! - a webhook's secret leaves the model only in a create or rotate-secret answer (and to
//!   the test through [`SlatisWebhook`]);
//! - `failures` counts consecutive failed attempts of real (non-test) deliveries; the
//!   10th (`disable_after`) flips `is_active` to false with a `failure_reason`, and a
//!   success or a re-enable sets it back to 0 (what counts is inferred: the docs do not
//!   say attempts or deliveries);
//! - an event raised while a webhook is inactive is not delivered to it, not later
//!   either (inferred: the docs do not say; the re-enable guidance is to backfill).

use super::super::chassis::ids::Ids;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};

/// RFC 3339 with milliseconds and `Z`, as Slatis writes times.
pub(super) fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A webhook as the mock holds it.
#[derive(Debug, Clone)]
pub(super) struct Hook {
    pub(super) id: String,
    pub(super) url: String,
    pub(super) events: Vec<String>,
    pub(super) description: Option<String>,
    pub(super) secret: String,
    pub(super) is_active: bool,
    pub(super) failure_reason: Option<String>,
    pub(super) disabled_at: Option<DateTime<Utc>>,
    pub(super) created_at: DateTime<Utc>,
    pub(super) failures: u32,
}

impl Hook {
    /// As the API answers it, without the secret.
    pub(super) fn json(&self) -> Value {
        json!({
            "id": self.id,
            "url": self.url,
            "events": self.events,
            "description": self.description,
            "is_active": self.is_active,
            "failure_reason": self.failure_reason,
            "disabled_at": self.disabled_at.map(rfc3339),
            "created_at": rfc3339(self.created_at),
        })
    }

    /// As create and rotate-secret answer it: with `secret` (where is inferred).
    pub(super) fn json_with_secret(&self) -> Value {
        let mut v = self.json();
        v["secret"] = self.secret.clone().into();
        v
    }
}

/// A webhook as a test sees it (secret included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlatisWebhook {
    /// `wh_…`.
    pub id: String,
    /// Where it delivers.
    pub url: String,
    /// Its event types.
    pub events: Vec<String>,
    /// Its current secret.
    pub secret: String,
    /// Whether it delivers.
    pub is_active: bool,
    /// Why it was auto-disabled.
    pub failure_reason: Option<String>,
    /// Consecutive failed attempts now.
    pub failures: u32,
}

/// A booking as the mock holds it.
#[derive(Debug, Clone)]
pub(super) struct Bk {
    pub(super) id: String,
    pub(super) status: &'static str,
    pub(super) start: DateTime<Utc>,
    pub(super) minutes: i64,
    pub(super) name: String,
    pub(super) email: String,
}

impl Bk {
    /// As `GET /v1/bookings/{id}` answers it, and as a delivery's `data`.
    pub(super) fn json(&self) -> Value {
        json!({
            "id": self.id,
            "status": self.status,
            "start_time": rfc3339(self.start),
            "end_time": rfc3339(self.start + chrono::TimeDelta::minutes(self.minutes)),
            "attendee": { "name": self.name, "email": self.email },
        })
    }
}

/// One attempt at a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlatisAttempt {
    /// The status the endpoint answered; 0 when it did not answer within the timeout.
    pub status: u16,
    /// Why there was no status.
    pub error: Option<String>,
    /// When, RFC 3339.
    pub at: String,
}

/// One event sent to one webhook, with its attempts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlatisDelivery {
    /// `dlv_…`.
    pub id: String,
    /// The webhook.
    pub webhook_id: String,
    /// The event type.
    pub event: String,
    /// The booking (`data.id`).
    pub booking_id: String,
    /// Whether it came from `POST /v1/webhooks/{id}/test`.
    pub test: bool,
    /// The exact body sent.
    pub body: Vec<u8>,
    /// Every attempt, oldest first.
    pub attempts: Vec<SlatisAttempt>,
    /// `pending`, `delivered` or `failed`.
    pub status: &'static str,
    /// When the event was raised, RFC 3339.
    pub created_at: String,
}

impl SlatisDelivery {
    /// As the (inferred) delivery history answers it.
    pub(super) fn json(&self) -> Value {
        let attempts: Vec<Value> = self
            .attempts
            .iter()
            .enumerate()
            .map(|(i, a)| {
                json!({
                    "attempt": i + 1,
                    "response_status": (a.status != 0).then_some(a.status),
                    "error": a.error,
                    "at": a.at,
                })
            })
            .collect();
        json!({
            "id": self.id,
            "webhook_id": self.webhook_id,
            "event": self.event,
            "status": self.status,
            "attempts": attempts,
            "created_at": self.created_at,
        })
    }
}

/// A delivery to make: which record, and whether failures count.
#[derive(Debug, Clone)]
pub(super) struct Job {
    pub(super) delivery: usize,
    pub(super) webhook_id: String,
    pub(super) test: bool,
}

/// Where and how to send an attempt.
pub(super) struct Target {
    pub(super) url: String,
    pub(super) secret: String,
    pub(super) body: Vec<u8>,
}

/// The organisation.
#[derive(Debug)]
pub(super) struct Org {
    /// API key → its scopes.
    pub(super) keys: HashMap<String, Vec<String>>,
    pub(super) hooks: BTreeMap<String, Hook>,
    pub(super) bookings: BTreeMap<String, Bk>,
    pub(super) deliveries: Vec<SlatisDelivery>,
    pub(super) ids: Ids,
    pub(super) disable_after: u32,
}

impl Org {
    /// A fresh id with `prefix`; ids sort in creation order.
    pub(super) fn id(&mut self, prefix: &str) -> String {
        format!("{prefix}_{:010}", self.ids.take())
    }

    /// A fresh secret.
    pub(super) fn secret(&mut self) -> String {
        format!("whsec_{:032x}", rand::random::<u128>())
    }

    /// Records an event for `hook` and the job that sends it.
    fn enqueue(&mut self, hook: &str, event: &str, data: &Value, test: bool) -> Job {
        let now = Utc::now();
        let body = json!({
            "event": event,
            "timestamp": rfc3339(now),
            "webhook_id": hook,
            "data": data,
        });
        let id = self.id("dlv");
        self.deliveries.push(SlatisDelivery {
            id,
            webhook_id: hook.to_owned(),
            event: event.to_owned(),
            booking_id: data["id"].as_str().unwrap_or_default().to_owned(),
            test,
            body: serde_json::to_vec(&body).unwrap_or_default(),
            attempts: Vec::new(),
            status: "pending",
            created_at: rfc3339(now),
        });
        Job {
            delivery: self.deliveries.len() - 1,
            webhook_id: hook.to_owned(),
            test,
        }
    }

    /// An event raised: one job per active webhook subscribed to it.
    pub(super) fn raise(&mut self, event: &str, data: &Value) -> Vec<Job> {
        let hooks: Vec<String> = self
            .hooks
            .values()
            .filter(|h| h.is_active && h.events.iter().any(|e| e == event))
            .map(|h| h.id.clone())
            .collect();
        hooks
            .iter()
            .map(|h| self.enqueue(h, event, data, false))
            .collect()
    }

    /// A test `BOOKING_CREATED` for one webhook.
    pub(super) fn test_event(&mut self, hook: &str) -> Job {
        let n = self.ids.take();
        let data = json!({
            "id": format!("bkg_test_{n:010}"),
            "status": "SCHEDULED",
            "start_time": rfc3339(Utc::now()),
            "end_time": rfc3339(Utc::now() + chrono::TimeDelta::minutes(30)),
            "attendee": { "name": "Test Attendee", "email": "test@example.com" },
        });
        self.enqueue(hook, "BOOKING_CREATED", &data, true)
    }

    /// What the next attempt of `job` sends, with the webhook's secret as it is now; `None`
    /// (and the delivery failed) once the webhook is gone or, for a real delivery,
    /// disabled.
    pub(super) fn target(&mut self, job: &Job) -> Option<Target> {
        let hook = self
            .hooks
            .get(&job.webhook_id)
            .filter(|h| job.test || h.is_active);
        let Some(hook) = hook else {
            self.deliveries[job.delivery].status = "failed";
            return None;
        };
        Some(Target {
            url: hook.url.clone(),
            secret: hook.secret.clone(),
            body: self.deliveries[job.delivery].body.clone(),
        })
    }

    /// Records an attempt's outcome; whether the delivery is over (delivered, or its
    /// webhook just got disabled).
    pub(super) fn attempted(&mut self, job: &Job, status: u16, error: Option<String>) -> bool {
        let ok = (200..300).contains(&status);
        let delivery = &mut self.deliveries[job.delivery];
        delivery.attempts.push(SlatisAttempt {
            status,
            error,
            at: rfc3339(Utc::now()),
        });
        if ok {
            delivery.status = "delivered";
        }
        if job.test {
            if !ok {
                delivery.status = "failed";
            }
            return true;
        }
        let Some(hook) = self.hooks.get_mut(&job.webhook_id) else {
            return true;
        };
        if ok {
            hook.failures = 0;
            return true;
        }
        hook.failures += 1;
        if hook.failures >= self.disable_after && hook.is_active {
            hook.is_active = false;
            hook.disabled_at = Some(Utc::now());
            hook.failure_reason = Some(format!(
                "disabled after {} consecutive failed deliveries (last: {})",
                hook.failures,
                if status == 0 {
                    "no answer".to_owned()
                } else {
                    format!("HTTP {status}")
                }
            ));
            delivery.status = "failed";
            return true;
        }
        false
    }

    /// A delivery that used up its attempts.
    pub(super) fn give_up(&mut self, job: &Job) {
        self.deliveries[job.delivery].status = "failed";
    }

    /// A webhook as a test sees it.
    pub(super) fn public(hook: &Hook) -> SlatisWebhook {
        SlatisWebhook {
            id: hook.id.clone(),
            url: hook.url.clone(),
            events: hook.events.clone(),
            secret: hook.secret.clone(),
            is_active: hook.is_active,
            failure_reason: hook.failure_reason.clone(),
            failures: hook.failures,
        }
    }
}
