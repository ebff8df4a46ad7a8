use super::*;
use crate::connector::{BuildContext, ConnectorFactory, StepContext, StepOutput};
use crate::delivery::DeliveryError;
use crate::step::{RenderedStep, Tree, ValueType, WriteMode};
use crate::template::Text;
use serde::Deserialize;
use std::collections::HashMap;
use std::time::Duration;

/// A connector for these tests only: takes `url` in its config, `note` and `at` (a URL
/// path) in its steps.
struct Probe;

#[async_trait::async_trait]
impl Connector for Probe {
    fn check_step(&self, step: &Step) -> Vec<(String, String)> {
        if step.action == crate::step::Action::Request {
            vec![("action".into(), "probe has no request action".into())]
        } else {
            vec![]
        }
    }
    async fn execute(
        &self,
        _: &RenderedStep,
        _: &StepContext<'_>,
    ) -> Result<StepOutput, DeliveryError> {
        Ok(StepOutput::default())
    }
}

fn build(cx: &BuildContext<'_>) -> Result<Box<dyn Connector>, Vec<ConfigIssue>> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Cfg {
        url: String,
    }
    let _: Cfg = cx.parse()?;
    Ok(Box::new(Probe))
}

inventory::submit! { ConnectorFactory { kind: "probe", step_keys: &["note", "at"], path_keys: &["at"], default_rate_limit: None, default_search_rate_limit: None, build } }

const GOOD: &str = r#"
server:
  listen: 127.0.0.1:0
storage:
  url: sqlite://x.db
  retention: 3d
delivery:
  concurrency: 4
  retry: { max_attempts: 3, initial_backoff: 10ms, max_backoff: 1s }
tenants:
  acme:
    signing_secrets: ["${SECRET}"]
    connectors:
      crm: { type: probe, url: "https://crm.example", dry_run: "${DRY:-true}", rate_limit: { requests: 5, per: 1s } }
    routes:
      BOOKING_CREATED:
        - id: contact
          connector: crm
          action: upsert
          object: contacts
          match: { property: email, value: "{{lower data.attendee.email}}" }
          properties:
            firstname: "{{first_name data.attendee.name}}"
            count: { value: "{{data.n}}", type: integer }
            fixed: 3
          note: "{{data.id}}x"
        - connector: crm
          action: update
          object: deals
          match: { property: contact, value: "{{steps.contact.id}}" }
      "*":
        - { connector: crm, action: create, object: log }
"#;

fn env(name: &str) -> Option<String> {
    (name == "SECRET").then(|| "whsec_abcdef".to_owned())
}

fn load(src: &str) -> Result<Config, ConfigError> {
    load_str(src, &env)
}

