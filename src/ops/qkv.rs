//! The step between a multi-head layer's fused q|k|v product and its attention (see
//! `qkv_rope.wgsl`): bias, per-head q/k RMSNorm, RoPE, and the keys and values written into the
//! cache at their positions, in one dispatch.

use super::{as_u32, expect_rank, expect_shape, KvFormat, Pages, RopeMode, RopeTable};
use crate::error::{shape_err, Error, Result};
use crate::gpu::batch::grid;
use crate::gpu::{Batch, DType, GpuTensor};
use crate::shaders;

/// Mirrors `QkvParams` in `qkv_rope.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct QkvParams {
    /// Tokens.
    pub tokens: u32,
    /// Query heads.
    pub heads: u32,
    /// Key/value heads.
    pub kv_heads: u32,
    /// Head width.
    pub dh: u32,
    /// Rotated values per head.
    pub rot_dim: u32,
    /// RoPE mode (0 interleaved, 1 half-split).
    pub mode: u32,
    /// Position of the first token (its cache row).
    pub pos: u32,
    /// Positions in the RoPE table.
    pub positions: u32,
    /// 1: add the bias in `aux`.
    pub has_bias: u32,
    /// 1: per-head RMSNorm of q and k with the weights in `aux`.
    pub has_norm: u32,
    /// The norm's epsilon.
    pub eps: f32,
    /// Cache row of the first token.
    pub row: u32,
    /// Tokens per page of a paged cache (0: rows as they are).
    pub page_tokens: u32,
    /// Padding.
    pub _pad: [u32; 3],
}

/// What the step adds to the product: a bias, a per-head q/k norm. `aux` holds
/// `[(heads + 2·kv_heads)·dh]` bias values then the q and k norm weights `[2, dh]` (zeros where
/// unused).
pub struct QkvExtras<'a> {
    /// The bias and norm weights.
    pub aux: &'a GpuTensor,
    /// Whether to add the bias.
    pub bias: bool,
    /// The norm's epsilon, if q and k are normalised.
    pub norm_eps: Option<f32>,
}

/// `qkv` `[n, (heads + 2·kv_heads)·dh]` of tokens at positions `pos..pos + n` -> the rotated
/// queries `[n, heads, dh]`; the rotated keys and the values go to `k_cache` and `v_cache`
/// (`[capacity, kv_heads, dh]`, f32 or f16) at rows `row..row + n`, or of a paged cache at the
/// pool rows `pages` gives for them.
#[allow(clippy::too_many_arguments)]
pub fn qkv_rope(
    batch: &mut Batch,
    qkv: &GpuTensor,
    (heads, kv_heads, dh): (usize, usize, usize),
    extras: &QkvExtras,
    rope: (&RopeTable, RopeMode),
    (pos, row): (usize, usize),
    (k_cache, v_cache, pages): (&GpuTensor, &GpuTensor, Option<Pages>),
) -> Result<GpuTensor> {
    const OP: &str = "qkv_rope";
    expect_rank(OP, "qkv", qkv, 2..=2)?;
    let n = qkv.shape()[0];
    let slots = heads + 2 * kv_heads;
    expect_shape(OP, "qkv", qkv, &[n, slots * dh])?;
    expect_shape(OP, "aux", extras.aux, &[(slots + 2) * dh])?;
    let capacity = k_cache.shape().first().copied().unwrap_or(0);
    expect_shape(OP, "k cache", k_cache, &[capacity, kv_heads, dh])?;
    expect_shape(OP, "v cache", v_cache, &[capacity, kv_heads, dh])?;
    let (table, mode) = rope;
    if dh > 1024 || table.rot_dim > dh || heads == 0 || kv_heads == 0 || heads % kv_heads != 0 {
        return Err(shape_err(
            OP,
            "heads",
            "head width <= 1024 with the rotated width in it, kv heads dividing heads",
            format!(
                "{heads}/{kv_heads} heads of {dh}, {} rotated",
                table.rot_dim
            ),
        ));
    }
    let last_row = match &pages {
        Some(pages) => pages.last_row(OP, row, row + n)?,
        None => row + n - 1,
    };
    if last_row >= capacity {
        return Err(Error::OutOfRange {
            what: format!("{OP}: cache row ({row} + {n} tokens)"),
            found: last_row as u64,
            bound: capacity as u64,
        });
    }
    if pos + n > table.positions {
        return Err(Error::OutOfRange {
            what: format!("{OP}: position ({pos} + {n} tokens)"),
            found: (pos + n - 1) as u64,
            bound: table.positions as u64,
        });
    }
    let params = QkvParams {
        tokens: as_u32(OP, "tokens", n)?,
        heads: heads as u32,
        kv_heads: kv_heads as u32,
        dh: dh as u32,
        rot_dim: table.rot_dim as u32,
        mode: mode as u32,
        pos: as_u32(OP, "pos", pos)?,
        positions: as_u32(OP, "positions", table.positions)?,
        has_bias: extras.bias as u32,
        has_norm: extras.norm_eps.is_some() as u32,
        eps: extras.norm_eps.unwrap_or(0.0),
        row: as_u32(OP, "row", row)?,
        page_tokens: match &pages {
            Some(pages) => pages.param(OP)?,
            None => 0,
        },
        _pad: [0; 3],
    };
    let format = KvFormat::of_all(OP, &[("k cache", k_cache), ("v cache", v_cache)])?;
    format.words(OP, "head width", dh)?;
    let (k_cache, v_cache) = (&format.bound(k_cache)?, &format.bound(v_cache)?);
    let kernel = match format {
        KvFormat::F32 => &shaders::QKV_ROPE,
        KvFormat::F16 => &shaders::QKV_ROPE_F16,
    };
    let q = GpuTensor::scratch(batch.ctx(), "rotated queries", &[n, heads, dh], DType::F32)?;
    let wg = grid(batch.ctx(), OP, (n * slots) as u64)?;
    batch.dispatch(
        kernel,
        &[],
        Some(bytemuck::bytes_of(&params)),
        // Unpaged, the table is not read: the product stands in for it.
        &[
            qkv,
            extras.aux,
            &table.both,
            &q,
            k_cache,
            v_cache,
            pages.map_or(qkv, |p| p.table),
        ],
        wg,
    )?;
    Ok(q)
}
