//! `latentgpu bench model --profile`: where a decoded token's time goes. GPU time per kernel
//! kind (timestamp queries, or one submission per dispatch timed on the CPU), bytes bound,
//! and the products replayed alone on the model's own shapes in the same run: decode's weight
//! GB/s against the matrix-vector kernels' own, prefill's GFLOP/s against the matmuls' own.

use super::model::bench_ids;
use super::seconds_per_rep;
use crate::error::Result;
use crate::gpu::{timing_source, Batch, DispatchTimes, GpuContext, RecordedDispatch, TimingSource};
use crate::model::{Logits, Model, Sampler, SamplingConfig};
use crate::ops::{self, MatmulParams, SampleState};
use std::collections::BTreeMap;

/// One kernel kind's share of a token (or of the prefill).
#[derive(Clone, Debug, serde::Serialize)]
pub struct KernelShare {
    /// The kernel's entry point.
    pub kernel: String,
    /// Dispatches per token.
    pub dispatches: f64,
    /// GPU milliseconds per token.
    pub gpu_ms: f64,
    /// Share of all dispatches' GPU time.
    pub share: f64,
    /// Bytes of the tensors its dispatches bind, per token (caches count whole).
    pub bytes_bound: f64,
}

/// The matrix products of a pass replayed alone, against the pass as it runs.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ProductsAlone {
    /// Product dispatches per pass.
    pub dispatches: usize,
    /// Bytes their operands bind, per pass.
    pub bytes: u64,
    /// Their FLOPs (2·M·N·K each), per pass.
    pub flops: f64,
    /// Seconds they take alone (replayed back to back in one batch).
    pub alone_s: f64,
    /// Seconds the whole pass takes, wall clock.
    pub pass_s: f64,
    /// bytes / alone_s, GB/s.
    pub alone_gbps: f64,
    /// bytes / pass_s, GB/s.
    pub pass_gbps: f64,
    /// flops / alone_s, GFLOP/s.
    pub alone_gflops: f64,
    /// flops / pass_s, GFLOP/s.
    pub pass_gflops: f64,
    /// alone_s / pass_s: the share of the pass's time the products alone would need.
    pub pass_vs_alone: f64,
}

/// The profile of one model.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ModelProfile {
    /// How dispatch times were taken.
    pub timing: TimingSource,
    /// Decoded tokens profiled.
    pub tokens: usize,
    /// Wall milliseconds per decoded token (unprofiled).
    pub wall_ms_per_token: f64,
    /// CPU milliseconds recording one token's batch.
    pub encode_ms_per_token: f64,
    /// Sum of the dispatches' GPU milliseconds per token (profiled).
    pub gpu_ms_per_token: f64,
    /// Milliseconds of one submission and readback of a token id with no work in it (median
    /// of 32): what each decode batch pays once, shared by its tokens.
    pub round_trip_ms: f64,
    /// Decode: per kernel kind, largest first.
    pub decode_kernels: Vec<KernelShare>,
    /// Decode's matrix-vector products alone against the whole token.
    pub decode_products: ProductsAlone,
    /// Prefill: per kernel kind, largest first.
    pub prefill_kernels: Vec<KernelShare>,
    /// Prefill's matrix products alone against the whole prefill.
    pub prefill_products: ProductsAlone,
    /// Prompt tokens of the prefill profiled.
    pub prefill_tokens: usize,
}

/// Per-kernel shares of `times` over `passes` passes, with the bytes the `log` binds.
fn shares(times: &DispatchTimes, log: &[RecordedDispatch], passes: usize) -> Vec<KernelShare> {
    let times = times.lock().unwrap_or_else(|e| e.into_inner());
    let total: f64 = times.iter().map(|t| t.seconds).sum();
    let mut by: BTreeMap<&str, (f64, f64, f64)> = BTreeMap::new();
    for t in times.iter() {
        let e = by.entry(t.kernel).or_default();
        e.0 += 1.0;
        e.1 += t.seconds;
    }
    for d in log {
        by.entry(d.kernel.entry).or_default().2 += d.bytes_bound() as f64;
    }
    let n = passes.max(1) as f64;
    let mut out: Vec<KernelShare> = by
        .into_iter()
        .map(|(k, (count, secs, bytes))| KernelShare {
            kernel: k.to_string(),
            dispatches: count / n,
            gpu_ms: 1e3 * secs / n,
            share: secs / total.max(f64::MIN_POSITIVE),
            bytes_bound: bytes / n,
        })
        .collect();
    out.sort_by(|a, b| b.gpu_ms.total_cmp(&a.gpu_ms));
    out
}

