//! Kernel launchers: each checks shapes, picks the cached pipeline, fills its params and dispatches
//! into a [`Batch`](crate::gpu::Batch). Every `#[repr(C)]` params struct mirrors a WGSL struct of
//! the same name (a test checks their sizes agree).

pub mod attention;
pub mod cast;
pub mod elementwise;
pub mod embedding;
pub mod kv_format;
pub mod latent;
pub mod linear;
pub mod matmul;
pub mod mla_rope;
pub mod moe_ffn;
pub mod moe_route;
pub mod norm;
pub mod pages;
pub mod permute;
pub mod qkv;
pub mod quant;
pub mod quant_weight;
pub mod rope;
pub mod sample;
pub mod softmax;

pub use attention::{
    attention, attention_into, attention_into_paged, attention_paged, attention_views,
    AttentionParams, AttentionShape, AttentionViews, View,
};
pub use cast::{to_f16, to_f32, CastParams};
pub use elementwise::{add_bias, binary, scale_rows, unary, BinaryOp, EwParams, UnaryOp};
pub use embedding::{embedding, embedding_ids, upload_ids, EmbeddingParams};
pub use kv_format::KvFormat;
pub use latent::{gather_update, GatherParams, GatherState};
pub use linear::{gather_rows, linear, linear_glu, Weight, WeightFormat};
pub use matmul::{matmul, matmul_into, matvec_glu, matvec_with, GateAct, MatmulParams, MatvecPath};
pub use mla_rope::{mla_rope, MlaRopeParams};
pub use moe_ffn::{moe_ffn, ExpertStack, Experts, MoeParams};
pub use moe_route::{moe_route, RouteMethod, RouteParams, Routing};
pub use norm::{add_norm, layernorm, rmsnorm, NormParams};
pub use pages::{cache_rows_f32, Pages};
pub use permute::{permute01, PermuteParams};
pub use qkv::{qkv_rope, QkvExtras, QkvParams};
pub use quant::{dequantize, quantize, QuantHost, QuantScheme, QUANT_BLOCK};
pub use quant_weight::{embedding_quant, matmul_quant, matvec_glu_quant, QuantWeight};
pub use rope::{rope_inplace, rope_inplace_at, RopeMode, RopeParams, RopeTable};
pub use sample::{sample, SampleParams, SampleState, CHOSEN_SLOTS, NON_FINITE_TOKEN};
pub use softmax::{softmax, softmax_scaled, SoftmaxParams};

use crate::error::{shape_err, Result};
use crate::gpu::GpuTensor;

/// What the dimensions of a dispatch over one row's outputs count (for [`workgroups`]).
pub(crate) const COLUMNS: [&str; 3] = ["columns", "rows", "batch"];

/// The workgroups `[x, y, z]` of a dispatch of `op`, whose dimensions count `what` (e.g.
/// columns, rows, batch), each checked against the adapter's limit per dimension.
pub(crate) fn workgroups(
    ctx: &crate::gpu::GpuContext,
    op: &'static str,
    what: [&'static str; 3],
    counts: [u64; 3],
) -> Result<[u32; 3]> {
    let limit = ctx.limits.max_compute_workgroups_per_dimension as u64;
    for (what, found) in what.into_iter().zip(counts) {
        if found > limit {
            return Err(crate::error::Error::DispatchTooLarge {
                op,
                what,
                found,
                limit,
            });
        }
    }
    Ok(counts.map(|c| c as u32))
}

/// Checks that `t` has exactly `shape`.
pub(crate) fn expect_shape(
    op: &'static str,
    what: &str,
    t: &GpuTensor,
    shape: &[usize],
) -> Result<()> {
    if t.shape() != shape {
        return Err(shape_err(
            op,
            format!("{what} '{}'", t.label()),
            format!("{shape:?}"),
            format!("{:?}", t.shape()),
        ));
    }
    Ok(())
}

/// Checks that `t` is f32, no dimension of it is zero and its rank is in `ranks`.
pub(crate) fn expect_rank(
    op: &'static str,
    what: &str,
    t: &GpuTensor,
    ranks: std::ops::RangeInclusive<usize>,
) -> Result<()> {
    expect_rank_any_dtype(op, what, t, ranks)?;
    if t.dtype() != crate::gpu::DType::F32 {
        return Err(shape_err(
            op,
            format!("{what} '{}' dtype", t.label()),
            "F32",
            format!("{:?}", t.dtype()),
        ));
    }
    Ok(())
}

/// As [`expect_rank`] without the dtype check.
pub(crate) fn expect_rank_any_dtype(
    op: &'static str,
    what: &str,
    t: &GpuTensor,
    ranks: std::ops::RangeInclusive<usize>,
) -> Result<()> {
    if !ranks.contains(&t.shape().len()) || t.shape().contains(&0) {
        return Err(shape_err(
            op,
            format!("{what} '{}'", t.label()),
            format!(
                "rank {}..={} with no zero dimension",
                ranks.start(),
                ranks.end()
            ),
            format!("{:?}", t.shape()),
        ));
    }
    Ok(())
}

/// Converts a size to the u32 the shaders index with, or a shape error.
pub(crate) fn as_u32(op: &'static str, what: &str, v: usize) -> Result<u32> {
    u32::try_from(v).map_err(|_| shape_err(op, what, "a value below 2^32", v))
}

/// The workgroup size of the kernels that give a row to a workgroup (softmax, norms): 32 on CPU
/// rasterisers, where each barrier of the row's reductions costs a pass over the invocations
/// (a third of the softmax time of 128 on lavapipe), 128 on GPUs.
pub(crate) fn row_workgroup(ctx: &crate::gpu::GpuContext) -> crate::gpu::pipeline::Constants {
    const CPU: &[(&str, f64)] = &[("WG", 32.0)];
    const GPU: &[(&str, f64)] = &[("WG", 128.0)];
    if ctx.is_cpu() {
        CPU
    } else {
        GPU
    }
}
