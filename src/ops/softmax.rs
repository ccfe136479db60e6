//! Row softmax with an optional causal mask.

use super::{as_u32, expect_rank};
use crate::error::{shape_err, Result};
use crate::gpu::batch::grid;
use crate::gpu::{Batch, DType, GpuTensor};
use crate::shaders;

/// Mirrors `SoftmaxParams` in `softmax.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct SoftmaxParams {
    /// Rows.
    pub rows: u32,
    /// Columns.
    pub cols: u32,
    /// 1 for the causal mask.
    pub causal: u32,
    /// Query rows per block (the causal row index is `row % q_len`).
    pub q_len: u32,
    /// Keys before the first query (decode offset).
    pub offset: u32,
    /// Each value is multiplied by this first.
    pub scale: f32,
    /// Padding.
    pub _pad: [u32; 2],
}

/// Softmax along the last dimension of `x` `[.., rows, cols]`.
///
/// With `causal = Some(offset)`, row `i` of each `[rows, cols]` block keeps columns `j <= i + offset`
/// and the rest are 0.
pub fn softmax(batch: &mut Batch, x: &GpuTensor, causal: Option<usize>) -> Result<GpuTensor> {
    softmax_scaled(batch, x, causal, 1.0)
}

/// As [`softmax`] of `scale · x` (the scaling done in the kernel, value by value).
pub fn softmax_scaled(
    batch: &mut Batch,
    x: &GpuTensor,
    causal: Option<usize>,
    scale: f32,
) -> Result<GpuTensor> {
    expect_rank("softmax", "x", x, 1..=4)?;
    let cols = *x.shape().last().unwrap_or(&1);
    let q_len = if x.shape().len() >= 2 {
        x.shape()[x.shape().len() - 2]
    } else {
        1
    };
    let rows = x.numel() / cols;
    let offset = causal.unwrap_or(0);
    if causal.is_some() && q_len + offset > cols {
        return Err(shape_err(
            "softmax",
            "causal rows + offset",
            format!("<= columns ({cols})"),
            q_len + offset,
        ));
    }
    let params = SoftmaxParams {
        rows: as_u32("softmax", "rows", rows)?,
        cols: as_u32("softmax", "cols", cols)?,
        causal: causal.is_some() as u32,
        q_len: as_u32("softmax", "rows per block", q_len)?,
        offset: as_u32("softmax", "offset", offset)?,
        scale,
        _pad: [0; 2],
    };
    let y = GpuTensor::scratch(batch.ctx(), "softmax", x.shape(), DType::F32)?;
    let wg = grid(batch.ctx(), "softmax", rows as u64)?;
    batch.dispatch(
        &shaders::SOFTMAX_ROWS,
        super::row_workgroup(batch.ctx()),
        Some(bytemuck::bytes_of(&params)),
        &[x, &y],
        wg,
    )?;
    Ok(y)
}
