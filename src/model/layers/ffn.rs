//! The pieces of a block other than attention: norms and feed-forward networks.

use crate::error::Result;
use crate::gpu::{Batch, GpuContext, GpuTensor};
use crate::model::config::{FfnKind, ModelConfig, NormKind};
use crate::model::formats::weights::WeightFile;
use crate::model::layers::upload::{load, load_matrix};
use crate::ops::{self, BinaryOp, GateAct, UnaryOp, Weight};

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
