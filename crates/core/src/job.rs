//! Running one job: the steps of one connector instance for one event, in order. This is
//! the one engine: the worker, `slatis-sync render` and the connector tests all name a
//! [`Job`] and call [`run`].
//!
//! Invariants:
//! - a job whose tenant or instance is not in the config fails permanently, saying which
//!   (a replay after the config is fixed delivers it);
//! - steps before `steps_done` are not run again; their results are in the context as
//!   `steps.<id>`, so a retry resumes at the step that failed;
//! - a step's failure stops the job and names the step's place;
//! - after a step that resolved a `match`, the record map remembers the record (and
//!   forgets it after a `delete`).

use crate::config::{Config, Instance, Tenant};
use crate::connector::{
    DryRunRecord, KeyLocks, RecordMap, Recorder, StepContext, StepOutput, Transport,
};
use crate::delivery::DeliveryError;
use crate::envelope::Envelope;
use crate::step::{Action, Step};
use crate::template::RenderContext;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

/// What a job run needs to know about its event.
pub struct JobEvent<'a> {
    /// `evt_…`.
    pub id: &'a str,
    /// The event type.
    pub event_type: &'a str,
    /// When it arrived.
    pub received_at: DateTime<Utc>,
    /// The envelope as JSON.
    pub body: &'a Value,
}

impl<'a> JobEvent<'a> {
    /// The event `envelope` holds, stored as `id` at `received_at`.
    pub fn of(envelope: &'a Envelope, id: &'a str, received_at: DateTime<Utc>) -> Self {
        Self {
            id,
            event_type: &envelope.event,
            received_at,
            body: &envelope.body,
        }
    }
}

/// Where a run starts.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    /// Steps already done.
    pub steps_done: usize,
    /// Their results (`id → {id, created}`).
    pub step_results: Value,
}

/// What one step did in this run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StepTrace {
    /// Its index in the job (0-based).
    pub step: usize,
    /// Its YAML path.
    pub place: String,
    /// Its action.
    pub action: Action,
    /// Whether `when` skipped it.
    pub skipped: bool,
    /// What it produced, if it succeeded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<StepOutput>,
    /// The requests it would have sent (dry run only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub requests: Vec<DryRunRecord>,
}

/// How a run ended.
#[derive(Debug)]
pub struct RunResult {
    /// Where the job stands now.
    pub progress: Progress,
    /// The failed step's index and why, or `None` when every step is done.
    pub failure: Option<(usize, DeliveryError)>,
    /// Each step this run reached.
    pub trace: Vec<StepTrace>,
}

impl RunResult {
    /// Whether any step recorded dry-run requests.
    pub fn has_dry_run(&self) -> bool {
        self.trace.iter().any(|t| !t.requests.is_empty())
    }
}

/// The template context of a delivery (DESIGN §3.2).
pub fn context(tenant: &str, event: &JobEvent<'_>, steps: &Value) -> RenderContext {
    RenderContext::new(json!({
        "event": event.event_type,
        "data": event.body.get("data").cloned().unwrap_or(Value::Null),
        "tenant": tenant,
        "delivery": {
            "id": event.id,
            "received_at": event.received_at.to_rfc3339_opts(SecondsFormat::Millis, true),
        },
        "steps": if steps.is_object() { steps.clone() } else { json!({}) },
    }))
}

/// A job: which connector instance of which tenant delivers which event.
pub struct Job<'a> {
    /// The config generation it runs on.
    pub config: &'a Config,
    /// The tenant's name.
    pub tenant: &'a str,
    /// The connector instance's name.
    pub instance: &'a str,
    /// The event.
    pub event: &'a JobEvent<'a>,
    /// Which attempt this is (1 = the first).
    pub attempt: u32,
    /// Record the requests instead of sending them, whatever the instance's `dry_run`
    /// (`slatis-sync render`).
    pub record_only: bool,
}

/// Where a job runs, found in its config.
struct Place<'a> {
    config: &'a Config,
    tenant: &'a Tenant,
    instance: &'a Instance,
    transport: &'a Transport,
    event: &'a JobEvent<'a>,
    attempt: u32,
}

