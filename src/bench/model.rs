//! `latentgpu bench model`: prefill and decode tokens/s of a whole model on one adapter.

use crate::error::Result;
use crate::gpu::GpuContext;
use crate::model::{Logits, Model};
use std::time::Instant;

/// Throughput of one model.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ModelFigure {
    /// Model directory.
    pub model: String,
    /// Attention kind.
    pub attention: String,
    /// Prompt tokens.
    pub prompt_tokens: usize,
    /// Prefill tokens per second (one forward over the prompt, last logits read back).
    pub prefill_tokens_per_s: f64,
    /// Decoded tokens.
    pub decode_tokens: usize,
    /// Decode tokens per second (one forward and one readback per token, after the prompt).
    pub decode_tokens_per_s: f64,
    /// Cache or state bytes after decoding.
    pub cache_bytes: u64,
}

/// Measures prefill of `prompt` tokens and decode of `decode` more (best of `reps` runs).
pub fn run(
    ctx: &GpuContext,
    model: &Model,
    name: &str,
    prompt: usize,
    decode: usize,
    reps: usize,
) -> Result<ModelFigure> {
    let vocab = model.config.vocab_size;
    let ids: Vec<u32> = (0..prompt + decode)
        .map(|i| ((32 + i % 90) % vocab) as u32)
        .collect();
    let (mut best_prefill, mut best_decode, mut bytes) = (f64::MAX, f64::MAX, 0);
    for _ in 0..reps.max(1) + 1 {
        let mut cache = model.new_cache(ctx)?;
        let start = Instant::now();
        model.forward(ctx, &ids[..prompt], &mut cache, Logits::Last)?;
        let prefill = start.elapsed().as_secs_f64();
        let start = Instant::now();
        for &t in &ids[prompt..] {
            model.forward(ctx, &[t], &mut cache, Logits::Last)?;
        }
        let dec = start.elapsed().as_secs_f64();
        if bytes != 0 {
            // The first run compiles pipelines and is not counted.
            best_prefill = best_prefill.min(prefill);
            best_decode = best_decode.min(dec);
        }
        bytes = cache.bytes().max(1);
    }
    Ok(ModelFigure {
        model: name.to_string(),
        attention: model.config.attention_kind().to_string(),
        prompt_tokens: prompt,
        prefill_tokens_per_s: prompt as f64 / best_prefill,
        decode_tokens: decode,
        decode_tokens_per_s: decode as f64 / best_decode,
        cache_bytes: bytes,
    })
}
