//! `latentgpu bench model`: prefill and decode tokens/s of a whole model on one adapter, timed
//! on the generation loop users run (the GPU sampler, greedy; several tokens per batch, one
//! readback of their ids).

use crate::error::{Error, Result};
use crate::gpu::GpuContext;
use crate::model::{Decoder, Model, SamplingConfig};
use std::time::Instant;

/// Throughput of one model.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ModelFigure {
    /// Model directory.
    pub model: String,
    /// Attention kind.
    pub attention: String,
    /// The matrices' format on the GPU (`f32`, `f16`, `q8_0`, `q4_0`, `q4_1`).
    pub weights: String,
    /// Bytes of weights one decoded token reads ([`Model::decode_weight_bytes`]).
    pub weight_bytes_per_token: u64,
    /// Those bytes times decode tokens per second, in GB/s.
    pub decode_weight_gbps: f64,
    /// Prompt tokens.
    pub prompt_tokens: usize,
    /// Prefill tokens per second (one batch: forward over the prompt and the first token's
    /// choice; the token id read back).
    pub prefill_tokens_per_s: f64,
    /// Decoded tokens.
    pub decode_tokens: usize,
    /// Decode tokens per second, as `generate` decodes: several tokens per batch, one
    /// readback of their ids ([`Decoder`]).
    pub decode_tokens_per_s: f64,
    /// Tokens per decode batch the pacing settled on.
    pub decode_batch: usize,
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

/// Wall time of one greedy generation as `generate` runs it (decode batches paced by
/// [`Decoder`]): (prefill s, decode s, encode ms per token, cache bytes, tokens per decode
/// batch at the end).
fn one_run(
    ctx: &GpuContext,
    model: &Model,
    prompt: &[u32],
    decode: usize,
) -> Result<(f64, f64, f64, u64, usize)> {
    let greedy = SamplingConfig {
        temperature: 0.0,
        ..SamplingConfig::default()
    };
    let mut decoder = Decoder::new(ctx, model, greedy)?;
    let start = Instant::now();
    pollster::block_on(decoder.prefill(prompt))?;
    let prefill = start.elapsed().as_secs_f64();
    let start = Instant::now();
    let mut done = 0;
    while done < decode {
        let tokens = pollster::block_on(decoder.decode_paced(decode - done))?;
        if tokens.is_empty() {
            return Err(Error::Invalid {
                what: "benchmark decode".into(),
                expected: format!("{decode} tokens after the prompt within max_context"),
                found: format!("room for {done}"),
            });
        }
        done += tokens.len();
    }
    let decoded = start.elapsed().as_secs_f64();
    let batch = decoder.paced_batch();
    Ok((
        prefill,
        decoded,
        decoder.encode_ms_per_token(),
        decoder.cache().bytes(),
        batch,
    ))
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
    let (_, _, _, bytes, _) = one_run(ctx, model, &ids, decode)?;
    let first_run_s = start.elapsed().as_secs_f64();
    let (mut prefill, mut dec, mut enc, mut batch) = (f64::MAX, f64::MAX, f64::MAX, 0);
    for _ in 0..reps.max(1) {
        let (p, d, e, _, n) = one_run(ctx, model, &ids, decode)?;
        prefill = prefill.min(p);
        if d < dec {
            (dec, batch) = (d, n);
        }
        enc = enc.min(e);
    }
    Ok(ModelFigure {
        model: name.to_string(),
        attention: model.config.attention_kind().to_string(),
        weights: model.weight_format().name().into(),
        weight_bytes_per_token: model.decode_weight_bytes(),
        decode_weight_gbps: model.decode_weight_bytes() as f64 * decode as f64 / dec / 1e9,
        prompt_tokens: prompt,
        prefill_tokens_per_s: prompt as f64 / prefill,
        decode_tokens: decode,
        decode_tokens_per_s: decode as f64 / dec,
        encode_ms_per_token: enc,
        decode_batch: batch,
        first_run_s,
        cache_bytes: bytes,
    })
}
