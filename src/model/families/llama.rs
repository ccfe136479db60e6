//! Llama and Mistral (`llama`, `mistral`; GGUF `llama`, `mistral`): pre-norm blocks of RMSNorm,
//! grouped-query attention with RoPE and a SwiGLU feed-forward. Llama may have biases on its
//! attention (`attention_bias`) and scaled RoPE (`linear`, `llama3`); Mistral has a sliding
//! window in every layer. `convert_hf_to_gguf.py` permutes their q and k rows for llama.cpp's
//! RoPE; the layout undoes it.

use super::gguf::{GgufLayout, GgufMeta};
use super::hf::{attention_bias, llama_like, sliding_windows, MhaExtras};
use super::Family;
use crate::error::Result;
use crate::model::config::ModelConfig;
use crate::model::formats::hf_json::Fields;
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
        let bias = attention_bias(f, model_type, model_type == "llama")?;
        let layers = f.usize("num_hidden_layers")?;
        llama_like(
            f,
            MhaExtras {
                qkv_bias: bias,
                o_bias: bias,
                sliding_window: sliding_windows(f, model_type, layers)?,
                ..MhaExtras::default()
            },
        )
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
