//! The feed-forward of a block: dense, or a mixture of experts (DeepSeek-V2/V3) as
//! transformers' `DeepseekV2Moe`/`DeepseekV3MoE` computes it: the router's logits in f32, the
//! routed experts chosen and weighed on the GPU, and the shared experts added.

use crate::error::Result;
use crate::gpu::split::{block_limit, rows_per_block};
use crate::gpu::{Batch, DType, GpuContext, GpuTensor};
use crate::model::config::{FfnKind, ModelConfig, MoeConfig};
use crate::model::formats::weights::HostMatrix;
use crate::model::formats::weights::WeightFile;
use crate::model::layers::ffn::Ffn;
use crate::model::layers::upload::{load, load_rows};
use crate::ops::{
    self, BinaryOp, ExpertStack, Experts, GateAct, Routing, WeightFormat, QUANT_BLOCK,
};

/// A block's feed-forward.
pub enum FeedForward {
    /// One network for every token.
    Dense(Box<Ffn>),
    /// Routed experts chosen per token, plus shared experts.
    Moe(Box<MoeFfn>),
}

impl FeedForward {
    /// `x` `[n, d]` -> `[n, d]`.
    pub fn forward(&self, b: &mut Batch, x: &GpuTensor) -> Result<GpuTensor> {
        match self {
            FeedForward::Dense(ffn) => ffn.forward(b, x),
            FeedForward::Moe(moe) => moe.forward(b, x),
        }
    }
}

/// A mixture-of-experts feed-forward.
pub struct MoeFfn {
    /// The router `[experts, d]` (f32: transformers routes in f32).
    router: GpuTensor,
    /// DeepSeek-V3's correction bias `[experts]` (zeros for V2, which has none).
    bias: GpuTensor,
    /// Every routed expert's gate and up projections `[experts, hidden, d]`, and down
    /// projection `[experts, d, hidden]`, stacked (in blocks of whole experts past the block
    /// limit), f32 or quantized.
    gate: ExpertStack,
    up: ExpertStack,
    down: ExpertStack,
    /// The shared experts as one gated feed-forward of their total width, if any.
    shared: Option<Ffn>,
    routing: Routing,
    act: GateAct,
    /// Read the chosen experts back to the CPU before computing them, as an engine that
    /// dispatches experts from the host must (the benchmark's comparison; native only).
    pub(crate) read_back_ids: bool,
}

impl FeedForward {
    /// Bytes of weights one decoded token reads: all of a dense network; a mixture's router,
    /// shared experts and `top_k` of its routed experts.
    pub fn decode_weight_bytes(&self) -> u64 {
        match self {
            FeedForward::Dense(f) => f.weight_bytes(),
            FeedForward::Moe(m) => {
                let experts = m.gate.shape()[0].max(1) as u64;
                let stacks = m.gate.bytes() + m.up.bytes() + m.down.bytes();
                m.router.bytes()
                    + stacks / experts * m.routing.top_k as u64
                    + m.shared.as_ref().map_or(0, Ffn::weight_bytes)
            }
        }
    }
}

impl MoeFfn {
    /// Loads `{prefix}.gate.weight` (and `.e_score_correction_bias`), the routed experts
    /// `{prefix}.experts.{j}.{gate,up,down}_proj.weight` stacked, and the shared experts
    /// `{prefix}.shared_experts.*`.
    pub fn load(
        ctx: &GpuContext,
        file: &mut WeightFile,
        cfg: &ModelConfig,
        moe: &MoeConfig,
        prefix: &str,
    ) -> Result<Self> {
        let (d, e, h) = (cfg.d_model, moe.experts, moe.expert_hidden);
        let routing = moe.routing()?;
        let router = load_rows(ctx, file, &format!("{prefix}.gate.weight"), &[e, d])?;
        let bias_name = format!("{prefix}.gate.e_score_correction_bias");
        let bias = match file.contains(&bias_name) {
            true => load(ctx, file, &bias_name, &[e])?,
            false => GpuTensor::zeros(ctx, "no correction bias", &[e])?,
        };
        // Stacked in blocks of whole experts that fit the block limit, read expert by expert
        // (the host holds one block at a time).
        let limit = block_limit(ctx, file.block_bytes);
        let label = |what: &str| format!("{prefix}.experts.{what}");
        let per_block = rows_per_block(&label("gate_proj"), &[e, h, d], DType::F32, limit)?;
        // Quantized formats quantize the experts too (each matrix whose rows are whole blocks).
        let asked = (file.weights, file.values_format());
        let (mut gates, mut ups, mut downs) = (Vec::new(), Vec::new(), Vec::new());
        for first in (0..e).step_by(per_block) {
            let n = per_block.min(e - first);
            let (mut gate, mut up, mut down) = (Vec::new(), Vec::new(), Vec::new());
            for j in first..first + n {
                let name = |m: &str| format!("{prefix}.experts.{j}.{m}.weight");
                gate.push(file.take_matrix(&name("gate_proj"), &[h, d])?);
                up.push(file.take_matrix(&name("up_proj"), &[h, d])?);
                down.push(file.take_matrix(&name("down_proj"), &[d, h])?);
            }
            let block = |what: &str, shape: [usize; 3], parts: Vec<HostMatrix>| {
                let name = format!("{}[{first}..{}]", label(what), first + n);
                upload_block(ctx, &name, shape, HostMatrix::concat(parts), asked)
            };
            gates.push(block("gate_proj", [n, h, d], gate)?);
            ups.push(block("up_proj", [n, h, d], up)?);
            downs.push(block("down_proj", [n, d, h], down)?);
        }
        let shared = match moe.shared_experts {
            0 => None,
            n => Some(Ffn::load_gated(
                ctx,
                file,
                cfg,
                &format!("{prefix}.shared_experts"),
                h * n,
            )?),
        };
        Ok(MoeFfn {
            router,
            bias,
            gate: join_blocks(&label("gate_proj"), gates)?,
            up: join_blocks(&label("up_proj"), ups)?,
            down: join_blocks(&label("down_proj"), downs)?,
            shared,
            routing,
            act: match cfg.ffn_kind {
                FfnKind::Geglu => GateAct::Gelu,
                FfnKind::GegluTanh => GateAct::GeluTanh,
                _ => GateAct::Silu,
            },
            read_back_ids: false,
        })
    }

