//! The weight matrices of `x·Wᵀ` products in any of the formats a model can be loaded in, and
//! the products themselves: the model's layers hold a [`Weight`] and call [`linear`] whatever
//! the format.

use super::matmul::{matmul, matvec_glu, GateAct};
use super::quant::QuantScheme;
use super::quant_weight::{matmul_quant, matvec_glu_quant, QuantWeight};
use crate::error::Result;
use crate::gpu::{Batch, DType, GpuTensor};

/// How weight matrices are stored on the GPU (`--weights`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum WeightFormat {
    /// 32-bit floats.
    #[default]
    F32,
    /// 16-bit IEEE floats (read natively on adapters with shader-f16, as u32 words on the
    /// others).
    F16,
    /// bfloat16 (the high half of an f32), read as u32 words on every adapter.
    BF16,
    /// Blocks of quantized weights.
    Quant(QuantScheme),
}

impl WeightFormat {
    /// Every format, by its command-line name.
    pub const NAMES: &'static [(&'static str, WeightFormat)] = &[
        ("f32", WeightFormat::F32),
        ("f16", WeightFormat::F16),
        ("bf16", WeightFormat::BF16),
        ("q8", WeightFormat::Quant(QuantScheme::Q8_0)),
        ("q8_0", WeightFormat::Quant(QuantScheme::Q8_0)),
        ("q4", WeightFormat::Quant(QuantScheme::Q4_0)),
        ("q4_0", WeightFormat::Quant(QuantScheme::Q4_0)),
        ("q4_1", WeightFormat::Quant(QuantScheme::Q4_1)),
    ];

    /// The format called `name` (`f32`, `f16`, `bf16`, `q8`, `q4`, or a scheme's own name).
    pub fn parse(name: &str) -> Option<Self> {
        Self::NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, f)| *f)
    }

    /// Its name: `f32`, `f16`, `bf16` or the scheme's.
    pub fn name(self) -> &'static str {
        match self {
            WeightFormat::F32 => "f32",
            WeightFormat::F16 => "f16",
            WeightFormat::BF16 => "bf16",
            WeightFormat::Quant(s) => s.name(),
        }
    }

    /// Bytes per weight on the GPU.
    pub fn bytes_per_weight(self) -> f64 {
        match self {
            WeightFormat::F32 => 4.0,
            WeightFormat::F16 | WeightFormat::BF16 => 2.0,
            WeightFormat::Quant(s) => s.gpu_bytes(1 << 16) as f64 / 65536.0,
        }
    }

    /// Whether a matrix whose rows are `k` long can be stored in it (quantized rows are whole
    /// blocks of the format: 32 weights, 256 for the K-quants; 16-bit rows whole quads, as
    /// the products read them).
    pub fn fits_row(self, k: usize) -> bool {
        match self {
            WeightFormat::Quant(s) => k > 0 && k.is_multiple_of(s.row_multiple()),
            WeightFormat::F16 | WeightFormat::BF16 => k > 0 && k.is_multiple_of(4),
            WeightFormat::F32 => true,
        }
    }

    /// The dtype of its values on the GPU (F32 for the quantized formats' other tensors).
    pub fn dtype(self) -> DType {
        match self {
            WeightFormat::F16 => DType::F16,
            WeightFormat::BF16 => DType::BF16,
            _ => DType::F32,
        }
    }
}

/// A weight matrix `W` `[out, in]` of products `x·Wᵀ`, as it was uploaded.
#[derive(Clone, Debug)]
pub enum Weight {
    /// f32 or f16, whole or in row blocks.
    Dense(GpuTensor),
    /// Blocks of quantized weights.
    Quant(Box<QuantWeight>),
}

impl Weight {
    /// `[out, in]`.
    pub fn shape(&self) -> [usize; 2] {
        match self {
            Weight::Dense(t) => [t.shape()[0], t.shape().get(1).copied().unwrap_or(1)],
            Weight::Quant(q) => q.shape(),
        }
    }

    /// The name it was uploaded as.
    pub fn label(&self) -> &str {
        match self {
            Weight::Dense(t) => t.label(),
            Weight::Quant(q) => q.label(),
        }
    }

