//! `latentgpu bench model`: prefill and decode tokens/s of a whole model on one adapter, timed
//! on the generation loop users run (the GPU sampler, greedy; one readback of the token id).

use crate::error::Result;
use crate::gpu::{Batch, GpuContext};
use crate::model::{Cache, Logits, Model, Sampler, SamplingConfig};
use crate::ops::{self, SampleState};
use std::time::Instant;

/// Throughput of one model.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ModelFigure {
    /// Model directory.
    pub model: String,
    /// Attention kind.
    pub attention: String,
    /// Whether the matrices are f16 on the GPU.
    pub f16_weights: bool,
    /// Prompt tokens.
    pub prompt_tokens: usize,
    /// Prefill tokens per second (one batch: forward over the prompt and the first token's
    /// choice; the token id read back).
    pub prefill_tokens_per_s: f64,
    /// Decoded tokens.
    pub decode_tokens: usize,
    /// Decode tokens per second (one batch and one readback of the id per token).
    pub decode_tokens_per_s: f64,
    /// CPU time recording one decoded token's batch, in milliseconds.
    pub encode_ms_per_token: f64,
    /// The first run's prefill and decode, which compiles the pipelines, in seconds.
    pub first_run_s: f64,
    /// Cache or state bytes after decoding.
    pub cache_bytes: u64,
}

/// The prompt and decode ids of the benchmarks (the same ids `reference/bench_hf.py` gives
/// transformers).
pub fn bench_ids(vocab: usize, n: usize) -> Vec<u32> {
    (0..n).map(|i| ((32 + i % 90) % vocab) as u32).collect()
}

/// Wall time of one greedy generation: (prefill s, decode s, encode s per token, cache bytes).
fn one_run(
    ctx: &GpuContext,
    model: &Model,
    prompt: &[u32],
    decode: usize,
) -> Result<(f64, f64, f64, u64)> {
    let vocab = model.config.vocab_size;
    let greedy = SamplingConfig {
        temperature: 0.0,
        ..SamplingConfig::default()
    };
    let mut sampler = Sampler::new(greedy);
    let state = SampleState::new(ctx, vocab)?;
    let mut cache = model.new_cache(ctx)?;
    let start = Instant::now();
    let mut b = Batch::new(ctx);
    let (logits, _) = model.record_forward(&mut b, prompt, &cache, Logits::Last)?;
    ops::sample(&mut b, &logits, &state, sampler.next_params(vocab))?;
    pollster::block_on(b.read_u32_async(&[&state.token]))?;
    cache.len += prompt.len();
    let prefill = start.elapsed().as_secs_f64();
    let (encode, decoded) = decode_tokens(ctx, model, &mut cache, &state, &mut sampler, decode)?;
    Ok((prefill, decoded, encode, cache.bytes()))
}

/// Decodes `n` tokens after what `cache` holds; returns (encode s per token, total s).
pub(crate) fn decode_tokens(
    ctx: &GpuContext,
    model: &Model,
    cache: &mut Cache,
    state: &SampleState,
    sampler: &mut Sampler,
    n: usize,
) -> Result<(f64, f64)> {
    let vocab = model.config.vocab_size;
    let mut encode = 0.0;
    let start = Instant::now();
    for _ in 0..n {
        let t = Instant::now();
        let mut b = Batch::new(ctx);
        let logits = model.record_decode(&mut b, &state.token, cache)?;
        ops::sample(&mut b, &logits, state, sampler.next_params(vocab))?;
        encode += t.elapsed().as_secs_f64();
        pollster::block_on(b.read_u32_async(&[&state.token]))?;
        cache.len += 1;
    }
    Ok((encode / n.max(1) as f64, start.elapsed().as_secs_f64()))
}

/// Measures prefill of `prompt` tokens and decode of `decode` more (best of `reps` runs after
/// a first one that compiles the pipelines).
pub fn run(
    ctx: &GpuContext,
    model: &Model,
    name: &str,
    prompt: usize,
    decode: usize,
    reps: usize,
) -> Result<ModelFigure> {
    let ids = bench_ids(model.config.vocab_size, prompt);
    let start = Instant::now();
    let (_, _, _, bytes) = one_run(ctx, model, &ids, decode)?;
    let first_run_s = start.elapsed().as_secs_f64();
    let (mut prefill, mut dec, mut enc) = (f64::MAX, f64::MAX, f64::MAX);
    for _ in 0..reps.max(1) {
        let (p, d, e, _) = one_run(ctx, model, &ids, decode)?;
        prefill = prefill.min(p);
        dec = dec.min(d);
        enc = enc.min(e);
    }
    Ok(ModelFigure {
        model: name.to_string(),
        attention: model.config.attention_kind().to_string(),
        f16_weights: model.has_f16_matrices(),
        prompt_tokens: prompt,
        prefill_tokens_per_s: prompt as f64 / prefill,
        decode_tokens: decode,
        decode_tokens_per_s: decode as f64 / dec,
        encode_ms_per_token: 1e3 * enc,
        first_run_s,
        cache_bytes: bytes,
    })
}
