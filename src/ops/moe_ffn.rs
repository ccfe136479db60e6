//! The routed experts of a mixture-of-experts feed-forward (see `moe_ffn.wgsl`): each token's
//! chosen experts are read by index on the GPU, so decode needs no readback of the routing.

use super::{as_u32, expect_shape, GateAct};
use crate::error::{shape_err, Result};
use crate::gpu::batch::grid;
use crate::gpu::{Batch, DType, GpuTensor};
use crate::shaders;

/// Mirrors `MoeParams` in `moe_ffn.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct MoeParams {
    /// Tokens.
    pub tokens: u32,
    /// Experts per token.
    pub top_k: u32,
    /// Model width.
    pub d: u32,
    /// Expert width (`moe_intermediate_size`).
    pub inter: u32,
    /// Experts stacked in the matrices.
    pub experts: u32,
    /// Padding.
    pub _pad: [u32; 3],
}

/// The stacked weights of every routed expert.
pub struct Experts<'a> {
    /// Gate projections `[experts, inter, d]`.
    pub gate: &'a GpuTensor,
    /// Up projections `[experts, inter, d]`.
    pub up: &'a GpuTensor,
    /// Down projections `[experts, d, inter]`.
    pub down: &'a GpuTensor,
    /// The gate's activation.
    pub act: GateAct,
}

/// `y[t] = Σ_j weights[t, j] · down_e(act(gate_e·x[t]) ⊙ up_e·x[t])` with `e = ids[t, j]`, for
/// `x` `[tokens, d]`, `ids` `[tokens, top_k]` u32 and `weights` `[tokens, top_k]` (the
/// router's output): `[tokens, d]`.
pub fn moe_ffn(
    batch: &mut Batch,
    x: &GpuTensor,
    (ids, weights): (&GpuTensor, &GpuTensor),
    experts: &Experts,
) -> Result<GpuTensor> {
    const OP: &str = "moe_ffn";
    super::expect_rank(OP, "x", x, 2..=2)?;
    let (tokens, d) = (x.shape()[0], x.shape()[1]);
    let shape = experts.gate.shape();
    if shape.len() != 3 || shape[2] != d {
        return Err(shape_err(
            OP,
            "gate",
            format!("[experts, inter, {d}]"),
            format!("{shape:?}"),
        ));
    }
    let (n_experts, inter) = (shape[0], shape[1]);
    if n_experts == 0 || inter == 0 {
        return Err(shape_err(
            OP,
            "gate",
            "at least one expert of width 1",
            format!("{shape:?}"),
        ));
    }
    expect_shape(OP, "up", experts.up, &[n_experts, inter, d])?;
    expect_shape(OP, "down", experts.down, &[n_experts, d, inter])?;
    let top_k = ids.shape().last().copied().unwrap_or(0);
    if ids.dtype() != DType::U32 || ids.shape() != [tokens, top_k] || top_k == 0 {
        return Err(shape_err(
            OP,
            format!("ids '{}'", ids.label()),
            format!("[{tokens}, top_k] u32"),
            format!("{:?} {:?}", ids.shape(), ids.dtype()),
        ));
    }
    expect_shape(OP, "weights", weights, &[tokens, top_k])?;
    let ctx = batch.ctx();
    let params = MoeParams {
        tokens: as_u32(OP, "tokens", tokens)?,
        top_k: as_u32(OP, "top_k", top_k)?,
        d: as_u32(OP, "d", d)?,
        inter: as_u32(OP, "inter", inter)?,
        experts: as_u32(OP, "experts", n_experts)?,
        _pad: [0; 3],
    };
    let slots = tokens * top_k;
    let h = GpuTensor::scratch(ctx, "expert hidden", &[tokens, top_k, inter], DType::F32)?;
    let constants = experts.act.constants();
    let wg = grid(ctx, OP, ((slots * inter) as u64).div_ceil(64))?;
    batch.dispatch(
        &shaders::MOE_GATE_UP,
        constants,
        Some(bytemuck::bytes_of(&params)),
        &[x, ids, experts.gate, experts.up, &h],
        wg,
    )?;
    let y = GpuTensor::scratch(ctx, "experts", &[tokens, d], DType::F32)?;
    let wg = grid(ctx, OP, ((tokens * d) as u64).div_ceil(64))?;
    batch.dispatch(
        &shaders::MOE_DOWN,
        constants,
        Some(bytemuck::bytes_of(&params)),
        &[&h, ids, weights, experts.down, &y],
        wg,
    )?;
    Ok(y)
}
