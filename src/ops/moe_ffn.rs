//! The routed experts of a mixture-of-experts feed-forward (see `moe_ffn.wgsl`): each token's
//! chosen experts are read by index on the GPU, so decode needs no readback of the routing, and
//! the tokens are grouped by expert on the GPU, so prefill reads each expert's rows once per
//! pass of up to 4 tokens rather than once per token.

use super::{as_u32, expect_shape, GateAct};
use crate::error::{shape_err, Result};
use crate::gpu::batch::grid;
use crate::gpu::{Batch, DType, GpuTensor, Kernel};
use crate::ops::{QuantScheme, QUANT_BLOCK};
use crate::shaders;

/// Mirrors `MoeParams` in `moe_ffn.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct MoeParams {
    /// Tokens.
    pub tokens: u32,
    /// Experts per token.
    pub top_k: u32,
    /// Model width.
    pub d: u32,
    /// Expert width (`moe_intermediate_size`).
    pub inter: u32,
    /// Experts stacked in the matrices.
    pub experts: u32,
    /// The first expert of the bound block of the matrices.
    pub first_expert: u32,
    /// Experts in the bound block.
    pub block_experts: u32,
    /// Padding.
    pub _pad: u32,
}

/// One stacked expert matrix `[experts, rows, k]`: f32 values, or quantized chunks in any
/// format (records `[experts, rows, k/32/group_chunks · group_words]` u32, rows in order, the records of
/// `ops::quant`), whole or split into blocks of whole experts.
#[derive(Clone, Debug)]
pub enum ExpertStack {
    /// f32, f16 or bf16 values (16-bit stacks need rows of whole quads: d and inter % 4 == 0).
    Dense(GpuTensor),
    /// Quantized chunks.
    Quant {
        /// The format.
        scheme: QuantScheme,
        /// `[experts, rows, k/32/group_chunks · group_words]` u32.
        records: GpuTensor,
    },
}

impl ExpertStack {
    /// The records of `q` (chunks in row order), as a quantized stack holds them.
    pub fn records_of(q: &crate::ops::QuantHost) -> Vec<u32> {
        let groups = q.chunks() / q.scheme.group_chunks();
        let mut out = Vec::with_capacity(groups * q.scheme.group_words());
        for g in 0..groups {
            q.group(g, &mut out);
        }
        out
    }

    /// `[experts, rows, k]`.
    pub fn shape(&self) -> Vec<usize> {
        match self {
            ExpertStack::Dense(t) => t.shape().to_vec(),
            ExpertStack::Quant { scheme, records } => {
                let s = records.shape();
                vec![
                    s[0],
                    s[1],
                    s[2] / scheme.group_words() * scheme.group_chunks() * QUANT_BLOCK,
                ]
            }
        }
    }

    /// Bytes on the GPU.
    pub fn bytes(&self) -> u64 {
        match self {
            ExpertStack::Dense(t) => t.bytes(),
            ExpertStack::Quant { records, .. } => records.bytes(),
        }
    }

    /// The dtype of its values (U32 for a quantized stack's records).
    fn dtype(&self) -> DType {
        match self {
            ExpertStack::Dense(t) => t.dtype(),
            ExpertStack::Quant { .. } => DType::U32,
        }
    }

