//! Mixture-of-experts routing on the GPU (see `moe_route.wgsl`): from the router's logits to
//! each token's chosen experts and their weights, with nothing read back.

use super::{as_u32, expect_rank, expect_shape};
use crate::error::{Error, Result};
use crate::gpu::batch::grid;
use crate::gpu::{Batch, DType, GpuTensor};
use crate::shaders;

/// Most experts a router may choose from (`MAX_EXPERTS` in `moe_route.wgsl`; DeepSeek-V3 has
/// 256).
pub const MAX_EXPERTS: usize = 256;

/// How the router turns logits into a choice (transformers' DeepSeek routers). Among equal
/// values the lower index is chosen first; `torch.topk` leaves that to its selection algorithm
/// (on the CPU a quickselect's), so on exact ties transformers may choose other experts of the
/// same weight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteMethod {
    /// DeepSeek-V2 `greedy`: softmax scores, their top k.
    Greedy,
    /// DeepSeek-V2 `group_limited_greedy`: softmax scores, only in the `topk_group` groups of
    /// the highest single score.
    GroupLimitedGreedy,
    /// DeepSeek-V3 `noaux_tc`: sigmoid scores plus a correction bias for the choice, only in
    /// the `topk_group` groups of the highest sum of their two best; weighted by the scores.
    NoauxTc,
}

/// A router's settings.
#[derive(Clone, Copy, Debug)]
pub struct Routing {
    /// The method.
    pub method: RouteMethod,
    /// Experts chosen per token (`num_experts_per_tok`).
    pub top_k: usize,
    /// Expert groups (`n_group`; 1 for none).
    pub groups: usize,
    /// Groups kept per token (`topk_group`).
    pub topk_group: usize,
    /// Divide the chosen weights by their sum (`norm_topk_prob`; transformers 5's DeepSeek-V2
    /// router does not, whatever its config says).
    pub norm_topk_prob: bool,
    /// Multiplies every weight (`routed_scaling_factor`).
    pub scaling: f32,
}

/// Mirrors `RouteParams` in `moe_route.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct RouteParams {
    /// Tokens.
    pub tokens: u32,
    /// Experts.
    pub experts: u32,
    /// Experts chosen per token.
    pub top_k: u32,
    /// Expert groups.
    pub groups: u32,
    /// Groups kept.
    pub topk_group: u32,
    /// 0 greedy, 1 group-limited greedy, 2 noaux_tc.
    pub method: u32,
    /// 1: divide the weights by their sum.
    pub norm: u32,
    /// Multiplies every weight.
    pub scaling: f32,
}

impl Routing {
    /// Checks the settings against `experts`; the error names the first bad one.
    pub fn validate(&self, experts: usize) -> Result<()> {
        let bad = |what: &str, expected: String, found: String| {
            Err(Error::Invalid {
                what: format!("routing {what}"),
                expected,
                found,
            })
        };
        if experts == 0 || experts > MAX_EXPERTS {
            return bad(
                "experts",
                format!("1 to {MAX_EXPERTS}"),
                experts.to_string(),
            );
        }
        if self.top_k == 0 || self.top_k > experts {
            return bad(
                "top_k",
                format!("1 to {experts} (the experts)"),
                self.top_k.to_string(),
            );
        }
        let grouped = self.method != RouteMethod::Greedy && self.groups > 1;
        if self.groups == 0 || (grouped && !experts.is_multiple_of(self.groups)) {
            let expected = format!("a positive divisor of the {experts} experts");
            return bad("n_group", expected, self.groups.to_string());
        }
        if grouped && (self.topk_group == 0 || self.topk_group > self.groups) {
            let expected = format!("1 to {} (n_group)", self.groups);
            return bad("topk_group", expected, self.topk_group.to_string());
        }
        if self.method == RouteMethod::NoauxTc && grouped && experts / self.groups < 2 {
            let expected = "at least 2 experts per group (a group scores its best two)".into();
            return bad("n_group", expected, self.groups.to_string());
        }
        if !self.scaling.is_finite() {
            return bad(
                "routed_scaling_factor",
                "a finite number".into(),
                self.scaling.to_string(),
            );
        }
        Ok(())
    }
}

/// The experts each token of `logits` `[tokens, experts]` is routed to, best first, and their
/// weights: `([tokens, top_k]` u32, `[tokens, top_k]` f32). `bias` `[experts]` is the
/// correction added to the scores for the choice (noaux_tc; ignored by the other methods).
pub fn moe_route(
    batch: &mut Batch,
    logits: &GpuTensor,
    bias: &GpuTensor,
    how: &Routing,
) -> Result<(GpuTensor, GpuTensor)> {
    const OP: &str = "moe_route";
    expect_rank(OP, "logits", logits, 2..=2)?;
    let (tokens, experts) = (logits.shape()[0], logits.shape()[1]);
    expect_shape(OP, "bias", bias, &[experts])?;
    how.validate(experts)?;
    let ctx = batch.ctx();
    let ids = GpuTensor::scratch(ctx, "expert ids", &[tokens, how.top_k], DType::U32)?;
    let weights = GpuTensor::scratch(ctx, "expert weights", &[tokens, how.top_k], DType::F32)?;
    let grouped = how.method != RouteMethod::Greedy && how.groups > 1;
    let params = RouteParams {
        tokens: as_u32(OP, "tokens", tokens)?,
        experts: experts as u32,
        top_k: how.top_k as u32,
        groups: if grouped { how.groups as u32 } else { 1 },
        topk_group: how.topk_group as u32,
        method: match how.method {
            RouteMethod::Greedy => 0,
            RouteMethod::GroupLimitedGreedy => 1,
            RouteMethod::NoauxTc => 2,
        },
        norm: how.norm_topk_prob as u32,
        scaling: how.scaling,
    };
    let wg = grid(ctx, OP, (tokens as u64).div_ceil(64))?;
    batch.dispatch(
        &shaders::MOE_ROUTE,
        &[],
        Some(bytemuck::bytes_of(&params)),
        &[logits, bias, &ids, &weights],
        wg,
    )?;
    Ok((ids, weights))
}