    /// Its format.
    pub fn format(&self) -> WeightFormat {
        match self {
            Weight::Dense(t) if t.dtype() == DType::F16 => WeightFormat::F16,
            Weight::Dense(t) if t.dtype() == DType::BF16 => WeightFormat::BF16,
            Weight::Dense(_) => WeightFormat::F32,
            Weight::Quant(q) => WeightFormat::Quant(q.scheme()),
        }
    }

    /// Bytes on the GPU.
    pub fn bytes(&self) -> u64 {
        match self {
            Weight::Dense(t) => (t.numel() * t.dtype().size()) as u64,
            Weight::Quant(q) => q.bytes(),
        }
    }

    /// Buffers it takes: 1, or its row blocks past the binding limit.
    pub fn bindings(&self) -> usize {
        match self {
            Weight::Dense(t) => t.row_blocks().len(),
            Weight::Quant(q) => q.bindings(),
        }
    }

    /// The rows of `parts` (one format, one width) stacked as one weight of their row blocks:
    /// a product with it takes one dispatch per part (or per block of a split part).
    pub fn stack_blocks(label: &str, parts: &[&Weight]) -> Result<Weight> {
        let dense: Option<Vec<&GpuTensor>> = parts.iter().map(|w| w.dense()).collect();
        if let Some(dense) = dense {
            let mut first = 0;
            let mut blocks = Vec::new();
            for block in dense.iter().flat_map(|w| w.row_blocks()).map(|(_, b)| b) {
                let rows = block.shape()[0];
                blocks.push(block.labelled(&format!("{label}[{first}..{}]", first + rows)));
                first += rows;
            }
            return Ok(Weight::Dense(GpuTensor::from_row_blocks(label, blocks)?));
        }
        let quant: Option<Vec<&QuantWeight>> = parts
            .iter()
            .map(|w| match w {
                Weight::Quant(q) => Some(&**q),
                Weight::Dense(_) => None,
            })
            .collect();
        match quant {
            Some(q) => Ok(Weight::Quant(Box::new(QuantWeight::stack_blocks(
                label, &q,
            )?))),
            None => Err(crate::error::shape_err(
                "stack weights",
                label,
                "parts of one format",
                parts
                    .iter()
                    .map(|w| w.format().name())
                    .collect::<Vec<_>>()
                    .join(", "),
            )),
        }
    }

    /// The dense tensor, when it is one.
    pub fn dense(&self) -> Option<&GpuTensor> {
        match self {
            Weight::Dense(t) => Some(t),
            Weight::Quant(_) => None,
        }
    }
}

/// `x·Wᵀ` for `x` `[.., in]` (rank 2 or 3) and `w` `[out, in]`: `[.., out]`.
pub fn linear(b: &mut Batch, x: &GpuTensor, w: &Weight) -> Result<GpuTensor> {
    match w {
        Weight::Dense(t) => matmul(b, x, t, true),
        Weight::Quant(q) if x.shape().len() == 3 => {
            let s = x.shape().to_vec();
            let y = matmul_quant(b, &x.reshape(&[s[0] * s[1], s[2]])?, q)?;
            y.reshape(&[s[0], s[1], q.shape()[0]])
        }
        Weight::Quant(q) => matmul_quant(b, x, q),
    }
}

/// The rows `ids` (`[tokens]` u32 on the GPU) of a table `[vocab, d]` kept as a weight (an
/// embedding tied to the LM head): `[tokens, d]` f32, the values the LM head multiplies by.
pub fn gather_rows(b: &mut Batch, table: &Weight, ids: &GpuTensor) -> Result<GpuTensor> {
    match table {
        Weight::Dense(t) => super::embedding_ids(b, t, ids),
        Weight::Quant(q) => super::quant_weight::embedding_quant(b, q, ids),
    }
}

/// `act(x·gateᵀ) · (x·upᵀ)` for one row `x` `[1, in]` in one dispatch, when the two weights
/// share a format and row blocks; `None` when they do not fit it (the caller then makes two
/// products and the elementwise op).
pub fn linear_glu(
    b: &mut Batch,
    x: &GpuTensor,
    gate: &Weight,
    up: &Weight,
    act: GateAct,
) -> Result<Option<GpuTensor>> {
    match (gate, up) {
        (Weight::Dense(g), Weight::Dense(u)) => matvec_glu(b, x, g, u, act),
        (Weight::Quant(g), Weight::Quant(u)) => matvec_glu_quant(b, x, g, u, act),
        _ => Ok(None),
    }
}