    /// `x` `[n, d]` -> the routed experts' weighted sum plus the shared experts, `[n, d]`.
    pub fn forward(&self, b: &mut Batch, x: &GpuTensor) -> Result<GpuTensor> {
        let logits = ops::matmul(b, x, &self.router, true)?;
        let (ids, weights) = ops::moe_route(b, &logits, &self.bias, &self.routing)?;
        #[cfg(not(target_arch = "wasm32"))]
        if self.read_back_ids {
            // The round trip a host-dispatched engine makes here; the kernels are the same.
            b.read_u32_midway(&ids)?;
        }
        let experts = Experts {
            gate: &self.gate,
            up: &self.up,
            down: &self.down,
            act: self.act,
        };
        let routed = ops::moe_ffn(b, x, (&ids, &weights), &experts)?;
        match &self.shared {
            Some(shared) => {
                let s = shared.forward(b, x)?;
                ops::binary(b, BinaryOp::Add, &routed, &s)
            }
            None => Ok(routed),
        }
    }
}

/// One block of stacked expert matrices `shape` `[experts, rows, k]` in the format `asked`
/// (`None`: as the files hold them, float values in `values`): quantized blocks as the file
/// holds them when no format is asked or theirs is (a GGUF file's experts stay in their own
/// format, K-quants included); else values, quantized when a quantized format is asked and its
/// rows are whole blocks of 32, in f16 or bf16 when that is asked (or the files' own) and its
/// rows are whole quads, else f32.
fn upload_block(
    ctx: &GpuContext,
    name: &str,
    shape: [usize; 3],
    data: HostMatrix,
    (asked, values): (Option<WeightFormat>, WeightFormat),
) -> Result<ExpertStack> {
    let [n, rows, k] = shape;
    let scheme = match asked {
        Some(WeightFormat::Quant(s)) => Some(s),
        _ => None,
    };
    let q = match data {
        HostMatrix::Quant(q) if asked.is_none() || scheme == Some(q.scheme) => q,
        data => match scheme.filter(|_| k.is_multiple_of(QUANT_BLOCK)) {
            Some(scheme) => ops::quantize(scheme, &data.into_f32(), k)?,
            None => {
                let dense = asked.unwrap_or(values);
                let data = data.into_f32();
                let stack = match dense {
                    WeightFormat::F16 | WeightFormat::BF16 if dense.fits_row(k) => {
                        GpuTensor::from_f32_as_half(ctx, name, &shape, dense.dtype(), &data)?
                    }
                    _ => GpuTensor::from_f32(ctx, name, &shape, &data)?,
                };
                return Ok(ExpertStack::Dense(stack));
            }
        },
    };
    let words = q.scheme.records_shape(rows, k)[1];
    let records = ExpertStack::records_of(&q);
    Ok(ExpertStack::Quant {
        scheme: q.scheme,
        records: GpuTensor::from_u32(ctx, name, &[n, rows, words], &records)?,
    })
}

/// The blocks of one stacked matrix as one stack.
fn join_blocks(label: &str, blocks: Vec<ExpertStack>) -> Result<ExpertStack> {
    let mut values = Vec::new();
    let (mut records, mut scheme) = (Vec::new(), None);
    for block in blocks {
        match block {
            ExpertStack::Dense(t) => values.push(t),
            ExpertStack::Quant {
                scheme: s,
                records: r,
            } => {
                scheme = Some(s);
                records.push(r);
            }
        }
    }
    Ok(match scheme {
        Some(scheme) if values.is_empty() => ExpertStack::Quant {
            scheme,
            records: GpuTensor::from_row_blocks(label, records)?,
        },
        _ => ExpertStack::Dense(GpuTensor::from_row_blocks(label, values)?),
    })
}
