//! Causal multi-head (grouped-query) attention with a KV cache, as Llama, Mistral (sliding
//! window), Qwen2 (q/k/v biases) and Qwen3 (per-head q/k RMSNorm) have it.

use crate::error::{Error, Result};
use crate::gpu::tensor::check_shape;
use crate::gpu::{Batch, DType, GpuContext, GpuTensor};
use crate::model::config::{AttentionConfig, ModelConfig};
use crate::model::formats::weights::WeightFile;
use crate::model::layers::upload::{load, load_matrix, upload_stacked, Upload};
use crate::ops::{self, AttentionShape, KvFormat, Pages, QkvExtras, RopeMode, RopeTable, Weight};

/// A linear layer `y = x·Wᵀ (+ b)`.
pub struct Linear {
    /// `W` `[out, in]`.
    weight: Weight,
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
        let y = ops::linear(b, x, &self.weight)?;
        match &self.bias {
            Some(bias) => ops::add_bias(b, &y, bias),
            None => Ok(y),
        }
    }
}

/// Weights of one MHA layer: `{prefix}.q_proj`, `k_proj`, `v_proj` (fused into one product),
/// `o_proj` (with biases where configured) and Qwen3's `q_norm`, `k_norm`.
pub struct MhaLayer {
    /// `q_proj`, `k_proj`, `v_proj` stacked: `[(H + 2·Hkv)·dh, d]`.
    qkv: Weight,
    /// Their biases `[(H + 2·Hkv)·dh]`, then the q and k norm weights `[2, dh]` (zeros when
    /// the layer has none).
    aux: GpuTensor,
    qkv_bias: bool,
    /// `[d, H·dh]`.
    o_proj: Linear,
    /// The q/k norm's epsilon, when the layer has one.
    qk_norm_eps: Option<f32>,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
    /// Causal sliding window in tokens (0: none).
    window: usize,
    /// The factor on the scores (`head_dim^-1/2` unless the config says).
    scale: f32,
}

/// The KV cache of one MHA layer: pool buffers whose rows a page table assigns to positions
/// (see `layers::cache`).
pub struct KvCache {
    /// Keys `[pool rows, Hkv, dh]` (f32 or f16), RoPE applied.
    pub k: GpuTensor,
    /// Values `[pool rows, Hkv, dh]` (f32 or f16).
    pub v: GpuTensor,
}

impl KvCache {
    /// Bytes held.
    pub fn bytes(&self) -> u64 {
        self.k.bytes() + self.v.bytes()
    }

    /// Bytes of one cached token's keys and values.
    pub fn row_bytes(&self) -> u64 {
        let rows = self.k.shape()[0].max(1) as u64;
        self.bytes() / rows
    }

