//! `slatis-sync test [--tenant T]`: the mapping tests kept next to the config — the
//! operator's CI for mappings.
//!
//! Each YAML file in `<config stem>.tests/` beside the config (`slatis-sync.yaml` →
//! `slatis-sync.tests/`) is one case: a tenant, an event (inline, or a JSON file named
//! relative to the case), and for each connector instance the event's route reaches, its
//! steps in order with the exact requests each must make (method, path with query, and the
//! body fields given). The event runs through the tenant's routes as `render` runs it:
//! every request recorded, nothing sent, no network.
//!
//! Invariants:
//! - a case passes only when every routed instance is expected and every expected one is
//!   routed, each has exactly the steps and requests listed, no job failed, and every body
//!   field given equals what would be sent (fields not given are not compared; lists are
//!   compared item by item and must have the same length);
//! - every difference is one line naming the instance, step, request and field, with the
//!   expected and the actual value;
//! - exit 0 only when there is at least one case and every case passed; a case that cannot
//!   be read fails with its file and why.

use super::{load, render};
use anyhow::Context as _;
use serde::Deserialize;
use serde_json::Value;
use slatis_core::Envelope;
use slatis_core::job::RunResult;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// One case file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    /// The tenant the event is delivered to.
    tenant: String,
    /// The delivery: inline, or the path of a JSON file relative to the case file.
    event: EventSource,
    /// Per connector instance, its steps in order.
    expect: BTreeMap<String, Vec<ExpectedStep>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum EventSource {
    File(String),
    Inline(Value),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectedStep {
    /// The step's `when` is false: it sends nothing.
    #[serde(default)]
    skipped: bool,
    /// Its requests, in order.
    #[serde(default)]
    requests: Vec<ExpectedRequest>,
}

/// `"POST /path"` (the body not compared), or the method, path and body fields.
#[derive(Deserialize)]
#[serde(untagged)]
enum ExpectedRequest {
    Line(String),
    Full(FullRequest),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FullRequest {
    method: String,
    path: String,
    #[serde(default)]
    body: Option<Value>,
}

impl ExpectedRequest {
    fn parts(&self) -> (String, String, Option<&Value>) {
        match self {
            Self::Line(line) => {
                let (method, path) = line.split_once(' ').unwrap_or((line.as_str(), ""));
                (method.to_owned(), path.trim().to_owned(), None)
            }
            Self::Full(r) => (r.method.clone(), r.path.clone(), r.body.as_ref()),
        }
    }
}

/// Where the cases of the config at `config` are kept.
fn cases_dir(config: &Path) -> PathBuf {
    super::beside(config, "tests")
}

pub async fn run(config_path: &Path, tenant: Option<&str>) -> anyhow::Result<ExitCode> {
    let config = load(config_path)?;
    let dir = cases_dir(config_path);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| {
            format!(
                "no mapping tests: cannot read {} (one YAML file per case; see README, \"Mapping tests\")",
                dir.display()
            )
        })?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    let (mut passed, mut failed) = (0usize, 0usize);
    for file in &files {
        let name = file
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let case = match read_case(file) {
            Ok(case) => case,
            Err(e) => {
                failed += 1;
                println!("FAIL  {name}\n      cannot read it: {e:#}");
                continue;
            }
        };
        if tenant.is_some_and(|t| t != case.0.tenant) {
            continue;
        }
        let (case, envelope) = case;
        let differences = if config.tenants.contains_key(&case.tenant) {
            let runs = render::dry_run(&config, &case.tenant, &envelope).await;
            compare(&case.expect, &runs)
        } else {
            vec![format!("no tenant `{}` in the config", case.tenant)]
        };
        let what = format!("(tenant {}, {})", case.tenant, envelope.event);
        if differences.is_empty() {
            passed += 1;
            println!("ok    {name} {what}");
        } else {
            failed += 1;
            println!("FAIL  {name} {what}");
            for d in differences {
                println!("      {d}");
            }
        }
    }
    let total = passed + failed;
    println!(
        "\n{total} mapping test(s) in {}: {passed} passed, {failed} failed",
        dir.display()
    );
    Ok(if total > 0 && failed == 0 {
        ExitCode::SUCCESS
    } else {
        if total == 0 {
            eprintln!("error: no mapping tests found in {}", dir.display());
        }
        ExitCode::FAILURE
    })
}

/// Reads a case and its event.
fn read_case(file: &Path) -> anyhow::Result<(Case, Envelope)> {
    let text = std::fs::read_to_string(file).context("cannot read the file")?;
    let case: Case = serde_saphyr::from_str(&text).map_err(|e| {
        anyhow::anyhow!(
            "{}",
            e.without_snippet()
                .render_with_options(serde_saphyr::render_options! {
                    formatter: &serde_saphyr::UserMessageFormatter,
                    snippets: serde_saphyr::SnippetMode::Off,
                })
        )
    })?;
    let raw = match &case.event {
        EventSource::File(path) => {
            let path = file.parent().unwrap_or_else(|| Path::new(".")).join(path);
            std::fs::read(&path)
                .with_context(|| format!("event: cannot read {}", path.display()))?
        }
        EventSource::Inline(value) => serde_json::to_vec(value)?,
    };
    let envelope = Envelope::parse(&raw).context("event: not a Slatis event")?;
    Ok((case, envelope))
}

/// Every difference between what `expect`s and what the runs recorded.
fn compare(
    expect: &BTreeMap<String, Vec<ExpectedStep>>,
    runs: &[(&str, RunResult)],
) -> Vec<String> {
    let mut out = Vec::new();
    for name in expect.keys() {
        if !runs.iter().any(|(routed, _)| routed == name) {
            out.push(format!("{name}: expected, but the route does not reach it"));
        }
    }
    for (name, run) in runs {
        let Some(steps) = expect.get(*name) else {
            out.push(format!(
                "{name}: the route reaches it, but the case expects nothing of it"
            ));
            continue;
        };
        if let Some((step, e)) = &run.failure {
            out.push(format!("{name} step {}: failed: {e}", step + 1));
        }
        if steps.len() != run.trace.len() {
            out.push(format!(
                "{name}: expected {} step(s), {} ran",
                steps.len(),
                run.trace.len()
            ));
        }
        for (i, (want, got)) in steps.iter().zip(&run.trace).enumerate() {
            let at = format!("{name} step {}", i + 1);
            if want.skipped != got.skipped {
                out.push(format!(
                    "{at}: expected skipped: {}, got {}",
                    want.skipped, got.skipped
                ));
            }
            if want.requests.len() != got.requests.len() {
                out.push(format!(
                    "{at}: expected {} request(s), got {}: {}",
                    want.requests.len(),
                    got.requests.len(),
                    got.requests
                        .iter()
                        .map(|r| format!("{} {}", r.method, path_of(&r.url)))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            for (j, (w, g)) in want.requests.iter().zip(&got.requests).enumerate() {
                let (method, path, body) = w.parts();
                let got_path = path_of(&g.url);
                let at = format!("{at} request {} ({} {got_path})", j + 1, g.method);
                if !method.eq_ignore_ascii_case(&g.method) {
                    out.push(format!("{at}: expected method {method}, got {}", g.method));
                }
                if path != got_path {
                    out.push(format!("{at}: expected path {path}, got {got_path}"));
                }
                if let Some(body) = body {
                    fields(
                        body,
                        g.body.as_ref().unwrap_or(&Value::Null),
                        "body",
                        &mut |d| {
                            out.push(format!("{at}: {d}"));
                        },
                    );
                }
            }
        }
    }
    out
}

/// The path and query of a recorded URL (the host is the instance's, not the mapping's).
fn path_of(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => match u.query() {
            Some(q) => format!("{}?{q}", u.path()),
            None => u.path().to_owned(),
        },
        Err(_) => url.to_owned(),
    }
}

/// Reports each field of `want` that `got` does not have the same.
fn fields(want: &Value, got: &Value, at: &str, report: &mut dyn FnMut(String)) {
    match (want, got) {
        (Value::Object(w), Value::Object(g)) => {
            for (k, v) in w {
                let here = format!("{at}.{k}");
                match g.get(k) {
                    Some(gv) => fields(v, gv, &here, report),
                    None => report(format!("{here}: expected {v}, not sent")),
                }
            }
        }
        (Value::Array(w), Value::Array(g)) if w.len() == g.len() => {
            for (i, (wv, gv)) in w.iter().zip(g).enumerate() {
                fields(wv, gv, &format!("{at}[{i}]"), report);
            }
        }
        _ if want != got => report(format!("{at}: expected {want}, got {got}")),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn differences(want: &Value, got: &Value) -> Vec<String> {
        let mut out = Vec::new();
        fields(want, got, "body", &mut |d| out.push(d));
        out
    }

    #[test]
    fn body_fields_given_are_compared_the_rest_is_not() {
        let got =
            json!({"properties": {"email": "ada@example.com", "firstname": "Ada"}, "n": [1, 2]});
        assert!(differences(&json!({"properties": {"firstname": "Ada"}}), &got).is_empty());
        let mut found = differences(
            &json!({"properties": {"firstname": "ADA", "lastname": "L"}, "n": [1]}),
            &got,
        );
        found.sort();
        assert_eq!(
            found,
            vec![
                "body.n: expected [1], got [1,2]".to_owned(),
                "body.properties.firstname: expected \"ADA\", got \"Ada\"".to_owned(),
                "body.properties.lastname: expected \"L\", not sent".to_owned(),
            ]
        );
    }

    #[test]
    fn a_request_line_is_a_method_and_a_path() {
        let line = ExpectedRequest::Line("POST /crm/v3/objects/contacts?x=1".into());
        let (method, path, body) = line.parts();
        assert_eq!(
            (method.as_str(), path.as_str(), body),
            ("POST", "/crm/v3/objects/contacts?x=1", None)
        );
        assert_eq!(path_of("https://h.example/a/b?q=***"), "/a/b?q=***");
    }
}
