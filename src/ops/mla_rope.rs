//! The step between MLA's products and its attention (see `mla_rope.wgsl`): the queries' RoPE
//! part rotated, `c_kv` normalised and `k_pe` rotated into the compressed cache, in one dispatch.

use super::{as_u32, expect_rank, expect_shape, KvFormat, Pages, RopeTable};
use crate::error::{shape_err, Error, Result};
use crate::gpu::batch::grid;
use crate::gpu::{Batch, GpuTensor};
use crate::shaders;

/// Mirrors `MlaRopeParams` in `mla_rope.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct MlaRopeParams {
    /// Tokens.
    pub tokens: u32,
    /// Query heads.
    pub heads: u32,
    /// Values per query head.
    pub q_width: u32,
    /// First rotated value of a query head.
    pub q_rot: u32,
    /// `kv_lora_rank`.
    pub r: u32,
    /// `qk_rope_head_dim`.
    pub rope: u32,
    /// Position (and cache row) of the first token.
    pub pos: u32,
    /// Positions in the RoPE table.
    pub positions: u32,
    /// The norm's epsilon.
    pub eps: f32,
    /// Tokens per page of a paged cache (0: rows as they are).
    pub page_tokens: u32,
    /// Padding.
    pub _pad: [u32; 2],
}

/// `MAX_WIDTH` in `mla_rope.wgsl`: the widest c_kv or k_pe a workgroup stages.
const MAX_WIDTH: usize = 2048;

/// Rotates values `q_rot..q_rot + rope` of each head of `q` `[n, heads, q_width]` in place
/// (interleaved pairs), and writes `kv` `[n, r + rope]`'s `c_kv` part, RMS-normalised by `norm`
/// `[r]`, and its rotated `k_pe` part into `c_cache` `[capacity, r]` and `pe_cache`
/// `[capacity, rope]` at rows `pos..pos + n` (of a paged cache, the pool rows `pages` gives).
#[allow(clippy::too_many_arguments)]
pub fn mla_rope(
    batch: &mut Batch,
    q: &GpuTensor,
    q_rot: usize,
    kv: &GpuTensor,
    (norm, eps): (&GpuTensor, f32),
    (table, pos): (&RopeTable, usize),
    (c_cache, pe_cache, pages): (&GpuTensor, &GpuTensor, Option<Pages>),
) -> Result<()> {
    const OP: &str = "mla_rope";
    expect_rank(OP, "q", q, 3..=3)?;
    let (n, heads, q_width) = (q.shape()[0], q.shape()[1], q.shape()[2]);
    let rope = table.rot_dim;
    let r = norm.numel();
    expect_shape(OP, "kv", kv, &[n, r + rope])?;
    expect_shape(OP, "norm", norm, &[r])?;
    let capacity = c_cache.shape().first().copied().unwrap_or(0);
    expect_shape(OP, "c_kv cache", c_cache, &[capacity, r])?;
    expect_shape(OP, "k_pe cache", pe_cache, &[capacity, rope])?;
    if q_rot + rope > q_width {
        return Err(shape_err(
            OP,
            "rotated query values",
            format!("within the head's {q_width}"),
            format!("{q_rot}..{}", q_rot + rope),
        ));
    }
    if pos + n > table.positions {
        return Err(Error::OutOfRange {
            what: format!("{OP}: position ({pos} + {n} tokens)"),
            found: (pos + n - 1) as u64,
            bound: table.positions as u64,
        });
    }
    let last_row = match &pages {
        Some(pages) => pages.last_row(OP, pos, pos + n)?,
        None => pos + n - 1,
    };
    if last_row >= capacity {
        return Err(Error::OutOfRange {
            what: format!("{OP}: cache row ({pos} + {n} tokens)"),
            found: last_row as u64,
            bound: capacity as u64,
        });
    }
    let params = MlaRopeParams {
        tokens: as_u32(OP, "tokens", n)?,
        heads: as_u32(OP, "heads", heads)?,
        q_width: as_u32(OP, "q width", q_width)?,
        q_rot: as_u32(OP, "q rotated start", q_rot)?,
        r: as_u32(OP, "kv_lora_rank", r)?,
        rope: as_u32(OP, "rope width", rope)?,
        pos: as_u32(OP, "pos", pos)?,
        positions: as_u32(OP, "positions", table.positions)?,
        eps,
        page_tokens: match &pages {
            Some(pages) => pages.param(OP)?,
            None => 0,
        },
        _pad: [0; 2],
    };
    let format = KvFormat::of_all(OP, &[("c_kv cache", c_cache), ("k_pe cache", pe_cache)])?;
    if r.max(rope) > MAX_WIDTH {
        return Err(shape_err(
            OP,
            "kv_lora_rank and rope width",
            format!("at most {MAX_WIDTH}"),
            r.max(rope),
        ));
    }
    format.words(OP, "kv_lora_rank", r)?;
    format.words(OP, "rope width", rope)?;
    let (c_cache, pe_cache) = (&format.bound(c_cache)?, &format.bound(pe_cache)?);
    let kernel = match format {
        KvFormat::F32 => &shaders::MLA_ROPE,
        KvFormat::F16 => &shaders::MLA_ROPE_F16,
    };
    let wg = grid(batch.ctx(), OP, (n * (heads + 1)) as u64)?;
    batch.dispatch(
        kernel,
        &[],
        Some(bytemuck::bytes_of(&params)),
        // Unpaged, the table is not read: the compressed KV stands in for it.
        &[
            kv,
            norm,
            &table.both,
            q,
            c_cache,
            pe_cache,
            pages.map_or(kv, |p| p.table),
        ],
        wg,
    )
}