fn errors(src: &str) -> Vec<String> {
    match load(src) {
        Ok(_) => panic!("expected errors"),
        Err(e) => e.issues.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn a_good_config_loads() {
    let c = load(GOOD).unwrap_or_else(|e| panic!("{e}"));
    let t = &c.tenants["acme"];
    assert_eq!(t.signing_secrets, vec!["whsec_abcdef"]);
    assert!(t.connectors["crm"].dry_run);
    assert_eq!(t.route("BOOKING_CREATED"), vec!["crm"]);
    assert_eq!(t.route("BOOKING_CANCELLED"), vec!["crm"]);
    assert_eq!(t.steps("BOOKING_CREATED", "crm").count(), 3);
    assert_eq!(c.delivery.retry.max_attempts, 3);
    assert_eq!(c.storage.retention, Duration::from_secs(3 * 86400));
    assert_eq!(c.redactor.redact("x whsec_abcdef"), "x ***");
}

#[test]
fn an_empty_file_is_a_config_with_no_tenants() {
    let c = load("").unwrap_or_else(|e| panic!("{e}"));
    assert!(c.tenants.is_empty());
    assert_eq!(c.server.listen.port(), 8080);
    assert_eq!(
        c.max_signing_secrets, 1,
        "an unknown tenant still costs one HMAC"
    );
}

#[test]
fn every_signature_check_costs_the_most_secrets_of_any_tenant() {
    let c =
        load("tenants:\n  a: { signing_secrets: [s1] }\n  b: { signing_secrets: [s1, s2, s3] }\n")
            .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.max_signing_secrets, 3);
}

#[test]
fn server_limits_are_checked_at_load_with_their_line() {
    let errs = errors(
        "server:\n  header_timeout: 0s\n  body_timeout: 30s\n  max_connections: 0\n  shutdown_timeout: 11m\n",
    );
    assert_eq!(
        errs,
        [
            "line 2: server.header_timeout: must be between 1ms and 10m (is 0ms)",
            "line 3: server.body_timeout: must not be longer than server.request_timeout",
            "line 4: server.max_connections: must be between 1 and 1000000",
            "line 5: server.shutdown_timeout: must be between 1ms and 10m (is 11m)"
        ]
    );
}

/// Each bad config, the path (and text) its error must name.
#[test]
fn each_kind_of_error_names_its_path() {
    let cases: &[(&str, &str, &str)] = &[
        ("broken YAML", "tenants: [a, b\n", "not valid YAML"),
        ("unknown top key", "servr: {}\n", "servr: unknown key"),
        (
            "unknown server key",
            "server: { lisen: x }\n",
            "server.lisen",
        ),
        (
            "bad listen",
            "server: { listen: nowhere }\n",
            "server.listen",
        ),
        (
            "bad duration",
            "storage: { retention: 7 }\n",
            "storage.retention: `7` has no unit",
        ),
        (
            "bad storage url",
            "storage: { url: mysql://x }\n",
            "storage.url: must start with",
        ),
        (
            "zero concurrency",
            "delivery: { concurrency: 0 }\n",
            "delivery.concurrency: must be at least 1",
        ),
        (
            "backoff order",
            "delivery: { retry: { initial_backoff: 1h, max_backoff: 1s } }\n",
            "delivery.retry.max_backoff",
        ),
        (
            "missing env",
            "tenants: { a: { signing_secrets: [\"${NOPE}\"] } }\n",
            "tenants.a.signing_secrets[0]: environment variable NOPE is not set",
        ),
        (
            "no secrets",
            "tenants: { a: { signing_secrets: [] } }\n",
            "tenants.a.signing_secrets: at least one",
        ),
        (
            "bad tenant name",
            "tenants: { \"a/b\": { signing_secrets: [x] } }\n",
            "tenants.a/b: a tenant name",
        ),
        (
            "unknown tenant key",
            "tenants: { a: { signing_secrets: [x], extra: 1 } }\n",
            "tenants.a.extra",
        ),
        (
            "type not compiled in",
            "tenants: { a: { signing_secrets: [x], connectors: { c: { type: salesforc } } } }\n",
            "tenants.a.connectors.c.type: connector type `salesforc` is not compiled into this binary (compiled in: probe); rebuild with `--features salesforc`",
        ),
        (
            "connector's own key",
            "tenants: { a: { signing_secrets: [x], connectors: { c: { type: probe, url: u, nope: 1 } } } }\n",
            "tenants.a.connectors.c.nope",
        ),
        (
            "bad dry_run",
            "tenants: { a: { signing_secrets: [x], connectors: { c: { type: probe, url: u, dry_run: maybe } } } }\n",
            "tenants.a.connectors.c.dry_run",
        ),
        (
            "short admin token",
            "admin: { listen: 127.0.0.1:0, token: tooshort }\n",
            "admin.token: must be at least 32 characters; generate one with `openssl rand -hex 32`",
        ),
        (
            "session ttl out of bounds",
            "admin: { listen: 127.0.0.1:0, session_ttl: 90d }\n",
            "admin.session_ttl: must be between 1s and 30d",
        ),
        (
            "record map shorter than retention",
            "storage: { retention: 30d, record_map_retention: 7d }\n",
            "storage.record_map_retention: must not be shorter than storage.retention",
        ),
        (
            "empty pool",
            "storage: { pool_size: 0 }\n",
            "storage.pool_size: must be between 1 and 200",
        ),
        (
            "statement timeout out of bounds",
            "storage: { statement_timeout: 2h }\n",
            "storage.statement_timeout: must be between 100ms and 1h",
        ),
    ];
    for (what, src, want) in cases {
        let errs = errors(src);
        assert!(
            errs.iter().any(|e| e.contains(want)),
            "{what}: wanted {want:?} in {errs:#?}"
        );
    }
}

fn with_step(step: &str) -> String {
    format!(
        "tenants:\n  a:\n    signing_secrets: [x]\n    connectors:\n      c: {{ type: probe, url: u }}\n    routes:\n      BOOKING_CREATED:\n        - {step}\n"
    )
}

/// An instance whose type is not compiled in is one error, whatever the number of steps
/// and routes that name it (they are not checked until it loads).
#[test]
fn a_missing_connector_type_is_one_error_not_one_per_step() {
    let src = "tenants:\n  a:\n    signing_secrets: [x]\n    connectors:\n      c: { type: probe, url: u }\n      sf: { type: salesforce }\n    routes:\n      BOOKING_CREATED:\n        - { connector: sf, action: upsert }\n        - { connector: sf, action: create }\n        - { connector: c, action: create }\n      BOOKING_CANCELLED:\n        - { connector: sf, action: delete }\n        - { connector: nope, action: delete }\n";
    let errors = errors(src);
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert!(errors[0].contains("tenants.a.connectors.sf.type: connector type `salesforce` is not compiled into this binary"), "{errors:#?}");
    assert!(
        errors[1].contains("BOOKING_CANCELLED[1].connector: no connector instance named `nope`"),
        "{errors:#?}"
    );
}

#[test]
fn each_kind_of_step_error_names_its_path() {
    let p = "tenants.a.routes.BOOKING_CREATED[0]";
    let cases: &[(&str, &str, String)] = &[
        (
            "unknown instance",
            "{ connector: d, action: create }",
            format!("{p}.connector: no connector instance named `d` in this tenant (it has: c)"),
        ),
        (
            "unknown action",
            "{ connector: c, action: merge }",
            format!("{p}.action"),
        ),
        (
            "unknown key",
            "{ connector: c, action: create, colour: red }",
            format!("{p}.colour: unknown step key"),
        ),
        (
            "missing match",
            "{ connector: c, action: update }",
            format!("{p}: `update` needs a `match"),
        ),
        (
            "bad template",
            "{ connector: c, action: create, properties: { n: \"{{#if x}}\" } }",
            format!("{p}.properties.n: invalid template"),
        ),
        (
            "unclosed braces",
            "{ connector: c, action: create, properties: { n: \"{{first_name x}\" } }",
            format!("{p}.properties.n: invalid template"),
        ),
        (
            "bad type",
            "{ connector: c, action: create, properties: { n: { value: x, type: date } } }",
            format!("{p}.properties.n.type"),
        ),
        (
            "unknown step ref",
            "{ connector: c, action: create, properties: { n: \"{{steps.contact.id}}\" } }",
            format!("{p}: reads `steps.contact`"),
        ),
        (
            "connector check",
            "{ connector: c, action: request }",
            format!("{p}.action: probe has no request action"),
        ),
        (
            "bad when",
            "{ connector: c, action: create, when: \"{{#each}}\" }",
            format!("{p}.when: invalid template"),
        ),
        (
            "unescaped path value",
            "{ connector: c, action: create, at: \"a/{{{data.id}}}\" }",
            format!(
                "{p}.at: invalid template: `{{{{{{…}}}}}}` would paste a value into the path unescaped"
            ),
        ),
        (
            "unescaped path value in a block",
            "{ connector: c, action: create, at: \"a/{{#if data.x}}{{{data.id}}}{{/if}}\" }",
            format!("{p}.at: invalid template: `{{{{{{…}}}}}}`"),
        ),
        (
            "dot segment in a constant path",
            "{ connector: c, action: create, at: \"a/../admin\" }",
            format!("{p}.at: the path holds the segment \"..\""),
        ),
        (
            "path that is not text",
            "{ connector: c, action: create, at: [a] }",
            format!("{p}.at: must be text"),
        ),
    ];
    for (what, step, want) in cases {
        let errs = errors(&with_step(step));
        assert!(
            errs.iter().any(|e| e.contains(want.as_str())),
            "{what}: wanted {want:?} in {errs:#?}"
        );
    }
}

#[test]
fn bad_event_type_names_are_errors_and_unknown_ones_warnings() {
    let src = "tenants:\n  a:\n    signing_secrets: [x]\n    routes:\n      booking_created: []\n";
    assert!(errors(src).iter().any(|e| {
        e.contains("tenants.a.routes.booking_created: `booking_created` is not an event type")
    }));
    let src = "tenants:\n  a:\n    signing_secrets: [x]\n    routes:\n      BOOKING_CREATD: []\n";
    let c = load(src).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        c.warnings.iter().any(|w| w.contains("BOOKING_CREATD")),
        "{:?}",
        c.warnings
    );
}

