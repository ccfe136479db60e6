//! KV-cache arithmetic: numbers and bytes per token for MLA and its MHA/GQA/MQA equivalents.

use crate::error::{Error, Result};
use crate::model::config::mla::MlaShape;

/// One cache layout's cost.
#[derive(Clone, Debug, serde::Serialize, PartialEq)]
pub struct CacheRow {
    /// What it is (e.g. "MLA (c_kv + k_pe)").
    pub layout: String,
    /// Numbers cached per token per layer.
    pub numbers_per_token_per_layer: usize,
    /// Bytes per token over all layers.
    pub bytes_per_token: u64,
    /// Bytes for the whole context.
    pub bytes_at_context: u64,
    /// How many times MLA's numbers.
    pub ratio_to_mla: f64,
}

/// The comparison for one model.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CacheReport {
    /// Model name.
    pub model: String,
    /// Layers.
    pub layers: usize,
    /// Tokens of context.
    pub context: usize,
    /// Bytes per number.
    pub bytes_per_number: usize,
    /// One row per layout, MLA first.
    pub rows: Vec<CacheRow>,
}

/// A published DeepSeek shape: (name, layers, MLA shape).
pub fn preset(name: &str) -> Result<(String, usize, MlaShape)> {
    let shape = |d, heads, q_lora_rank| MlaShape {
        d,
        heads,
        q_lora_rank,
        kv_lora_rank: 512,
        qk_nope_head_dim: 128,
        qk_rope_head_dim: 64,
        v_head_dim: 128,
        norm_eps: 1e-6,
        rope_base: 10000.0,
        yarn: None,
    };
    match name.to_ascii_lowercase().as_str() {
        "v2-lite" | "deepseek-v2-lite" => {
            Ok(("DeepSeek-V2-Lite".into(), 27, shape(2048, 16, None)))
        }
        "v2" | "deepseek-v2" => Ok(("DeepSeek-V2".into(), 60, shape(5120, 128, Some(1536)))),
        "v3" | "deepseek-v3" => Ok(("DeepSeek-V3".into(), 61, shape(7168, 128, Some(1536)))),
        other => Err(Error::Invalid {
            what: "preset".into(),
            expected: "v2-lite, v2 or v3".into(),
            found: other.to_string(),
        }),
    }
}

/// MLA against the caches of attention with the same heads: MHA with K and V of width
/// `qk_nope_head_dim` (the usual head width), MHA with MLA's real K/V widths
/// (`nope + rope` keys, `v_head_dim` values), GQA with 8 groups, and MQA.
pub fn mla_report(
    model: &str,
    layers: usize,
    s: &MlaShape,
    context: usize,
    bytes_per_number: usize,
) -> CacheReport {
    let mla = s.cache_numbers_per_token();
    let dh = s.qk_nope_head_dim;
    let mut layouts = vec![
        ("MLA (c_kv + k_pe)".to_string(), mla),
        (
            format!("MHA, {} heads × K,V of {dh}", s.heads),
            2 * s.heads * dh,
        ),
        (
            format!(
                "MHA, {} heads × K {} + V {}",
                s.heads,
                s.qk_head_dim(),
                s.v_head_dim
            ),
            s.heads * (s.qk_head_dim() + s.v_head_dim),
        ),
    ];
    if s.heads > 8 && s.heads.is_multiple_of(8) {
        layouts.push((format!("GQA, 8 groups × K,V of {dh}"), 2 * 8 * dh));
    }
    layouts.push((format!("MQA, 1 group × K,V of {dh}"), 2 * dh));
    let rows = layouts
        .into_iter()
        .map(|(layout, numbers)| {
            let per_token = (numbers * layers * bytes_per_number) as u64;
            CacheRow {
                layout,
                numbers_per_token_per_layer: numbers,
                bytes_per_token: per_token,
                bytes_at_context: per_token * context as u64,
                ratio_to_mla: numbers as f64 / mla as f64,
            }
        })
        .collect();
    CacheReport {
        model: model.to_string(),
        layers,
        context,
        bytes_per_number,
        rows,
    }
}
