//! f32 to f16 on the GPU (weights derived on the GPU, kept in f16), and f16 back to f32 (a
//! 16-bit KV cache's rows gathered for the matrix kernels).

use super::{as_u32, expect_rank};
use crate::error::Result;
use crate::gpu::batch::grid;
use crate::gpu::{Batch, DType, GpuTensor};
use crate::shaders;

/// Mirrors `CastParams` in `cast.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct CastParams {
    /// Values.
    pub n: u32,
    /// Padding.
    pub _pad: [u32; 3],
}

/// `x` (f32) as an f16 tensor of the same shape, by WGSL's `pack2x16float`. Values beyond
/// f16's range (|x| > 65504) have no defined result: weights there do not fit f16 at all.
pub fn to_f16(batch: &mut Batch, x: &GpuTensor) -> Result<GpuTensor> {
    expect_rank("to_f16", "x", x, 1..=4)?;
    let n = x.numel();
    let params = CastParams {
        n: as_u32("to_f16", "values", n)?,
        _pad: [0; 3],
    };
    let y = GpuTensor::empty(batch.ctx(), x.label(), x.shape(), DType::F16)?;
    // The kernel sees the f16 pairs as u32 words.
    let words = y.view_words()?;
    let wg = grid(batch.ctx(), "to_f16", (n as u64).div_ceil(2).div_ceil(256))?;
    batch.dispatch(
        &shaders::CAST_TO_F16,
        &[],
        Some(bytemuck::bytes_of(&params)),
        &[x, &words],
        wg,
    )?;
    Ok(y)
}

/// `x` (f16) as an f32 tensor of the same shape.
pub fn to_f32(batch: &mut Batch, x: &GpuTensor) -> Result<GpuTensor> {
    super::expect_rank_any_dtype("to_f32", "x", x, 1..=4)?;
    if x.dtype() != DType::F16 {
        return Err(crate::error::shape_err(
            "to_f32",
            "x dtype",
            "F16",
            format!("{:?}", x.dtype()),
        ));
    }
    let n = x.numel();
    let params = CastParams {
        n: as_u32("to_f32", "values", n)?,
        _pad: [0; 3],
    };
    let y = GpuTensor::scratch(batch.ctx(), x.label(), x.shape(), DType::F32)?;
    let words = x.view_words()?;
    let wg = grid(batch.ctx(), "to_f32", (n as u64).div_ceil(256))?;
    batch.dispatch(
        &shaders::CAST_TO_F32,
        &[],
        Some(bytemuck::bytes_of(&params)),
        &[&words, &y],
        wg,
    )?;
    Ok(y)
}
