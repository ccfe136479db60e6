//! The pieces of a block other than attention: norms and feed-forward networks.

use super::config::{FfnKind, ModelConfig, NormKind};
use super::weights::{HostMatrix, WeightFile};
use crate::error::Result;
use crate::gpu::split::{block_limit, upload_rows};
use crate::gpu::{Batch, DType, GpuContext, GpuTensor};
use crate::ops::{self, BinaryOp, GateAct, QuantWeight, UnaryOp, Weight, WeightFormat};

/// Uploads tensor `name` of `shape` from the file, f32 in one buffer (vectors, latents, the
/// router: tensors that kernels other than the weight products read).
pub(crate) fn load(
    ctx: &GpuContext,
    file: &mut WeightFile,
    name: &str,
    shape: &[usize],
) -> Result<GpuTensor> {
    let data = file.take(name, shape)?;
    GpuTensor::from_f32(ctx, name, shape, &data)
}

/// Uploads matrix `name` of `shape` in the format the file asks for (f32, f16 or quantized),
/// split into row blocks past the block limit.
pub(crate) fn load_matrix(
    ctx: &GpuContext,
    file: &mut WeightFile,
    name: &str,
    shape: &[usize],
) -> Result<Weight> {
    let data = file.take_matrix(name, shape)?;
    upload_matrix(ctx, Upload::of(ctx, file), name, shape, data)
}

/// Uploads table `name` of `shape` in f32, split into row blocks past the block limit (an
/// embedding not tied to the LM head).
pub(crate) fn load_rows(
    ctx: &GpuContext,
    file: &mut WeightFile,
    name: &str,
    shape: &[usize],
) -> Result<GpuTensor> {
    let data = file.take(name, shape)?;
    upload_rows(
        ctx,
        name,
        shape,
        DType::F32,
        &data,
        block_limit(ctx, file.block_bytes),
    )
}

/// How matrices go to the GPU: their format, and the largest block they are split into.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Upload {
    /// f32, f16 or quantized; `None`: as the file holds them (quantized blocks as they are,
    /// values in f32).
    pub format: Option<WeightFormat>,
    /// The most bytes in one row block.
    pub block_bytes: u64,
}

impl Upload {
    /// The file's choice on `ctx`.
    pub fn of(ctx: &GpuContext, file: &WeightFile) -> Self {
        Upload {
            format: file.weights,
            block_bytes: block_limit(ctx, file.block_bytes),
        }
    }
}

/// Uploads a matrix `[rows, k]` in the format `up` says, in row blocks past its block limit. A
/// matrix whose rows are not whole blocks of 32 stays f32 when quantized formats are asked for
/// (as llama.cpp keeps such tensors unquantized). Quantized blocks from the file are uploaded as
/// they are when their scheme is asked for (or none is); another format gets their values.
pub(crate) fn upload_matrix(
    ctx: &GpuContext,
    up: Upload,
    name: &str,
    shape: &[usize],
    data: HostMatrix,
) -> Result<Weight> {
    let k = shape.get(1).copied().unwrap_or(1);
    let limit = up.block_bytes;
    let data = match data {
        HostMatrix::Quant(q) if up.format.is_none_or(|f| f == WeightFormat::Quant(q.scheme)) => {
            let shape = [shape[0], k];
            return Ok(Weight::Quant(Box::new(QuantWeight::upload(
                ctx, name, shape, &q, limit,
            )?)));
        }
        HostMatrix::Quant(q) => {
            if let Some(WeightFormat::Quant(s)) = up.format {
                log::warn!(
                    "'{name}' is {} in the file: its values are quantized again as {}",
                    q.scheme.name(),
                    s.name()
                );
            }
            crate::ops::dequantize(&q)
        }
        HostMatrix::F32(v) => v,
    };
    let data = &data[..];
    Ok(match up.format.unwrap_or(WeightFormat::F32) {
        f @ WeightFormat::Quant(scheme) if f.fits_row(k) && shape.len() == 2 => {
            let shape = [shape[0], k];
            Weight::Quant(Box::new(QuantWeight::quantize(
                ctx, name, shape, scheme, data, limit,
            )?))
        }
        WeightFormat::Quant(scheme) => {
            log::info!(
                "'{name}' {shape:?} stays f32: its rows are not whole blocks of 32 for {}",
                scheme.name()
            );
            Weight::Dense(upload_rows(ctx, name, shape, DType::F32, data, limit)?)
        }
        WeightFormat::F16 => Weight::Dense(upload_rows(ctx, name, shape, DType::F16, data, limit)?),
        WeightFormat::F32 => Weight::Dense(upload_rows(ctx, name, shape, DType::F32, data, limit)?),
    })
}

/// RMSNorm or LayerNorm over the model width.
pub struct Norm {
    kind: NormKind,
    eps: f32,
    /// Weight `[d]`.
    weight: GpuTensor,
    /// Bias `[d]` (LayerNorm only).
    bias: Option<GpuTensor>,
}

