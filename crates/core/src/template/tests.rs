use super::*;
use proptest::prelude::*;
use serde_json::json;

fn render(src: &str, data: Value) -> Result<String, TemplateError> {
    let mut t = Templates::default();
    let text = t.compile("t", src).map_err(|m| TemplateError {
        place: "t".into(),
        message: m,
    })?;
    t.render(&text, &RenderContext::new(json!({ "data": data })))
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
