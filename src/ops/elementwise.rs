//! Elementwise add, multiply, SwiGLU, SiLU and GELU; a bias row added or a row of factors
//! multiplied across rows.

use super::expect_shape;
use crate::error::Result;
use crate::gpu::batch::grid;
use crate::gpu::{Batch, DType, GpuTensor};
use crate::shaders;

/// Mirrors `EwParams` in `elementwise.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct EwParams {
    /// Elements.
    pub n: u32,
    /// Op code.
    pub op: u32,
    /// Row width of a broadcast bias (op `AddBias`).
    pub cols: u32,
    /// Padding.
    pub _pad: u32,
}

const WG: u32 = 256;

/// Two-input elementwise ops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryOp {
    /// `a + b`.
    Add = 0,
    /// `a * b`.
    Mul = 1,
    /// `silu(a) * b` (SwiGLU with `a` the gate).
    SwiGlu = 2,
    /// `gelu(a) * b` (GeGLU, erf GELU, `a` the gate).
    GeGlu = 4,
    /// `gelu_tanh(a) * b` (GeGLU with the tanh approximation).
    GeGluTanh = 5,
}

/// Op code of [`add_bias`] in `elementwise.wgsl`.
const ADD_BIAS: u32 = 3;
/// Op code of [`scale_rows`] in `elementwise.wgsl`.
const SCALE_ROWS: u32 = 6;

/// One-input elementwise ops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnaryOp {
    /// `x * sigmoid(x)`.
    Silu = 0,
    /// `x/2 * (1 + erf(x/√2))` (PyTorch's default GELU).
    Gelu = 1,
    /// The tanh approximation of GELU.
    GeluTanh = 2,
}

fn launch(
    batch: &mut Batch,
    kernel: &crate::gpu::Kernel,
    op: u32,
    a: &GpuTensor,
    b: &GpuTensor,
    out: &GpuTensor,
) -> Result<()> {
    let n = super::as_u32("elementwise", "elements", a.numel())?;
    let cols = super::as_u32("elementwise", "bias width", b.numel())?;
    let params = EwParams {
        n,
        op,
        cols,
        _pad: 0,
    };
    let wg = grid(batch.ctx(), "elementwise", (n as u64).div_ceil(WG as u64))?;
    batch.dispatch(
        kernel,
        &[],
        Some(bytemuck::bytes_of(&params)),
        &[a, b, out],
        wg,
    )?;
    Ok(())
}

/// `out = op(a, b)` elementwise; `a` and `b` must have the same shape.
pub fn binary(batch: &mut Batch, op: BinaryOp, a: &GpuTensor, b: &GpuTensor) -> Result<GpuTensor> {
    super::expect_rank("binary", "a", a, 1..=4)?;
    expect_shape("binary", "b", b, a.shape())?;
    let out = GpuTensor::scratch(batch.ctx(), &format!("{op:?}"), a.shape(), DType::F32)?;
    launch(batch, &shaders::EW_BINARY, op as u32, a, b, &out)?;
    Ok(out)
}

/// `out = x + bias` with the bias row `[cols]` added to every row of `x` `[.., cols]` (the bias of
/// a linear layer).
pub fn add_bias(batch: &mut Batch, x: &GpuTensor, bias: &GpuTensor) -> Result<GpuTensor> {
    super::expect_rank("add_bias", "x", x, 1..=4)?;
    let cols = *x.shape().last().unwrap_or(&0);
    expect_shape("add_bias", "bias", bias, &[cols])?;
    let out = GpuTensor::scratch(batch.ctx(), "add_bias", x.shape(), DType::F32)?;
    launch(batch, &shaders::EW_BINARY, ADD_BIAS, x, bias, &out)?;
    Ok(out)
}

/// `out = x · factors` with the row `factors` `[cols]` multiplying every row of `x` `[.., cols]`
/// (one rounded product an element: Gemma's embedding scale).
pub fn scale_rows(batch: &mut Batch, x: &GpuTensor, factors: &GpuTensor) -> Result<GpuTensor> {
    super::expect_rank("scale_rows", "x", x, 1..=4)?;
    let cols = *x.shape().last().unwrap_or(&0);
    expect_shape("scale_rows", "factors", factors, &[cols])?;
    let out = GpuTensor::scratch(batch.ctx(), "scale_rows", x.shape(), DType::F32)?;
    launch(batch, &shaders::EW_BINARY, SCALE_ROWS, x, factors, &out)?;
    Ok(out)
}

/// `out = op(a)` elementwise.
pub fn unary(batch: &mut Batch, op: UnaryOp, a: &GpuTensor) -> Result<GpuTensor> {
    super::expect_rank("unary", "a", a, 1..=4)?;
    let out = GpuTensor::scratch(batch.ctx(), &format!("{op:?}"), a.shape(), DType::F32)?;
    launch(batch, &shaders::EW_UNARY, op as u32, a, a, &out)?;
    Ok(out)
}
