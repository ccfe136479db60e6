//! Qwen2 (`qwen2`; GGUF `qwen2`): Llama's block with biases on q, k and v always (no option),
//! and sliding windows where `use_sliding_window` says (`layer_types`, or `max_window_layers`
//! in older configs).

use super::gguf::GgufMeta;
use super::hf::{attention_bias, llama_like, sliding_windows, MhaExtras};
use super::Family;
use crate::error::Result;
use crate::model::config::ModelConfig;
use crate::model::formats::hf_json::Fields;

/// Qwen2 and Qwen2.5.
pub struct Qwen2;

impl Family for Qwen2 {
    fn model_types(&self) -> &'static [&'static str] {
        &["qwen2"]
    }

    fn gguf_archs(&self) -> &'static [&'static str] {
        &["qwen2"]
    }

    fn config(&self, f: &Fields, model_type: &str) -> Result<ModelConfig> {
        attention_bias(f, model_type, false)?;
        let layers = f.usize("num_hidden_layers")?;
        llama_like(
            f,
            MhaExtras {
                qkv_bias: true,
                sliding_window: sliding_windows(f, model_type, layers)?,
                ..MhaExtras::default()
            },
        )
    }

    fn gguf_config(&self, meta: &GgufMeta) -> Result<serde_json::Value> {
        let mut json = meta.decoder_json("qwen2")?;
        if let Ok(head_dim) = meta.int("attention.key_length") {
            json["head_dim"] = head_dim.into();
        }
        Ok(json)
    }
}
