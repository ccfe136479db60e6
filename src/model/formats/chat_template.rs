//! Where a model's chat template is: a Hugging Face directory's `chat_template.jinja`, or its
//! `tokenizer_config.json`'s `chat_template` (a string, or named templates of which `default`),
//! or a GGUF file's `tokenizer.chat_template`; with the special tokens the template may name
//! (`bos_token`, `eos_token`, `unk_token`, `pad_token`) as the tokenizer spells them.

use super::gguf::Value as Meta;
#[cfg(not(target_arch = "wasm32"))]
use crate::error::{Error, Result};
use std::collections::BTreeMap;
#[cfg(not(target_arch = "wasm32"))]
use std::path::Path;

/// A model's chat template and the special tokens it may name.
#[derive(Clone, Debug)]
pub struct ChatTemplate {
    /// Where it came from, for errors (`tokenizer_config.json`, a GGUF file's metadata).
    pub source: String,
    /// The Jinja text.
    pub text: String,
    /// `bos_token`, `eos_token`, `unk_token`, `pad_token` as the tokenizer spells them.
    pub special_tokens: Vec<(String, String)>,
}

/// The special tokens' names in configs and templates.
const SPECIAL: [&str; 4] = ["bos_token", "eos_token", "unk_token", "pad_token"];

#[cfg(not(target_arch = "wasm32"))]
fn missing(what: &str, expected: &str) -> Error {
    Error::Invalid {
        what: what.to_string(),
        expected: expected.to_string(),
        found: "none".into(),
    }
}

/// The chat template of the model at `path` (a directory or a GGUF file), or `override_file`'s
/// text with the model's special tokens. A model without one is an error naming where it was
/// looked for.
#[cfg(not(target_arch = "wasm32"))]
pub fn for_model(path: &Path, override_file: Option<&Path>) -> Result<ChatTemplate> {
    let from_override = |special| -> Result<ChatTemplate> {
        let file = override_file.expect("checked");
        Ok(ChatTemplate {
            source: file.display().to_string(),
            text: crate::files::read_text_capped(file, crate::files::CONFIG_CAP)?,
            special_tokens: special,
        })
    };
    if path.is_file() {
        let meta = super::gguf::metadata_of(path)?;
        let special = gguf_special_tokens(&meta);
        if override_file.is_some() {
            return from_override(special);
        }
        let text = meta
            .get("tokenizer.chat_template")
            .and_then(Meta::as_str)
            .ok_or_else(|| {
                missing(
                    &format!("{}: tokenizer.chat_template", path.display()),
                    "a chat template in the metadata (or --chat-template FILE)",
                )
            })?;
        return Ok(ChatTemplate {
            source: path.display().to_string(),
            text: text.to_string(),
            special_tokens: special,
        });
    }
    let config_path = path.join("tokenizer_config.json");
    let config: serde_json::Value = match config_path.exists() {
        true => {
            let text = crate::files::read_text_capped(&config_path, crate::files::CONFIG_CAP)?;
            serde_json::from_str(&text).map_err(|e| Error::Invalid {
                what: config_path.display().to_string(),
                expected: "JSON".into(),
                found: e.to_string(),
            })?
        }
        false => serde_json::Value::Null,
    };
    let special = config_special_tokens(&config);
    if override_file.is_some() {
        return from_override(special);
    }
    let jinja = path.join("chat_template.jinja");
    if jinja.exists() {
        return Ok(ChatTemplate {
            source: jinja.display().to_string(),
            text: crate::files::read_text_capped(&jinja, crate::files::CONFIG_CAP)?,
            special_tokens: special,
        });
    }
    let text = match config.get("chat_template") {
        Some(serde_json::Value::String(s)) => s.clone(),
        // Named templates: the one called `default`.
        Some(serde_json::Value::Array(named)) => named
            .iter()
            .find(|t| t["name"] == "default")
            .and_then(|t| t["template"].as_str())
            .ok_or_else(|| {
                missing(
                    &format!("{}: chat_template", config_path.display()),
                    "a template named 'default' among the named ones",
                )
            })?
            .to_string(),
        _ => {
            return Err(missing(
                &format!(
                    "{}: chat_template (nor {})",
                    config_path.display(),
                    jinja.display()
                ),
                "a chat template (or --chat-template FILE)",
            ))
        }
    };
    Ok(ChatTemplate {
        source: config_path.display().to_string(),
        text,
        special_tokens: special,
    })
}

/// `tokenizer_config.json`'s special tokens: a string, or an added token's `content`.
pub fn config_special_tokens(config: &serde_json::Value) -> Vec<(String, String)> {
    SPECIAL
        .iter()
        .filter_map(|name| {
            let v = config.get(*name)?;
            let text = v.as_str().or_else(|| v.get("content")?.as_str())?;
            Some((name.to_string(), text.to_string()))
        })
        .collect()
}

/// A GGUF file's special tokens: the text of `tokenizer.ggml.{bos,eos,unknown,padding}_token_id`.
pub fn gguf_special_tokens(meta: &BTreeMap<String, Meta>) -> Vec<(String, String)> {
    let Some(Meta::Array(tokens)) = meta.get("tokenizer.ggml.tokens") else {
        return Vec::new();
    };
    let keys = ["bos", "eos", "unknown", "padding"];
    SPECIAL
        .iter()
        .zip(keys)
        .filter_map(|(name, key)| {
            let id = meta
                .get(&format!("tokenizer.ggml.{key}_token_id"))?
                .as_u64()?;
            let text = tokens.get(id as usize)?.as_str()?;
            Some((name.to_string(), text.to_string()))
        })
        .collect()
}
