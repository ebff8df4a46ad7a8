//! Handlebars templates, compiled once at config load and rendered per delivery.
//!
//! Invariants:
//! - strict: a reference to a missing field is an error naming the field, unless guarded
//!   (`{{#if}}`, `default`); helpers other than `default` refuse missing arguments too;
//! - nothing is HTML-escaped: output is the data as sent (JSON bodies are built from
//!   rendered strings by [`crate::step`], never by pasting text into JSON);
//! - a template is registered under its YAML path, so every render error names the place;
//! - a URL path template ([`Templates::compile_path`]) lives in a registry of its own whose
//!   escape makes each `{{…}}` output one percent-encoded path segment, while the text the
//!   operator wrote keeps its slashes and query; `{{{…}}}` (which skips the escape) is
//!   refused there at load, and the rendered path is checked ([`crate::url_path::finish`]).
//!
//! Why an escape and not a check after rendering: after rendering, a value's `/`, `?` or
//! `..` can no longer be told from the operator's own. Handlebars applies the escape to
//! every `{{…}}` output (values and helper results) and to nothing the operator wrote, which
//! is exactly the line between data and structure. The only outputs it cannot encode —
//! an empty value, `.`, `..` — are caught by the check after rendering.

mod helpers;

use handlebars::template::{Parameter, TemplateElement};
use handlebars::{Handlebars, RenderErrorReason};
use serde_json::Value;
use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

/// A compiled piece of text: a constant (no `{{`) or a registered template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Text {
    /// Text with no template syntax, used as is.
    Const(String),
    /// A compiled template, found at `place` (its YAML path).
    Template(Compiled),
    /// A compiled URL path template: each `{{…}}` output is one path segment
    /// ([`Templates::compile_path`]).
    Path(Compiled),
}

/// Where a compiled template was written, and the source it is registered under: the
/// same source anywhere in the config is compiled once (a thousand tenants with the
/// same mapping share its templates).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compiled {
    /// The YAML path it was found at (named by render errors).
    pub place: String,
    /// Its source: its name in the registry (one allocation however many places use it).
    key: Arc<str>,
}

/// A failed render, naming the template's place.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("template at {place}: {message}")]
pub struct TemplateError {
    /// The YAML path of the template.
    pub place: String,
    /// What went wrong, e.g. the missing field.
    pub message: String,
}

/// The render context of one delivery (`event`, `data`, `tenant`, `delivery`, `steps`).
pub struct RenderContext(handlebars::Context);

impl RenderContext {
    /// Wraps a context value.
    pub fn new(value: Value) -> Self {
        Self(
            handlebars::Context::wraps(value)
                .unwrap_or_else(|_| unreachable!("a JSON value always serialises")),
        )
    }

    /// The context as JSON.
    pub fn value(&self) -> &Value {
        self.0.data()
    }

    /// Mutable access, e.g. to record a step's result under `steps`.
    pub fn value_mut(&mut self) -> &mut Value {
        self.0.data_mut()
    }
}

/// The registry of every template of one config generation (cloned into the next one
/// when a reload keeps tenants, whose steps name their templates by source).
#[derive(Clone)]
pub struct Templates {
    hb: Handlebars<'static>,
    /// URL path templates: the same helpers, every output escaped as a path segment.
    paths: Handlebars<'static>,
    /// Every source compiled, shared by the [`Compiled`]s that name it.
    keys: HashSet<Arc<str>>,
}

fn registry(escape: fn(&str) -> String) -> Handlebars<'static> {
    let mut hb = Handlebars::new();
    hb.set_strict_mode(true);
    hb.register_escape_fn(escape);
    hb.set_prevent_indent(true);
    helpers::register(&mut hb);
    hb
}

impl Default for Templates {
    fn default() -> Self {
        Self {
            hb: registry(handlebars::no_escape),
            paths: registry(crate::url_path::escape_value),
            keys: HashSet::new(),
        }
    }
}

impl fmt::Debug for Templates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Templates")
            .field("count", &self.hb.get_templates().len())
            .field("paths", &self.paths.get_templates().len())
            .finish()
    }
}

impl Templates {
    /// Compiles `src`, found at `place`.
    ///
    /// # Errors
    /// The parser's message when `src` is not a valid template.
    pub fn compile(&mut self, place: &str, src: &str) -> Result<Text, String> {
        if !src.contains("{{") {
            return Ok(Text::Const(src.to_owned()));
        }
        register(&mut self.hb, src, check_names)?;
        Ok(Text::Template(Compiled {
            place: place.to_owned(),
            key: self.key(src),
        }))
    }

    /// Compiles `src`, found at `place`, as a URL path: each `{{…}}` output becomes one
    /// percent-encoded path segment; the literal text keeps its slashes and query.
    ///
    /// # Errors
    /// The parser's message, `{{{…}}}` (it would skip the escape), a NUL, or a constant
    /// path with a `.` or `..` segment.
    pub fn compile_path(&mut self, place: &str, src: &str) -> Result<Text, String> {
        crate::url_path::check_source(src)?;
        if !src.contains("{{") {
            return crate::url_path::finish(src).map(Text::Const);
        }
        register(&mut self.paths, src, |elements| {
            check_names(elements)?;
            check_escaped(elements)
        })?;
        Ok(Text::Path(Compiled {
            place: place.to_owned(),
            key: self.key(src),
        }))
    }

