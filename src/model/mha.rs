//! Baseline causal multi-head (grouped-query) attention with a KV cache.

use super::config::ModelConfig;
use super::layers::load_matrix;
use super::weights::WeightFile;
use crate::error::Result;
use crate::gpu::{Batch, GpuContext, GpuTensor};
use crate::ops::{self, AttentionShape, RopeMode, RopeTable};

/// Weights of one MHA layer (`{prefix}.q_proj` … `o_proj`, no biases).
pub struct MhaLayer {
    /// `[H·dh, d]`.
    q_proj: GpuTensor,
    /// `[Hkv·dh, d]`.
    k_proj: GpuTensor,
    /// `[Hkv·dh, d]`.
    v_proj: GpuTensor,
    /// `[d, H·dh]`.
    o_proj: GpuTensor,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
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
    /// Loads the layer's projections.
    pub fn load(
        ctx: &GpuContext,
        file: &mut WeightFile,
        cfg: &ModelConfig,
        prefix: &str,
    ) -> Result<Self> {
        let (d, h, kv, dh) = (cfg.d_model, cfg.n_heads, cfg.n_kv_heads(), cfg.head_dim());
        let mut w = |name: &str, shape: &[usize]| {
            load_matrix(ctx, file, &format!("{prefix}.{name}.weight"), shape)
        };
        Ok(MhaLayer {
            q_proj: w("q_proj", &[h * dh, d])?,
            k_proj: w("k_proj", &[kv * dh, d])?,
            v_proj: w("v_proj", &[kv * dh, d])?,
            o_proj: w("o_proj", &[d, h * dh])?,
            heads: h,
            kv_heads: kv,
            head_dim: dh,
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
        let n = x.shape[0];
        let (h, kv, dh) = (self.heads, self.kv_heads, self.head_dim);
        let q = ops::matmul(b, x, &self.q_proj, true)?.reshape(&[n, h, dh])?;
        let k = ops::matmul(b, x, &self.k_proj, true)?.reshape(&[n, kv, dh])?;
        let v = ops::matmul(b, x, &self.v_proj, true)?;
        ops::rope_inplace(b, &q, rope, pos, mode)?;
        ops::rope_inplace(b, &k, rope, pos, mode)?;
        b.copy_elements(&k, 0, &cache.k, pos * kv * dh, n * kv * dh)?;
        b.copy_elements(&v, 0, &cache.v, pos * kv * dh, n * kv * dh)?;
        let how = AttentionShape {
            scale: 1.0 / (dh as f32).sqrt(),
            causal: true,
            n_kv: pos + n,
        };
        let o = ops::attention(b, &q, &cache.k, &cache.v, how)?.reshape(&[n, h * dh])?;
        ops::matmul(b, &o, &self.o_proj, true)
    }
}
