//! SmolLM3 (`smollm3`; GGUF `smollm3`): Llama's block, with no RoPE in the layers
//! `no_rope_layers` marks 0 (by default every fourth, `no_rope_layer_interval`; llama.cpp's
//! fixed step of 4 in GGUF files) and sliding windows where `use_sliding_window` and
//! `layer_types` say. `convert_hf_to_gguf.py` writes it as a Llama: q and k rows permuted.

use super::gguf::{GgufLayout, GgufMeta};
use super::hf::{attention_bias, llama_like, sliding_windows, MhaExtras};
use super::Family;
use crate::error::Result;
use crate::model::config::ModelConfig;
use crate::model::formats::hf_json::{invalid, Fields};
use crate::model::formats::weights::TensorLayout;
use std::sync::Arc;

/// SmolLM3.
pub struct SmolLm3;

/// llama.cpp's NoPE step: every fourth layer rotates nothing.
const GGUF_NOPE_STEP: usize = 4;

impl Family for SmolLm3 {
    fn model_types(&self) -> &'static [&'static str] {
        &["smollm3"]
    }

    fn gguf_archs(&self) -> &'static [&'static str] {
        &["smollm3"]
    }

    fn config(&self, f: &Fields, model_type: &str) -> Result<ModelConfig> {
        let bias = attention_bias(f, model_type, true)?;
        let layers = f.usize("num_hidden_layers")?;
        let mut config = llama_like(
            f,
            MhaExtras {
                qkv_bias: bias,
                o_bias: bias,
                sliding_window: sliding_windows(f, model_type, layers)?,
                ..MhaExtras::default()
            },
        )?;
        config.nope_layers = nope_layers(f, layers)?;
        config.tie_embeddings = f.bool_or("tie_word_embeddings", true)?;
        Ok(config)
    }

    fn gguf_config(&self, meta: &GgufMeta) -> Result<serde_json::Value> {
        let mut json = meta.decoder_json("smollm3")?;
        json["no_rope_layer_interval"] = GGUF_NOPE_STEP.into();
        Ok(json)
    }

    fn gguf_layout(&self, config: &ModelConfig) -> Arc<dyn TensorLayout> {
        Arc::new(GgufLayout {
            extra: &[],
            permuted_qk: Some((config.n_heads, config.n_kv_heads())),
        })
    }
}

/// The layers without RoPE: where `no_rope_layers` (one 0 or 1 per layer; 1 rotates) says 0,
/// else every `no_rope_layer_interval`-th layer (4 where absent).
fn nope_layers(f: &Fields, layers: usize) -> Result<Vec<usize>> {
    let Some(list) = f.get("no_rope_layers") else {
        let every = f.usize_or("no_rope_layer_interval", GGUF_NOPE_STEP)?;
        return Ok((0..layers).filter(|i| (i + 1) % every == 0).collect());
    };
    let flags = list
        .as_array()
        .filter(|l| l.len() == layers)
        .ok_or_else(|| {
            invalid(
                "no_rope_layers",
                format!("a list of {layers} 0s and 1s"),
                list,
            )
        })?;
    let mut nope = Vec::new();
    for (i, flag) in flags.iter().enumerate() {
        match flag.as_u64() {
            Some(0) => nope.push(i),
            Some(1) => {}
            _ => return Err(invalid("no_rope_layers", "0 (no RoPE) or 1 (RoPE)", flag)),
        }
    }
    Ok(nope)
}
