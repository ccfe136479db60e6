//! Phi-3, Phi-3.5 and Phi-4-mini (`phi3`): Llama's block with the q, k and v projections fused
//! in one `qkv_proj` and the gate and up projections in one `gate_up_proj`, RoPE over the first
//! `partial_rotary_factor` of each head (Phi-4-mini: three quarters), LongRoPE past the
//! pretrained context (`longrope`: the short factors while a forward pass ends within
//! `original_max_position_embeddings`, the long ones past it), and a sliding window in every
//! layer where `sliding_window` is set. GGUF `phi3` files keep the fused tensors (`attn_qkv`, and
//! `ffn_up` holding gate then up), the rotated width as `rope.dimension_count`, and LongRoPE's
//! factors as the tensors `rope_factors_long` and `rope_factors_short`.

use super::gguf::{GgufLayout, GgufMeta};
use super::hf::{attention_bias, llama_like, HfLayout, MhaExtras};
use super::Family;
use crate::error::Result;
use crate::model::config::ModelConfig;
use crate::model::formats::hf_json::Fields;
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
        &["phi3"]
    }

    fn config(&self, f: &Fields, _model_type: &str) -> Result<ModelConfig> {
        attention_bias(f, "phi3", false)?;
        let layers = f.usize("num_hidden_layers")?;
        let window = match f.get("sliding_window") {
            Some(_) => vec![Some(f.usize("sliding_window")?); layers],
            None => Vec::new(),
        };
        let config = llama_like(
            f,
            MhaExtras {
                sliding_window: window,
                ..MhaExtras::default()
            },
        )?;
        Ok(config)
    }

    /// `convert_hf_to_gguf.py`'s keys: the rotated width (`rope.dimension_count`), the window
    /// (0: none), LongRoPE's original context and attention factor, and its factors from the
    /// file's `rope_factors_*` tensors.
    fn gguf_config(&self, meta: &GgufMeta) -> Result<serde_json::Value> {
        let mut json = meta.decoder_json("phi3")?;
        let (d, heads) = (
            meta.int("embedding_length")?,
            meta.int("attention.head_count")?,
        );
        let head_dim = d / heads.max(1);
        let rotated = meta.int_or("rope.dimension_count", head_dim);
        json["partial_rotary_factor"] = (rotated as f64 / head_dim.max(1) as f64).into();
        if let Some(window) = meta
            .get("attention.sliding_window")
            .and_then(|v| v.as_u64())
        {
            if window > 0 {
                json["sliding_window"] = window.into();
            }
        }
        let factors = (
            meta.vectors.get(ROPE_FACTORS[1]),
            meta.vectors.get(ROPE_FACTORS[0]),
        );
        if let (Some(short), Some(long)) = factors {
            let theta = json["rope_theta"].clone();
            json["rope_parameters"] = serde_json::json!({
                "rope_type": "longrope",
                "rope_theta": theta,
                "short_factor": short,
                "long_factor": long,
                "original_max_position_embeddings":
                    meta.int("rope.scaling.original_context_length")?,
                "attention_factor": meta.float_or("rope.scaling.attn_factor", 1.0)?,
            });
            json.as_object_mut().map(|o| o.remove("rope_theta"));
        }
        Ok(json)
    }

    fn gguf_config_vectors(&self) -> &'static [&'static str] {
        &ROPE_FACTORS
    }

    fn hf_layout(&self, config: &ModelConfig, _file: &WeightFile) -> Arc<dyn TensorLayout> {
        Arc::new(FusedLayout::new(config, Box::new(HfLayout::LLAMA)))
    }

    fn gguf_layout(&self, config: &ModelConfig) -> Arc<dyn TensorLayout> {
        let names = GgufLayout {
            extra: GGUF_NAMES,
            permuted_qk: None,
        };
        Arc::new(FusedLayout::new(config, Box::new(names)))
    }
}

/// LongRoPE's long and short factors in GGUF files.
const ROPE_FACTORS: [&str; 2] = ["rope_factors_long.weight", "rope_factors_short.weight"];

/// The fused tensors' GGUF names: `ffn_up` holds gate then up.
const GGUF_NAMES: &[(&str, &str)] = &[
    ("attn.qkv_proj.", "attn_qkv."),
    ("ffn.gate_up_proj.", "ffn_up."),
];

/// Phi-3's files: the model's `q_proj`, `k_proj` and `v_proj` are row ranges of `qkv_proj`,
/// its `gate_proj` and `up_proj` of `gate_up_proj` (named in the files as `names` says).
struct FusedLayout {
    names: Box<dyn TensorLayout>,
    /// The rows of q, k and v in `qkv_proj`.
    qkv: [Range<usize>; 3],
    /// The rows of gate and up in `gate_up_proj`.
    gate_up: [Range<usize>; 2],
}

impl FusedLayout {
    fn new(config: &ModelConfig, names: Box<dyn TensorLayout>) -> Self {
        let dh = config.head_dim();
        let (q, kv) = (config.n_heads * dh, config.n_kv_heads() * dh);
        let ffn = config.ffn_hidden;
        FusedLayout {
            names,
            qkv: [0..q, q..q + kv, q + kv..q + 2 * kv],
            gate_up: [0..ffn, ffn..2 * ffn],
        }
    }

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
        self.names.unused()
    }
}
