//! DeepSeek-V2 and V3 (`deepseek_v2`, `deepseek_v3`; GGUF `deepseek2`): Multi-head Latent
//! Attention (MLA) with its own RoPE on interleaved pairs and YaRN, and a mixture of routed
//! experts with shared experts after the leading dense layers (V2: softmax routing, greedy or
//! group-limited; V3: sigmoid `noaux_tc` routing with a correction bias).

use super::gguf::GgufMeta;
use super::hf::{activation, decoder, no_mlp_bias};
use super::Family;
use crate::error::Result;
use crate::model::config::mla::MlaShape;
use crate::model::config::{AttentionConfig, ModelConfig, MoeConfig, RopeConfig};
use crate::model::formats::gguf::Value;
use crate::model::formats::hf_json::Fields;
use crate::ops::RopeMode;

/// DeepSeek-V2 and V3.
pub struct DeepSeek;

impl Family for DeepSeek {
    fn model_types(&self) -> &'static [&'static str] {
        &["deepseek_v2", "deepseek_v3"]
    }

    fn gguf_archs(&self) -> &'static [&'static str] {
        &["deepseek2"]
    }

    fn config(&self, f: &Fields, model_type: &str) -> Result<ModelConfig> {
        let ffn = activation(f, "hidden_act", "silu")?;
        no_mlp_bias(f)?;
        let (attention, rope, moe) = deepseek_parts(f, model_type)?;
        let mut config = decoder(f, ffn, attention)?;
        // DeepSeek's `head_dim` is its RoPE width; MLA's widths are its own fields.
        config.head_dim = None;
        config.rope = rope;
        config.moe = moe;
        Ok(config)
    }

    /// The keys `convert_hf_to_gguf.py` writes: MLA's ranks and per-head sizes
    /// (`key_length_mla` and `value_length_mla`; files from before those keys have the per-head
    /// sizes in `key_length` and `value_length`), the experts, the gating (softmax:
    /// DeepSeek-V2's greedy top-k; sigmoid: V3's, with the group counts where the file has them)
    /// and YaRN, whose `mscale` and `mscale_all_dim` the file keeps as one log multiplier
    /// (0.1 · mscale_all_dim).
    fn gguf_config(&self, meta: &GgufMeta) -> Result<serde_json::Value> {
        let mut json = meta.decoder_json("deepseek2")?;
        let rope = meta.int("rope.dimension_count")?;
        let (qk, v) = match (
            meta.int("attention.key_length_mla"),
            meta.int("attention.value_length_mla"),
        ) {
            (Ok(qk), Ok(v)) => (qk, v),
            _ => (
                meta.int("attention.key_length")?,
                meta.int("attention.value_length")?,
            ),
        };
        if qk <= rope {
            return Err(meta.bad(
                &format!("{}.attention.key_length_mla", meta.arch),
                &format!(
                    "more than the {rope} RoPE dimensions (a head's key is its no-RoPE and RoPE parts)"
                ),
                qk.to_string(),
            ));
        }
        let q_lora = meta.int_or("attention.q_lora_rank", 0);
        let sigmoid = match meta.int_or("expert_gating_func", 1) {
            1 => false,
            2 => true,
            other => {
                return Err(meta.bad(
                    &format!("{}.expert_gating_func", meta.arch),
                    "1 (softmax) or 2 (sigmoid)",
                    other.to_string(),
                ))
            }
        };
        let norm_topk = matches!(meta.get("expert_weights_norm"), Some(Value::Bool(true)));
        let fields = serde_json::json!({
            "model_type": if sigmoid { "deepseek_v3" } else { "deepseek_v2" },
            "q_lora_rank": if q_lora == 0 { serde_json::Value::Null } else { q_lora.into() },
            "kv_lora_rank": meta.int("attention.kv_lora_rank")?,
            "qk_nope_head_dim": qk - rope,
            "qk_rope_head_dim": rope,
            "v_head_dim": v,
            "first_k_dense_replace": meta.int_or("leading_dense_block_count", 0),
            "n_routed_experts": meta.int("expert_count")?,
            "num_experts_per_tok": meta.int("expert_used_count")?,
            "moe_intermediate_size": meta.int("expert_feed_forward_length")?,
            "n_shared_experts": meta.int_or("expert_shared_count", 0),
            "routed_scaling_factor": meta.float_or("expert_weights_scale", 1.0)?,
            "norm_topk_prob": norm_topk,
            "topk_method": if sigmoid { "noaux_tc" } else { "greedy" },
            "n_group": meta.int_or("expert_group_count", 1),
            "topk_group": meta.int_or("expert_group_used_count", 1),
        });
        for (key, value) in fields.as_object().into_iter().flatten() {
            json[key] = value.clone();
        }
        // MLA is written as MQA (one key/value head); the model's heads are its query heads.
        json["num_key_value_heads"] = json["num_attention_heads"].clone();
        let theta = json["rope_theta"].clone();
        match meta.get("rope.scaling.type").and_then(Value::as_str) {
            None | Some("none") => {}
            Some("yarn") => {
                let mscale = meta.float_or("rope.scaling.yarn_log_multiplier", 0.0)? / 0.1;
                json["rope_parameters"] = serde_json::json!({
                    "rope_type": "yarn",
                    "rope_theta": theta,
                    "factor": meta.float_or("rope.scaling.factor", 1.0)?,
                    "original_max_position_embeddings": meta.int("rope.scaling.original_context_length")?,
                    "beta_fast": 32.0,
                    "beta_slow": 1.0,
                    "mscale": mscale,
                    "mscale_all_dim": mscale,
                });
            }
            Some(other) => {
                return Err(meta.bad(
                    &format!("{}.rope.scaling.type", meta.arch),
                    "none or yarn (DeepSeek's RoPE scalings)",
                    other.to_string(),
                ))
            }
        }
        Ok(json)
    }
}

