//! Chat templates rendered as transformers renders them (`apply_chat_template`): the model's
//! Jinja template with `trim_blocks` and `lstrip_blocks`, loop controls, Python's string and
//! dict methods, `raise_exception`, `strftime_now`, `tojson` as Python's `json.dumps` writes it,
//! and the tokenizer's special tokens, over a conversation's messages.

use crate::error::{Error, Result};
use crate::model::formats::chat_template::ChatTemplate;
use minijinja::value::{Kwargs, Value};
use minijinja::{Environment, ErrorKind};
use serde::{Deserialize, Serialize};

/// One message of a conversation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// Its text.
    pub content: String,
}

impl Message {
    /// A message of `role` saying `content`.
    pub fn new(role: &str, content: &str) -> Self {
        Message {
            role: role.to_string(),
            content: content.to_string(),
        }
    }
}

impl ChatTemplate {
    /// The prompt for `messages`, ending with the assistant's turn opened when
    /// `add_generation_prompt`. A template that raises (`raise_exception`) or uses what this
    /// engine lacks is an error naming the template and the cause.
    pub fn render(&self, messages: &[Message], add_generation_prompt: bool) -> Result<String> {
        self.render_at(
            messages,
            add_generation_prompt,
            chrono::Local::now().naive_local(),
        )
    }

    /// As [`ChatTemplate::render`], with `strftime_now` at `now` (tests fix the date).
    pub fn render_at(
        &self,
        messages: &[Message],
        add_generation_prompt: bool,
        now: chrono::NaiveDateTime,
    ) -> Result<String> {
        self.render_with(messages, add_generation_prompt, Some(now))
    }

    /// Renders with `strftime_now` at `now`, or the clock when `None`.
    fn render_with(
        &self,
        messages: &[Message],
        add_generation_prompt: bool,
        now: Option<chrono::NaiveDateTime>,
    ) -> Result<String> {
        let bad = |e: minijinja::Error| {
            let mut found = e.to_string();
            let mut cause = std::error::Error::source(&e);
            while let Some(c) = cause {
                found.push_str(&format!(": {c}"));
                cause = c.source();
            }
            Error::Invalid {
                what: format!("the chat template of {}", self.source),
                expected: "a template this engine renders as transformers does".into(),
                found,
            }
        };
        let env = environment(now);
        let text = without_generation_tags(&self.text);
        let template = env.template_from_str(&text).map_err(bad)?;
        let mut context: std::collections::BTreeMap<String, Value> = self
            .special_tokens
            .iter()
            .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
            .collect();
        // Keys in the order transformers' dicts have them (`tojson` shows it).
        let messages: Vec<Value> = messages
            .iter()
            .map(|m| {
                Value::from_pairs([
                    ("role", Value::from(m.role.as_str())),
                    ("content", Value::from(m.content.as_str())),
                ])
            })
            .collect();
        context.insert("messages".into(), Value::from(messages));
        // transformers passes these as None when a call gives none.
        context.insert("tools".into(), Value::from(()));
        context.insert("documents".into(), Value::from(()));
        context.insert(
            "add_generation_prompt".into(),
            Value::from(add_generation_prompt),
        );
        template.render(context).map_err(bad)
    }
}

