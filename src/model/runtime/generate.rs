//! Text generation: prefill the prompt, then decode, streaming the tokens as they come.

use crate::error::Result;
use crate::gpu::GpuContext;
use crate::model::layers::transformer::Model;
use crate::model::runtime::decode::Decoder;
use crate::model::runtime::sampling::SamplingConfig;
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

/// As [`generate`], awaiting each batch of tokens: in the browser the page keeps drawing the
/// tokens `on_token` shows while the next ones are computed.
///
/// The prompt is one batch; decoding records several tokens per batch (see [`Decoder`]), paced
/// so that a batch comes back about every 50 ms, and reads back only their ids. The tokens, and
/// where generation stops, are those of one batch per token: `on_token` sees each in turn, and
/// tokens a batch chose past the stop are dropped.
pub async fn generate_async(
    ctx: &GpuContext,
    model: &Model,
    prompt: &[u32],
    cfg: &GenerateConfig,
    on_token: impl FnMut(u32),
) -> Result<Vec<u32>> {
    let mut decoder = Decoder::new(ctx, model, cfg.sampling.clone())?;
    continue_async(&mut decoder, prompt, cfg, on_token).await
}

/// Generation after `tokens`, the whole sequence so far as the caller now has it (a chat's
/// conversation rendered again after a new message): the longest prefix `decoder`'s cache
/// already holds is kept and only the rest is prefilled, then tokens come as from
/// [`generate_async`]. Returns the new tokens.
pub async fn continue_async(
    decoder: &mut Decoder<'_>,
    tokens: &[u32],
    cfg: &GenerateConfig,
    mut on_token: impl FnMut(u32),
) -> Result<Vec<u32>> {
    if cfg.max_tokens == 0 {
        return Ok(Vec::new());
    }
    // At least the last token runs again: its logits choose the first new one.
    let kept = decoder
        .cached_prefix(tokens)
        .min(tokens.len().saturating_sub(1));
    let kept = decoder.rewind(kept);
    let mut chosen = vec![decoder.prefill(&tokens[kept..]).await?];
    let mut out = Vec::new();
    loop {
        for token in chosen {
            out.push(token);
            on_token(token);
            if ends_generation(&out, cfg) {
                return Ok(out);
            }
        }
        chosen = decoder.decode_paced(cfg.max_tokens - out.len()).await?;
        if chosen.is_empty() {
            // The context is full.
            return Ok(out);
        }
    }
}

/// Whether generation ends after the last token of `out`: an end-of-sequence token, the stop
/// sequence, `max_tokens`, or a cancel request.
fn ends_generation(out: &[u32], cfg: &GenerateConfig) -> bool {
    let last = out.last().copied();
    let eos = last.is_some_and(|t| cfg.eos_token_ids.contains(&t));
    let stop = cfg
        .stop
        .as_ref()
        .is_some_and(|s| !s.is_empty() && out.ends_with(s));
    let cancelled = cfg
        .cancel
        .as_ref()
        .is_some_and(|c| c.load(Ordering::Relaxed));
    eos || stop || cancelled || out.len() >= cfg.max_tokens
}