/// A DeepSeek-V2/V3 config's attention (MLA, with its own RoPE and YaRN), RoPE base and
/// mixture of experts.
fn deepseek_parts(
    f: &Fields,
    family: &str,
) -> Result<(AttentionConfig, RopeConfig, Option<MoeConfig>)> {
    let shape = MlaShape::from_hf_config(f.0)?;
    let attention = AttentionConfig::Mla {
        q_lora_rank: shape.q_lora_rank,
        kv_lora_rank: shape.kv_lora_rank,
        qk_nope_head_dim: shape.qk_nope_head_dim,
        qk_rope_head_dim: shape.qk_rope_head_dim,
        v_head_dim: shape.v_head_dim,
        norm_eps: shape.norm_eps,
        yarn: shape.yarn,
    };
    // DeepSeek rotates interleaved pairs.
    let rope = RopeConfig {
        base: shape.rope_base as f32,
        mode: RopeMode::Interleaved,
        scaling: None,
    };
    let v3 = family == "deepseek_v3";
    let default_method = if v3 { "noaux_tc" } else { "greedy" };
    let moe = MoeConfig {
        experts: f.usize("n_routed_experts")?,
        top_k: f.usize("num_experts_per_tok")?,
        expert_hidden: f.usize("moe_intermediate_size")?,
        shared_experts: f.count_or("n_shared_experts", 0)?,
        topk_method: match v3 {
            true => default_method.to_string(),
            false => f.str_or("topk_method", default_method)?.to_string(),
        },
        groups: f.usize_or("n_group", 1)?,
        topk_group: f.usize_or("topk_group", 1)?,
        // transformers 5's DeepSeek-V2 router never normalises, whatever the config says.
        norm_topk_prob: v3 && f.bool_or("norm_topk_prob", false)?,
        routed_scaling_factor: f.f64_or("routed_scaling_factor", 1.0)? as f32,
        first_dense: f.count_or("first_k_dense_replace", 0)?,
        // transformers 5 puts a mixture in every layer from first_k_dense_replace on, whatever
        // moe_layer_freq says (DeepSeek's own code honoured it); its checkpoints are laid out so.
        layer_freq: 1,
        dense_layers: Vec::new(),
    };
    if f.usize_or("moe_layer_freq", 1)? > 1 {
        log::warn!("moe_layer_freq is ignored, as transformers 5 ignores it: every layer from first_k_dense_replace on is a mixture");
    }
    moe.routing()
        .map_err(|e| e.in_context(|what| format!("{what} (from the Hugging Face config)")))?;
    if f.count_or("num_nextn_predict_layers", 0)? > 0 {
        log::info!("the multi-token-prediction layer is not used for generation; not loaded");
    }
    Ok((attention, rope, Some(moe)))
}
