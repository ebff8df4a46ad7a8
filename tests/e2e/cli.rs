//! The CLI: `validate` on each kind of bad config, `render`, `sign`.

use crate::support::bin;
use slatis_testkit::fixtures;
use slatis_testkit::process::{run, write_config};

fn validate(yaml: &str) -> (i32, String, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_config(dir.path(), yaml);
    run(
        &bin(),
        &["validate", "--config", &path.to_string_lossy()],
        &[],
    )
}

const BASE: &str = "tenants:\n  a:\n    signing_secrets: [s]\n    connectors:\n      api: { type: http, base_url: \"http://x\" }\n    routes:\n      BOOKING_CREATED:\n";

#[test]
fn validate_exits_non_zero_on_each_kind_of_error_and_names_the_path() {
    let step = |s: &str| format!("{BASE}        - {s}\n");
    let cases: Vec<(&str, String, &str)> = vec![
        ("broken YAML", "server: [\n".into(), "not valid YAML"),
        ("unknown key", "storage: { url: sqlite://x.db, retension: 7d }\n".into(), "storage.retension"),
        ("bad duration", "storage: { retention: forever }\n".into(), "storage.retention"),
        ("missing variable", "tenants: { a: { signing_secrets: [\"${SLATIS_E2E_UNSET}\"] } }\n".into(), "tenants.a.signing_secrets[0]: environment variable SLATIS_E2E_UNSET is not set"),
        ("connector not compiled in", "tenants: { a: { signing_secrets: [s], connectors: { c: { type: zoho } } } }\n".into(), "tenants.a.connectors.c.type: connector type `zoho` is not compiled into this binary (compiled in:"),
        ("bad base_url", "tenants: { a: { signing_secrets: [s], connectors: { c: { type: http, base_url: nope } } } }\n".into(), "tenants.a.connectors.c.base_url"),
        ("template error", step("{ connector: api, action: request, method: POST, path: \"/x/{{data.id\" }"), "tenants.a.routes.BOOKING_CREATED[0].path: invalid template"),
        ("unknown helper", step("{ connector: api, action: request, method: POST, path: /x, json: { n: \"{{shout data.id}}\" } }"), "tenants.a.routes.BOOKING_CREATED[0].json.n: invalid template"),
        ("http step without path", step("{ connector: api, action: request, method: POST }"), "tenants.a.routes.BOOKING_CREATED[0]: a request needs `path`"),
        ("bad method", step("{ connector: api, action: request, method: FETCH, path: /x }"), "tenants.a.routes.BOOKING_CREATED[0].method"),
        ("json and body", step("{ connector: api, action: request, method: POST, path: /x, json: {}, body: x }"), "tenants.a.routes.BOOKING_CREATED[0].body: give either"),
        ("unknown instance", step("{ connector: hubspot, action: request }"), "tenants.a.routes.BOOKING_CREATED[0].connector: no connector instance named `hubspot`"),
    ];
    for (what, yaml, want) in cases {
        let (code, out, err) = validate(&yaml);
        assert_eq!(code, 1, "{what}: exit code; stdout {out}");
        assert!(err.contains(want), "{what}: wanted {want:?} in:\n{err}");
    }
}

/// `--version` names every connector type compiled in (the default features: all four).
#[test]
fn version_names_the_connectors_compiled_in() {
    let (code, out, _) = run(&bin(), &["--version"], &[]);
    assert_eq!(code, 0);
    assert_eq!(
        out.trim(),
        format!(
            "slatis-sync {} (connectors: http, hubspot, pipedrive, salesforce)",
            env!("CARGO_PKG_VERSION")
        )
    );
}

/// A type that is not compiled in is one error, not one more per step that uses it.
#[test]
fn a_connector_type_not_compiled_in_is_one_error_per_instance() {
    let yaml = "tenants:\n  a:\n    signing_secrets: [s]\n    connectors:\n      z: { type: zoho }\n      y: { type: zoho }\n    routes:\n      BOOKING_CREATED:\n        - { connector: z, action: upsert }\n        - { connector: y, action: upsert }\n      BOOKING_CANCELLED:\n        - { connector: z, action: delete }\n";
    let (code, _, err) = validate(yaml);
    assert_eq!(code, 1);
    assert!(err.contains("2 errors"), "{err}");
    assert_eq!(err.matches("is not compiled into this binary").count(), 2, "{err}");
    assert!(!err.contains("no connector instance named"), "{err}");
}

#[test]
fn validate_reports_every_error_with_its_line() {
    let yaml = "server:\n  listen: nowhere\nstorage:\n  retention: 5\ntenants:\n  a:\n    signing_secrets: [\"${SLATIS_E2E_UNSET}\"]\n";
    let (code, _, err) = validate(yaml);
    assert_eq!(code, 1);
    assert!(err.contains("3 errors"), "{err}");
    assert!(err.contains("line 2: server.listen"), "{err}");
    assert!(err.contains("line 4: storage.retention"), "{err}");
    assert!(
        err.contains("line 7: tenants.a.signing_secrets[0]"),
        "{err}"
    );
}

#[test]
fn the_example_config_validates_with_an_empty_environment() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.yaml");
    let out = std::process::Command::new(bin())
        .args(["validate", "--config", example])
        .env_clear()
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("demo: crm (http, dry run)"), "{stdout}");
    for event in slatis_core::config::EVENT_TYPES {
        assert!(stdout.contains(event), "the demo tenant maps {event}");
    }
}

#[test]
fn render_prints_the_requests_an_event_would_make() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.yaml");
    let event = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/crates/testkit/fixtures/booking_created_full.json"
    );
    let (code, out, err) = run(
        &bin(),
        &[
            "render", "--config", example, "--tenant", "demo", "--event", event,
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("PUT https://crm.example.com/api/contacts/jose.garcia@example.com"),
        "{out}"
    );
    assert!(
        out.contains("\"last_name\": \"María García Pérez\""),
        "{out}"
    );
    assert!(
        out.contains("authorization: ***"),
        "credentials are masked: {out}"
    );
    let (code, _, err) = run(
        &bin(),
        &[
            "render", "--config", example, "--tenant", "nobody", "--event", event,
        ],
        &[],
    );
    assert_eq!(code, 1);
    assert!(err.contains("no tenant `nobody`"), "{err}");
}

#[test]
fn sign_prints_the_vectors_signatures() {
    let dir = tempfile::tempdir().expect("tempdir");
    for v in fixtures::signature_vectors() {
        let file = dir.path().join("body");
        std::fs::write(&file, v.body()).expect("write");
        let (code, out, _) = run(
            &bin(),
            &["sign", "--secret", &v.secret, &file.to_string_lossy()],
            &[],
        );
        assert_eq!(code, 0);
        assert_eq!(out.trim(), v.signature);
    }
}
