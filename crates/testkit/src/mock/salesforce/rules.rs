//! The checks a save runs on the whole record, once each field passed the schema:
//! required fields, and an Event's times as Salesforce keeps them
//! (<https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/sforce_api_objects_event.htm>).
//!
//! Invariant: a record that passes is stored as Salesforce would answer it: an Event's
//! `StartDateTime` and `ActivityDateTime` one value, its `EndDateTime` and
//! `DurationInMinutes` in agreement.

use super::super::chassis::reply::Reply;
use super::answers::{api_error, field_error};
use super::schema::ObjectDef;
use super::values::{format_datetime, is_true, parse_datetime};
use chrono::{DateTime, FixedOffset, Utc};
use serde_json::{Map, Value};

/// The longest Event, in minutes: 14 days ("Multiday events can't exceed 14 days").
const MAX_EVENT_MINUTES: i64 = 14 * 24 * 60;

/// The required fields a record lacks (an Event's start and end are [`event_times`]'s).
pub(super) fn missing_fields<'a>(def: &'a ObjectDef, merged: &Map<String, Value>) -> Vec<&'a str> {
    def.fields
        .iter()
        .filter(|f| f.required && !merged.contains_key(&f.name))
        .map(|f| f.name.as_str())
        .collect()
}

/// A required-fields refusal.
pub(super) fn required_missing(missing: &[&str]) -> Reply {
    api_error(
        400,
        "REQUIRED_FIELD_MISSING",
        &format!("Required fields are missing: [{}]", missing.join(", ")),
        Some(missing),
    )
}

fn at(fields: &Map<String, Value>, name: &str) -> Option<DateTime<FixedOffset>> {
    fields
        .get(name)
        .and_then(Value::as_str)
        .and_then(parse_datetime)
}

fn integrity(field: &str, message: &str) -> Reply {
    field_error("FIELD_INTEGRITY_EXCEPTION", message, field)
}

/// An Event's times as Salesforce keeps them (see the module's source): `StartDateTime`
/// and `ActivityDateTime` are one value; `EndDateTime` and `DurationInMinutes` always agree
/// (the one the body sets decides the other; a moved start keeps the duration); a timed
/// event needs a start and an end, ends after it starts, and lasts at most 14 days.
///
/// # Errors
/// `REQUIRED_FIELD_MISSING` or `FIELD_INTEGRITY_EXCEPTION`.
pub(super) fn event_times(
    merged: &mut Map<String, Value>,
    body: &Map<String, Value>,
) -> Result<(), Reply> {
    let sent = |name: &str| body.keys().any(|k| k.eq_ignore_ascii_case(name));
    let start = match (at(merged, "StartDateTime"), at(merged, "ActivityDateTime")) {
        (Some(s), Some(d)) if s != d && sent("StartDateTime") && sent("ActivityDateTime") => {
            return Err(integrity(
                "ActivityDateTime",
                "Due Date Time: the value for this field and StartDateTime must match, or one of them must be null",
            ));
        }
        (Some(_), Some(d)) if sent("ActivityDateTime") => Some(d),
        (s, d) => s.or(d),
    };
    let all_day = is_true(merged.get("IsAllDayEvent"));
    let Some(start) = start else {
        if all_day {
            return Ok(());
        }
        return Err(required_missing(&["StartDateTime"]));
    };
    let start_text = Value::String(format_datetime(start.with_timezone(&Utc)));
    merged.insert("StartDateTime".into(), start_text.clone());
    merged.insert("ActivityDateTime".into(), start_text);
    let end = at(merged, "EndDateTime");
    let minutes = merged.get("DurationInMinutes").and_then(Value::as_i64);
    let end_sent = sent("EndDateTime") && end.is_some();
    let minutes_sent = sent("DurationInMinutes") && minutes.is_some();
    let (end, minutes) = match (end, minutes) {
        (Some(e), Some(m)) if end_sent && minutes_sent => {
            if (e - start).num_minutes() != m {
                return Err(integrity(
                    "DurationInMinutes",
                    "Duration: DurationInMinutes and EndDateTime must add up to the same amount of time",
                ));
            }
            (e, m)
        }
        (Some(e), _) if end_sent => (e, (e - start).num_minutes()),
        // the duration sent, or kept while the start moves
        (_, Some(m)) => (start + chrono::Duration::minutes(m), m),
        (Some(e), None) => (e, (e - start).num_minutes()),
        (None, None) if all_day => return Ok(()),
        (None, None) => return Err(required_missing(&["EndDateTime"])),
    };
    if minutes < 0 {
        return Err(integrity(
            "EndDateTime",
            "End Date Time: The end time must be after the start time.",
        ));
    }
    if minutes > MAX_EVENT_MINUTES {
        return Err(integrity(
            "EndDateTime",
            "End Date Time: Multiday events can't exceed 14 days.",
        ));
    }
    merged.insert(
        "EndDateTime".into(),
        Value::String(format_datetime(end.with_timezone(&Utc))),
    );
    merged.insert("DurationInMinutes".into(), Value::from(minutes));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(body: Value, current: Value) -> Result<Map<String, Value>, Reply> {
        let (Value::Object(body), Value::Object(mut merged)) = (body, current) else {
            panic!("objects");
        };
        for (k, v) in &body {
            merged.insert(k.clone(), v.clone());
        }
        event_times(&mut merged, &body).map(|()| merged)
    }

    #[test]
    fn an_events_end_and_duration_follow_each_other() {
        let made = event(
            json!({"StartDateTime": "2026-12-01T15:00:00Z", "EndDateTime": "2026-12-01T15:30:00Z"}),
            json!({}),
        )
        .expect("saves");
        assert_eq!(made["DurationInMinutes"], 30);
        assert_eq!(made["ActivityDateTime"], "2026-12-01T15:00:00.000+0000");
        // a moved start keeps the duration
        let moved = event(
            json!({"StartDateTime": "2026-12-02T10:00:00Z"}),
            Value::Object(made.clone()),
        )
        .expect("saves");
        assert_eq!(moved["EndDateTime"], "2026-12-02T10:30:00.000+0000");
        // both sent and disagreeing, ending first, or too long: refused
        for body in [
            json!({"StartDateTime": "2026-12-01T15:00:00Z", "EndDateTime": "2026-12-01T15:30:00Z", "DurationInMinutes": 45}),
            json!({"StartDateTime": "2026-12-01T15:00:00Z", "EndDateTime": "2026-12-01T14:00:00Z"}),
            json!({"StartDateTime": "2026-12-01T15:00:00Z", "DurationInMinutes": 20_161}),
        ] {
            assert!(event(body.clone(), json!({})).is_err(), "{body}");
        }
        assert!(event(json!({"StartDateTime": "2026-12-01T15:00:00Z"}), json!({})).is_err());
    }
}
