//! Rotary position embedding with host-built cos/sin tables.

use super::{as_u32, expect_rank};
use crate::error::{shape_err, Error, Result};
use crate::gpu::batch::grid;
use crate::gpu::{Batch, DType, GpuContext, GpuTensor};
use crate::shaders;

/// Mirrors `RopeParams` in `rope.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct RopeParams {
    /// Tokens.
    pub tokens: u32,
    /// Heads per token.
    pub heads: u32,
    /// Values per head.
    pub head_dim: u32,
    /// Rotated values per head (the first `rot_dim`).
    pub rot_dim: u32,
    /// Position of the first token.
    pub offset: u32,
    /// 0 interleaved, 1 half-split.
    pub mode: u32,
    /// Rows of the tables.
    pub positions: u32,
    /// First rotated value of each head.
    pub rot_start: u32,
}

/// Which values form a rotated pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RopeMode {
    /// `(x[2i], x[2i+1])` (GPT-J, DeepSeek checkpoints).
    Interleaved = 0,
    /// `(x[i], x[i + r/2])` (GPT-NeoX, HF Llama `rotate_half`).
    HalfSplit = 1,
}

/// The inverse frequencies `θ_i = base^(−2i/r)` as PyTorch computes them in fp32.
pub fn inv_freq(rot_dim: usize, base: f32) -> Vec<f32> {
    (0..rot_dim / 2)
        .map(|i| {
            let exponent = (2 * i) as f32 / rot_dim as f32;
            let pow = (base as f64).powf(exponent as f64) as f32;
            1.0 / pow
        })
        .collect()
}

/// Host-built cos/sin tables `[positions, rot_dim / 2]`, uploaded once (a clone shares them).
#[derive(Clone, Debug)]
pub struct RopeTable {
    /// Rotated width.
    pub rot_dim: usize,
    /// Number of positions covered.
    pub positions: usize,
    /// cos(pos · θ_i), `[positions, rot_dim/2]`.
    pub cos: GpuTensor,
    /// sin(pos · θ_i), `[positions, rot_dim/2]`.
    pub sin: GpuTensor,
    /// Both, `[2, positions, rot_dim/2]` (for kernels that bind one table).
    pub both: GpuTensor,
}

/// cos and sin tables on the host: angle `pos · θ_i` in fp32 (as PyTorch), cos/sin rounded from f64,
/// each scaled by `mscale` (1 for plain RoPE).
pub fn rope_tables(inv_freq: &[f32], positions: usize, mscale: f32) -> (Vec<f32>, Vec<f32>) {
    let half = inv_freq.len();
    let mut cos = Vec::with_capacity(positions * half);
    let mut sin = Vec::with_capacity(positions * half);
    for pos in 0..positions {
        for &f in inv_freq {
            let angle = (pos as f32 * f) as f64;
            cos.push((angle.cos() as f32) * mscale);
            sin.push((angle.sin() as f32) * mscale);
        }
    }
    (cos, sin)
}

impl RopeTable {
    /// Plain RoPE with `θ_i = base^(−2i/rot_dim)` for positions `0..positions`.
    pub fn new(ctx: &GpuContext, rot_dim: usize, base: f32, positions: usize) -> Result<Self> {
        Self::from_inv_freq(ctx, &inv_freq(rot_dim, base), positions, 1.0)
    }

    /// RoPE from given inverse frequencies (e.g. YaRN's) and a magnitude scale.
    pub fn from_inv_freq(
        ctx: &GpuContext,
        inv_freq: &[f32],
        positions: usize,
        mscale: f32,
    ) -> Result<Self> {
        if inv_freq.is_empty() || positions == 0 {
            return Err(Error::Invalid {
                what: "rope table".into(),
                expected: "rot_dim >= 2 and positions >= 1".into(),
                found: format!("rot_dim {} positions {positions}", inv_freq.len() * 2),
            });
        }
        let half = inv_freq.len();
        // The tables are built on the host: check they fit the adapter first.
        crate::gpu::tensor::check_shape(ctx, "rope tables", &[2, positions, half], DType::F32)?;
        let (cos, sin) = rope_tables(inv_freq, positions, mscale);
        Ok(RopeTable {
            rot_dim: half * 2,
            positions,
            cos: GpuTensor::from_f32(ctx, "rope cos", &[positions, half], &cos)?,
            sin: GpuTensor::from_f32(ctx, "rope sin", &[positions, half], &sin)?,
            both: GpuTensor::from_f32(
                ctx,
                "rope table",
                &[2, positions, half],
                &[cos, sin].concat(),
            )?,
        })
    }
}

/// Rotates the first `table.rot_dim` values of every head of `x` `[tokens, heads, head_dim]`
/// in place, token `t` at position `offset + t`.
pub fn rope_inplace(
    batch: &mut Batch,
    x: &GpuTensor,
    table: &RopeTable,
    offset: usize,
    mode: RopeMode,
) -> Result<()> {
    rope_inplace_at(batch, x, table, offset, mode, 0)
}

/// As [`rope_inplace`], rotating values `start..start + table.rot_dim` of every head (e.g. the
/// `q_pe` part after `q_nope` in MLA's queries).
pub fn rope_inplace_at(
    batch: &mut Batch,
    x: &GpuTensor,
    table: &RopeTable,
    offset: usize,
    mode: RopeMode,
    start: usize,
) -> Result<()> {
    expect_rank("rope", "x", x, 3..=3)?;
    let (tokens, heads, head_dim) = (x.shape()[0], x.shape()[1], x.shape()[2]);
    if start + table.rot_dim > head_dim {
        return Err(shape_err(
            "rope",
            "rotated width",
            format!("<= head width {head_dim}"),
            start + table.rot_dim,
        ));
    }
    if offset + tokens > table.positions {
        return Err(Error::OutOfRange {
            what: format!("rope position (offset {offset} + {tokens} tokens)"),
            found: (offset + tokens - 1) as u64,
            bound: table.positions as u64,
        });
    }
    let params = RopeParams {
        tokens: as_u32("rope", "tokens", tokens)?,
        heads: as_u32("rope", "heads", heads)?,
        head_dim: as_u32("rope", "head_dim", head_dim)?,
        rot_dim: table.rot_dim as u32,
        offset: as_u32("rope", "offset", offset)?,
        mode: mode as u32,
        positions: table.positions as u32,
        rot_start: as_u32("rope", "start", start)?,
    };
    let pairs = (tokens * heads * table.rot_dim / 2) as u64;
    let wg = grid(batch.ctx(), "rope", pairs.div_ceil(256))?;
    batch.dispatch(
        &shaders::ROPE_INPLACE,
        &[],
        Some(bytemuck::bytes_of(&params)),
        &[&table.cos, &table.sin, x],
        wg,
    )?;
    Ok(())
}