#[test]
fn all_errors_are_reported_with_lines() {
    let src = "server:\n  listen: nowhere\ntenants:\n  a:\n    signing_secrets: [\"${NOPE1}\", \"${NOPE2}\"]\n";
    let e = load(src).err().unwrap_or_else(|| panic!("expected errors"));
    let text = e.to_string();
    assert!(text.starts_with("config: 3 errors"), "{text}");
    assert!(text.contains("line 2: server.listen"), "{text}");
    assert!(
        text.contains("line 5: tenants.a.signing_secrets[0]: environment variable NOPE1"),
        "{text}"
    );
    assert!(text.contains("NOPE2"), "{text}");
}

#[test]
fn typed_values_and_dry_run_accept_variable_text() {
    let src = "tenants:\n  a:\n    signing_secrets: [x]\n    connectors:\n      c: { type: probe, url: u, dry_run: \"${D:-false}\", concurrency: \"${C:-3}\" }\n";
    let c = load(src).unwrap_or_else(|e| panic!("{e}"));
    assert!(!c.tenants["a"].connectors["c"].dry_run);
    assert_eq!(c.tenants["a"].connectors["c"].concurrency, 3);
}

/// Every duration is bounded at load (a huge one used to pass and then panic the
/// housekeeping task), with errors that name the key and its line.
#[test]
fn durations_are_bounded_at_load() {
    let instance = |keys: &str| {
        format!(
            "tenants:\n  a:\n    signing_secrets: [x]\n    connectors:\n      c: {{ type: probe, url: u, {keys} }}\n"
        )
    };
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "huge retention",
            "storage:\n  retention: 99999999d\n".into(),
            "line 2: storage.retention: `99999999d` is longer than 3660d",
        ),
        (
            "short retention",
            "storage: { retention: 10m }\n".into(),
            "storage.retention: must be between 1h and 365d (is 10m)",
        ),
        (
            "long lease",
            "delivery: { lease: 2h }\n".into(),
            "delivery.lease: must be between 5s and 1h (is 2h)",
        ),
        (
            "long grace",
            "delivery: { shutdown_grace: 3h }\n".into(),
            "delivery.shutdown_grace: must be between 0ms and 1h",
        ),
        (
            "long backoff",
            "delivery: { retry: { max_backoff: 30d } }\n".into(),
            "delivery.retry.max_backoff: must be between 0ms and 7d (is 30d)",
        ),
        (
            "zero backoff",
            "delivery: { retry: { initial_backoff: 0s } }\n".into(),
            "delivery.retry.initial_backoff: must be between 1ms and 7d",
        ),
        (
            "attempts",
            "delivery: { retry: { max_attempts: 4294967295 } }\n".into(),
            "delivery.retry.max_attempts: must be between 1 and 10000",
        ),
        (
            "rate-limited budget",
            "delivery: { retry: { max_rate_limited: 0 } }\n".into(),
            "delivery.retry.max_rate_limited: must be between 1 and 100000",
        ),
        (
            "zero timeout",
            instance("timeout: 0s"),
            "tenants.a.connectors.c.timeout: must be between 1ms and 10m (is 0ms)",
        ),
        (
            "long timeout",
            instance("timeout: 1d"),
            "tenants.a.connectors.c.timeout: must be between 1ms and 10m (is 1d)",
        ),
        (
            "long window",
            instance("rate_limit: { requests: 5, per: 30d }"),
            "tenants.a.connectors.c.rate_limit.per: must be between 0ms and 7d (is 30d)",
        ),
        (
            "huge window",
            instance("rate_limit: { requests: 5, per: 1000000d }"),
            "tenants.a.connectors.c.rate_limit.per: `1000000d` is longer than 3660d",
        ),
    ];
    for (what, src, want) in &cases {
        let errs = errors(src);
        assert!(
            errs.iter().any(|e| e.contains(want)),
            "{what}: wanted {want:?} in {errs:#?}"
        );
    }
    let c =
        load("delivery: { retry: { max_rate_limited: 7 } }\n").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.delivery.retry.max_rate_limited, 7);
    let c = load("").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.delivery.retry.max_rate_limited, 100, "the default");
}