    /// The same cache with `rows` pool rows, its first `kept` copied in `b`.
    pub fn grown(&self, b: &mut Batch, rows: usize, kept: usize) -> Result<KvCache> {
        let grow = |b: &mut Batch, t: &GpuTensor| -> Result<GpuTensor> {
            let mut shape = t.shape().to_vec();
            let row = shape[1] * shape[2];
            shape[0] = rows;
            let new = GpuTensor::empty(b.ctx(), t.label(), &shape, t.dtype())?;
            b.copy_elements(t, 0, &new, 0, kept * row)?;
            Ok(new)
        };
        Ok(KvCache {
            k: grow(b, &self.k)?,
            v: grow(b, &self.v)?,
        })
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
        let (qkv_bias, o_bias, qk_norm, scale) = match &cfg.attention {
            AttentionConfig::Mha {
                qkv_bias,
                o_bias,
                qk_norm,
                scale,
                ..
            } => (*qkv_bias, *o_bias, *qk_norm, *scale),
            _ => (false, false, false, None),
        };
        let slots = h + 2 * kv;
        // The stacked matrix grows as its parts are read (each checked against the file); the
        // aux vector is zero-filled, so its size is checked against the adapter first.
        let aux_len = (slots + 2).checked_mul(dh).ok_or_else(|| Error::Invalid {
            what: format!("{prefix}: heads and head_dim"),
            expected: "a q/k/v width below 2^64".into(),
            found: format!("({slots} + 2) x {dh}"),
        })?;
        check_shape(ctx, &format!("{prefix}.qkv_aux"), &[aux_len], DType::F32)?;
        let mut parts = Vec::new();
        let mut aux = vec![0.0f32; aux_len];
        for (name, rows, at) in [("q_proj", h, 0), ("k_proj", kv, h), ("v_proj", kv, h + kv)] {
            let prefix = format!("{prefix}.{name}");
            parts.push(file.take_matrix(&format!("{prefix}.weight"), &[rows * dh, d])?);
            if qkv_bias {
                let bias = file.take(&format!("{prefix}.bias"), &[rows * dh])?;
                aux[at * dh..(at + rows) * dh].copy_from_slice(&bias);
            }
        }
        if qk_norm {
            for (i, name) in ["q_norm", "k_norm"].into_iter().enumerate() {
                let w = file.take(&format!("{prefix}.{name}.weight"), &[dh])?;
                aux[(slots + i) * dh..(slots + i + 1) * dh].copy_from_slice(&w);
            }
        }
        let qkv = upload_stacked(
            ctx,
            Upload::of(ctx, file),
            &format!("{prefix}.qkv_proj"),
            d,
            parts,
        )?;
        Ok(MhaLayer {
            qkv,
            aux: GpuTensor::from_f32(ctx, &format!("{prefix}.qkv_aux"), &[(slots + 2) * dh], &aux)?,
            qkv_bias,
            o_proj: Linear::load(ctx, file, &format!("{prefix}.o_proj"), d, h * dh, o_bias)?,
            qk_norm_eps: qk_norm.then_some(cfg.norm_eps),
            heads: h,
            kv_heads: kv,
            head_dim: dh,
            window: cfg.sliding_window(layer).unwrap_or(0),
            scale: scale.unwrap_or(1.0 / (dh as f32).sqrt()),
        })
    }

    /// Bytes of weights one decoded token reads.
    pub fn decode_weight_bytes(&self) -> u64 {
        self.qkv.bytes() + self.o_proj.weight.bytes()
    }

    /// The causal sliding window in tokens (0: none).
    pub fn window(&self) -> usize {
        self.window
    }

    /// An empty cache of `rows` pool rows in `format`.
    pub fn new_cache(&self, ctx: &GpuContext, rows: usize, format: KvFormat) -> Result<KvCache> {
        let shape = [rows, self.kv_heads, self.head_dim];
        Ok(KvCache {
            k: GpuTensor::empty(ctx, "k cache", &shape, format.dtype())?,
            v: GpuTensor::empty(ctx, "v cache", &shape, format.dtype())?,
        })
    }

    /// `x` `[n, d]` at positions `pos..pos+n` -> `[n, d]`; appends the tokens' K and V to `cache`
    /// (at the pool rows `pages` gives, whose pages are held).
    #[allow(clippy::too_many_arguments)]
    pub fn forward(
        &self,
        b: &mut Batch,
        x: &GpuTensor,
        pos: usize,
        (cache, pages): (&KvCache, Option<Pages>),
        rope: &RopeTable,
        mode: RopeMode,
    ) -> Result<GpuTensor> {
        let n = x.shape()[0];
        let (h, kv, dh) = (self.heads, self.kv_heads, self.head_dim);
        let qkv = ops::linear(b, x, &self.qkv)?;
        let extras = QkvExtras {
            aux: &self.aux,
            bias: self.qkv_bias,
            norm_eps: self.qk_norm_eps,
        };
        let q = ops::qkv_rope(
            b,
            &qkv,
            (h, kv, dh),
            &extras,
            (rope, mode),
            (pos, pos),
            (&cache.k, &cache.v, pages),
        )?;
        let how = AttentionShape {
            scale: self.scale,
            causal: true,
            n_kv: pos + n,
            window: self.window,
        };
        let o =
            ops::attention_paged(b, &q, (&cache.k, &cache.v), pages, how)?.reshape(&[n, h * dh])?;
        self.o_proj.forward(b, &o)
    }
}
