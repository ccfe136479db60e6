//! Mixtral (`mixtral`; GGUF `llama` files with `expert_count`): Mistral's attention and a
//! mixture of `num_local_experts` experts of `intermediate_size` in every layer, the softmax of
//! the router's logits, its top `num_experts_per_tok`, divided by their sum. Its checkpoints
//! name the experts `block_sparse_moe.experts.{j}.w1` (gate), `w3` (up) and `w2` (down).

use super::gguf::GgufMeta;
use super::hf::{attention_bias, llama_like, sliding_windows, HfLayout, MhaExtras};
use super::Family;
use crate::error::Result;
use crate::model::config::{ModelConfig, MoeConfig};
use crate::model::formats::hf_json::Fields;
use crate::model::formats::weights::{TensorLayout, WeightFile};
use std::sync::Arc;

/// Mixtral.
pub struct Mixtral;

impl Family for Mixtral {
    fn model_types(&self) -> &'static [&'static str] {
        &["mixtral"]
    }

    /// None of its own: `convert_hf_to_gguf.py` writes Mixtral as `llama`, whose family maps a
    /// file with experts here.
    fn gguf_archs(&self) -> &'static [&'static str] {
        &[]
    }

    fn config(&self, f: &Fields, _model_type: &str) -> Result<ModelConfig> {
        attention_bias(f, "mixtral", false)?;
        let layers = f.usize("num_hidden_layers")?;
        let mut config = llama_like(
            f,
            MhaExtras {
                // Mistral's window, in every layer where the config sets one.
                sliding_window: sliding_windows(f, "mistral", layers)?,
                ..MhaExtras::default()
            },
        )?;
        config.moe = Some(MoeConfig {
            experts: f.usize("num_local_experts")?,
            top_k: f.usize("num_experts_per_tok")?,
            expert_hidden: config.ffn_hidden,
            shared_experts: 0,
            topk_method: "softmax".into(),
            groups: 1,
            topk_group: 1,
            norm_topk_prob: true,
            routed_scaling_factor: 1.0,
            first_dense: 0,
            layer_freq: 1,
            dense_layers: Vec::new(),
        });
        Ok(config)
    }

    fn gguf_config(&self, meta: &GgufMeta) -> Result<serde_json::Value> {
        let mut json = meta.decoder_json("mixtral")?;
        json["num_local_experts"] = meta.int("expert_count")?.into();
        json["num_experts_per_tok"] = meta.int("expert_used_count")?.into();
        Ok(json)
    }

    fn hf_layout(&self, _config: &ModelConfig, _file: &WeightFile) -> Arc<dyn TensorLayout> {
        Arc::new(HfLayout {
            rename: Some(expert_name),
            ..HfLayout::LLAMA
        })
    }
}

/// Mixtral's names of a block's mixture: `ffn.gate.weight` is `block_sparse_moe.gate.weight`,
/// `ffn.experts.{j}.gate_proj` is `block_sparse_moe.experts.{j}.w1` (`up_proj` `w3`,
/// `down_proj` `w2`).
fn expert_name(inner: &str) -> Option<String> {
    if let Some(rest) = inner.strip_prefix("ffn.gate.") {
        return Some(format!("block_sparse_moe.gate.{rest}"));
    }
    let (j, matrix) = inner.strip_prefix("ffn.experts.")?.split_once('.')?;
    let w = match matrix.strip_suffix(".weight")? {
        "gate_proj" => "w1",
        "down_proj" => "w2",
        "up_proj" => "w3",
        _ => return None,
    };
    Some(format!("block_sparse_moe.experts.{j}.{w}.weight"))
}