/// The matrix products among one pass's dispatches, replayed alone.
fn products_alone(
    ctx: &GpuContext,
    log: &[RecordedDispatch],
    pass_s: f64,
) -> Result<ProductsAlone> {
    let products: Vec<&RecordedDispatch> = log
        .iter()
        .filter(|d| d.kernel.entry.starts_with("mat"))
        .collect();
    let flops: f64 = products
        .iter()
        .filter_map(|d| d.params.as_deref())
        .filter_map(|p| bytemuck::try_from_bytes::<MatmulParams>(p).ok())
        .map(|p| 2.0 * p.m as f64 * p.n as f64 * p.k as f64 * p.batch as f64)
        .sum();
    let bytes: u64 = products.iter().map(|d| d.bytes_bound()).sum();
    let alone_s = seconds_per_rep(ctx, 0.3, |b| products.iter().try_for_each(|d| b.replay(d)))?;
    Ok(ProductsAlone {
        dispatches: products.len(),
        bytes,
        flops,
        alone_s,
        pass_s,
        alone_gbps: bytes as f64 / alone_s / 1e9,
        pass_gbps: bytes as f64 / pass_s / 1e9,
        alone_gflops: flops / alone_s / 1e9,
        pass_gflops: flops / pass_s / 1e9,
        pass_vs_alone: alone_s / pass_s,
    })
}

/// Profiles `tokens` decoded tokens after a prompt of `prompt` tokens, and that prompt's
/// prefill; `wall_decode_s` and `wall_prefill_s` are the unprofiled times per token and per
/// prefill from the same run, `encode_s` the CPU time recording one token.
pub fn run(
    ctx: &GpuContext,
    model: &Model,
    prompt: usize,
    tokens: usize,
    wall: (f64, f64, f64),
) -> Result<ModelProfile> {
    let (wall_prefill_s, wall_decode_s, encode_s) = wall;
    let vocab = model.config.vocab_size;
    let ids = bench_ids(vocab, prompt);
    let greedy = SamplingConfig {
        temperature: 0.0,
        ..SamplingConfig::default()
    };
    let mut sampler = Sampler::new(greedy);
    let state = SampleState::new(ctx, vocab)?;
    let mut cache = model.new_cache(ctx)?;

    let prefill_times = DispatchTimes::default();
    let mut b = Batch::profiled(ctx, prefill_times.clone());
    let (logits, _) = model.record_forward(&mut b, &ids, &mut cache, Logits::Last)?;
    ops::sample(&mut b, &logits, &state, 0, sampler.next_params(vocab))?;
    let prefill_log = b.recorded().to_vec();
    pollster::block_on(b.read_u32_async(&[&state.token]))?;
    cache.len += ids.len();
    // Two tokens warm the decode path, then the rest are profiled one batch per token.
    let decode_times = DispatchTimes::default();
    let mut decode_log = Vec::new();
    for i in 0..tokens + 2 {
        let mut b = if i < 2 {
            Batch::new(ctx)
        } else {
            Batch::profiled(ctx, decode_times.clone())
        };
        let pos = cache.len;
        let logits = model.record_decode(&mut b, &state.token, &mut cache, pos)?;
        ops::sample(&mut b, &logits, &state, 0, sampler.next_params(vocab))?;
        if decode_log.is_empty() {
            decode_log = b.recorded().to_vec();
        }
        pollster::block_on(b.read_u32_async(&[&state.token]))?;
        cache.len += 1;
    }
    let gpu_s: f64 = decode_times
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .map(|t| t.seconds)
        .sum();
    let mut trips: Vec<f64> = (0..32)
        .map(|_| {
            let start = std::time::Instant::now();
            pollster::block_on(Batch::new(ctx).read_u32_async(&[&state.token]))?;
            Ok(start.elapsed().as_secs_f64())
        })
        .collect::<Result<_>>()?;
    trips.sort_by(f64::total_cmp);
    let repeated: Vec<RecordedDispatch> = (0..tokens).flat_map(|_| decode_log.clone()).collect();
    Ok(ModelProfile {
        timing: timing_source(ctx),
        tokens,
        wall_ms_per_token: 1e3 * wall_decode_s,
        encode_ms_per_token: 1e3 * encode_s,
        gpu_ms_per_token: 1e3 * gpu_s / tokens.max(1) as f64,
        round_trip_ms: 1e3 * trips[trips.len() / 2],
        decode_kernels: shares(&decode_times, &repeated, tokens),
        decode_products: products_alone(ctx, &decode_log, wall_decode_s)?,
        prefill_kernels: shares(&prefill_times, &prefill_log, 1),
        prefill_products: products_alone(ctx, &prefill_log, wall_prefill_s)?,
        prefill_tokens: prompt,
    })
}
