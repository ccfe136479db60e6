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

/// Checks shapes and dispatches `kernel` over the rows of `x` (plus `residual`, whose sum with
/// `x` is written to a new tensor and normalised, when given); returns (that sum, y).
fn launch(
    batch: &mut Batch,
    kernel: &Kernel,
    x: &GpuTensor,
    residual: Option<&GpuTensor>,
    w: &GpuTensor,
    b: &GpuTensor,
    eps: f32,
) -> Result<(Option<GpuTensor>, GpuTensor)> {
    let op = kernel.entry;
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
    let y = GpuTensor::scratch(batch.ctx(), op, x.shape(), DType::F32)?;
    let wg = grid(batch.ctx(), op, rows as u64)?;
    let params = bytemuck::bytes_of(&params);
    match residual {
        None => {
            batch.dispatch(
                kernel,
                super::row_workgroup(batch.ctx()),
                Some(params),
                &[x, w, b, &y],
                wg,
            )?;
            Ok((None, y))
        }
        Some(r) => {
            expect_shape(op, "residual", r, x.shape())?;
            let sum = GpuTensor::scratch(batch.ctx(), "residual sum", x.shape(), DType::F32)?;
            batch.dispatch(
                kernel,
                super::row_workgroup(batch.ctx()),
                Some(params),
                &[x, w, b, &y, r, &sum],
                wg,
            )?;
            Ok((Some(sum), y))
        }
    }
}

/// `y = x / sqrt(mean(x²) + eps) · w` over the last dimension; `w` is `[d]`.
pub fn rmsnorm(batch: &mut Batch, x: &GpuTensor, w: &GpuTensor, eps: f32) -> Result<GpuTensor> {
    // The bias binding is unused by rmsnorm; the weight stands in for it.
    Ok(launch(batch, &shaders::RMSNORM, x, None, w, w, eps)?.1)
}

/// `y = (x − mean) / sqrt(var + eps) · w + b` over the last dimension; `w`, `b` are `[d]`.
pub fn layernorm(
    batch: &mut Batch,
    x: &GpuTensor,
    w: &GpuTensor,
    b: &GpuTensor,
    eps: f32,
) -> Result<GpuTensor> {
    Ok(launch(batch, &shaders::LAYERNORM, x, None, w, b, eps)?.1)
}

/// The residual add and the next norm in one dispatch: `s = x + r`, then `(s, norm(s))`, with
/// RMSNorm (`bias` None) or LayerNorm. The same float operations as [`super::binary`] then
/// [`rmsnorm`] or [`layernorm`].
pub fn add_norm(
    batch: &mut Batch,
    x: &GpuTensor,
    r: &GpuTensor,
    w: &GpuTensor,
    bias: Option<&GpuTensor>,
    eps: f32,
) -> Result<(GpuTensor, GpuTensor)> {
    let (kernel, b) = match bias {
        Some(b) => (&shaders::ADD_LAYERNORM, b),
        None => (&shaders::ADD_RMSNORM, w),
    };
    let (sum, y) = launch(batch, kernel, x, Some(r), w, b, eps)?;
    Ok((sum.unwrap_or_else(|| x.clone()), y))
}
