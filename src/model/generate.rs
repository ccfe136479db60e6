//! Text generation: prefill the prompt, then decode token by token, streaming as it goes.

use super::sampling::{Sampler, SamplingConfig};
use super::transformer::{Logits, Model};
use crate::error::Result;
use crate::gpu::Batch;
use crate::gpu::GpuContext;
use crate::ops::{self, SampleState};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// What to generate.
#[derive(Clone, Debug)]
pub struct GenerateConfig {
    /// New tokens at most.
    pub max_tokens: usize,
    /// Stop once the generated tokens end with this sequence (it is kept in the output).
    pub stop: Option<Vec<u32>>,
    /// Stop after any of these tokens (the model's `eos_token_id`; kept in the output).
    pub eos_token_ids: Vec<u32>,
    /// Sampling settings.
    pub sampling: SamplingConfig,
    /// When set to true (by `on_token`, a stop button, a signal handler), generation ends after
    /// the token being chosen.
    pub cancel: Option<Arc<AtomicBool>>,
}

/// Generates after `prompt`, calling `on_token` with each new token as it is chosen; returns the
/// new tokens. Stops at `max_tokens`, an end-of-sequence token, the stop sequence, the end of the context, or when
/// `cfg.cancel` is set (native: blocks).
#[cfg(not(target_arch = "wasm32"))]
pub fn generate(
    ctx: &GpuContext,
    model: &Model,
    prompt: &[u32],
    cfg: &GenerateConfig,
    on_token: impl FnMut(u32),
) -> Result<Vec<u32>> {
    pollster::block_on(generate_async(ctx, model, prompt, cfg, on_token))
}

/// As [`generate`], awaiting each token: in the browser the page keeps drawing the tokens
/// `on_token` shows while the next one is computed.
///
/// Each token is one batch (the forward pass, then the sampler on the GPU) and one readback of
/// the token id; the next forward pass reads the id where the sampler wrote it.
pub async fn generate_async(
    ctx: &GpuContext,
    model: &Model,
    prompt: &[u32],
    cfg: &GenerateConfig,
    mut on_token: impl FnMut(u32),
) -> Result<Vec<u32>> {
    cfg.sampling.validate()?;
    if cfg.max_tokens == 0 {
        return Ok(Vec::new());
    }
    let vocab = model.config.vocab_size;
    let mut cache = model.new_cache(ctx)?;
    let mut sampler = Sampler::new(cfg.sampling.clone());
    let state = SampleState::new(ctx, vocab)?;
    let mut b = Batch::new(ctx);
    let (logits, _) = model.record_forward(&mut b, prompt, &cache, Logits::Last)?;
    state.set_seen(ctx, prompt)?;
    ops::sample(&mut b, &logits, &state, sampler.next_params(vocab))?;
    let mut token = b.read_u32_async(&[&state.token]).await?[0][0];
    cache.len += prompt.len();
    let mut out = Vec::new();
    loop {
        out.push(token);
        on_token(token);
        if cfg.eos_token_ids.contains(&token) {
            break;
        }
        if let Some(stop) = &cfg.stop {
            if !stop.is_empty() && out.ends_with(stop) {
                break;
            }
        }
        let cancelled = cfg
            .cancel
            .as_ref()
            .is_some_and(|c| c.load(Ordering::Relaxed));
        if cancelled || cache.len >= cache.capacity || out.len() >= cfg.max_tokens {
            break;
        }
        let mut b = Batch::new(ctx);
        let logits = model.record_decode(&mut b, &state.token, &cache)?;
        ops::sample(&mut b, &logits, &state, sampler.next_params(vocab))?;
        token = b.read_u32_async(&[&state.token]).await?[0][0];
        cache.len += 1;
    }
    Ok(out)
}