impl Norm {
    /// Loads `{prefix}.weight` (and `{prefix}.bias` for LayerNorm).
    pub fn load(
        ctx: &GpuContext,
        file: &mut WeightFile,
        cfg: &ModelConfig,
        prefix: &str,
    ) -> Result<Self> {
        let d = cfg.d_model;
        let weight = load(ctx, file, &format!("{prefix}.weight"), &[d])?;
        let bias = match cfg.norm_kind {
            NormKind::Layernorm => Some(load(ctx, file, &format!("{prefix}.bias"), &[d])?),
            NormKind::Rmsnorm => None,
        };
        Ok(Norm {
            kind: cfg.norm_kind,
            eps: cfg.norm_eps,
            weight,
            bias,
        })
    }

    /// Normalises rows of `x` `[n, d]`.
    pub fn forward(&self, b: &mut Batch, x: &GpuTensor) -> Result<GpuTensor> {
        match (self.kind, &self.bias) {
            (NormKind::Layernorm, Some(bias)) => ops::layernorm(b, x, &self.weight, bias, self.eps),
            _ => ops::rmsnorm(b, x, &self.weight, self.eps),
        }
    }

    /// `x + r` and its norm, in one dispatch: `(x + r, norm(x + r))`.
    pub fn add_forward(
        &self,
        b: &mut Batch,
        x: &GpuTensor,
        r: &GpuTensor,
    ) -> Result<(GpuTensor, GpuTensor)> {
        let bias = match self.kind {
            NormKind::Layernorm => self.bias.as_ref(),
            NormKind::Rmsnorm => None,
        };
        ops::add_norm(b, x, r, &self.weight, bias, self.eps)
    }
}

/// The feed-forward network of a block.
pub enum Ffn {
    /// `down(act(gate(x)) · up(x))` (SwiGLU, GeGLU): gate, up `[hidden, d]`, down `[d, hidden]`.
    Gated {
        /// `act(gate) · up` as one elementwise op.
        act: BinaryOp,
        /// `[hidden, d]`.
        gate: Weight,
        /// `[hidden, d]`.
        up: Weight,
        /// `[d, hidden]`.
        down: Weight,
    },
    /// `fc2(gelu(fc1(x)))`: fc1 `[hidden, d]`, fc2 `[d, hidden]`.
    Gelu {
        /// `[hidden, d]`.
        fc1: Weight,
        /// `[d, hidden]`.
        fc2: Weight,
    },
}

impl Ffn {
    /// Loads `{prefix}.gate_proj/up_proj/down_proj` or `{prefix}.fc1/fc2` weights.
    pub fn load(
        ctx: &GpuContext,
        file: &mut WeightFile,
        cfg: &ModelConfig,
        prefix: &str,
    ) -> Result<Self> {
        Self::load_gated(ctx, file, cfg, prefix, cfg.ffn_hidden)
    }

    /// As [`Ffn::load`] with a hidden width of `h` (a mixture's shared experts).
    pub fn load_gated(
        ctx: &GpuContext,
        file: &mut WeightFile,
        cfg: &ModelConfig,
        prefix: &str,
        h: usize,
    ) -> Result<Self> {
        let d = cfg.d_model;
        let mut w = |name: &str, shape: &[usize]| {
            load_matrix(ctx, file, &format!("{prefix}.{name}.weight"), shape)
        };
        Ok(match cfg.ffn_kind {
            FfnKind::Swiglu | FfnKind::Geglu | FfnKind::GegluTanh => Ffn::Gated {
                act: match cfg.ffn_kind {
                    FfnKind::Geglu => BinaryOp::GeGlu,
                    FfnKind::GegluTanh => BinaryOp::GeGluTanh,
                    _ => BinaryOp::SwiGlu,
                },
                gate: w("gate_proj", &[h, d])?,
                up: w("up_proj", &[h, d])?,
                down: w("down_proj", &[d, h])?,
            },
            FfnKind::Gelu => Ffn::Gelu {
                fc1: w("fc1", &[h, d])?,
                fc2: w("fc2", &[d, h])?,
            },
        })
    }

    /// Bytes of its weights (all read by each token).
    pub fn weight_bytes(&self) -> u64 {
        match self {
            Ffn::Gated { gate, up, down, .. } => gate.bytes() + up.bytes() + down.bytes(),
            Ffn::Gelu { fc1, fc2 } => fc1.bytes() + fc2.bytes(),
        }
    }

    /// `x` `[n, d]` -> `[n, d]`.
    pub fn forward(&self, b: &mut Batch, x: &GpuTensor) -> Result<GpuTensor> {
        match self {
            Ffn::Gated {
                act,
                gate,
                up,
                down,
            } => {
                let fused_act = match act {
                    BinaryOp::GeGlu => GateAct::Gelu,
                    BinaryOp::GeGluTanh => GateAct::GeluTanh,
                    _ => GateAct::Silu,
                };
                if let Some(a) = ops::linear_glu(b, x, gate, up, fused_act)? {
                    return ops::linear(b, &a, down);
                }
                let g = ops::linear(b, x, gate)?;
                let u = ops::linear(b, x, up)?;
                let a = ops::binary(b, *act, &g, &u)?;
                ops::linear(b, &a, down)
            }
            Ffn::Gelu { fc1, fc2 } => {
                let h = ops::linear(b, x, fc1)?;
                let a = ops::unary(b, UnaryOp::Gelu, &h)?;
                ops::linear(b, &a, fc2)
            }
        }
    }
}
