//! Qwen3 (`qwen3`; GGUF `qwen3`): Llama's block with an RMSNorm over each head's query and key
//! before RoPE (`q_norm`, `k_norm`), a `head_dim` of its own, optional attention biases
//! (`attention_bias`) and sliding windows as Qwen2 has them.

use super::gguf::GgufMeta;
use super::hf::{activation, decoder, no_mlp_bias, rope, sliding_windows};
use super::Family;
use crate::error::Result;
use crate::model::config::{AttentionConfig, ModelConfig};
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
        let ffn = activation(f, "hidden_act", "silu")?;
        let bias = f.bool_or("attention_bias", false)?;
        no_mlp_bias(f)?;
        let layers = f.usize("num_hidden_layers")?;
        let attention = AttentionConfig::Mha {
            n_kv_heads: Some(f.usize_or("num_key_value_heads", f.usize("num_attention_heads")?)?),
            qkv_bias: bias,
            o_bias: bias,
            qk_norm: true,
            sliding_window: sliding_windows(f, model_type, layers)?,
            scale: None,
            rope_dim: None,
        };
        let mut config = decoder(f, ffn, attention)?;
        config.rope = rope(f)?;
        Ok(config)
    }

    fn gguf_config(&self, meta: &GgufMeta) -> Result<serde_json::Value> {
        let mut json = meta.decoder_json("qwen3")?;
        if let Ok(head_dim) = meta.int("attention.key_length") {
            json["head_dim"] = head_dim.into();
        }
        Ok(json)
    }
}
