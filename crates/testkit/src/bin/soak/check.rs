//! The soak's verdict: what the CRM applied, held against what the server acknowledged.
//!
//! A request the mock CRM answered with an error status (429, 5xx) changed nothing; any
//! other request it received was applied, even if the answer never reached the server (a
//! reset mid-answer, a client timeout) — exactly the case at-least-once delivery repeats.
//!
//! Invariants checked: every acknowledged event was applied or dead-lettered with a
//! reason (lost = 0); the writes to one booking's record never go back in `seq` (order);
//! every booking has exactly one record, in the state of its last delivered event.

use crate::plan::Booking;
use slatis_testkit::mock::Received;
use std::collections::{BTreeMap, HashMap, HashSet};

/// What the run found.
#[derive(Debug, Default)]
pub struct Verdict {
    /// Events acknowledged by the server (all of them, once the soak ends).
    pub acknowledged: usize,
    /// Events whose write reached the CRM.
    pub delivered: usize,
    /// Events dead-lettered, with their reasons.
    pub dead: Vec<String>,
    /// Events neither delivered nor dead-lettered.
    pub lost: Vec<String>,
    /// Writes that went back in `seq` on a record.
    pub order_violations: Vec<String>,
    /// Records whose final state is not their last delivered event's.
    pub wrong_final: Vec<String>,
    /// Booking records in the CRM.
    pub booking_records: usize,
    /// Contact records in the CRM.
    pub contact_records: usize,
    /// Records the CRM holds that no booking explains.
    pub stray_records: Vec<String>,
    /// Writes applied again after a lost answer (at-least-once at work).
    pub repeated_writes: usize,
    /// Requests the CRM refused (injected 429 / 5xx).
    pub refused: usize,
}

impl Verdict {
    /// Whether every guarantee held.
    pub fn passed(&self) -> bool {
        self.lost.is_empty()
            && self.order_violations.is_empty()
            && self.wrong_final.is_empty()
            && self.stray_records.is_empty()
    }
}

/// Judges a run: `received` is everything the CRM got, `dead` maps a dead-lettered
/// `(booking, seq)` to its reason.
pub fn judge(
    plan: &[Booking],
    received: &[Received],
    dead: &HashMap<(String, u64), String>,
) -> Verdict {
    let mut v = Verdict::default();
    let mut writes: BTreeMap<String, Vec<(u64, String)>> = BTreeMap::new();
    let mut contacts: HashSet<String> = HashSet::new();
    let mut seen: HashSet<(String, u64)> = HashSet::new();
    for r in received {
        if (400..600).contains(&r.status) {
            v.refused += 1;
            continue;
        }
        if let Some(email) = r.path.strip_prefix("/contacts/") {
            contacts.insert(
                percent_encoding::percent_decode_str(email)
                    .decode_utf8_lossy()
                    .into_owned(),
            );
        } else if let Some(id) = r.path.strip_prefix("/bookings/") {
            let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
            let seq = body["seq"].as_u64().unwrap_or(0);
            let status = body["status"].as_str().unwrap_or("").to_owned();
            if !seen.insert((id.to_owned(), seq)) {
                v.repeated_writes += 1;
            }
            writes.entry(id.to_owned()).or_default().push((seq, status));
        } else {
            v.stray_records.push(format!("{} {}", r.method, r.path));
        }
    }
    let known: HashSet<&str> = plan.iter().map(|b| b.id.as_str()).collect();
    let emails: HashSet<String> = plan.iter().map(|b| b.email.to_ascii_lowercase()).collect();
    v.stray_records.extend(
        writes
            .keys()
            .filter(|id| !known.contains(id.as_str()))
            .map(|id| format!("booking record {id}")),
    );
    v.stray_records.extend(
        contacts
            .iter()
            .filter(|e| !emails.contains(*e))
            .map(|e| format!("contact record {e}")),
    );
    v.booking_records = writes.len();
    v.contact_records = contacts.len();
    for b in plan {
        let history = writes.get(&b.id).map(Vec::as_slice).unwrap_or_default();
        if let Some(w) = history.windows(2).find(|w| w[1].0 < w[0].0) {
            v.order_violations.push(format!(
                "{}: seq {} written after seq {}",
                b.id, w[1].0, w[0].0
            ));
        }
        let mut last_delivered = None;
        for e in &b.events {
            v.acknowledged += 1;
            if history.iter().any(|(seq, _)| *seq == e.seq) {
                v.delivered += 1;
                last_delivered = Some(e);
            } else if let Some(reason) = dead.get(&(b.id.clone(), e.seq)) {
                v.dead.push(format!("{} seq {}: {reason}", b.id, e.seq));
            } else {
                v.lost.push(format!("{} seq {} ({})", b.id, e.seq, e.kind));
            }
        }
        if let (Some(want), Some((seq, status))) = (last_delivered, history.last())
            && (*seq != want.seq || status != want.status)
        {
            v.wrong_final.push(format!(
                "{}: record at seq {seq} ({status}), last delivered event seq {} ({})",
                b.id, want.seq, want.status
            ));
        }
    }
    v
}
