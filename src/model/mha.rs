//! Causal multi-head (grouped-query) attention with a KV cache, as Llama, Mistral (sliding
//! window), Qwen2 (q/k/v biases) and Qwen3 (per-head q/k RMSNorm) have it.

use super::config::{AttentionConfig, ModelConfig};
use super::layers::{load, load_matrix};
use super::weights::WeightFile;
use crate::error::Result;
use crate::gpu::{Batch, GpuContext, GpuTensor};
use crate::ops::{self, AttentionShape, RopeMode, RopeTable};

/// A linear layer `y = x·Wᵀ (+ b)`.
pub struct Linear {
    /// `W` `[out, in]`.
    weight: GpuTensor,
    /// `b` `[out]`, if the layer has one.
    bias: Option<GpuTensor>,
}

impl Linear {
    /// Loads `{prefix}.weight` `[out, in]` and, when `bias`, `{prefix}.bias` `[out]`.
    pub fn load(
        ctx: &GpuContext,
        file: &mut WeightFile,
        prefix: &str,
        out: usize,
        inp: usize,
        bias: bool,
    ) -> Result<Self> {
        Ok(Linear {
            weight: load_matrix(ctx, file, &format!("{prefix}.weight"), &[out, inp])?,
            bias: match bias {
                true => Some(load(ctx, file, &format!("{prefix}.bias"), &[out])?),
                false => None,
            },
        })
    }

    /// `x` `[n, in]` -> `[n, out]`.
    pub fn forward(&self, b: &mut Batch, x: &GpuTensor) -> Result<GpuTensor> {
        let y = ops::matmul(b, x, &self.weight, true)?;
        match &self.bias {
            Some(bias) => ops::add_bias(b, &y, bias),
            None => Ok(y),
        }
    }
}

/// Weights of one MHA layer: `{prefix}.q_proj` … `o_proj` (with biases where configured) and
/// Qwen3's `q_norm`, `k_norm`.
pub struct MhaLayer {
    /// `[H·dh, d]`.
    q_proj: Linear,
    /// `[Hkv·dh, d]`.
    k_proj: Linear,
    /// `[Hkv·dh, d]`.
    v_proj: Linear,
    /// `[d, H·dh]`.
    o_proj: Linear,
    /// RMSNorm weights `[dh]` over each query and key head, before RoPE.
    qk_norm: Option<(GpuTensor, GpuTensor)>,
    norm_eps: f32,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
    /// Causal sliding window in tokens (0: none).
    window: usize,
}

/// The KV cache of one MHA layer.
pub struct KvCache {
    /// Keys `[max_context, Hkv, dh]`, RoPE applied.
    pub k: GpuTensor,
    /// Values `[max_context, Hkv, dh]`.
    pub v: GpuTensor,
}

impl KvCache {
    /// Bytes held.
    pub fn bytes(&self) -> u64 {
        self.k.bytes() + self.v.bytes()
    }
}

impl MhaLayer {
    /// Loads the projections of block `layer`'s attention.
    pub fn load(
        ctx: &GpuContext,
        file: &mut WeightFile,
        cfg: &ModelConfig,
        prefix: &str,
        layer: usize,
    ) -> Result<Self> {
        let (d, h, kv, dh) = (cfg.d_model, cfg.n_heads, cfg.n_kv_heads(), cfg.head_dim());
        let (qkv_bias, o_bias, qk_norm) = match &cfg.attention {
            AttentionConfig::Mha {
                qkv_bias,
                o_bias,
                qk_norm,
                ..
            } => (*qkv_bias, *o_bias, *qk_norm),
            _ => (false, false, false),
        };
        let mut linear = |name: &str, out: usize, inp: usize, bias: bool| {
            Linear::load(ctx, file, &format!("{prefix}.{name}"), out, inp, bias)
        };
        let q_proj = linear("q_proj", h * dh, d, qkv_bias)?;
        let k_proj = linear("k_proj", kv * dh, d, qkv_bias)?;
        let v_proj = linear("v_proj", kv * dh, d, qkv_bias)?;
        let o_proj = linear("o_proj", d, h * dh, o_bias)?;
        let qk_norm = match qk_norm {
            true => Some((
                load(ctx, file, &format!("{prefix}.q_norm.weight"), &[dh])?,
                load(ctx, file, &format!("{prefix}.k_norm.weight"), &[dh])?,
            )),
            false => None,
        };
        Ok(MhaLayer {
            q_proj,
            k_proj,
            v_proj,
            o_proj,
            qk_norm,
            norm_eps: cfg.norm_eps,
            heads: h,
            kv_heads: kv,
            head_dim: dh,
            window: cfg.sliding_window(layer).unwrap_or(0),
        })
    }

    /// An empty cache for `max_context` tokens.
    pub fn new_cache(&self, ctx: &GpuContext, max_context: usize) -> Result<KvCache> {
        let shape = [max_context, self.kv_heads, self.head_dim];
        Ok(KvCache {
            k: GpuTensor::zeros(ctx, "k cache", &shape)?,
            v: GpuTensor::zeros(ctx, "v cache", &shape)?,
        })
    }

    /// `x` `[n, d]` at positions `pos..pos+n` -> `[n, d]`; appends the tokens' K and V to `cache`.
    pub fn forward(
        &self,
        b: &mut Batch,
        x: &GpuTensor,
        pos: usize,
        cache: &KvCache,
        rope: &RopeTable,
        mode: RopeMode,
    ) -> Result<GpuTensor> {
        let n = x.shape()[0];
        let (h, kv, dh) = (self.heads, self.kv_heads, self.head_dim);
        let mut q = self.q_proj.forward(b, x)?.reshape(&[n, h, dh])?;
        let mut k = self.k_proj.forward(b, x)?.reshape(&[n, kv, dh])?;
        let v = self.v_proj.forward(b, x)?;
        if let Some((q_norm, k_norm)) = &self.qk_norm {
            q = ops::rmsnorm(b, &q, q_norm, self.norm_eps)?;
            k = ops::rmsnorm(b, &k, k_norm, self.norm_eps)?;
        }
        ops::rope_inplace(b, &q, rope, pos, mode)?;
        ops::rope_inplace(b, &k, rope, pos, mode)?;
        b.copy_elements(&k, 0, &cache.k, pos * kv * dh, n * kv * dh)?;
        b.copy_elements(&v, 0, &cache.v, pos * kv * dh, n * kv * dh)?;
        let how = AttentionShape {
            scale: 1.0 / (dh as f32).sqrt(),
            causal: true,
            n_kv: pos + n,
            window: self.window,
        };
        let o = ops::attention(b, &q, &cache.k, &cache.v, how)?.reshape(&[n, h * dh])?;
        self.o_proj.forward(b, &o)
    }
}
