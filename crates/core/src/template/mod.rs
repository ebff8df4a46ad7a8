//! Handlebars templates, compiled once at config load and rendered per delivery.
//!
//! Invariants:
//! - strict: a reference to a missing field is an error naming the field, unless guarded
//!   (`{{#if}}`, `default`); helpers other than `default` refuse missing arguments too;
//! - nothing is HTML-escaped: output is the data as sent (JSON bodies are built from
//!   rendered strings by [`crate::step`], never by pasting text into JSON);
//! - a template is registered under its YAML path, so every render error names the place.

mod helpers;

use handlebars::template::{Parameter, TemplateElement};
use handlebars::{Handlebars, RenderErrorReason};
use serde_json::Value;
use std::fmt;

/// A compiled piece of text: a constant (no `{{`) or a registered template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Text {
    /// Text with no template syntax, used as is.
    Const(String),
    /// A template registered under this name (its YAML path).
    Template(String),
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

/// The registry of every template of one config generation.
pub struct Templates {
    hb: Handlebars<'static>,
}

impl Default for Templates {
    fn default() -> Self {
        let mut hb = Handlebars::new();
        hb.set_strict_mode(true);
        hb.register_escape_fn(handlebars::no_escape);
        hb.set_prevent_indent(true);
        helpers::register(&mut hb);
        Self { hb }
    }
}

impl fmt::Debug for Templates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Templates")
            .field("count", &self.hb.get_templates().len())
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
        self.hb.register_template_string(place, src).map_err(|e| {
            let reason = e.reason().to_string();
            match e.pos() {
                Some((l, c)) => {
                    format!("invalid template (line {l}, column {c} of the template): {reason}")
                }
                _ => format!("invalid template: {reason}"),
            }
        })?;
        if let Some(t) = self.hb.get_template(place)
            && let Err(m) = check_names(&t.elements)
        {
            self.hb.unregister_template(place);
            return Err(format!("invalid template: {m}"));
        }
        Ok(Text::Template(place.to_owned()))
    }

    /// Renders `text` in `cx`.
    ///
    /// # Errors
    /// [`TemplateError`] naming the place and, for a missing field, its path.
    pub fn render(&self, text: &Text, cx: &RenderContext) -> Result<String, TemplateError> {
        match text {
            Text::Const(s) => Ok(s.clone()),
            Text::Template(name) => {
                self.hb
                    .render_with_context(name, &cx.0)
                    .map_err(|e| TemplateError {
                        place: name.clone(),
                        message: describe(e.reason()),
                    })
            }
        }
    }
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
