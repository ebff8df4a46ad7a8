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
    assert_eq!(
        err.matches("is not compiled into this binary").count(),
        2,
        "{err}"
    );
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
    let stdout = on_the_example("validate");
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

/// Runs `command` on the example config with an empty environment; its stdout, once it
/// succeeded.
fn on_the_example(command: &str) -> String {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.yaml");
    let out = std::process::Command::new(bin())
        .args([command, "--config", example])
        .env_clear()
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{command}: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// `slatis-sync test` on the example config with an empty environment: every tenant and
/// every event type it routes has a case, and each passes.
#[test]
fn the_example_mapping_tests_pass() {
    let stdout = on_the_example("test");
    // what `validate` lists: "  TENANT: instances; routes A, B"
    let listed = on_the_example("validate");
    let mut routed = 0;
    for line in listed.lines().filter(|l| l.starts_with("  ")) {
        let (tenant, rest) = line.trim().split_once(':').expect("tenant line");
        let (_, events) = rest.split_once("; routes ").expect("routes");
        for event in events.split(", ") {
            routed += 1;
            assert!(
                stdout.contains(&format!("ok    {tenant}-"))
                    && stdout.contains(&format!("(tenant {tenant}, {event})")),
                "no passing case for {tenant} {event}:\n{stdout}"
            );
        }
    }
    assert!(routed >= 20, "{listed}");
}

/// A case that does not match fails with one readable line per difference; a case that
/// cannot be read fails naming why; no case at all is a failure too.
#[test]
fn a_wrong_mapping_expectation_fails_with_a_readable_diff() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(
        dir.path(),
        &format!(
            "{BASE}        - {{ connector: api, action: request, method: PUT, path: \"/contacts/{{{{lower data.attendee.email}}}}\", json: {{ first: \"{{{{first_name data.attendee.name}}}}\" }} }}\n"
        ),
    );
    let cases = dir.path().join(format!(
        "{}.tests",
        config.file_stem().expect("stem").to_string_lossy()
    ));
    let run_tests = || {
        run(
            &bin(),
            &["test", "--config", &config.to_string_lossy()],
            &[],
        )
    };
    let (code, _, err) = run_tests();
    assert_eq!(code, 1);
    assert!(err.contains("no mapping tests"), "{err}");
    std::fs::create_dir(&cases).expect("mkdir");
    std::fs::write(
        cases.join("event.json"),
        fixtures::booking(
            "BOOKING_CREATED",
            "bkg_1",
            "Ada Lovelace",
            "ada@example.com",
        ),
    )
    .expect("event");
    let case = |first: &str, path: &str| {
        format!(
            "tenant: a\nevent: event.json\nexpect:\n  api:\n    - requests:\n        - method: PUT\n          path: {path}\n          body: {{ first: {first} }}\n"
        )
    };
    std::fs::write(
        cases.join("a.yaml"),
        case("Ada", "/contacts/ada@example.com"),
    )
    .expect("case");
    let (code, out, _) = run_tests();
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("ok    a.yaml (tenant a, BOOKING_CREATED)"),
        "{out}"
    );
    std::fs::write(cases.join("b.yaml"), case("Adam", "/contacts/ada")).expect("case");
    std::fs::write(cases.join("c.yaml"), "tenant: a\nexpect: {}\n").expect("case");
    let (code, out, _) = run_tests();
    assert_eq!(code, 1, "{out}");
    for want in [
        "FAIL  b.yaml (tenant a, BOOKING_CREATED)",
        "api step 1 request 1 (PUT /contacts/ada@example.com): expected path /contacts/ada, got /contacts/ada@example.com",
        "api step 1 request 1 (PUT /contacts/ada@example.com): body.first: expected \"Adam\", got \"Ada\"",
        "FAIL  c.yaml",
        "cannot read it",
        "3 mapping test(s)",
        "1 passed, 2 failed",
    ] {
        assert!(out.contains(want), "wanted {want:?} in:\n{out}");
    }
}
