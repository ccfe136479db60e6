//! `latentgpu bench attention`: causal latent attention against full causal attention of the same
//! width and heads, on the same adapter in the same run: prefill time versus N with fitted
//! scaling exponents and the crossover, and decode time per token with state/cache bytes.

use super::seconds_per_rep;
use crate::error::Result;
use crate::gpu::{Batch, GpuContext, GpuTensor};
use crate::model::layers::latent::{LatentLayer, LatentShape};
use crate::model::layers::mha::MhaLayer;
use crate::model::{AttentionConfig, FfnKind, ModelConfig, NormKind, WeightFile};
use crate::ops::{KvFormat, RopeMode, RopeTable};
use safetensors::tensor::TensorView;

/// One measured context length.
#[derive(Clone, Debug, serde::Serialize)]
pub struct AttentionFigure {
    /// Tokens.
    pub n: usize,
    /// Latent attention prefill of n tokens, seconds.
    pub latent_prefill_s: f64,
    /// Full attention prefill of n tokens, seconds.
    pub full_prefill_s: f64,
    /// full / latent.
    pub prefill_speedup: f64,
    /// Latent decode, seconds per token (averaged over a whole chunk, refresh included).
    pub latent_decode_s: f64,
    /// Full attention decode at context n, seconds per token.
    pub full_decode_s: f64,
    /// Latent decode state, bytes per layer.
    pub latent_state_bytes: u64,
    /// KV cache at context n, bytes per layer.
    pub kv_cache_bytes: u64,
}

/// The benchmark's result.
#[derive(Clone, Debug, serde::Serialize)]
pub struct AttentionReport {
    /// Adapter name.
    pub adapter: String,
    /// Backend.
    pub backend: String,
    /// Width, heads, latents, chunk.
    pub d: usize,
    /// Heads.
    pub heads: usize,
    /// Latents M.
    pub latents: usize,
    /// Chunk C.
    pub chunk: usize,
    /// Per context length.
    pub figures: Vec<AttentionFigure>,
    /// Log-log slope of latent prefill time against N.
    pub latent_exponent: f64,
    /// Log-log slope of full-attention prefill time against N.
    pub full_exponent: f64,
    /// Smallest measured N from which latent prefill is faster (None if never).
    pub crossover_n: Option<usize>,
}

/// Least-squares slope of log(y) against log(x).
pub fn loglog_slope(x: &[f64], y: &[f64]) -> f64 {
    let lx: Vec<f64> = x.iter().map(|v| v.ln()).collect();
    let ly: Vec<f64> = y.iter().map(|v| v.ln()).collect();
    let n = lx.len() as f64;
    let (mx, my) = (lx.iter().sum::<f64>() / n, ly.iter().sum::<f64>() / n);
    let cov: f64 = lx.iter().zip(&ly).map(|(a, b)| (a - mx) * (b - my)).sum();
    let var: f64 = lx.iter().map(|a| (a - mx).powi(2)).sum();
    cov / var
}

/// Random `[out, in]` weights (uniform ±1/sqrt(in)) as a safetensors file in memory (no
/// temporary file).
pub(crate) fn random_weights(names: &[(String, Vec<usize>)], seed: u64) -> Result<WeightFile> {
    let mut state = seed;
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    };
    let data: Vec<Vec<u8>> = names
        .iter()
        .map(|(_, shape)| {
            let scale = 1.0 / (*shape.last().unwrap_or(&1) as f32).sqrt();
            let vals: Vec<f32> = (0..shape.iter().product())
                .map(|_| next() * scale)
                .collect();
            bytemuck::cast_slice(&vals).to_vec()
        })
        .collect();
    let views: Vec<(String, TensorView)> = names
        .iter()
        .zip(&data)
        .map(|((n, s), d)| {
            TensorView::new(safetensors::Dtype::F32, s.clone(), d).map(|v| (n.clone(), v))
        })
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| crate::Error::Invalid {
            what: "benchmark weights".into(),
            expected: "valid tensors".into(),
            found: e.to_string(),
        })?;
    let bytes = safetensors::serialize(views, None).map_err(|e| crate::Error::Invalid {
        what: "benchmark weights".into(),
        expected: "serialisable tensors".into(),
        found: e.to_string(),
    })?;
    WeightFile::from_bytes("benchmark weights", bytes)
}

pub(crate) fn square(names: &mut Vec<(String, Vec<usize>)>, prefix: &str, d: usize) {
    for p in ["q_proj", "k_proj", "v_proj", "o_proj"] {
        names.push((format!("{prefix}.{p}.weight"), vec![d, d]));
    }
}

