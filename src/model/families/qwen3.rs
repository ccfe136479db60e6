//! Qwen3 (`qwen3`; GGUF `qwen3`): Llama's block with an RMSNorm over each head's query and key
//! before RoPE (`q_norm`, `k_norm`), a `head_dim` of its own, optional attention biases
//! (`attention_bias`) and sliding windows as Qwen2 has them.

use super::gguf::GgufMeta;
use super::hf::{attention_bias, llama_like, sliding_windows, MhaExtras};
use super::Family;
use crate::error::Result;
use crate::model::config::ModelConfig;
use crate::model::formats::hf_json::Fields;

/// Qwen3 (dense).
pub struct Qwen3;

impl Family for Qwen3 {
    fn model_types(&self) -> &'static [&'static str] {
        &["qwen3"]
    }

    fn gguf_archs(&self) -> &'static [&'static str] {
        &["qwen3"]
    }

    fn config(&self, f: &Fields, model_type: &str) -> Result<ModelConfig> {
        decoder(f, model_type)
    }

    fn gguf_config(&self, meta: &GgufMeta) -> Result<serde_json::Value> {
        let mut json = meta.decoder_json("qwen3")?;
        if let Ok(head_dim) = meta.int("attention.key_length") {
            json["head_dim"] = head_dim.into();
        }
        Ok(json)
    }
}

/// Qwen3's block (Qwen3-MoE's attention too): Llama's, with per-head q/k norms, optional
/// attention biases and sliding windows as Qwen2 has them.
pub fn decoder(f: &Fields, model_type: &str) -> Result<ModelConfig> {
    let bias = attention_bias(f, model_type, true)?;
    let layers = f.usize("num_hidden_layers")?;
    llama_like(
        f,
        MhaExtras {
            qkv_bias: bias,
            o_bias: bias,
            qk_norm: true,
            sliding_window: sliding_windows(f, model_type, layers)?,
            ..MhaExtras::default()
        },
    )
}
