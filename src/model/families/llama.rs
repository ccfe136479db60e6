//! Llama and Mistral (`llama`, `mistral`; GGUF `llama`, `mistral`): pre-norm blocks of RMSNorm,
//! grouped-query attention with RoPE and a SwiGLU feed-forward. Llama may have biases on its
//! attention (`attention_bias`) and scaled RoPE (`linear`, `llama3`); Mistral has a sliding
//! window in every layer. `convert_hf_to_gguf.py` permutes their q and k rows for llama.cpp's
//! RoPE; the layout undoes it.

use super::gguf::{GgufLayout, GgufMeta};
use super::hf::{activation, decoder, no_mlp_bias, rope, sliding_windows};
use super::Family;
use crate::error::Result;
use crate::model::config::{AttentionConfig, ModelConfig};
use crate::model::formats::hf_json::{invalid, Fields};
use crate::model::formats::weights::TensorLayout;
use std::sync::Arc;

/// Llama and Mistral.
pub struct Llama;

impl Family for Llama {
    fn model_types(&self) -> &'static [&'static str] {
        &["llama", "mistral"]
    }

    fn gguf_archs(&self) -> &'static [&'static str] {
        &["llama", "mistral"]
    }

    fn config(&self, f: &Fields, model_type: &str) -> Result<ModelConfig> {
        let ffn = activation(f, "hidden_act", "silu")?;
        let bias = f.bool_or("attention_bias", false)?;
        if bias && model_type == "mistral" {
            return Err(invalid(
                "attention_bias",
                "false or absent (mistral has no such option)",
                true,
            ));
        }
        no_mlp_bias(f)?;
        let layers = f.usize("num_hidden_layers")?;
        let attention = AttentionConfig::Mha {
            n_kv_heads: Some(f.usize_or("num_key_value_heads", f.usize("num_attention_heads")?)?),
            qkv_bias: bias,
            o_bias: bias,
            qk_norm: false,
            sliding_window: sliding_windows(f, model_type, layers)?,
            scale: None,
            rope_dim: None,
        };
        let mut config = decoder(f, ffn, attention)?;
        config.rope = rope(f)?;
        Ok(config)
    }

    /// A `llama` file with experts is Mixtral (`convert_hf_to_gguf.py` writes it so).
    fn gguf_config(&self, meta: &GgufMeta) -> Result<serde_json::Value> {
        if meta.int_or("expert_count", 0) > 0 {
            return super::mixtral::Mixtral.gguf_config(meta);
        }
        let mut json = meta.decoder_json(meta.arch)?;
        if let Ok(head_dim) = meta.int("attention.key_length") {
            json["head_dim"] = head_dim.into();
        }
        Ok(json)
    }

    fn gguf_layout(&self, config: &ModelConfig) -> Arc<dyn TensorLayout> {
        Arc::new(GgufLayout {
            extra: &[],
            permuted_qk: Some((config.n_heads, config.n_kv_heads())),
        })
    }
}
