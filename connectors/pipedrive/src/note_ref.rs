//! `match: {property: note_ref, value: …}`: how an activity is known without custom
//! fields. Pipedrive activities have none (custom fields exist on deals, organizations,
//! persons and products: <https://pipedrive.readme.io/docs/core-api-concepts-custom-fields>;
//! the v2 activity request model has no `custom_fields`:
//! <https://github.com/pipedrive/client-nodejs/blob/master/src/versions/v2/models/add-activity-request.ts>),
//! so the reference is written into the activity's `note` (HTML) as its own paragraph,
//! `<p>[slatis:bkg_123]</p>`, appended to whatever note the step writes.
//!
//! Invariants: a note the connector writes for a `note_ref` step always carries the tag;
//! a tag matches only its own value (`[slatis:bkg_1]` is not in `[slatis:bkg_12]`), as
//! written or HTML-escaped.

/// The `match.property` that names an activity by the reference in its note.
pub const PROPERTY: &str = "note_ref";

/// `&`, `<`, `>`, `"`, `'` as HTML entities.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The tag of `value`, as text.
fn tag(value: &str) -> String {
    format!("[slatis:{value}]")
}

/// Whether `note` carries the reference `value`.
pub fn carries(note: &str, value: &str) -> bool {
    note.contains(&tag(value)) || note.contains(&escape(&tag(value)))
}

/// `note` with the reference appended as its own paragraph (unless it carries it).
pub fn with_tag(note: &str, value: &str) -> String {
    if carries(note, value) {
        note.to_owned()
    } else {
        format!("{note}<p>{}</p>", escape(&tag(value)))
    }
}

/// `note` without the reference's paragraph: what a sales rep or the booking wrote.
pub fn without_tag(note: &str, value: &str) -> String {
    let escaped = escape(&tag(value));
    [
        format!("<p>{escaped}</p>"),
        format!("<p>{}</p>", tag(value)),
        escaped,
        tag(value),
    ]
    .iter()
    .fold(note.to_owned(), |n, t| n.replace(t.as_str(), ""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tag_is_appended_once_and_found_again() {
        let note = with_tag("Notes from the booking", "bkg_1");
        assert_eq!(note, "Notes from the booking<p>[slatis:bkg_1]</p>");
        assert_eq!(with_tag(&note, "bkg_1"), note, "once");
        assert!(carries(&note, "bkg_1"));
        assert!(!carries(&note, "bkg_12"), "not a prefix");
        assert!(!carries(&with_tag("", "bkg_12"), "bkg_1"));
        assert_eq!(without_tag(&note, "bkg_1"), "Notes from the booking");
        assert_eq!(without_tag(&with_tag("", "bkg_1"), "bkg_1"), "");
    }

    #[test]
    fn a_value_html_would_change_is_found_escaped_or_not() {
        let note = with_tag("", "a&b<c>");
        assert_eq!(note, "<p>[slatis:a&amp;b&lt;c&gt;]</p>");
        assert!(carries(&note, "a&b<c>"));
        assert!(carries("<div>[slatis:a&b<c>]</div>", "a&b<c>"));
        assert_eq!(without_tag(&note, "a&b<c>"), "");
    }
}