impl Job<'_> {
    /// Its tenant and instance; a permanent failure when the config has no such thing.
    fn find(&self) -> Result<(&Tenant, &Instance), DeliveryError> {
        let tenant = self.config.tenants.get(self.tenant).ok_or_else(|| {
            DeliveryError::permanent(format!(
                "tenant `{}` is no longer in the config",
                self.tenant
            ))
        })?;
        let instance = tenant.connectors.get(self.instance).ok_or_else(|| {
            DeliveryError::permanent(format!(
                "connector instance `{}` is no longer in tenant `{}`",
                self.instance, self.tenant
            ))
        })?;
        Ok((tenant, instance))
    }
}

/// Runs `job` from `progress` on, with the record map and the locks of its tenant's
/// instance.
pub async fn run(
    job: &Job<'_>,
    progress: Progress,
    records: &dyn RecordMap,
    locks: &dyn KeyLocks,
) -> RunResult {
    let (tenant, instance) = match job.find() {
        Ok(found) => found,
        Err(e) => {
            return RunResult {
                failure: Some((progress.steps_done, e)),
                progress,
                trace: Vec::new(),
            };
        }
    };
    let recording;
    let transport = if job.record_only {
        recording = instance.transport.recording();
        &recording
    } else {
        &instance.transport
    };
    let place = Place {
        config: job.config,
        tenant,
        instance,
        transport,
        event: job.event,
        attempt: job.attempt,
    };
    run_steps(&place, progress, records, locks).await
}

async fn run_steps(
    job: &Place<'_>,
    progress: Progress,
    records: &dyn RecordMap,
    locks: &dyn KeyLocks,
) -> RunResult {
    let steps: Vec<&Step> = job
        .tenant
        .steps(job.event.event_type, &job.instance.name)
        .collect();
    let recorder = Recorder::default();
    let mut results = if progress.step_results.is_object() {
        progress.step_results
    } else {
        json!({})
    };
    let mut cx = context(&job.tenant.name, job.event, &results);
    let mut done = progress.steps_done;
    let mut failure = None;
    let mut trace = Vec::new();
    for (i, step) in steps.iter().enumerate().skip(done) {
        let outcome = run_step(job, step, &mut cx, (records, locks), &recorder).await;
        let mut t = StepTrace {
            step: i,
            place: step.place.clone(),
            action: step.action,
            skipped: false,
            output: None,
            requests: recorder.take(),
        };
        match outcome {
            Ok(Some(out)) => {
                if let Some(id) = &step.id {
                    let v = json!({ "id": out.id, "created": out.created });
                    results[id] = v.clone();
                    cx.value_mut()["steps"][id] = v;
                }
                t.output = Some(out);
            }
            Ok(None) => t.skipped = true,
            Err(e) => {
                let label = format!(
                    "step {} ({}, {} {})",
                    i + 1,
                    step.place,
                    job.instance.kind,
                    step.action
                );
                failure = Some((i, e.context(label)));
                trace.push(t);
                break;
            }
        }
        trace.push(t);
        done = i + 1;
    }
    RunResult {
        progress: Progress {
            steps_done: done,
            step_results: results,
        },
        failure,
        trace,
    }
}

/// Runs one step; `None` when its `when` said to skip it.
async fn run_step(
    job: &Place<'_>,
    step: &Step,
    cx: &mut RenderContext,
    (records, locks): (&dyn RecordMap, &dyn KeyLocks),
    recorder: &Recorder,
) -> Result<Option<StepOutput>, DeliveryError> {
    let t = &job.config.templates;
    let permanent = |e: crate::template::TemplateError| DeliveryError::permanent(e.to_string());
    if !step.applies(t, cx).map_err(permanent)? {
        return Ok(None);
    }
    let rendered = step.render(t, cx).map_err(permanent)?;
    let scx = StepContext {
        tenant: &job.tenant.name,
        instance: &job.instance.name,
        event_id: job.event.id,
        received_at: job.event.received_at,
        attempt: job.attempt,
        http: job.transport.outbound(recorder),
        records,
        locks,
    };
    let out = job.instance.connector.execute(&rendered, &scx).await?;
    if let (Some(m), Some(object)) = (&rendered.matcher, &rendered.object) {
        if rendered.action == Action::Delete {
            records.forget(object, &m.property, &m.value).await?;
        } else if let Some(id) = &out.id
            && !job.transport.dry_run()
        {
            records.put(object, &m.property, &m.value, id).await?;
        }
    }
    Ok(Some(out))
}