/// A one-layer MHA config of width `d` and `heads` heads (the full-attention baseline).
pub(crate) fn mha_config(d: usize, heads: usize, max_context: usize) -> ModelConfig {
    ModelConfig {
        moe: None,
        vocab_size: 1,
        d_model: d,
        n_layers: 1,
        n_heads: heads,
        head_dim: None,
        ffn_kind: FfnKind::Swiglu,
        ffn_hidden: 1,
        norm_kind: NormKind::Rmsnorm,
        norm_eps: 1e-5,
        max_context,
        rope: Default::default(),
        tie_embeddings: true,
        attention: AttentionConfig::Mha {
            n_kv_heads: None,
            qkv_bias: false,
            o_bias: false,
            qk_norm: false,
            sliding_window: Vec::new(),
            scale: None,
            rope_dim: None,
        },
        post_norms: false,
        embed_scale: None,
        rope_sliding: None,
        nope_layers: Vec::new(),
    }
}

/// Runs the benchmark for each context length in `ns`; `progress` sees each figure.
pub fn run(
    ctx: &GpuContext,
    shape: LatentShape,
    ns: &[usize],
    mut progress: impl FnMut(&AttentionFigure),
) -> Result<AttentionReport> {
    let (d, h) = (shape.d, shape.heads);
    let max_n = ns.iter().copied().max().unwrap_or(1);
    // Full attention: an MHA layer of the same width and heads.
    let cfg = mha_config(d, h, max_n);
    let mut names = Vec::new();
    square(&mut names, "mha", d);
    let mut file = random_weights(&names, 1)?;
    let mha = MhaLayer::load(ctx, &mut file, &cfg, "mha", 0)?;
    let mut names = vec![("lat.latents".to_string(), vec![shape.latents, d])];
    for phase in ["gather", "synth", "broadcast"] {
        if phase != "synth" || shape.synthesis {
            square(&mut names, &format!("lat.{phase}"), d);
        }
    }
    let mut file = random_weights(&names, 2)?;
    let latent = LatentLayer::load(ctx, &mut file, shape, "lat")?;
    let full_rope = RopeTable::new(ctx, d / h, 10000.0, max_n)?;
    let lat_rope = RopeTable::new(ctx, shape.rope_dim, 10000.0, max_n + shape.chunk)?;
    let mode = RopeMode::HalfSplit;

    let mut figures = Vec::new();
    for &n in ns {
        let x = GpuTensor::from_f32(ctx, "x", &[n, d], &vec![0.01; n * d])?;
        let one = GpuTensor::from_f32(ctx, "x1", &[1, d], &vec![0.01; d])?;
        let cache = mha.new_cache(ctx, n, KvFormat::F32)?;
        let full_prefill_s = seconds_per_rep(ctx, 0.2, |b: &mut Batch| {
            mha.forward(b, &x, 0, (&cache, None), &full_rope, mode)
                .map(|_| ())
        })?;
        let full_decode_s = seconds_per_rep(ctx, 0.2, |b: &mut Batch| {
            mha.forward(b, &one, n - 1, (&cache, None), &full_rope, mode)
                .map(|_| ())
        })?;
        let state = latent.new_state(ctx)?;
        let latent_prefill_s = seconds_per_rep(ctx, 0.2, |b: &mut Batch| {
            latent
                .forward(b, &x, 0, &state, &lat_rope, mode)
                .map(|_| ())
        })?;
        // One rep decodes a whole chunk token by token (one refresh), from position n.
        let chunk = shape.chunk;
        let latent_decode_s = seconds_per_rep(ctx, 0.2, |b: &mut Batch| {
            for i in 0..chunk {
                latent.forward(b, &one, n + i, &state, &lat_rope, mode)?;
            }
            Ok(())
        })? / chunk as f64;
        let fig = AttentionFigure {
            n,
            latent_prefill_s,
            full_prefill_s,
            prefill_speedup: full_prefill_s / latent_prefill_s,
            latent_decode_s,
            full_decode_s,
            latent_state_bytes: state.bytes(),
            kv_cache_bytes: cache.bytes(),
        };
        progress(&fig);
        figures.push(fig);
    }
    let xs: Vec<f64> = figures.iter().map(|f| f.n as f64).collect();
    let lat: Vec<f64> = figures.iter().map(|f| f.latent_prefill_s).collect();
    let full: Vec<f64> = figures.iter().map(|f| f.full_prefill_s).collect();
    // The first N from which latent attention stays faster at every larger N measured.
    let crossover_n = (0..figures.len())
        .find(|&i| {
            figures[i..]
                .iter()
                .all(|f| f.latent_prefill_s < f.full_prefill_s)
        })
        .map(|i| figures[i].n);
    Ok(AttentionReport {
        adapter: ctx.adapter.name.clone(),
        backend: ctx.adapter.backend.clone(),
        d,
        heads: h,
        latents: shape.latents,
        chunk: shape.chunk,
        latent_exponent: loglog_slope(&xs, &lat),
        full_exponent: loglog_slope(&xs, &full),
        crossover_n,
        figures,
    })
}