    /// Which of a product's kernels reads this stack, its rows `k` long: `[quantized, one
    /// token; quantized; 16-bit; f32 vec4 (k % 4 == 0); f32]`.
    fn kernel(&self, k: usize, one_token: bool, kinds: [&'static Kernel; 5]) -> &'static Kernel {
        let [q_one, q, half, v4, scalar] = kinds;
        match (self.scheme(), self.dtype().is_16_bit()) {
            (Some(_), _) if one_token => q_one,
            (Some(_), _) => q,
            (None, true) => half,
            (None, false) if k.is_multiple_of(4) => v4,
            (None, false) => scalar,
        }
    }

    /// The scheme of a quantized stack.
    fn scheme(&self) -> Option<QuantScheme> {
        match self {
            ExpertStack::Dense(_) => None,
            ExpertStack::Quant { scheme, .. } => Some(*scheme),
        }
    }

    /// `(first expert, experts, values or records)` per block.
    fn blocks(&self) -> Vec<(usize, usize, GpuTensor)> {
        let t = match self {
            ExpertStack::Dense(t) => t,
            ExpertStack::Quant { records, .. } => records,
        };
        t.row_blocks()
            .into_iter()
            .map(|(first, b)| (first, b.shape()[0], b))
            .collect()
    }
}

/// The stacked weights of every routed expert, each matrix whole or split into the same blocks
/// of whole experts; gate and up in one format.
pub struct Experts<'a> {
    /// Gate projections `[experts, inter, d]`.
    pub gate: &'a ExpertStack,
    /// Up projections `[experts, inter, d]`.
    pub up: &'a ExpertStack,
    /// Down projections `[experts, d, inter]`.
    pub down: &'a ExpertStack,
    /// The gate's activation.
    pub act: GateAct,
}

/// `y[t] = Σ_j weights[t, j] · down_e(act(gate_e·x[t]) ⊙ up_e·x[t])` with `e = ids[t, j]`, for
/// `x` `[tokens, d]`, `ids` `[tokens, top_k]` u32 and `weights` `[tokens, top_k]` (the
/// router's output): `[tokens, d]`.
pub fn moe_ffn(
    batch: &mut Batch,
    x: &GpuTensor,
    (ids, weights): (&GpuTensor, &GpuTensor),
    experts: &Experts,
) -> Result<GpuTensor> {
    const OP: &str = "moe_ffn";
    super::expect_rank(OP, "x", x, 2..=2)?;
    let (tokens, d) = (x.shape()[0], x.shape()[1]);
    let shape = experts.gate.shape();
    if shape.len() != 3 || shape[2] != d {
        return Err(shape_err(
            OP,
            "gate",
            format!("[experts, inter, {d}]"),
            format!("{shape:?}"),
        ));
    }
    let (n_experts, inter) = (shape[0], shape[1]);
    if n_experts == 0 || inter == 0 {
        return Err(shape_err(
            OP,
            "gate",
            "at least one expert of width 1",
            format!("{shape:?}"),
        ));
    }
    for (what, stack, want) in [
        ("up", experts.up, [n_experts, inter, d]),
        ("down", experts.down, [n_experts, d, inter]),
    ] {
        if stack.shape() != want {
            return Err(shape_err(
                OP,
                what,
                format!("{want:?}"),
                format!("{:?}", stack.shape()),
            ));
        }
    }
    if experts.gate.scheme() != experts.up.scheme() || experts.gate.dtype() != experts.up.dtype() {
        return Err(shape_err(OP, "gate and up", "one format", "two"));
    }
    for (what, stack, k) in [
        ("gate", experts.gate, d),
        ("up", experts.up, d),
        ("down", experts.down, inter),
    ] {
        if stack.dtype().is_16_bit() && !k.is_multiple_of(4) {
            return Err(shape_err(
                OP,
                format!("16-bit {what} stack's rows"),
                "a multiple of 4 long",
                k,
            ));
        }
    }
    let top_k = ids.shape().last().copied().unwrap_or(0);
    if ids.dtype() != DType::U32 || ids.shape() != [tokens, top_k] || top_k == 0 {
        return Err(shape_err(
            OP,
            format!("ids '{}'", ids.label()),
            format!("[{tokens}, top_k] u32"),
            format!("{:?} {:?}", ids.shape(), ids.dtype()),
        ));
    }
    expect_shape(OP, "weights", weights, &[tokens, top_k])?;
    let blocks = expert_blocks(experts)?;
    let ctx = batch.ctx();
    let mut params = MoeParams {
        tokens: as_u32(OP, "tokens", tokens)?,
        top_k: as_u32(OP, "top_k", top_k)?,
        d: as_u32(OP, "d", d)?,
        inter: as_u32(OP, "inter", inter)?,
        experts: as_u32(OP, "experts", n_experts)?,
        first_expert: 0,
        block_experts: as_u32(OP, "experts", n_experts)?,
        _pad: 0,
    };
    if n_experts > MAX_EXPERTS {
        return Err(shape_err(
            OP,
            "experts",
            format!("at most {MAX_EXPERTS}"),
            n_experts,
        ));
    }
    let slots = tokens * top_k;
    let plan = GpuTensor::scratch(ctx, "expert plan", &[1 + 3 * n_experts + slots], DType::U32)?;
    batch.dispatch(
        &shaders::MOE_SORT,
        &[],
        Some(bytemuck::bytes_of(&params)),
        &[ids, &plan],
        [1, 1, 1],
    )?;
    let one_token = tokens == 1;
    let groups_y = as_u32(OP, "experts in use", n_experts.min(slots))?;
    let h = GpuTensor::scratch(ctx, "expert hidden", &[slots, inter], DType::F32)?;
    let yk = GpuTensor::scratch(ctx, "expert outputs", &[slots, d], DType::F32)?;
    // Quantized kernels for quantized stacks; else vec4 loads where the rows are whole vec4s.
    // One token: the quantized kernels take four rows per invocation.
    let rows = |n: usize, quantized: bool| match one_token && quantized {
        true => n.div_ceil(64 * EXPERT_ROWS),
        false => n.div_ceil(64),
    };
    let gate_up = experts.gate.kernel(
        d,
        one_token,
        [
            &shaders::MOE_GATE_UP_Q_ONE,
            &shaders::MOE_GATE_UP_Q,
            &shaders::MOE_GATE_UP_HALF_V4,
            &shaders::MOE_GATE_UP_V4,
            &shaders::MOE_GATE_UP,
        ],
    );
    let down_kernel = experts.down.kernel(
        inter,
        one_token,
        [
            &shaders::MOE_DOWN_Q_ONE,
            &shaders::MOE_DOWN_Q,
            &shaders::MOE_DOWN_HALF_V4,
            &shaders::MOE_DOWN_V4,
            &shaders::MOE_DOWN,
        ],
    );
    for (first, count, gate, up, _) in &blocks {
        params.first_expert = as_u32(OP, "first expert", *first)?;
        params.block_experts = as_u32(OP, "experts", *count)?;
        let wg = [
            as_u32(OP, "inter", rows(inter, experts.gate.scheme().is_some()))?,
            groups_y,
            1,
        ];
        let params = Some(bytemuck::bytes_of(&params));
        let constants = pass_constants(experts.act, one_token, experts.gate);
        batch.dispatch(gate_up, constants, params, &[x, &plan, gate, up, &h], wg)?;
    }
    for (first, count, _, _, down) in &blocks {
        params.first_expert = as_u32(OP, "first expert", *first)?;
        params.block_experts = as_u32(OP, "experts", *count)?;
        let wg = [
            as_u32(OP, "d", rows(d, experts.down.scheme().is_some()))?,
            groups_y,
            1,
        ];
        let params = Some(bytemuck::bytes_of(&params));
        let constants = pass_constants(experts.act, one_token, experts.down);
        batch.dispatch(down_kernel, constants, params, &[&h, &plan, down, &yk], wg)?;
    }
    let y = GpuTensor::scratch(ctx, "experts", &[tokens, d], DType::F32)?;
    let wg = grid(ctx, OP, ((tokens * d) as u64).div_ceil(64))?;
    batch.dispatch(
        &shaders::MOE_COMBINE,
        &[],
        Some(bytemuck::bytes_of(&params)),
        &[&yk, weights, &y],
        wg,
    )?;
    Ok(y)
}

/// The kernels' constants: the activation, and one token per pass where there is one token
/// (decode: each expert in use has exactly one), so no work goes to padding; else the shader's
/// 4 (measured on lavapipe with the DeepSeek-V2-Lite slice, prompt 32: prefill 10.3 tok/s with
/// 8 tokens per pass, 12.2 with 4, 12.0 with 2); a 16-bit stack's type; a quantized stack's
/// format.
fn pass_constants(
    act: GateAct,
    one_token: bool,
    stack: &ExpertStack,
) -> crate::gpu::pipeline::Constants {
    let mut own = vec![("ACT", super::quant_weight::act_id(act))];
    if one_token {
        own.push(("TOKENS_PER_PASS", 1.0));
    }
    if stack.dtype().is_16_bit() {
        own.push(("BF16", (stack.dtype() == DType::BF16) as u32 as f64));
    }
    match stack.scheme() {
        Some(s) => super::quant_weight::format_constants(s, &own),
        None => crate::gpu::pipeline::intern(&own),
    }
}

/// Rows per invocation of the one-token quantized experts kernels (`EXPERT_ROWS`).
const EXPERT_ROWS: usize = 4;

/// The experts kernels sort at most this many experts (one workgroup invocation each).
pub const MAX_EXPERTS: usize = 256;

/// `(first expert, experts, gate, up, down)` per block of the stacked matrices, which must be
/// split alike.
type ExpertBlock = (usize, usize, GpuTensor, GpuTensor, GpuTensor);

fn expert_blocks(experts: &Experts) -> Result<Vec<ExpertBlock>> {
    let (g, u, d) = (
        experts.gate.blocks(),
        experts.up.blocks(),
        experts.down.blocks(),
    );
    let alike = g.len() == u.len()
        && g.len() == d.len()
        && g.iter()
            .zip(&u)
            .zip(&d)
            .all(|(((a, x, _), (b, y, _)), (c, z, _))| a == b && b == c && x == y && y == z);
    if !alike {
        return Err(shape_err(
            "moe_ffn",
            "expert blocks",
            "gate, up and down split into the same blocks of experts",
            format!("{} / {} / {} blocks", g.len(), u.len(), d.len()),
        ));
    }
    Ok(g.into_iter()
        .zip(u)
        .zip(d)
        .map(|(((first, n, gv), (_, _, uv)), (_, _, dv))| (first, n, gv, uv, dv))
        .collect())
}
