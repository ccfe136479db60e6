//! Phi-3, Phi-3.5 and Phi-4-mini (`phi3`): Llama's block with the q, k and v projections fused
//! in one `qkv_proj` and the gate and up projections in one `gate_up_proj`, RoPE over the first
//! `partial_rotary_factor` of each head (Phi-4-mini: three quarters), LongRoPE past the
//! pretrained context (`longrope`: the short factors while a forward pass ends within
//! `original_max_position_embeddings`, the long ones past it), and a sliding window in every
//! layer where `sliding_window` is set.

use super::gguf::GgufMeta;
use super::hf::{activation, decoder, no_mlp_bias, rope, HfLayout};
use super::Family;
use crate::error::Result;
use crate::model::config::{AttentionConfig, ModelConfig};
use crate::model::formats::hf_json::{invalid, Fields};
use crate::model::formats::weights::{HostMatrix, TensorLayout, Unused, WeightFile};
use std::ops::Range;
use std::sync::Arc;

/// Phi-3 and its successors of the same architecture.
pub struct Phi3;

impl Family for Phi3 {
    fn model_types(&self) -> &'static [&'static str] {
        &["phi3"]
    }

    fn gguf_archs(&self) -> &'static [&'static str] {
        &[]
    }

    fn config(&self, f: &Fields, _model_type: &str) -> Result<ModelConfig> {
        let ffn = activation(f, "hidden_act", "silu")?;
        if f.bool_or("attention_bias", false)? {
            return Err(invalid(
                "attention_bias",
                "false or absent (phi3 has no such option)",
                true,
            ));
        }
        no_mlp_bias(f)?;
        let layers = f.usize("num_hidden_layers")?;
        let window = match f.get("sliding_window") {
            Some(_) => vec![Some(f.usize("sliding_window")?); layers],
            None => Vec::new(),
        };
        let attention = AttentionConfig::Mha {
            n_kv_heads: Some(f.usize_or("num_key_value_heads", f.usize("num_attention_heads")?)?),
            qkv_bias: false,
            o_bias: false,
            qk_norm: false,
            sliding_window: window,
            scale: None,
            rope_dim: None,
        };
        let mut config = decoder(f, ffn, attention)?;
        config.rope = rope(f)?;
        Ok(config)
    }

    fn gguf_config(&self, meta: &GgufMeta) -> Result<serde_json::Value> {
        Err(meta.bad(
            "general.architecture",
            "a GGUF family this project maps",
            "phi3 (its Hugging Face directories load)".into(),
        ))
    }

    fn hf_layout(&self, config: &ModelConfig, _file: &WeightFile) -> Arc<dyn TensorLayout> {
        let dh = config.head_dim();
        let (q, kv) = (config.n_heads * dh, config.n_kv_heads() * dh);
        Arc::new(FusedLayout {
            names: HfLayout::LLAMA,
            qkv: [0..q, q..q + kv, q + kv..q + 2 * kv],
            gate_up: [
                0..config.ffn_hidden,
                config.ffn_hidden..2 * config.ffn_hidden,
            ],
        })
    }
}

/// Phi-3's checkpoints: the model's `q_proj`, `k_proj` and `v_proj` are row ranges of
/// `self_attn.qkv_proj`, its `gate_proj` and `up_proj` of `mlp.gate_up_proj`.
struct FusedLayout {
    names: HfLayout,
    /// The rows of q, k and v in `qkv_proj`.
    qkv: [Range<usize>; 3],
    /// The rows of gate and up in `gate_up_proj`.
    gate_up: [Range<usize>; 2],
}

impl FusedLayout {
    /// The fused tensor holding the model's tensor `name`, the part's rows, and all its rows.
    fn part(&self, name: &str) -> Option<(String, Range<usize>, usize)> {
        let (stem, leaf) = name.rsplit_once('.')?;
        let (owner, part) = stem.rsplit_once('.')?;
        let (fused, rows, total) = match part {
            "q_proj" => ("qkv_proj", &self.qkv[0], self.qkv[2].end),
            "k_proj" => ("qkv_proj", &self.qkv[1], self.qkv[2].end),
            "v_proj" => ("qkv_proj", &self.qkv[2], self.qkv[2].end),
            "gate_proj" if owner.ends_with(".ffn") => {
                ("gate_up_proj", &self.gate_up[0], self.gate_up[1].end)
            }
            "up_proj" if owner.ends_with(".ffn") => {
                ("gate_up_proj", &self.gate_up[1], self.gate_up[1].end)
            }
            _ => return None,
        };
        let file = self.names.file_name(&format!("{owner}.{fused}.{leaf}"));
        Some((file, rows.clone(), total))
    }
}

impl TensorLayout for FusedLayout {
    fn file_name(&self, name: &str) -> String {
        match self.part(name) {
            Some((file, ..)) => file,
            None => self.names.file_name(name),
        }
    }

    fn take(&self, files: &mut WeightFile, name: &str, shape: &[usize]) -> Result<HostMatrix> {
        let Some((file, rows, total)) = self.part(name) else {
            return self.names.take(files, name, shape);
        };
        let mut whole = shape.to_vec();
        if let Some(r) = whole.first_mut() {
            *r = total;
        }
        if shape.first() != Some(&rows.len()) {
            return Err(files.err(
                &file,
                format!("{} rows of {name}", rows.len()),
                format!("shape {shape:?}"),
            ));
        }
        files.read_rows(&file, &whole, None, Some(rows))
    }

    fn reads_rows(&self, name: &str) -> bool {
        self.part(name).is_none()
    }

    fn unused(&self) -> Unused {
        Unused::Warn
    }
}
