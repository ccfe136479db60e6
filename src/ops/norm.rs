//! RMSNorm and LayerNorm over the last dimension.

use super::{as_u32, expect_rank, expect_shape};
use crate::error::Result;
use crate::gpu::batch::grid;
use crate::gpu::{Batch, DType, GpuTensor, Kernel};
use crate::shaders;

/// Mirrors `NormParams` in `norm.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct NormParams {
    /// Rows.
    pub rows: u32,
    /// Row width.
    pub d: u32,
    /// Epsilon inside the square root.
    pub eps: f32,
    /// Padding.
    pub _pad: u32,
}

fn launch(
    batch: &mut Batch,
    kernel: &Kernel,
    x: &GpuTensor,
    w: &GpuTensor,
    b: &GpuTensor,
    eps: f32,
) -> Result<GpuTensor> {
    let op = kernel.entry;
    let op: &'static str = if op == "rmsnorm" {
        "rmsnorm"
    } else {
        "layernorm"
    };
    expect_rank(op, "x", x, 1..=3)?;
    let d = *x.shape().last().unwrap_or(&0);
    expect_shape(op, "weight", w, &[d])?;
    expect_shape(op, "bias", b, &[d])?;
    let rows = x.numel() / d;
    let params = NormParams {
        rows: as_u32(op, "rows", rows)?,
        d: as_u32(op, "width", d)?,
        eps,
        _pad: 0,
    };
    let y = GpuTensor::scratch(batch.ctx(), op, &x.shape(), DType::F32)?;
    let wg = grid(batch.ctx(), op, rows as u64)?;
    batch.dispatch(
        kernel,
        &[],
        Some(bytemuck::bytes_of(&params)),
        &[&x, &w, &b, &y],
        wg,
    )?;
    Ok(y)
}

/// `y = x / sqrt(mean(x²) + eps) · w` over the last dimension; `w` is `[d]`.
pub fn rmsnorm(batch: &mut Batch, x: &GpuTensor, w: &GpuTensor, eps: f32) -> Result<GpuTensor> {
    // The bias binding is unused by rmsnorm; the weight stands in for it.
    launch(batch, &shaders::RMSNORM, x, w, w, eps)
}

/// `y = (x − mean) / sqrt(var + eps) · w + b` over the last dimension; `w`, `b` are `[d]`.
pub fn layernorm(
    batch: &mut Batch,
    x: &GpuTensor,
    w: &GpuTensor,
    b: &GpuTensor,
    eps: f32,
) -> Result<GpuTensor> {
    launch(batch, &shaders::LAYERNORM, x, w, b, eps)
}
