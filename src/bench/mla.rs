//! `latentgpu bench mla`: decode time per token against context length for MLA (naive and
//! absorbed paths) and MHA of the same width and heads, with the cache bytes each reads.

use super::attention::{mha_config, random_weights, square};
use super::seconds_per_rep;
use crate::error::Result;
use crate::gpu::{Batch, GpuContext, GpuTensor};
use crate::model::config::mla::MlaShape;
use crate::model::layers::mha::MhaLayer;
use crate::model::layers::mla::{MlaLayer, MlaPath};
use crate::ops::{KvFormat, RopeMode, RopeTable};

/// Decode at one context length.
#[derive(Clone, Debug, serde::Serialize)]
pub struct MlaFigure {
    /// Context (tokens in the cache, the new one included).
    pub context: usize,
    /// MLA, naive path (up-projects every cached token), seconds per token.
    pub mla_naive_s: f64,
    /// MLA, absorbed path, seconds per token.
    pub mla_absorbed_s: f64,
    /// MHA, seconds per token.
    pub mha_s: f64,
    /// Cache bytes MLA reads per token (both paths read the compressed cache).
    pub mla_cache_bytes_read: u64,
    /// Extra bytes the naive path writes and reads again (the up-projected K and V).
    pub mla_naive_upprojected_bytes: u64,
    /// Cache bytes MHA reads per token.
    pub mha_cache_bytes_read: u64,
}

/// The benchmark's result.
#[derive(Clone, Debug, serde::Serialize)]
pub struct MlaReport {
    /// Adapter name.
    pub adapter: String,
    /// Backend.
    pub backend: String,
    /// The MLA layer measured.
    pub shape: MlaShape,
    /// MHA head width (d / heads).
    pub mha_head_dim: usize,
    /// Per context.
    pub figures: Vec<MlaFigure>,
}

/// Measures decode per token for each context in `contexts`.
pub fn run(
    ctx: &GpuContext,
    shape: MlaShape,
    contexts: &[usize],
    mut progress: impl FnMut(&MlaFigure),
) -> Result<MlaReport> {
    let (d, h) = (shape.d, shape.heads);
    let (nope, rope, v, r) = (
        shape.qk_nope_head_dim,
        shape.qk_rope_head_dim,
        shape.v_head_dim,
        shape.kv_lora_rank,
    );
    let max_n = contexts.iter().copied().max().unwrap_or(1);
    let mut names = vec![
        ("mla.q_proj.weight".to_string(), vec![h * (nope + rope), d]),
        ("mla.kv_a_proj_with_mqa.weight".into(), vec![r + rope, d]),
        ("mla.kv_a_layernorm.weight".into(), vec![r]),
        ("mla.kv_b_proj.weight".into(), vec![h * (nope + v), r]),
        ("mla.o_proj.weight".into(), vec![d, h * v]),
    ];
    square(&mut names, "mha", d);
    let mut file = random_weights(&names, 3)?;
    let mla_rope = MlaLayer::rope_table(ctx, &shape, max_n)?;
    let mla = MlaLayer::load(ctx, &mut file, shape.clone(), "mla", &mla_rope)?;
    let cfg = mha_config(d, h, max_n);
    let mha = MhaLayer::load(ctx, &mut file, &cfg, "mha", 0)?;
    let rope_table = RopeTable::new(ctx, d / h, 10000.0, max_n)?;
    let one = GpuTensor::from_f32(ctx, "x", &[1, d], &vec![0.01; d])?;
    let mut figures = Vec::new();
    for &n in contexts {
        let mla_cache = mla.new_cache(ctx, n, KvFormat::F32)?;
        let mha_cache = mha.new_cache(ctx, n, KvFormat::F32)?;
        let time = |path: MlaPath| {
            seconds_per_rep(ctx, 0.2, |b: &mut Batch| {
                mla.forward(b, &one, n - 1, (&mla_cache, None), path)
                    .map(|_| ())
            })
        };
        let mla_naive_s = time(MlaPath::Naive)?;
        let mla_absorbed_s = time(MlaPath::Absorbed)?;
        let mha_s = seconds_per_rep(ctx, 0.2, |b: &mut Batch| {
            mha.forward(
                b,
                &one,
                n - 1,
                (&mha_cache, None),
                &rope_table,
                RopeMode::HalfSplit,
            )
            .map(|_| ())
        })?;
        let fig = MlaFigure {
            context: n,
            mla_naive_s,
            mla_absorbed_s,
            mha_s,
            mla_cache_bytes_read: (n * (r + rope) * 4) as u64,
            mla_naive_upprojected_bytes: (2 * n * h * (nope + v) * 4) as u64,
            mha_cache_bytes_read: (2 * n * d * 4) as u64,
        };
        progress(&fig);
        figures.push(fig);
    }
    Ok(MlaReport {
        adapter: ctx.adapter.name.clone(),
        backend: ctx.adapter.backend.clone(),
        shape,
        mha_head_dim: d / h,
        figures,
    })
}
