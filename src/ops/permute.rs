//! Swapping the first two dimensions of a tensor (token-major heads to head-major and back).

use super::{as_u32, expect_rank};
use crate::error::Result;
use crate::gpu::batch::grid;
use crate::gpu::{Batch, DType, GpuTensor};
use crate::shaders;

/// Mirrors `PermuteParams` in `permute.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct PermuteParams {
    /// First dimension of x.
    pub a: u32,
    /// Second dimension of x.
    pub b: u32,
    /// Last dimension.
    pub c: u32,
    /// Padding.
    pub _pad: u32,
}

/// `x` `[A, B, C]` -> `[B, A, C]` (a copy: exact).
pub fn permute01(batch: &mut Batch, x: &GpuTensor) -> Result<GpuTensor> {
    expect_rank("permute", "x", x, 3..=3)?;
    let (a, b, c) = (x.shape()[0], x.shape()[1], x.shape()[2]);
    let params = PermuteParams {
        a: as_u32("permute", "first dimension", a)?,
        b: as_u32("permute", "second dimension", b)?,
        c: as_u32("permute", "last dimension", c)?,
        _pad: 0,
    };
    as_u32("permute", "elements", a * b * c)?;
    let y = GpuTensor::scratch(batch.ctx(), "permuted", &[b, a, c], DType::F32)?;
    let wg = grid(batch.ctx(), "permute", ((a * b * c) as u64).div_ceil(256))?;
    batch.dispatch(
        &shaders::PERMUTE01,
        &[],
        Some(bytemuck::bytes_of(&params)),
        &[x, &y],
        wg,
    )?;
    Ok(y)
}