/// `text` with transformers' `{% generation %}` … `{% endgeneration %}` (its `AssistantTracker`
/// extension, which marks the assistant's tokens and renders its body as it is) as an
/// always-true `if`, whitespace control kept.
fn without_generation_tags(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains("generation") {
        return text.into();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find("{%") {
        let Some(len) = rest[open..].find("%}") else {
            break;
        };
        let tag = &rest[open..open + len + 2];
        let inner = tag[2..tag.len() - 2].trim_matches(|c: char| c == '-' || c == '+');
        let replaced = match inner.trim() {
            "generation" => Some(tag.replacen("generation", "if true", 1)),
            "endgeneration" => Some(tag.replacen("endgeneration", "endif", 1)),
            _ => None,
        };
        out.push_str(&rest[..open]);
        out.push_str(replaced.as_deref().unwrap_or(tag));
        rest = &rest[open + len + 2..];
    }
    out.push_str(rest);
    out.into()
}

/// The local time now (in the browser, UTC: a page's time zone is not known here).
fn clock() -> chrono::NaiveDateTime {
    #[cfg(not(target_arch = "wasm32"))]
    {
        chrono::Local::now().naive_local()
    }
    #[cfg(target_arch = "wasm32")]
    {
        let since = web_time::SystemTime::now()
            .duration_since(web_time::SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        chrono::DateTime::from_timestamp(since.as_secs() as i64, since.subsec_nanos())
            .unwrap_or_default()
            .naive_utc()
    }
}

/// The environment transformers' `_compile_jinja_template` makes; `strftime_now` at `now`, or
/// the clock's when `None`.
fn environment(now: Option<chrono::NaiveDateTime>) -> Environment<'static> {
    let mut env = Environment::new();
    env.set_syntax(
        minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .expect("the default delimiters"),
    );
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    minijinja_contrib::add_to_environment(&mut env);
    env.add_function(
        "raise_exception",
        |message: String| -> std::result::Result<Value, minijinja::Error> {
            Err(minijinja::Error::new(ErrorKind::InvalidOperation, message))
        },
    );
    env.add_function("strftime_now", move |format: String| {
        use std::fmt::Write;
        // chrono's formatter fails (rather than writes) on a format it cannot read.
        let mut out = String::new();
        write!(out, "{}", now.unwrap_or_else(clock).format(&format)).map_err(|_| {
            let msg = format!("strftime_now: a format it cannot read, '{format}'");
            minijinja::Error::new(ErrorKind::InvalidOperation, msg)
        })?;
        Ok::<_, minijinja::Error>(out)
    });
    env.add_filter("tojson", tojson);
    // Python's None is not iterable (`tools is iterable` is false when a call gives no tools).
    env.add_test("iterable", |v: Value| !v.is_none() && v.try_iter().is_ok());
    env
}

/// Python's `json.dumps(x, ensure_ascii=False, indent=indent, separators=separators,
/// sort_keys=sort_keys)`, as transformers' `tojson` filter is.
fn tojson(value: &Value, kwargs: Kwargs) -> std::result::Result<String, minijinja::Error> {
    let indent: Option<usize> = kwargs.get("indent")?;
    let sort_keys: Option<bool> = kwargs.get("sort_keys")?;
    kwargs.assert_all_used()?;
    let json = serde_json::to_value(value)
        .map_err(|e| minijinja::Error::new(ErrorKind::InvalidOperation, e.to_string()))?;
    let mut out = String::new();
    write_json(&json, indent, sort_keys.unwrap_or(false), 0, &mut out);
    Ok(out)
}

/// `value` as `json.dumps` writes it: `", "` and `": "` between items, or with `indent`, each
/// item on its own line and `","` at line ends.
fn write_json(
    value: &serde_json::Value,
    indent: Option<usize>,
    sort_keys: bool,
    depth: usize,
    out: &mut String,
) {
    use serde_json::Value as J;
    let newline = |out: &mut String, depth: usize| {
        if let Some(n) = indent {
            out.push('\n');
            out.push_str(&" ".repeat(n * depth));
        }
    };
    let separator = if indent.is_some() { "," } else { ", " };
    match value {
        J::Array(items) if !items.is_empty() => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(separator);
                }
                newline(out, depth + 1);
                write_json(item, indent, sort_keys, depth + 1, out);
            }
            newline(out, depth);
            out.push(']');
        }
        J::Object(map) if !map.is_empty() => {
            let mut entries: Vec<(&String, &J)> = map.iter().collect();
            if sort_keys {
                entries.sort_by(|a, b| a.0.cmp(b.0));
            }
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push_str(separator);
                }
                newline(out, depth + 1);
                out.push_str(&J::String(k.clone()).to_string());
                out.push_str(": ");
                write_json(v, indent, sort_keys, depth + 1, out);
            }
            newline(out, depth);
            out.push('}');
        }
        J::Number(n) if n.is_f64() => {
            // Python writes floats with their shortest repr and a `.0` on whole ones.
            let f = n.as_f64().unwrap_or_default();
            match f.fract() == 0.0 && f.abs() < 1e16 {
                true => out.push_str(&format!("{f:.1}")),
                false => out.push_str(&format!("{f}")),
            }
        }
        other => out.push_str(&other.to_string()),
    }
}
