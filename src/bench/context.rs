//! `latentgpu bench context`: what the paged KV cache holds and how fast a model decodes at long
//! contexts, and prefill tokens/s and peak resident memory against the prompt's length.
//!
//! Decode at a context is timed after the cache is given the pages of that many tokens without
//! running them: a decoded token's time depends on how many cached rows its attention reads,
//! not on their values, and a prefill of 32k tokens takes too long on a software GPU to repeat
//! for every context. The pages reserved are those a real prefill leaves held (a sliding
//! window's only).

use crate::error::{Error, Result};
use crate::gpu::GpuContext;
use crate::model::runtime::decode::MAX_DECODE_BATCH;
use crate::model::{Decoder, Model, SamplingConfig};
use web_time::Instant;

/// Decode at one context.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ContextFigure {
    /// Model directory.
    pub model: String,
    /// Tokens cached when decoding ends (it starts `decode` tokens earlier).
    pub context: usize,
    /// Bytes of the pages holding cached tokens after decoding.
    pub cache_bytes_held: u64,
    /// Bytes the cache's buffers take (held pages and free ones the pool grew to).
    pub cache_bytes_allocated: u64,
    /// Decode tokens per second ([`MAX_DECODE_BATCH`] tokens per batch, best of the batches).
    pub decode_tokens_per_s: f64,
    /// Bytes one decoded token reads: its weights and the held cache.
    pub bytes_per_token: u64,
    /// Those bytes times tokens per second, over the copy roof measured in the same run.
    pub roof_fraction: f64,
}

/// Prefill of one prompt.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PrefillFigure {
    /// Model directory.
    pub model: String,
    /// Prompt tokens.
    pub prompt_tokens: usize,
    /// Prefill tokens per second (the prompt run chunk by chunk, the first token chosen).
    pub prefill_tokens_per_s: f64,
    /// The process's peak resident memory after this prefill (Linux; 0 elsewhere), in bytes.
    /// Prompts run shortest first, so it is the peak of the longest so far.
    pub peak_resident_bytes: u64,
}

/// Decodes `decode` tokens (greedy) after a cache given the pages of `context - decode`
/// tokens; `copy_gbps` is the copy roof of the same run.
pub fn decode_at(
    ctx: &GpuContext,
    model: &Model,
    name: &str,
    (context, decode): (usize, usize),
    copy_gbps: f64,
) -> Result<ContextFigure> {
    if decode == 0 || context <= decode || context > model.config.max_context {
        return Err(Error::Invalid {
            what: "benchmark context".into(),
            expected: format!(
                "more than the {decode} decoded tokens, at most the model's {}",
                model.config.max_context
            ),
            found: context.to_string(),
        });
    }
    let start = context - decode;
    let mut cache = model.new_cache(ctx)?;
    cache.reserve(ctx, start - 1, start)?;
    cache.len = start;
    let greedy = SamplingConfig {
        temperature: 0.0,
        ..SamplingConfig::default()
    };
    let mut decoder = Decoder::with_cache(ctx, model, greedy, cache)?;
    // The first batch compiles the pipelines and grows the pool; the best of the others counts.
    let mut best = f64::MAX;
    let mut done = 0;
    let mut first = true;
    while done < decode {
        let n = MAX_DECODE_BATCH.min(decode - done);
        let t = Instant::now();
        let tokens = pollster::block_on(decoder.decode(n))?;
        let per_token = t.elapsed().as_secs_f64() / tokens.len().max(1) as f64;
        if !first {
            best = best.min(per_token);
        }
        first = false;
        done += tokens.len();
    }
    if best == f64::MAX {
        best = 0.0;
    }
    let held = decoder.cache().held_bytes();
    let bytes_per_token = model.decode_weight_bytes() + held;
    let tokens_per_s = if best > 0.0 { 1.0 / best } else { 0.0 };
    Ok(ContextFigure {
        model: name.to_string(),
        context,
        cache_bytes_held: held,
        cache_bytes_allocated: decoder.cache().bytes(),
        decode_tokens_per_s: tokens_per_s,
        bytes_per_token,
        roof_fraction: bytes_per_token as f64 * tokens_per_s / 1e9 / copy_gbps,
    })
}

/// Prefills `prompt` tokens from an empty cache and times it.
pub fn prefill(
    ctx: &GpuContext,
    model: &Model,
    name: &str,
    prompt: usize,
) -> Result<PrefillFigure> {
    let ids = crate::bench::model::bench_ids(model.config.vocab_size, prompt);
    let greedy = SamplingConfig {
        temperature: 0.0,
        ..SamplingConfig::default()
    };
    let mut decoder = Decoder::new(ctx, model, greedy)?;
    let t = Instant::now();
    pollster::block_on(decoder.prefill(&ids))?;
    let secs = t.elapsed().as_secs_f64();
    Ok(PrefillFigure {
        model: name.to_string(),
        prompt_tokens: prompt,
        prefill_tokens_per_s: prompt as f64 / secs,
        peak_resident_bytes: peak_resident_bytes(),
    })
}

/// The process's peak resident memory (`VmHWM`), in bytes; 0 where it cannot be read.
fn peak_resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kib| kib.parse::<u64>().ok())
        })
        .map_or(0, |kib| kib * 1024)
}
