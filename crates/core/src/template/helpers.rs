//! The helpers of DESIGN §3.2: `first_name`, `last_name`, `lower`, `upper`, `trim`,
//! `default`, `json`, `concat`, `epoch_ms`, `date`, `date_only`, `email_domain`,
//! `duration_minutes`, `duration_hhmm`.
//!
//! Invariant: a helper given a field that is missing from the event fails with the
//! field's path (strict mode), except `default`, whose purpose is to guard one.

use chrono::{DateTime, FixedOffset, Utc};
use chrono_tz::Tz;
use handlebars::{
    Context, Handlebars, Helper, HelperDef, RenderContext, RenderError, RenderErrorReason,
    ScopedJson,
};
use serde_json::Value;

type HelperFn = fn(&[&Value]) -> Result<Value, String>;

/// A helper computed from its arguments' values.
struct ValueHelper {
    name: &'static str,
    min_args: usize,
    max_args: usize,
    allow_missing: bool,
    f: HelperFn,
}

impl HelperDef for ValueHelper {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        let params = h.params();
        if params.len() < self.min_args || params.len() > self.max_args {
            let want = if self.min_args == self.max_args {
                self.min_args.to_string()
            } else if self.max_args == usize::MAX {
                format!("at least {}", self.min_args)
            } else {
                format!("{} to {}", self.min_args, self.max_args)
            };
            return Err(RenderErrorReason::Other(format!(
                "helper `{}` takes {want} argument(s), got {}",
                self.name,
                params.len()
            ))
            .into());
        }
        if !self.allow_missing
            && let Some(p) = params.iter().find(|p| p.is_value_missing())
        {
            return Err(RenderErrorReason::MissingVariable(p.relative_path().cloned()).into());
        }
        let values: Vec<&Value> = params.iter().map(|p| p.value()).collect();
        (self.f)(&values)
            .map(ScopedJson::Derived)
            .map_err(|m| RenderErrorReason::Other(format!("helper `{}`: {m}", self.name)).into())
    }
}

/// The names of the helpers [`register`] adds.
pub(super) const NAMES: &[&str] = &[
    "first_name",
    "last_name",
    "lower",
    "upper",
    "trim",
    "default",
    "json",
    "concat",
    "epoch_ms",
    "date",
    "date_only",
    "email_domain",
    "duration_minutes",
    "duration_hhmm",
];

pub(super) fn register(hb: &mut Handlebars<'static>) {
    let table: [(&'static str, usize, usize, bool, HelperFn); 14] = [
        ("first_name", 1, 1, false, first_name),
        ("last_name", 1, 1, false, last_name),
        ("lower", 1, 1, false, |a| {
            Ok(text(a[0]).to_lowercase().into())
        }),
        ("upper", 1, 1, false, |a| {
            Ok(text(a[0]).to_uppercase().into())
        }),
        ("trim", 1, 1, false, |a| Ok(text(a[0]).trim().into())),
        ("default", 2, 2, true, default),
        ("json", 1, 1, false, |a| {
            serde_json::to_string(a[0])
                .map(Value::String)
                .map_err(|e| e.to_string())
        }),
        ("concat", 1, usize::MAX, false, |a| {
            Ok(a.iter().map(|v| text(v)).collect::<String>().into())
        }),
        ("epoch_ms", 1, 1, false, |a| {
            Ok(timestamp(a[0])?.timestamp_millis().into())
        }),
        ("date", 2, 3, false, date),
        ("date_only", 1, 2, false, date_only),
        ("email_domain", 1, 1, false, email_domain),
        ("duration_minutes", 2, 2, false, duration_minutes),
        ("duration_hhmm", 2, 2, false, duration_hhmm),
    ];
    debug_assert!(table.iter().map(|t| t.0).eq(NAMES.iter().copied()));
    for (name, min_args, max_args, allow_missing, f) in table {
        hb.register_helper(
            name,
            Box::new(ValueHelper {
                name,
                min_args,
                max_args,
                allow_missing,
                f,
            }),
        );
    }
}

/// A value as text: strings as they are, `null` as `""`, anything else as JSON.
pub(super) fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn first_name(a: &[&Value]) -> Result<Value, String> {
    Ok(text(a[0])
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .into())
}

fn last_name(a: &[&Value]) -> Result<Value, String> {
    Ok(text(a[0])
        .split_whitespace()
        .skip(1)
        .collect::<Vec<_>>()
        .join(" ")
        .into())
}

fn default(a: &[&Value]) -> Result<Value, String> {
    let blank = matches!(a[0], Value::Null) || a[0].as_str() == Some("");
    Ok(if blank { a[1].clone() } else { a[0].clone() })
}

fn timestamp(v: &Value) -> Result<DateTime<FixedOffset>, String> {
    let s = text(v);
    DateTime::parse_from_rfc3339(s.trim())
        .map_err(|e| format!("{s:?} is not an RFC 3339 time ({e})"))
}

fn zone(v: Option<&&Value>) -> Result<Tz, String> {
    match v {
        None => Ok(Tz::UTC),
        Some(v) => {
            let name = text(v);
            name.parse::<Tz>()
                .map_err(|_| format!("unknown time zone {name:?}"))
        }
    }
}

fn date(a: &[&Value]) -> Result<Value, String> {
    let t = timestamp(a[0])?.with_timezone(&zone(a.get(2))?);
    let format = text(a[1]);
    let items: Vec<_> = chrono::format::StrftimeItems::new(&format).collect();
    if items
        .iter()
        .any(|i| matches!(i, chrono::format::Item::Error))
    {
        return Err(format!("invalid date format {format:?}"));
    }
    Ok(t.format_with_items(items.into_iter()).to_string().into())
}

fn date_only(a: &[&Value]) -> Result<Value, String> {
    let t = timestamp(a[0])?.with_timezone(&zone(a.get(1))?);
    Ok(t.format("%Y-%m-%d").to_string().into())
}

fn email_domain(a: &[&Value]) -> Result<Value, String> {
    let s = text(a[0]);
    let (_, domain) = s
        .rsplit_once('@')
        .ok_or_else(|| format!("{s:?} is not an email address"))?;
    Ok(domain.trim().to_lowercase().into())
}

fn duration_minutes(a: &[&Value]) -> Result<Value, String> {
    let start = timestamp(a[0])?.with_timezone(&Utc);
    let end = timestamp(a[1])?.with_timezone(&Utc);
    Ok((end - start).num_minutes().into())
}

fn duration_hhmm(a: &[&Value]) -> Result<Value, String> {
    let minutes = duration_minutes(a)?.as_i64().unwrap_or_default();
    if minutes < 0 {
        return Err("the end is before the start".to_owned());
    }
    Ok(format!("{:02}:{:02}", minutes / 60, minutes % 60).into())
}
