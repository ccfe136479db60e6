//! Qwen3-MoE (`qwen3_moe`; GGUF `qwen3moe`): Qwen3's attention (per-head q/k norms) and a
//! mixture of `num_local_experts` (older configs: `num_experts`) routed experts in the layers
//! `decoder_sparse_step` marks (every step-th, counting from 1) and `mlp_only_layers` does not,
//! a dense feed-forward of `intermediate_size` in the others. The router takes the softmax of its logits in f32, the
//! top `num_experts_per_tok`, and divides them by their sum when `norm_topk_prob`; no shared
//! experts.

use super::gguf::GgufMeta;
use super::Family;
use crate::error::Result;
use crate::model::config::{ModelConfig, MoeConfig};
use crate::model::formats::hf_json::{invalid, Fields};

/// Qwen3-MoE.
pub struct Qwen3Moe;

impl Family for Qwen3Moe {
    fn model_types(&self) -> &'static [&'static str] {
        &["qwen3_moe"]
    }

    fn gguf_archs(&self) -> &'static [&'static str] {
        &["qwen3moe"]
    }

    fn config(&self, f: &Fields, model_type: &str) -> Result<ModelConfig> {
        let layers = f.usize("num_hidden_layers")?;
        let mut config = super::qwen3::decoder(f, model_type)?;
        let step = f.usize_or("decoder_sparse_step", 1)?;
        let only_mlp = layer_list(f, "mlp_only_layers", layers)?;
        let dense_layers = (0..layers)
            .filter(|i| only_mlp.contains(i) || !(i + 1).is_multiple_of(step))
            .collect();
        config.moe = Some(MoeConfig {
            // transformers 5 writes `num_local_experts`; configs before it `num_experts`.
            experts: match f.get("num_local_experts") {
                Some(_) => f.usize("num_local_experts")?,
                None => f.usize("num_experts")?,
            },
            top_k: f.usize("num_experts_per_tok")?,
            expert_hidden: f.usize("moe_intermediate_size")?,
            shared_experts: 0,
            topk_method: "softmax".into(),
            groups: 1,
            topk_group: 1,
            norm_topk_prob: f.bool_or("norm_topk_prob", false)?,
            routed_scaling_factor: 1.0,
            first_dense: 0,
            layer_freq: 1,
            dense_layers,
        });
        Ok(config)
    }

    /// llama.cpp runs every layer of a `qwen3moe` file as a mixture, its weights normalised.
    fn gguf_config(&self, meta: &GgufMeta) -> Result<serde_json::Value> {
        let mut json = meta.decoder_json("qwen3_moe")?;
        if let Ok(head_dim) = meta.int("attention.key_length") {
            json["head_dim"] = head_dim.into();
        }
        json["num_local_experts"] = meta.int("expert_count")?.into();
        json["num_experts_per_tok"] = meta.int("expert_used_count")?.into();
        json["moe_intermediate_size"] = meta.int("expert_feed_forward_length")?.into();
        json["norm_topk_prob"] = true.into();
        Ok(json)
    }
}

/// The layer indices listed in `field`, each below `layers`.
pub fn layer_list(f: &Fields, field: &str, layers: usize) -> Result<Vec<usize>> {
    let Some(list) = f.get(field) else {
        return Ok(Vec::new());
    };
    let items = list
        .as_array()
        .ok_or_else(|| invalid(field, "a list of layer indices", list))?;
    items
        .iter()
        .map(|v| {
            v.as_u64()
                .map(|i| i as usize)
                .filter(|&i| i < layers)
                .ok_or_else(|| invalid(field, format!("layer indices below {layers}"), v))
        })
        .collect()
}
