//! Qwen2 (`qwen2`; GGUF `qwen2`): Llama's block with biases on q, k and v always (no option),
//! and sliding windows where `use_sliding_window` says (`layer_types`, or `max_window_layers`
//! in older configs).

use super::gguf::GgufMeta;
use super::hf::{activation, decoder, no_mlp_bias, rope, sliding_windows};
use super::Family;
use crate::error::Result;
use crate::model::config::{AttentionConfig, ModelConfig};
use crate::model::formats::hf_json::{invalid, Fields};

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
        let ffn = activation(f, "hidden_act", "silu")?;
        if f.bool_or("attention_bias", false)? {
            return Err(invalid(
                "attention_bias",
                "false or absent (qwen2 has no such option)",
                true,
            ));
        }
        no_mlp_bias(f)?;
        let layers = f.usize("num_hidden_layers")?;
        let attention = AttentionConfig::Mha {
            n_kv_heads: Some(f.usize_or("num_key_value_heads", f.usize("num_attention_heads")?)?),
            qkv_bias: true,
            o_bias: false,
            qk_norm: false,
            sliding_window: sliding_windows(f, model_type, layers)?,
            scale: None,
            rope_dim: None,
        };
        let mut config = decoder(f, ffn, attention)?;
        config.rope = rope(f)?;
        Ok(config)
    }

    fn gguf_config(&self, meta: &GgufMeta) -> Result<serde_json::Value> {
        let mut json = meta.decoder_json("qwen2")?;
        if let Ok(head_dim) = meta.int("attention.key_length") {
            json["head_dim"] = head_dim.into();
        }
        Ok(json)
    }
}
