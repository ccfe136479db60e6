//! The gather phase of causal latent attention as a running online-softmax state.

use super::{as_u32, expect_rank, expect_shape};
use crate::error::{shape_err, Result};
use crate::gpu::batch::grid;
use crate::gpu::{Batch, GpuContext, GpuTensor};
use crate::shaders;

/// Mirrors `GatherParams` in `latent.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct GatherParams {
    /// Latents M.
    pub latents: u32,
    /// Heads.
    pub heads: u32,
    /// Head width.
    pub dh: u32,
    /// Tokens gathered by this call.
    pub n: u32,
    /// Score scale.
    pub scale: f32,
    /// Padding.
    pub _pad: [u32; 3],
}

/// Per latent and head: running max `m` and sum `l` `[M, h]`, unnormalised output `o` and its
/// normalised form `g = o / l` `[M, h, dh]`. Empty until the first [`gather_update`].
#[derive(Debug)]
pub struct GatherState {
    /// Running max score `[M, h]` (-1e30 when empty).
    pub m: GpuTensor,
    /// Running sum of exp(score − m) `[M, h]`.
    pub l: GpuTensor,
    /// Running sum of exp(score − m)·v `[M, h, dh]`.
    pub o: GpuTensor,
    /// `o / l` `[M, h, dh]` (zero when empty).
    pub g: GpuTensor,
}

impl GatherState {
    /// An empty state for `latents` latents of `heads` heads of width `dh`.
    pub fn new(ctx: &GpuContext, latents: usize, heads: usize, dh: usize) -> Result<Self> {
        Ok(GatherState {
            m: GpuTensor::from_f32(
                ctx,
                "gather max",
                &[latents, heads],
                &vec![-1.0e30; latents * heads],
            )?,
            l: GpuTensor::zeros(ctx, "gather sum", &[latents, heads])?,
            o: GpuTensor::zeros(ctx, "gather acc", &[latents, heads, dh])?,
            g: GpuTensor::zeros(ctx, "gather summary", &[latents, heads, dh])?,
        })
    }

    /// Bytes held.
    pub fn bytes(&self) -> u64 {
        self.m.bytes() + self.l.bytes() + self.o.bytes() + self.g.bytes()
    }
}

/// Every latent query `q1` `[M, h, dh]` absorbs the first `n` tokens of `k`, `v` `[≥n, h, dh]`
/// into `state`.
pub fn gather_update(
    batch: &mut Batch,
    q1: &GpuTensor,
    k: &GpuTensor,
    v: &GpuTensor,
    n: usize,
    state: &GatherState,
    scale: f32,
) -> Result<()> {
    const OP: &str = "gather";
    expect_rank(OP, "latent queries", q1, 3..=3)?;
    let (m, h, dh) = (q1.shape()[0], q1.shape()[1], q1.shape()[2]);
    expect_rank(OP, "keys", k, 3..=3)?;
    expect_shape(OP, "values", v, k.shape())?;
    if k.shape()[1..] != [h, dh] {
        return Err(shape_err(
            OP,
            format!("keys '{}'", k.label()),
            format!("[_, {h}, {dh}]"),
            format!("{:?}", k.shape()),
        ));
    }
    if n == 0 || n > k.shape()[0] {
        return Err(shape_err(OP, "tokens", format!("1..={}", k.shape()[0]), n));
    }
    if dh > 1024 {
        return Err(shape_err(OP, "head width", "<= 1024", dh));
    }
    expect_shape(OP, "max", &state.m, &[m, h])?;
    expect_shape(OP, "sum", &state.l, &[m, h])?;
    expect_shape(OP, "acc", &state.o, &[m, h, dh])?;
    expect_shape(OP, "summary", &state.g, &[m, h, dh])?;
    let params = GatherParams {
        latents: as_u32(OP, "latents", m)?,
        heads: as_u32(OP, "heads", h)?,
        dh: as_u32(OP, "dh", dh)?,
        n: as_u32(OP, "tokens", n)?,
        scale,
        _pad: [0; 3],
    };
    let wg = grid(batch.ctx(), OP, (m * h) as u64)?;
    // With subgroups of one size, a subgroup per latent query and head (no barriers) where
    // the rows are whole vec4s that its lanes hold.
    let lanes = batch.ctx().fixed_subgroup_size();
    let (kernel, constants) = match lanes.and_then(super::attention::lanes_constants) {
        Some(c) if dh % 4 == 0 && dh <= 16 * lanes.unwrap_or(0) as usize => {
            (&shaders::GATHER_LANES, c)
        }
        _ => (&shaders::GATHER_UPDATE, &[][..]),
    };
    batch.dispatch(
        kernel,
        constants,
        Some(bytemuck::bytes_of(&params)),
        &[q1, k, v, &state.m, &state.l, &state.o, &state.g],
        wg,
    )?;
    Ok(())
}
