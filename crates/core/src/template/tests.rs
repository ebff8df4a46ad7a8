use super::*;
use proptest::prelude::*;
use serde_json::json;

type Compile = fn(&mut Templates, &str, &str) -> Result<Text, String>;

/// Compiles `src` at `place` with `compile` and renders it with `data`.
fn render_as(
    compile: Compile,
    place: &str,
    src: &str,
    data: Value,
) -> Result<String, TemplateError> {
    let mut t = Templates::default();
    let text = compile(&mut t, place, src).map_err(|m| TemplateError {
        place: place.into(),
        message: m,
    })?;
    t.render(&text, &RenderContext::new(json!({ "data": data })))
}

fn render(src: &str, data: Value) -> Result<String, TemplateError> {
    render_as(Templates::compile, "t", src, data)
}

fn ok(src: &str, data: Value) -> String {
    render(src, data).unwrap_or_else(|e| panic!("{src}: {e}"))
}

#[test]
fn helpers_table() {
    let d = json!({
        "name": "José María  García", "one": "Cher", "email": " Ada@Example.COM ",
        "start": "2026-12-01T15:00:00.000Z", "end": "2026-12-01T15:30:00Z", "empty": "", "nil": null,
        "tags": ["a", "b"], "n": 3, "notes": "says \"hi\" & <b>"
    });
    let cases = [
        ("{{first_name data.name}}", "José"),
        ("{{last_name data.name}}", "María García"),
        ("{{first_name data.one}}|{{last_name data.one}}", "Cher|"),
        ("{{default (last_name data.one) data.one}}", "Cher"),
        ("{{lower (trim data.email)}}", "ada@example.com"),
        ("{{upper data.one}}", "CHER"),
        ("{{default data.missing 'n/a'}}", "n/a"),
        ("{{default data.empty 'x'}}", "x"),
        ("{{default data.nil 'x'}}", "x"),
        ("{{default data.one 'x'}}", "Cher"),
        ("{{json data.tags}}", r#"["a","b"]"#),
        ("{{json data.notes}}", r#""says \"hi\" & <b>""#),
        ("{{concat data.one '-' data.n}}", "Cher-3"),
        ("{{epoch_ms data.start}}", "1796137200000"),
        ("{{date data.start '%H:%M' 'UTC'}}", "15:00"),
        ("{{date data.start '%H:%M' 'Europe/Madrid'}}", "16:00"),
        ("{{date_only data.start}}", "2026-12-01"),
        (
            "{{date_only '2026-12-01T23:30:00Z' 'Asia/Tokyo'}}",
            "2026-12-02",
        ),
        ("{{email_domain data.email}}", "example.com"),
        ("{{duration_minutes data.start data.end}}", "30"),
        ("{{duration_hhmm data.start data.end}}", "00:30"),
        (
            "{{duration_hhmm '2026-12-01T15:00:00Z' '2026-12-01T17:05:00Z'}}",
            "02:05",
        ),
        ("{{data.notes}}", "says \"hi\" & <b>"),
        ("{{#if data.missing}}yes{{else}}no{{/if}}", "no"),
        ("{{#if (eq data.one 'Cher')}}yes{{/if}}", "yes"),
        ("{{lookup data.tags 1}}", "b"),
    ];
    for (src, want) in cases {
        assert_eq!(ok(src, d.clone()), want, "{src}");
    }
}

#[test]
fn a_missing_field_is_an_error_naming_it() {
    let e = render("{{data.attendee.phone}}", json!({"attendee": {}})).expect_err("strict");
    assert!(e.message.contains("data.attendee.phone"), "{e}");
    assert_eq!(e.place, "t");
    let e = render("{{lower data.attendee.emial}}", json!({"attendee": {}}))
        .expect_err("strict helper");
    assert!(e.message.contains("data.attendee.emial"), "{e}");
}

#[test]
fn bad_helper_input_is_a_clear_error() {
    let e = render("{{epoch_ms data.t}}", json!({"t": "yesterday"})).expect_err("bad time");
    assert!(
        e.message.contains("epoch_ms") && e.message.contains("RFC 3339"),
        "{e}"
    );
    let e = render(
        "{{date data.t '%H' 'Mars/Base'}}",
        json!({"t": "2026-01-01T00:00:00Z"}),
    )
    .expect_err("tz");
    assert!(e.message.contains("Mars/Base"), "{e}");
    let e = render("{{lower}}", json!({})).expect_err("arity");
    assert!(e.message.contains("takes 1"), "{e}");
}

#[test]
fn invalid_templates_fail_to_compile() {
    let mut t = Templates::default();
    assert!(t.compile("p", "{{#if x}}unclosed").is_err());
    assert!(t.compile("q", "{{first_name data.name}").is_err());
    let e = t
        .compile("r", "{{shout data.name}}")
        .expect_err("unknown helper");
    assert!(e.contains("unknown helper `shout`"), "{e}");
    assert!(
        t.compile("s", "{{#each data.tags}}{{upper (shout this)}}{{/each}}")
            .is_err()
    );
    assert!(t.compile("u", "{{> partial}}").is_err());
    assert!(
        t.compile(
            "v",
            "{{#if (eq data.a 'x')}}{{lower data.b}}{{else}}{{data.c}}{{/if}}"
        )
        .is_ok()
    );
}

#[test]
fn text_without_braces_is_a_constant() {
    let mut t = Templates::default();
    assert_eq!(
        t.compile("p", "cancelled"),
        Ok(Text::Const("cancelled".into()))
    );
}

#[test]
fn truthiness() {
    for (s, want) in [
        ("", false),
        ("false", false),
        (" false ", false),
        ("0", true),
        ("true", true),
        ("x", true),
    ] {
        assert_eq!(is_truthy(s), want, "{s:?}");
    }
}

proptest! {
    #[test]
    fn any_text_passes_through_unescaped(s in "\\PC{0,40}") {
        prop_assert_eq!(ok("{{data.s}}", json!({"s": s.clone()})), s);
    }

    #[test]
    fn names_split_into_first_and_rest(words in proptest::collection::vec("[^\\s]{1,8}", 1..5)) {
        let name = words.join(" ");
        prop_assert_eq!(ok("{{first_name data.n}}", json!({"n": name})), words[0].clone());
        prop_assert_eq!(ok("{{last_name data.n}}", json!({"n": words.join("  ")})), words[1..].join(" "));
    }
}

fn render_path(src: &str, data: Value) -> Result<String, TemplateError> {
    render_as(Templates::compile_path, "p", src, data)
}

#[test]
fn a_path_template_makes_each_value_one_segment() {
    let d = json!({
        "id": "../../admin/users/1?x=", "email": "Ada+1@Example.com", "name": "José Ñ",
        "hash": "a#b", "dots": "%2e%2e", "slashes": "//evil.com", "n": 42, "empty": "", "ok": true
    });
    let cases = [
        ("/people/{{data.n}}/notes", "/people/42/notes"),
        (
            "users/{{data.id}}",
            "users/..%2F..%2Fadmin%2Fusers%2F1%3Fx%3D",
        ),
        (
            "users/{{lower data.email}}?fields=a,b&q={{data.hash}}",
            "users/ada%2B1@example.com?fields=a,b&q=a%23b",
        ),
        ("u/{{data.name}}", "u/Jos%C3%A9%20%C3%91"),
        ("u/{{data.dots}}", "u/%252e%252e"),
        ("u/{{data.slashes}}", "u/%2F%2Fevil.com"),
        ("u/{{concat data.n '/' data.n}}", "u/42%2F42"),
        ("u/{{#if data.ok}}{{data.n}}{{/if}}", "u/42"),
        ("u/{{eq data.n 42}}", "u/true"),
        ("items?q={{data.empty}}", "items?q="),
        ("u/x{{data.empty}}.json", "u/x.json"),
    ];
    for (src, want) in cases {
        assert_eq!(
            render_path(src, d.clone()).unwrap_or_else(|e| panic!("{src}: {e}")),
            want,
            "{src}"
        );
    }
    for (src, data) in [
        ("users/{{data.id}}", json!({"id": ".."})),
        ("users/{{data.id}}/x", json!({"id": "."})),
        ("users/{{data.id}}", json!({"id": ""})),
        ("users/.{{data.id}}", json!({"id": "."})),
    ] {
        let e = render_path(src, data.clone()).expect_err(src);
        assert_eq!(e.place, "p", "{src} {data}");
    }
}

#[test]
fn a_path_template_refuses_what_would_skip_the_escape() {
    let mut t = Templates::default();
    let e = t
        .compile_path("a", "u/{{{data.id}}}")
        .expect_err("triple-stash");
    assert!(e.contains("unescaped"), "{e}");
    assert!(
        t.compile_path("b", "u/{{#each data.x}}{{{this}}}{{/each}}")
            .is_err()
    );
    assert!(t.compile_path("c", "u/\0/{{data.id}}").is_err());
    assert!(
        t.compile_path("d", "u/../admin").is_err(),
        "a constant is checked at load"
    );
    assert_eq!(
        t.compile_path("e", "u/v?w=1"),
        Ok(Text::Const("u/v?w=1".into()))
    );
    assert!(
        t.compile_path("f", "u/{{shout data.id}}").is_err(),
        "helpers are checked"
    );
    assert!(
        matches!(t.compile("g", "{{{data.id}}}"), Ok(Text::Template(c)) if c.place == "g"),
        "other templates may use it"
    );
}

/// The same source at two places is compiled once, and each render error names its own
/// place.
#[test]
fn one_source_is_compiled_once_and_errors_name_their_place() {
    let mut t = Templates::default();
    let a = t.compile("tenants.a.x", "{{data.id}}").expect("a");
    let b = t.compile("tenants.b.x", "{{data.id}}").expect("b");
    assert_eq!(format!("{t:?}"), "Templates { count: 1, paths: 0 }");
    let cx = RenderContext::new(json!({ "data": { "id": "7" } }));
    assert_eq!(t.render(&a, &cx).as_deref(), Ok("7"));
    let empty = RenderContext::new(json!({ "data": {} }));
    assert_eq!(
        t.render(&b, &empty).map_err(|e| e.place),
        Err("tenants.b.x".to_owned())
    );
}

proptest! {
    /// Whatever a value holds, a path template keeps it inside its one segment.
    #[test]
    fn a_path_value_never_leaves_its_segment(s in "\\PC{0,16}|[./%2eE\\\\?#&=]{0,8}") {
        match render_path("v2/users/{{data.s}}/notes?x=1", json!({"s": s.clone()})) {
            Err(_) => prop_assert!(s.is_empty() || s == "." || s == ".."),
            Ok(path) => {
                let url = reqwest::Url::parse(&format!("https://api.example.com/{path}")).expect("parses");
                let segments: Vec<&str> = url.path_segments().expect("segments").collect();
                prop_assert_eq!(segments.len(), 4);
                prop_assert_eq!(segments[1], "users");
                prop_assert_eq!(segments[3], "notes");
                prop_assert_eq!(url.query(), Some("x=1"));
            }
        }
    }
}