#[test]
fn admin_and_storage_defaults_and_the_token_minimum() {
    let c = load("admin: { listen: 127.0.0.1:0 }\n").unwrap_or_else(|e| panic!("{e}"));
    let a = c.admin.expect("admin");
    assert_eq!(a.session_ttl, Duration::from_secs(12 * 3600));
    assert!(!a.secure_cookie);
    assert_eq!(
        c.storage.record_map_retention,
        Duration::from_secs(400 * 86_400)
    );
    assert_eq!(c.storage.pool_size, 10);
    assert_eq!(c.storage.statement_timeout, Duration::from_secs(30));
    let long = "k".repeat(ADMIN_TOKEN_MIN);
    let c = load(&format!(
        "admin: {{ listen: 127.0.0.1:0, token: {long}, secure_cookie: true }}\n"
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(c.admin.expect("admin").secure_cookie);
    let short = "s3cret-but-short";
    let errs = errors(&format!(
        "admin: {{ listen: 127.0.0.1:0, token: \"{short}\" }}\n"
    ));
    assert!(
        errs.iter().all(|e| !e.contains(short)),
        "never echoed: {errs:?}"
    );
}

/// `load_str` with these variables.
fn load_with(src: &str, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let vars: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    load_str(src, &move |name| vars.get(name).cloned())
}

#[test]
fn config_errors_hold_no_secret_literal_or_from_a_variable() {
    const LIT: &str = "whsec_LITERAL_4b5c6d";
    const VAR: &str = "whsec_VARIABLE_7e8f9a";
    let cases = [
        // type errors: the value is a string where a list or a map belongs
        format!("tenants: {{ a: {{ signing_secrets: \"{LIT}\" }} }}\n"),
        "tenants: { a: { signing_secrets: \"${S}\" } }\n".to_owned(),
        format!("delivery: {{ retry: \"{LIT}\" }}\n"),
        "delivery: { retry: \"${S}\" }\n".to_owned(),
        // a variable misplaced into a number, a duration, a URL
        "delivery: { retry: { max_attempts: \"${S}\" } }\n".to_owned(),
        "storage: { retention: \"${S}\" }\n".to_owned(),
        "tenants: { a: { signing_secrets: [x], connectors: { c: { type: probe, url: 1, dry_run: \"${S}\" } } } }\n".to_owned(),
        // an unclosed reference in a secret
        format!("admin: {{ listen: 127.0.0.1:0, token: \"{LIT}${{\" }}\n"),
        // syntax errors around a literal secret
        format!("tenants:\n  a:\n    signing_secrets: [\"{LIT}\", \n"),
        format!("tenants:\n  a:\n    signing_secrets:\n      - {LIT}\n     - {LIT}\n"),
        format!("admin:\n  token: \"{LIT}\n"),
    ];
    for src in &cases {
        let e = load_with(src, &[("S", VAR)])
            .err()
            .unwrap_or_else(|| panic!("{src} loaded"));
        let text = e.to_string();
        for secret in [LIT, VAR, "LITERAL", "VARIABLE"] {
            assert!(!text.contains(secret), "{src}\n{text}");
        }
        assert!(text.contains("line "), "{text}");
    }
}

#[test]
fn a_placeholder_signing_secret_needs_every_connector_in_dry_run() {
    let sending = [("SECRET", "whsec_acme_example"), ("DRY", "false")];
    let e = load_with(GOOD, &sending)
        .err()
        .unwrap_or_else(|| panic!("loaded"));
    let text = e.to_string();
    assert_eq!(e.issues.len(), 1, "{text}");
    assert_eq!(e.issues[0].path, "tenants.acme.signing_secrets[0]");
    assert!(
        text.contains("public placeholder") && text.contains("set SECRET"),
        "{text}"
    );
    assert!(!text.contains("whsec_acme_example"), "{text}");
    load_with(GOOD, &[("SECRET", "whsec_acme_example")])
        .unwrap_or_else(|e| panic!("a tenant in dry run may use a placeholder: {e}"));
    load_with(GOOD, &[("SECRET", "whsec_9c8b7a6f5e4d"), ("DRY", "false")])
        .unwrap_or_else(|e| panic!("a real secret: {e}"));
    let literal = GOOD.replace("\"${SECRET}\"", "whsec_demo");
    let e = load_with(&literal, &[("DRY", "false")])
        .err()
        .unwrap_or_else(|| panic!("loaded"));
    assert!(
        e.to_string().contains("write the tenant's signing secret"),
        "{e}"
    );
    let e = load_with(GOOD, &[("SECRET", "")])
        .err()
        .unwrap_or_else(|| panic!("loaded"));
    assert!(
        e.to_string().contains("must not be empty: set SECRET"),
        "{e}"
    );
}

#[test]
fn the_redactor_knows_literal_secrets_and_variables_in_urls() {
    let src = GOOD
        .replace(
            "url: \"https://crm.example\"",
            "url: \"https://crm.example/${PATH}?key=${QUERY}\"",
        )
        .replace(
            "storage:\n",
            "admin: { listen: 127.0.0.1:0, token: admin-literal-token-1234-5678-9abc-def0 }\nstorage:\n",
        );
    let c = load_with(
        &src,
        &[
            ("SECRET", "whsec_abcdef"),
            ("PATH", "path-token-1"),
            ("QUERY", "query-token-2"),
        ],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    for secret in [
        "whsec_abcdef",
        "path-token-1",
        "query-token-2",
        "admin-literal-token-1234-5678-9abc-def0",
    ] {
        assert_eq!(
            c.redactor.redact(&format!("<{secret}>")),
            "<***>",
            "{secret}"
        );
    }
    assert_eq!(
        c.redactor.redact("crm.example"),
        "crm.example",
        "literal URL text is shown"
    );
    let debug = format!("{:?} {:?} {:?}", c.admin, c.storage, c.redactor);
    assert!(
        !debug.contains("admin-literal-token-1234-5678-9abc-def0"),
        "{debug}"
    );
}

#[test]
fn storage_debug_hides_the_password() {
    let c = load("storage: { url: \"postgres://app:pw-123456@db/x\" }\n")
        .unwrap_or_else(|e| panic!("{e}"));
    let debug = format!("{:?}", c.storage);
    assert!(
        !debug.contains("pw-123456") && debug.contains("@db/x"),
        "{debug}"
    );
}

#[test]
fn on_many_and_write_modes_are_read_from_the_step() {
    let src = GOOD
        .replace(
            "match: { property: email, value: \"{{lower data.attendee.email}}\" }",
            "match: { property: email, value: \"{{lower data.attendee.email}}\", on_many: newest }",
        )
        .replace(
            "firstname: \"{{first_name data.attendee.name}}\"",
            "firstname: { value: \"{{first_name data.attendee.name}}\", on: empty }\n            source: { value: slatis, on: create }\n            score: { value: \"{{data.n}}\", type: integer, on: empty }\n            plain: { value: x, on: always }",
        );
    let c = load(&src).unwrap_or_else(|e| panic!("{e}"));
    let step = c.tenants["acme"]
        .steps("BOOKING_CREATED", "crm")
        .next()
        .expect("step");
    let m = step.matcher.as_ref().expect("match");
    assert_eq!(m.on_many, crate::step::OnMany::Newest);
    assert_eq!(
        step.write_modes,
        BTreeMap::from([
            ("firstname".to_owned(), WriteMode::Empty),
            ("score".to_owned(), WriteMode::Empty),
            ("source".to_owned(), WriteMode::Create),
        ])
    );
    let score = step.properties.iter().find(|(k, _)| k == "score");
    assert!(
        matches!(score, Some((_, Tree::Typed(_, ValueType::Integer)))),
        "{score:?}"
    );
    let plain = step.properties.iter().find(|(k, _)| k == "plain");
    assert!(
        matches!(plain, Some((_, Tree::Text(Text::Const(s)))) if s == "x"),
        "{plain:?}"
    );
    // defaults: oldest, always
    let c = load(GOOD).unwrap_or_else(|e| panic!("{e}"));
    let step = c.tenants["acme"]
        .steps("BOOKING_CREATED", "crm")
        .next()
        .expect("step");
    assert_eq!(
        step.matcher.as_ref().map(|m| m.on_many),
        Some(crate::step::OnMany::Oldest)
    );
    assert!(step.write_modes.is_empty());
}

#[test]
fn a_bad_on_many_or_write_mode_names_its_key() {
    let bad_mode = GOOD.replace("fixed: 3", "fixed: { value: \"3\", on: sometimes }");
    let errs = errors(&bad_mode);
    assert!(
        errs.iter()
            .any(|e| e
                .contains("routes.BOOKING_CREATED[0].properties.fixed.on: must be always, create")),
        "{errs:?}"
    );
    let bad_many = GOOD.replace(
        "value: \"{{lower data.attendee.email}}\" }",
        "value: \"{{lower data.attendee.email}}\", on_many: first }",
    );
    let errs = errors(&bad_many);
    assert!(
        errs.iter()
            .any(|e| e.contains("routes.BOOKING_CREATED[0].match.on_many")),
        "{errs:?}"
    );
}

#[test]
fn a_reload_keeps_the_running_state_of_unchanged_instances() {
    let old = load(GOOD).expect("old");
    let mut same = load(GOOD).expect("same");
    let kept = same.carry_over(&old);
    assert_eq!(
        kept,
        CarriedOver {
            kept: 1,
            started: 0,
            tenants_kept: 0
        }
    );
    assert!(Arc::ptr_eq(
        &same.tenants["acme"].connectors["crm"].connector,
        &old.tenants["acme"].connectors["crm"].connector
    ));
    let mut changed =
        load(&GOOD.replace("https://crm.example", "https://crm2.example")).expect("changed");
    assert_eq!(
        changed.carry_over(&old),
        CarriedOver {
            kept: 0,
            started: 1,
            tenants_kept: 0
        }
    );
    assert!(!Arc::ptr_eq(
        &changed.tenants["acme"].connectors["crm"].connector,
        &old.tenants["acme"].connectors["crm"].connector
    ));
    let mut renamed = load(&GOOD.replace("acme:", "acme2:")).expect("renamed");
    assert_eq!(
        renamed.carry_over(&old),
        CarriedOver {
            kept: 0,
            started: 1,
            tenants_kept: 0
        }
    );
}

#[test]
fn a_search_limit_is_refused_where_the_crm_has_none() {
    let errs = errors(&GOOD.replace(
        "rate_limit: { requests: 5, per: 1s }",
        "search_rate_limit: { requests: 5, per: 1s }",
    ));
    assert!(
        errs.iter().any(|e| e.contains(
            "tenants.acme.connectors.crm.search_rate_limit: type probe has no separate search limit"
        )),
        "{errs:?}"
    );
}

/// `tenants_dir`: one file per tenant, named by the file, checked like `tenants:`; every
/// problem in a file names the file and its line.
#[test]
fn tenants_dir_loads_a_tenant_per_file_and_names_the_file_of_each_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tenants = dir.path().join("tenants");
    std::fs::create_dir(&tenants).expect("mkdir");
    let tenant = "signing_secrets: [x]\nconnectors:\n  c: { type: probe, url: u }\nroutes:\n  BOOKING_CREATED:\n    - { connector: c, action: create }\n";
    std::fs::write(tenants.join("acme.yaml"), tenant).expect("acme");
    std::fs::write(tenants.join("globex.yml"), tenant).expect("globex");
    std::fs::write(tenants.join("notes.txt"), "not a tenant").expect("notes");
    let src = |extra: &str| {
        format!(
            "tenants_dir: {}\ntenants:\n  initech:\n    signing_secrets: [y]\n{extra}",
            tenants.display()
        )
    };
    let config = load(&src("")).expect("loads");
    let names: Vec<&str> = config.tenants.keys().map(String::as_str).collect();
    assert_eq!(names, ["acme", "globex", "initech"]);
    assert_eq!(config.tenants["acme"].routes["BOOKING_CREATED"].len(), 1);

    std::fs::write(
        tenants.join("bad.yaml"),
        "signing_secrets: [x]\nconnectors:\n  c: { type: probe, url: u }\nroutes:\n  BOOKING_CREATED:\n    - { connector: d, action: create }\n",
    )
    .expect("bad");
    std::fs::write(tenants.join("broken.yaml"), "signing_secrets: [x\n").expect("broken");
    std::fs::write(tenants.join("initech.yaml"), tenant).expect("twice");
    let Err(e) = load(&src("    extra_key: 1\n")) else {
        panic!("errors expected");
    };
    let shown: Vec<String> = e.issues.iter().map(ToString::to_string).collect();
    let bad = tenants.join("bad.yaml");
    let want_bad = format!(
        "{} line 6: tenants.bad.routes.BOOKING_CREATED[0].connector: no connector instance named `d`",
        bad.display()
    );
    assert!(shown.iter().any(|s| s.starts_with(&want_bad)), "{shown:#?}");
    let broken = format!("{} line ", tenants.join("broken.yaml").display());
    assert!(
        shown
            .iter()
            .any(|s| s.starts_with(&broken) && s.contains("not valid YAML")),
        "{shown:#?}"
    );
    assert!(
        shown
            .iter()
            .any(|s| s.contains("initech.yaml") && s.contains("also under `tenants:`")),
        "{shown:#?}"
    );
    // an error of the config file itself keeps its own line, and comes first
    assert!(
        shown[0].starts_with("line 5: tenants.initech.extra_key"),
        "{shown:#?}"
    );

    let Err(missing) = load("tenants_dir: /nonexistent/slatis-tenants\n") else {
        panic!("no such directory");
    };
    assert!(
        missing.issues[0].to_string().starts_with(
            "line 1: tenants_dir: cannot read the directory /nonexistent/slatis-tenants"
        ),
        "{missing}"
    );
}

/// A reload reads only the tenant files that changed: the tenants of the others are the
/// running ones (same `Arc`, same connector, templates still registered); a changed main
/// file rebuilds everything; a removed file removes its tenant.
#[test]
fn a_reload_keeps_the_tenants_of_unchanged_files_without_reading_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tenants = dir.path().join("tenants.d");
    std::fs::create_dir(&tenants).expect("mkdir");
    let tenant = |name: &str| {
        format!(
            "signing_secrets: [whsec_{name}_secret]\nconnectors:\n  c: {{ type: probe, url: u }}\nroutes:\n  BOOKING_CREATED:\n    - {{ connector: c, action: create, properties: {{ who: \"{name} {{{{data.id}}}}\" }} }}\n"
        )
    };
    for name in ["acme", "globex", "initech"] {
        std::fs::write(tenants.join(format!("{name}.yaml")), tenant(name)).expect("tenant");
    }
    let main = dir.path().join("config.yaml");
    std::fs::write(&main, "tenants_dir: tenants.d\n").expect("main");
    let first = load_file(&main).expect("first");

    let mut same = load_file_after(&main, &first).expect("same");
    assert!(
        first
            .tenants
            .iter()
            .all(|(n, t)| Arc::ptr_eq(t, &same.tenants[n]))
    );
    assert_eq!(same.carry_over(&first).tenants_kept, 3);

    // one file changed (a new inode, as an editor writes it): only that tenant is rebuilt
    let globex = tenants.join("globex.yaml");
    std::fs::remove_file(&globex).expect("rm");
    std::fs::write(&globex, tenant("globex").replace("who:", "whom:")).expect("edit");
    let edited = load_file_after(&main, &same).expect("edited");
    assert!(Arc::ptr_eq(&edited.tenants["acme"], &same.tenants["acme"]));
    assert!(!Arc::ptr_eq(
        &edited.tenants["globex"],
        &same.tenants["globex"]
    ));
    assert_eq!(
        edited.tenants["globex"].routes["BOOKING_CREATED"][0].properties[0].0,
        "whom"
    );
    // a kept tenant's templates render in the new generation, its secrets stay masked
    let step = &edited.tenants["acme"].routes["BOOKING_CREATED"][0];
    let cx = crate::template::RenderContext::new(serde_json::json!({ "data": { "id": "7" } }));
    let rendered = step.render(&edited.templates, &cx).expect("renders");
    assert_eq!(rendered.properties["who"], "acme 7");
    assert_eq!(
        edited.redactor.redact("x whsec_acme_secret"),
        format!("x {}", crate::redact::MASK)
    );

    // a removed file removes its tenant; a broken file is reported, nothing kept hides it
    std::fs::remove_file(tenants.join("initech.yaml")).expect("rm");
    let removed = load_file_after(&main, &edited).expect("removed");
    assert_eq!(removed.tenants.len(), 2);
    std::fs::write(tenants.join("acme.yaml"), "signing_secrets: [x\n").expect("break");
    let Err(e) = load_file_after(&main, &removed) else {
        panic!("a broken file fails the reload");
    };
    assert!(e.to_string().contains("acme.yaml line"), "{e}");

    // the main file changed: every tenant is built again
    std::fs::write(tenants.join("acme.yaml"), tenant("acme")).expect("fix");
    std::fs::write(
        &main,
        "tenants_dir: tenants.d\ndelivery: { concurrency: 4 }\n",
    )
    .expect("main");
    let rebuilt = load_file_after(&main, &removed).expect("rebuilt");
    assert!(!Arc::ptr_eq(
        &rebuilt.tenants["globex"],
        &removed.tenants["globex"]
    ));
}

/// A large directory is parsed on every core: every tenant still lands under its own
/// name, and an error still names its own file and line.
#[test]
fn a_large_tenants_dir_is_read_in_parallel_with_each_error_in_its_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    for i in 0..200 {
        let src = if i == 137 {
            "signing_secrets: [x\n".to_owned()
        } else {
            format!("signing_secrets: [whsec_{i}_secret]\n")
        };
        std::fs::write(dir.path().join(format!("t{i:03}.yaml")), src).expect("tenant");
    }
    let src = format!("tenants_dir: {}\n", dir.path().display());
    let Err(e) = load(&src) else {
        panic!("t137 is broken");
    };
    assert_eq!(e.issues.len(), 1, "{e}");
    let shown = e.issues[0].to_string();
    assert!(shown.contains("t137.yaml line "), "{shown}");
    std::fs::write(
        dir.path().join("t137.yaml"),
        "signing_secrets: [fixed_secret]\n",
    )
    .expect("fix");
    let config = load(&src).expect("loads");
    assert_eq!(config.tenants.len(), 200);
    assert_eq!(config.tenants["t042"].signing_secrets, ["whsec_42_secret"]);
    assert_eq!(config.tenants["t199"].signing_secrets, ["whsec_199_secret"]);
}
