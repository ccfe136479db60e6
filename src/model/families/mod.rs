//! The architectures this runtime runs, one file each (compare transformers' `modeling_*.py`
//! and llama.cpp's `src/models/*.cpp`): how a family's `config.json` and GGUF metadata map to
//! the model description ([`ModelConfig`], whose fields are the block recipe: which norms,
//! where, which attention, which feed-forward), and how its files name and lay out the
//! model's tensors. `docs/families.md` says how to add one.

pub mod deepseek;
pub mod gemma3;
pub mod gguf;
pub mod hf;
pub mod llama;
pub mod mixtral;
pub mod phi3;
pub mod qwen2;
pub mod qwen3;
pub mod qwen3_moe;
pub mod smollm3;

use crate::error::{Error, Result};
use crate::model::config::ModelConfig;
use crate::model::formats::hf_json::Fields;
use crate::model::formats::weights::{TensorLayout, WeightFile};
use gguf::GgufMeta;
use std::sync::Arc;

/// One architecture: its names in both formats, its config mapping and its tensors' layout.
pub trait Family: Sync {
    /// The `model_type`s of its `config.json`.
    fn model_types(&self) -> &'static [&'static str];

    /// Its `general.architecture`s in GGUF files.
    fn gguf_archs(&self) -> &'static [&'static str];

    /// The model description of a Hugging Face `config.json` whose `model_type` is
    /// `model_type` (validated by the caller); an option it does not run is an error naming it.
    fn config(&self, f: &Fields, model_type: &str) -> Result<ModelConfig>;

    /// The Hugging Face `config.json` a GGUF file's metadata says (then read by
    /// [`Family::config`]).
    fn gguf_config(&self, meta: &GgufMeta) -> Result<serde_json::Value>;

    /// How its Hugging Face checkpoints name the model's tensors (default: Llama's names).
    fn hf_layout(&self, _config: &ModelConfig, _file: &WeightFile) -> Arc<dyn TensorLayout> {
        Arc::new(hf::HfLayout::LLAMA)
    }

    /// How its GGUF files name and lay out the model's tensors (default: the shared names).
    fn gguf_layout(&self, _config: &ModelConfig) -> Arc<dyn TensorLayout> {
        Arc::new(gguf::GgufLayout::PLAIN)
    }

    /// One-dimensional tensors of its GGUF files that its config is made of, read before
    /// [`Family::gguf_config`] into [`GgufMeta::vectors`] (Phi-3's LongRoPE factors).
    fn gguf_config_vectors(&self) -> &'static [&'static str] {
        &[]
    }

    /// Tokens, by their text, that end a turn besides the files' end-of-sequence token
    /// (Gemma's `<end_of_turn>`): generation stops at them too.
    fn stop_texts(&self) -> &'static [&'static str] {
        &[]
    }
}

/// Every family, in the order errors list them.
pub const FAMILIES: &[&dyn Family] = &[
    &llama::Llama,
    &qwen2::Qwen2,
    &qwen3::Qwen3,
    &deepseek::DeepSeek,
    &gemma3::Gemma3,
    &smollm3::SmolLm3,
    &qwen3_moe::Qwen3Moe,
    &mixtral::Mixtral,
    &phi3::Phi3,
];

/// The family whose `config.json` says `model_type`.
pub fn by_model_type(model_type: &str) -> Option<&'static dyn Family> {
    FAMILIES
        .iter()
        .copied()
        .find(|f| f.model_types().contains(&model_type))
}

/// The family of GGUF architecture `arch`.
pub fn by_gguf_arch(arch: &str) -> Option<&'static dyn Family> {
    FAMILIES
        .iter()
        .copied()
        .find(|f| f.gguf_archs().contains(&arch))
}

/// Every `model_type` a family reads.
pub fn model_types() -> Vec<&'static str> {
    FAMILIES
        .iter()
        .flat_map(|f| f.model_types())
        .copied()
        .collect()
}

/// Every GGUF architecture a family reads.
pub fn gguf_archs() -> Vec<&'static str> {
    FAMILIES
        .iter()
        .flat_map(|f| f.gguf_archs())
        .copied()
        .collect()
}

/// The model config of a Hugging Face `config.json` (parsed), with `file` set to its family's
/// layout.
pub fn hf_config(json: &serde_json::Value, file: &mut WeightFile) -> Result<ModelConfig> {
    let hf = hf::HfConfig::from_json(json)?;
    let family = by_model_type(&hf.family).expect("from_json found the family");
    file.layout = family.hf_layout(&hf.config, file);
    Ok(hf.config)
}

