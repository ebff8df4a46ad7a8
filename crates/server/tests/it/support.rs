//! A config and store for the in-process tests, and `script`: a connector registered
//! only in this test binary, whose answers the tests script.

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use slatis_core::DeliveryError;
use slatis_core::config::ConfigIssue;
use slatis_core::connector::{
    BuildContext, BuildFn, Connector, ConnectorFactory, StepContext, StepOutput,
};
use slatis_core::step::{RenderedStep, Step};
use slatis_server::Shared;
use slatis_store::Access;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use tempfile::TempDir;
use tower::ServiceExt;

pub const SECRET: &str = "whsec_it";

/// What the scripted connector was asked to do, and what it answers next.
#[derive(Default)]
pub struct Script {
    pub calls: Vec<RenderedStep>,
    pub answers: VecDeque<Result<StepOutput, DeliveryError>>,
    /// How many of the next calls panic (before the answers are used).
    pub panics: usize,
}

/// Scripts by tenant, so tests running at once do not share one.
pub static SCRIPTS: Mutex<Option<HashMap<String, Script>>> = Mutex::new(None);

/// Runs `f` on `tenant`'s script.
pub fn script<T>(tenant: &str, f: impl FnOnce(&mut Script) -> T) -> T {
    let mut guard = SCRIPTS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    f(guard
        .get_or_insert_with(HashMap::new)
        .entry(tenant.to_owned())
        .or_default())
}

struct Scripted;

#[async_trait]
impl Connector for Scripted {
    fn check_step(&self, _: &Step) -> Vec<(String, String)> {
        Vec::new()
    }
    async fn execute(
        &self,
        step: &RenderedStep,
        cx: &StepContext<'_>,
    ) -> Result<StepOutput, DeliveryError> {
        let answer = script(cx.tenant, |s| {
            s.calls.push(step.clone());
            if s.panics > 0 {
                s.panics -= 1;
                return None;
            }
            Some(s.answers.pop_front().unwrap_or_else(|| {
                Ok(StepOutput {
                    id: Some(format!("rec{}", s.calls.len())),
                    created: true,
                })
            }))
        });
        answer.unwrap_or_else(|| panic!("the scripted connector panics, as told"))
    }
}

fn build(_: &BuildContext<'_>) -> Result<Box<dyn Connector>, Vec<ConfigIssue>> {
    Ok(Box::new(Scripted))
}

const BUILD: BuildFn = build;
inventory::submit! { ConnectorFactory { kind: "script", step_keys: &[], path_keys: &[], default_rate_limit: None, default_search_rate_limit: None, build: BUILD } }

/// A config for `tenant` on the `db` file; `admin` holds the `admin:` keys beside `listen`.
pub fn yaml(db: &std::path::Path, tenant: &str, admin: &str) -> String {
    format!(
        r#"
server: {{ listen: 127.0.0.1:0, max_body_bytes: 2048 }}
storage: {{ url: "sqlite://{db}" }}
admin: {{ listen: 127.0.0.1:0, {admin} }}
delivery: {{ concurrency: 4, retry: {{ max_attempts: 3, initial_backoff: 10ms, max_backoff: 50ms, max_rate_limited: 3 }} }}
tenants:
  {tenant}:
    signing_secrets: [{SECRET}]
    connectors:
      crm: {{ type: script }}
    routes:
      BOOKING_CREATED:
        - {{ id: contact, connector: crm, action: create, object: contacts, properties: {{ email: "{{{{lower data.attendee.email}}}}" }} }}
        - {{ connector: crm, action: create, object: meetings, properties: {{ contact: "{{{{steps.contact.id}}}}" }} }}
"#,
        db = db.display()
    )
}

pub struct World {
    pub shared: Arc<Shared>,
    pub dir: TempDir,
}

/// A world whose admin API takes `admin_token` (empty: off).
pub async fn world(tenant: &str, admin_token: &str) -> World {
    world_with_admin(tenant, &format!("token: \"{admin_token}\"")).await
}

/// A world with these `admin:` keys.
pub async fn world_with_admin(tenant: &str, admin: &str) -> World {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("it.db");
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, yaml(&db, tenant, admin)).expect("write config");
    let config = slatis_core::config::load_file(&path).unwrap_or_else(|e| panic!("{e}"));
    let store = slatis_store::open(&config.storage, Access::Owner)
        .await
        .expect("store");
    World {
        shared: Shared::new(config, store, Some(path)),
        dir,
    }
}

/// Sends `req` to `router`; returns the status and JSON body.
pub async fn call(router: axum::Router, req: Request<Body>) -> (StatusCode, serde_json::Value) {
    let response = router.oneshot(req).await.expect("oneshot");
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("body");
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}

/// A request with `body` as this run delivers it (`signer::fresh`), signed.
pub fn signed(path: &str, body: &str) -> Request<Body> {
    let body = slatis_testkit::signer::fresh(body.as_bytes());
    Request::post(path)
        .header(
            slatis_core::signature::HEADER,
            slatis_core::signature::sign(SECRET.as_bytes(), &body),
        )
        .body(Body::from(body))
        .expect("request")
}

/// Leases every due job and ends its attempt with `outcome` (failing at step 0 with
/// "HTTP 400: no"); returns their ids, ascending.
pub async fn run_all(shared: &Shared, outcome: slatis_store::Outcome) -> Vec<i64> {
    let jobs = shared
        .store
        .claim(slatis_store::ClaimRequest {
            worker: "t".into(),
            limit: 1000,
            lease: std::time::Duration::from_secs(60),
            now: chrono::Utc::now(),
            room: HashMap::new(),
            default_room: 1000,
        })
        .await
        .expect("claim");
    let now = chrono::Utc::now();
    for j in &jobs {
        let f = slatis_store::Finish {
            job: j.id,
            worker: "t".into(),
            outcome: outcome.clone(),
            progress: slatis_store::Progress {
                steps_done: 0,
                step_results: serde_json::json!({}),
            },
            failed_step: Some(0),
            error: Some("HTTP 400: no".into()),
            dry_run: None,
            started_at: now,
            finished_at: now,
        };
        assert!(shared.store.finish(f).await.expect("finish"));
    }
    jobs.iter().map(|j| j.id).collect()
}