    /// The shared copy of `src`, the name a compiled template renders by.
    fn key(&mut self, src: &str) -> Arc<str> {
        if let Some(key) = self.keys.get(src) {
            return Arc::clone(key);
        }
        let key: Arc<str> = Arc::from(src);
        self.keys.insert(Arc::clone(&key));
        key
    }

    /// Renders `text` in `cx`.
    ///
    /// # Errors
    /// [`TemplateError`] naming the place and, for a missing field, its path.
    pub fn render(&self, text: &Text, cx: &RenderContext) -> Result<String, TemplateError> {
        match text {
            Text::Const(s) => Ok(s.clone()),
            Text::Template(c) => render(&self.hb, c, cx),
            Text::Path(c) => {
                crate::url_path::finish(&render(&self.paths, c, cx)?).map_err(|message| {
                    TemplateError {
                        place: c.place.clone(),
                        message,
                    }
                })
            }
        }
    }
}

/// Registers `src` under its own text in `hb` if it parses and passes `check` (once: a
/// source already registered passed both).
fn register(
    hb: &mut Handlebars<'static>,
    src: &str,
    check: impl Fn(&[TemplateElement]) -> Result<(), String>,
) -> Result<(), String> {
    if hb.has_template(src) {
        return Ok(());
    }
    hb.register_template_string(src, src).map_err(|e| {
        let reason = e.reason().to_string();
        match e.pos() {
            Some((l, c)) => {
                format!("invalid template (line {l}, column {c} of the template): {reason}")
            }
            _ => format!("invalid template: {reason}"),
        }
    })?;
    if let Some(t) = hb.get_template(src)
        && let Err(m) = check(&t.elements)
    {
        hb.unregister_template(src);
        return Err(format!("invalid template: {m}"));
    }
    Ok(())
}

fn render(
    hb: &Handlebars<'static>,
    c: &Compiled,
    cx: &RenderContext,
) -> Result<String, TemplateError> {
    hb.render_with_context(&c.key, &cx.0)
        .map_err(|e| TemplateError {
            place: c.place.clone(),
            message: describe(e.reason()),
        })
}

/// A path template may not use `{{{…}}}`, which pastes a value without the path escape.
fn check_escaped(elements: &[TemplateElement]) -> Result<(), String> {
    for e in elements {
        match e {
            TemplateElement::HtmlExpression(_) => {
                return Err("`{{{…}}}` would paste a value into the path unescaped; use `{{…}}`, which makes each value one path segment".to_owned());
            }
            TemplateElement::HelperBlock(h) => {
                for t in [&h.template, &h.inverse].into_iter().flatten() {
                    check_escaped(&t.elements)?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Handlebars' own helpers (those of the `helpers` module are added to these).
const BUILTIN_HELPERS: &[&str] = &[
    "if", "unless", "each", "with", "lookup", "eq", "ne", "gt", "gte", "lt", "lte", "and", "or",
    "not", "len",
];

/// Every helper a template calls must exist, so a typo fails at load, not at delivery;
/// partials and decorators are not supported.
fn check_names(elements: &[TemplateElement]) -> Result<(), String> {
    for e in elements {
        match e {
            TemplateElement::Expression(h)
            | TemplateElement::HtmlExpression(h)
            | TemplateElement::HelperBlock(h) => {
                let called = h.block || !h.params.is_empty() || !h.hash.is_empty();
                if let (true, Parameter::Name(name)) = (called, &h.name)
                    && !BUILTIN_HELPERS.contains(&name.as_str())
                    && !helpers::NAMES.contains(&name.as_str())
                {
                    return Err(format!(
                        "unknown helper `{name}` (helpers: {}, {})",
                        helpers::NAMES.join(", "),
                        BUILTIN_HELPERS.join(", ")
                    ));
                }
                for p in h.params.iter().chain(h.hash.values()) {
                    if let Parameter::Subexpression(sub) = p {
                        check_names(std::slice::from_ref(sub.as_element()))?;
                    }
                }
                for t in [&h.template, &h.inverse].into_iter().flatten() {
                    check_names(&t.elements)?;
                }
            }
            TemplateElement::PartialExpression(_) | TemplateElement::PartialBlock(_) => {
                return Err("partials (`{{> name}}`) are not supported".to_owned());
            }
            TemplateElement::DecoratorExpression(_) | TemplateElement::DecoratorBlock(_) => {
                return Err("decorators (`{{* name}}`) are not supported".to_owned());
            }
            _ => {}
        }
    }
    Ok(())
}

fn describe(reason: &RenderErrorReason) -> String {
    match reason {
        RenderErrorReason::MissingVariable(Some(path)) => {
            format!("`{path}` is missing from the event (guard it with {{{{#if}}}} or `default`)")
        }
        RenderErrorReason::MissingVariable(None) => {
            "a referenced field is missing from the event".to_owned()
        }
        RenderErrorReason::Other(m) => m.clone(),
        other => other.to_string(),
    }
}

/// Whether rendered text counts as true for `when`: anything but `""` and `false`
/// (surrounding white space ignored).
pub fn is_truthy(rendered: &str) -> bool {
    !matches!(rendered.trim(), "" | "false")
}

#[cfg(test)]
mod tests;