/// The family of an opened GGUF `file`, its name in errors, and the Hugging Face config its
/// metadata says (the vocabulary from `token_embd.weight`, the head tied when there is no
/// `output.weight`).
fn gguf_family(file: &mut WeightFile) -> Result<(&'static dyn Family, String, serde_json::Value)> {
    let name = file
        .shard_names()
        .first()
        .map_or("GGUF file", String::as_str)
        .to_string();
    let bad = |what: &str, expected: String, found: String| Error::Weights {
        file: name.clone(),
        what: what.into(),
        expected,
        found,
    };
    let meta = file
        .gguf_metadata()
        .ok_or_else(|| bad("header", "a GGUF file".into(), "a safetensors file".into()))?;
    let vocab = file
        .shape_of("token_embd.weight")
        .and_then(|s| s.first().copied())
        .ok_or_else(|| {
            bad(
                "token_embd.weight",
                "the token embedding".into(),
                "no such tensor".into(),
            )
        })?;
    let arch = meta
        .get("general.architecture")
        .and_then(crate::model::formats::gguf::Value::as_str)
        .ok_or_else(|| bad("general.architecture", "a string".into(), "none".into()))?
        .to_string();
    let family = by_gguf_arch(&arch).ok_or_else(|| {
        bad(
            "general.architecture",
            format!(
                "{} (the GGUF families this project maps)",
                gguf_archs().join(", ")
            ),
            arch.clone(),
        )
    })?;
    // The vectors the family's config is made of (Phi-3's LongRoPE factors), where present.
    let mut vectors = std::collections::BTreeMap::new();
    for key in family.gguf_config_vectors() {
        if let Some(shape) = file.shape_of(key).filter(|s| s.len() == 1) {
            vectors.insert(
                key.to_string(),
                file.read_tensor(key, &shape, None)?.into_f32(),
            );
        }
    }
    let meta = GgufMeta {
        file: &name,
        arch: &arch,
        meta: file.gguf_metadata().expect("a GGUF file"),
        vocab,
        vectors,
    };
    let mut json = family.gguf_config(&meta)?;
    json["tie_word_embeddings"] = (!file.holds("output.weight")).into();
    Ok((family, name, json))
}

/// The Hugging Face `model_type` an opened GGUF `file`'s metadata maps to (`mixtral` for a
/// `llama` file with experts).
pub fn gguf_model_type(file: &mut WeightFile) -> Result<String> {
    let (_, _, json) = gguf_family(file)?;
    Ok(json["model_type"].as_str().unwrap_or_default().to_string())
}

/// The model config of an opened GGUF `file` (its metadata mapped by its family), with the
/// file set to its family's layout.
pub fn gguf_config(file: &mut WeightFile) -> Result<ModelConfig> {
    let (family, name, json) = gguf_family(file)?;
    let hf = hf::HfConfig::from_json(&json)
        .map_err(|e| e.in_context(|what| format!("{what} in the metadata of {name}")))?;
    file.layout = family.gguf_layout(&hf.config);
    Ok(hf.config)
}

/// The stop tokens of the GGUF model `file`: those its metadata names
/// ([`crate::model::formats::gguf::stop_token_ids`]) and its family's end-of-turn tokens, found
/// by their text in its vocabulary.
pub fn gguf_stop_tokens(file: &WeightFile) -> Result<Vec<u32>> {
    let meta = file.gguf_metadata().ok_or_else(|| Error::Weights {
        file: file.shard_names().join(", "),
        what: "header".into(),
        expected: "a GGUF file".into(),
        found: "a safetensors file".into(),
    })?;
    let arch = meta
        .get("general.architecture")
        .and_then(crate::model::formats::gguf::Value::as_str);
    let stop_texts = arch
        .and_then(by_gguf_arch)
        .map_or(&[][..], |f| f.stop_texts());
    let mut ids = crate::model::formats::gguf::stop_token_ids(meta);
    if let Some(crate::model::formats::gguf::Value::Array(tokens)) =
        meta.get("tokenizer.ggml.tokens")
    {
        for text in stop_texts {
            let found = tokens.iter().position(|t| t.as_str() == Some(text));
            if let Some(id) = found.and_then(|i| u32::try_from(i).ok()) {
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
        }
    }
    Ok(ids)
}

/// The generation defaults of the GGUF model at `path`: its stop tokens
/// ([`gguf_stop_tokens`]), sampling as the command line or the defaults say (native).
#[cfg(not(target_arch = "wasm32"))]
pub fn gguf_generation_defaults(
    path: &std::path::Path,
) -> Result<crate::model::formats::hf_json::GenerationDefaults> {
    let file = WeightFile::open_gguf(path)?;
    Ok(crate::model::formats::hf_json::GenerationDefaults {
        eos_token_ids: gguf_stop_tokens(&file)?,
        ..Default::default()
    })
}

/// The config and opened weights of a model directory (this project's own, or a Hugging Face
/// checkpoint) or a GGUF file (native); nothing is uploaded yet.
#[cfg(not(target_arch = "wasm32"))]
pub fn open_dir(dir: &std::path::Path) -> Result<(ModelConfig, WeightFile)> {
    if is_gguf(dir) {
        let mut file = WeightFile::open_gguf(dir)?;
        let config = gguf_config(&mut file)?;
        return Ok((config, file));
    }
    let path = dir.join("config.json");
    let text = crate::files::read_text_capped(&path, crate::files::CONFIG_CAP)?;
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| Error::Invalid {
        what: format!("config JSON in {}", crate::files::shown_path(&path)),
        expected: "a JSON object".into(),
        found: e.to_string(),
    })?;
    if !crate::model::formats::hf_json::is_hf_config(&json) {
        let config = ModelConfig::load(&path)?;
        return Ok((config, WeightFile::open(&dir.join("model.safetensors"))?));
    }
    let mut file = WeightFile::open_dir(dir)?;
    let config = hf_config(&json, &mut file)
        .map_err(|e| e.in_context(|what| format!("{what} in {}", path.display())))?;
    Ok((config, file))
}

/// Whether `path` names a GGUF file (a `.gguf` file, not a directory).
#[cfg(not(target_arch = "wasm32"))]
pub fn is_gguf(path: &std::path::Path) -> bool {
    path.is_file()
        && path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("gguf"))
}
