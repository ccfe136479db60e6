//! JSON files of Hugging Face checkpoints as they are: field access whose errors name the
//! field, token id lists, and `generation_config.json`'s stop tokens and sampling defaults.

use crate::error::{Error, Result};
use serde_json::Value;

/// An error about the config field `field`.
pub fn invalid(field: &str, expected: impl Into<String>, found: impl std::fmt::Display) -> Error {
    Error::Invalid {
        what: format!("Hugging Face config field '{field}'"),
        expected: expected.into(),
        found: found.to_string(),
    }
}

/// Field access with errors that name the field (the JSON object it reads).
pub struct Fields<'a>(pub &'a Value);

impl Fields<'_> {
    /// The field `name`, unless absent or null.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name).filter(|v| !v.is_null())
    }

    /// The positive integer `name`.
    pub fn usize(&self, name: &str) -> Result<usize> {
        let v = self
            .get(name)
            .ok_or_else(|| invalid(name, "a positive integer", "nothing (missing)"))?;
        v.as_u64()
            .filter(|&n| n > 0)
            .map(|n| n as usize)
            .ok_or_else(|| invalid(name, "a positive integer", v))
    }

    /// The positive integer `name`, `default` where absent.
    pub fn usize_or(&self, name: &str, default: usize) -> Result<usize> {
        match self.get(name) {
            None => Ok(default),
            Some(_) => self.usize(name),
        }
    }

    /// A count that may be 0 (`first_k_dense_replace`, `n_shared_experts`), else `default`.
    pub fn count_or(&self, name: &str, default: usize) -> Result<usize> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v
                .as_u64()
                .map(|n| n as usize)
                .ok_or_else(|| invalid(name, "a whole number, 0 or more", v)),
        }
    }

    /// The finite number `name`, `default` where absent.
    pub fn f64_or(&self, name: &str, default: f64) -> Result<f64> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v
                .as_f64()
                .filter(|x| x.is_finite())
                .ok_or_else(|| invalid(name, "a finite number", v)),
        }
    }

    /// The boolean `name`, `default` where absent.
    pub fn bool_or(&self, name: &str, default: bool) -> Result<bool> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v.as_bool().ok_or_else(|| invalid(name, "true or false", v)),
        }
    }

    /// The string `name`, `default` where absent.
    pub fn str_or<'b>(&'b self, name: &str, default: &'b str) -> Result<&'b str> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v.as_str().ok_or_else(|| invalid(name, "a string", v)),
        }
    }
}

/// Token ids from a JSON number or list of numbers (`eos_token_id`).
pub fn token_ids(field: &str, v: Option<&Value>) -> Result<Vec<u32>> {
    let id = |x: &Value| {
        x.as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| invalid(field, "a token id or a list of token ids", x))
    };
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items.iter().map(id).collect(),
        Some(x) => Ok(vec![id(x)?]),
    }
}

/// Whether a parsed `config.json` is a Hugging Face one (it names a `model_type`).
pub fn is_hf_config(json: &Value) -> bool {
    json.get("model_type").is_some()
}

/// What `generation_config.json` says about generating: stop tokens and sampling defaults.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GenerationDefaults {
    /// `eos_token_id`, single or list: generation stops after any of them.
    pub eos_token_ids: Vec<u32>,
    /// `do_sample` (false: greedy).
    pub do_sample: Option<bool>,
    /// `temperature`.
    pub temperature: Option<f32>,
    /// `top_k`.
    pub top_k: Option<usize>,
    /// `top_p`.
    pub top_p: Option<f32>,
    /// `repetition_penalty`.
    pub repetition_penalty: Option<f32>,
}

impl GenerationDefaults {
    /// Reads a parsed `generation_config.json`.
    pub fn from_json(json: &Value) -> Result<Self> {
        let f = Fields(json);
        let num = |name: &str| -> Result<Option<f64>> {
            match f.get(name) {
                None => Ok(None),
                Some(_) => f.f64_or(name, 0.0).map(Some),
            }
        };
        Ok(GenerationDefaults {
            eos_token_ids: token_ids("eos_token_id", f.get("eos_token_id"))?,
            do_sample: match f.get("do_sample") {
                None => None,
                Some(_) => Some(f.bool_or("do_sample", false)?),
            },
            temperature: num("temperature")?.map(|v| v as f32),
            top_k: match f.get("top_k") {
                None => None,
                Some(v) => Some(
                    v.as_u64()
                        .ok_or_else(|| invalid("top_k", "a non-negative integer", v))?
                        as usize,
                ),
            },
            top_p: num("top_p")?.map(|v| v as f32),
            repetition_penalty: num("repetition_penalty")?.map(|v| v as f32),
        })
    }

    /// `dir/generation_config.json` (falling back to `config.json`'s `eos_token_id`), or the
    /// defaults when the model has neither (native; a GGUF file's are
    /// [`crate::model::families::gguf_generation_defaults`]).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn for_model(dir: &std::path::Path) -> Result<Self> {
        let read = |name: &str| -> Result<Option<Value>> {
            let path = dir.join(name);
            if !path.exists() {
                return Ok(None);
            }
            let text = crate::files::read_text_capped(&path, crate::files::CONFIG_CAP)?;
            serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| Error::Invalid {
                    what: path.display().to_string(),
                    expected: "JSON".into(),
                    found: e.to_string(),
                })
        };
        let mut defaults = match read("generation_config.json")? {
            Some(json) => Self::from_json(&json)?,
            None => Self::default(),
        };
        if defaults.eos_token_ids.is_empty() {
            if let Some(config) = read("config.json")? {
                defaults.eos_token_ids = token_ids("eos_token_id", config.get("eos_token_id"))?;
            }
        }
        Ok(defaults)
    }
}
