//! Choosing the next token on the GPU from one row of logits (see `sample.wgsl`): only the
//! token id comes back to the host.

use super::{as_u32, expect_rank};
use crate::error::{shape_err, Result};
use crate::gpu::{Batch, DType, GpuContext, GpuTensor};
use crate::shaders;

/// Mirrors `SampleParams` in `sample.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct SampleParams {
    /// Vocabulary size (the logits row's length).
    pub vocab: u32,
    /// Keep the tokens scoring at least the k-th largest (0: off).
    pub top_k: u32,
    /// Keep tokens while the kept mass above them is below this (1: off).
    pub top_p: f32,
    /// 1 / temperature; 0 for greedy.
    pub inv_temperature: f32,
    /// Repetition penalty (1: off): multiplies the negative scores of seen tokens.
    pub penalty: f32,
    /// 1 / penalty: multiplies the other scores of seen tokens.
    pub inv_penalty: f32,
    /// The uniform draw in [0, 1).
    pub u: f32,
    /// Where in `SampleState::chosen` the id goes (set by [`sample`]).
    pub slot: u32,
}

/// The GPU state of a sampler: which tokens were seen, the processed scores, the chosen token.
pub struct SampleState {
    /// One bit per token already in the sequence `[ceil(vocab / 32)]` (u32).
    pub seen: GpuTensor,
    /// The scores after penalty and temperature `[vocab]`.
    pub scores: GpuTensor,
    /// The chosen token `[1]` (u32); the next forward pass can read it as its input id.
    pub token: GpuTensor,
    /// The ids chosen by one batch that decodes several tokens, in order `[CHOSEN_SLOTS]` (u32).
    pub chosen: GpuTensor,
}

/// The id the sampler reports when a processed score is NaN or infinite (`NON_FINITE` in
/// `sample.wgsl`); such a choice marks nothing seen.
pub const NON_FINITE_TOKEN: u32 = u32::MAX;

/// Tokens one batch can choose ([`SampleState::chosen`]'s length).
pub const CHOSEN_SLOTS: usize = 64;

impl SampleState {
    /// State for a vocabulary of `vocab` tokens, nothing seen yet.
    pub fn new(ctx: &GpuContext, vocab: usize) -> Result<Self> {
        Ok(SampleState {
            seen: GpuTensor::empty(ctx, "seen tokens", &[vocab.div_ceil(32)], DType::U32)?,
            scores: GpuTensor::zeros(ctx, "sampler scores", &[vocab])?,
            token: GpuTensor::empty(ctx, "sampled token", &[1], DType::U32)?,
            chosen: GpuTensor::empty(ctx, "chosen tokens", &[CHOSEN_SLOTS], DType::U32)?,
        })
    }

    /// Marks exactly `tokens` as seen (queued before the next submission); ids past the
    /// vocabulary are an error.
    pub fn set_seen(&self, ctx: &GpuContext, tokens: &[u32]) -> Result<()> {
        let vocab = self.scores.numel();
        let mut bits = vec![0u32; self.seen.numel()];
        for &t in tokens {
            if t as usize >= vocab {
                return Err(crate::error::Error::OutOfRange {
                    what: "seen token id".into(),
                    found: t as u64,
                    bound: vocab as u64,
                });
            }
            bits[t as usize / 32] |= 1 << (t % 32);
        }
        self.seen.write_u32(ctx, &bits)
    }
}

/// Records the choice of the next token from `logits` (`[vocab]` or `[1, vocab]`) into
/// `state.token` and `state.chosen[slot]`, marking it seen.
pub fn sample(
    batch: &mut Batch,
    logits: &GpuTensor,
    state: &SampleState,
    slot: usize,
    mut params: SampleParams,
) -> Result<()> {
    expect_rank("sample", "logits", logits, 1..=2)?;
    let vocab = state.scores.numel();
    if logits.numel() != vocab || params.vocab as usize != vocab {
        return Err(shape_err(
            "sample",
            format!("logits '{}'", logits.label()),
            format!("one row of {vocab}"),
            format!("{:?} (params say {})", logits.shape(), params.vocab),
        ));
    }
    as_u32("sample", "vocab", vocab)?;
    if slot >= state.chosen.numel() {
        return Err(crate::error::Error::OutOfRange {
            what: "sampler slot".into(),
            found: slot as u64,
            bound: state.chosen.numel() as u64,
        });
    }
    params.slot = slot as u32;
    let row = logits.reshape(&[vocab])?;
    batch.dispatch(
        &shaders::SAMPLE_TOKEN,
        &[],
        Some(bytemuck::bytes_of(&params)),
        &[
            &row,
            &state.seen,
            &state.scores,
            &state.token,
            &state.chosen,
        ],
        [1, 1, 1],
    )
}
