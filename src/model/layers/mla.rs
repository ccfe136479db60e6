//! DeepSeek Multi-head Latent Attention (math.md §3) with the Hugging Face DeepseekV2/V3 weight
//! names: a compressed cache of `c_kv` and the rotated `k_pe` only, a naive path (up-project K
//! and V; prefill) and an absorbed path (score and aggregate in the latent space; decode).
//!
//! RoPE pairs: DeepSeek checkpoints rotate interleaved pairs `(x[2i], x[2i+1])`. HF DeepseekV2
//! rotates them in place (complex multiply); HF DeepseekV3 (`rope_interleave`) rotates the same
//! pairs but writes the result de-interleaved. Both give the same dot products, so the loader
//! keeps the checkpoint's weights as they are and rotates interleaved pairs in place.

use crate::error::{Error, Result};
use crate::gpu::split::split_rows;
use crate::gpu::{Batch, DType, GpuContext, GpuTensor};
use crate::model::config::mla::MlaShape;
use crate::model::formats::weights::{HostMatrix, WeightFile};
use crate::model::layers::mla_absorb::absorbed_matrices;
use crate::model::layers::upload::{load, load_matrix, upload_matrix, Upload};
use crate::ops::{
    self, AttentionShape, AttentionViews, KvFormat, Pages, QuantScheme, RopeTable, View, Weight,
    WeightFormat,
};

/// The compressed cache of one MLA layer: per token only `c_kv` and the rotated `k_pe`, in pool
/// buffers whose rows a page table assigns to positions (see `layers::cache`).
pub struct MlaCache {
    /// Normalised `c_kv` `[pool rows, kv_lora_rank]`.
    pub c_kv: GpuTensor,
    /// Rotated `k_pe` `[pool rows, qk_rope_head_dim]`.
    pub k_pe: GpuTensor,
}

impl MlaCache {
    /// Bytes held: `pool rows · (kv_lora_rank + qk_rope_head_dim) · 4`.
    pub fn bytes(&self) -> u64 {
        self.c_kv.bytes() + self.k_pe.bytes()
    }

    /// Bytes of one cached token.
    pub fn row_bytes(&self) -> u64 {
        self.bytes() / self.c_kv.shape()[0].max(1) as u64
    }

    /// The same cache with `rows` pool rows, its first `kept` copied in `b`.
    pub fn grown(&self, b: &mut Batch, rows: usize, kept: usize) -> Result<MlaCache> {
        let grow = |b: &mut Batch, t: &GpuTensor| -> Result<GpuTensor> {
            let width = t.shape()[1];
            let new = GpuTensor::empty(b.ctx(), t.label(), &[rows, width], t.dtype())?;
            b.copy_elements(t, 0, &new, 0, kept * width)?;
            Ok(new)
        };
        Ok(MlaCache {
            c_kv: grow(b, &self.c_kv)?,
            k_pe: grow(b, &self.k_pe)?,
        })
    }
}

/// Which attention path a forward call takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MlaPath {
    /// Up-project K and V for every cached token (prefill).
    Naive,
    /// Score and aggregate in the latent space (decode).
    Absorbed,
}

impl MlaPath {
    /// The path for `n` new tokens: a prefill up-projects K and V once for all its queries;
    /// one decoded token scores in the latent space, reading only the compressed cache.
    pub fn for_tokens(n: usize) -> Self {
        match n {
            1 => MlaPath::Absorbed,
            _ => MlaPath::Naive,
        }
    }
}

/// Weights of one MLA layer, plus the absorbed matrices derived from them at load.
pub struct MlaLayer {
    /// Sizes.
    pub shape: MlaShape,
    /// `q_a_proj` `[q_lora, d]` and `q_a_layernorm` `[q_lora]`, with `q_lora_rank`.
    q_a: Option<(Weight, GpuTensor)>,
    /// `q_proj` or `q_b_proj`: `[h·(nope+rope), d or q_lora]`.
    q: Weight,
    /// `kv_a_proj_with_mqa`: `[kv_lora + rope, d]` (the `c_kv` rows, then the `k_pe` rows).
    kv_a: Weight,
    /// Without `q_lora_rank` both decode products read `x`: `q_absorbed` and `kv_a` stacked
    /// `[h·(kv_lora + rope) + kv_lora + rope, d]`, one product per token (the two are views of
    /// it where the adapter can bind them there).
    decode_in: Option<GpuTensor>,
    /// `kv_a_layernorm` `[kv_lora]`.
    kv_norm: GpuTensor,
    /// `kv_b_proj` `[h·(nope+v), kv_lora]`.
    kv_b: Weight,
    /// `o_proj` `[d, h·v]`.
    o: Weight,
    /// Absorbed query: per head `[W_UKᵀ·Wq_nope ; Wq_pe]`: `[h·(kv_lora+rope), d or q_lora]`
    /// (f32 or f16: built on the GPU).
    q_absorbed: Weight,
    /// Absorbed output: per head `Wo_h·W_UV`: `[d, h·kv_lora]`.
    o_absorbed: Weight,
    rope: RopeTable,
}

impl MlaLayer {
    /// The RoPE table of `shape` (YaRN's frequencies and scale where it has them) for
    /// `positions` positions, which every MLA layer of a model shares.
    pub fn rope_table(ctx: &GpuContext, shape: &MlaShape, positions: usize) -> Result<RopeTable> {
        let (inv_freq, mscale) = shape.inv_freq();
        RopeTable::from_inv_freq(ctx, &inv_freq, positions, mscale)
    }

    /// Loads the layer's tensors by their Hugging Face names under `prefix` (e.g.
    /// `layers.0.attn` or `model.layers.0.self_attn`) and derives the absorbed matrices;
    /// `rope_table` is [`MlaLayer::rope_table`]'s.
    pub fn load(
        ctx: &GpuContext,
        file: &mut WeightFile,
        shape: MlaShape,
        prefix: &str,
        rope_table: &RopeTable,
    ) -> Result<Self> {
        shape.validate()?;
        let (d, h) = (shape.d, shape.heads);
        let (nope, rope, v, r) = (
            shape.qk_nope_head_dim,
            shape.qk_rope_head_dim,
            shape.v_head_dim,
            shape.kv_lora_rank,
        );
        let qk = nope + rope;
        let name = |n: &str| {
            if prefix.is_empty() {
                n.to_string()
            } else {
                format!("{prefix}.{n}")
            }
        };
        let (q_a, q_host, q_in) = match shape.q_lora_rank {
            Some(ql) => {
                let a = load_matrix(ctx, file, &name("q_a_proj.weight"), &[ql, d])?;
                let norm = load(ctx, file, &name("q_a_layernorm.weight"), &[ql])?;
                (
                    Some((a, norm)),
                    file.take_matrix(&name("q_b_proj.weight"), &[h * qk, ql])?,
                    ql,
                )
            }
            None => (
                None,
                file.take_matrix(&name("q_proj.weight"), &[h * qk, d])?,
                d,
            ),
        };
        let kv_a = file.take_matrix(&name("kv_a_proj_with_mqa.weight"), &[r + rope, d])?;
        let kv_b_host = file.take_matrix(&name("kv_b_proj.weight"), &[h * (nope + v), r])?;
        let o_host = file.take_matrix(&name("o_proj.weight"), &[d, h * v])?;
        // Float values stay f32 unless a format is asked, whatever the files hold: the layer's
        // absorbed matrices are products made at load, not the files' values.
        let upload = Upload {
            values: WeightFormat::F32,
            ..Upload::of(ctx, file)
        };
        // As the file holds them: the scheme of its quantized matrices (a quantized directory),
        // else f32.
        let stored = [&q_host, &kv_b_host, &o_host]
            .into_iter()
            .find_map(|m| match m {
                HostMatrix::Quant(q) => Some(WeightFormat::Quant(q.scheme)),
                HostMatrix::F32(_) => None,
            });
        let format = upload.format.or(stored).unwrap_or(WeightFormat::F32);
        // The absorbed matrices, made from values, take the layer's format where the quantizer
        // writes it, else q8_0, the finest it writes (a K-quant file's q5_0 or q4_K).
        let absorbed_format = match format {
            WeightFormat::Quant(s) if !s.quantizable() => WeightFormat::Quant(QuantScheme::Q8_0),
            f => f,
        };
        // Quantized, the layer is its quantized q, kv_b and o: the absorbed matrices are built
        // from their values, so the absorbed decode and the naive prefill run one model (and a
        // directory quantized by `latentgpu quantize` loads as the same model).
        let requantized = |m: HostMatrix, k: usize| -> Result<HostMatrix> {
            Ok(match (format, m) {
                // (kv_b joined from a K-quant file's attn_k_b and attn_v_b stays their values.)
                (WeightFormat::Quant(s), HostMatrix::F32(v))
                    if format.fits_row(k) && s.quantizable() =>
                {
                    HostMatrix::Quant(ops::quantize(s, &v, k)?)
                }
                (_, m) => m,
            })
        };
        let q_host = requantized(q_host, q_in)?;
        let kv_b_host = requantized(kv_b_host, r)?;
        let o_host = requantized(o_host, h * v)?;
        let f16 = format == WeightFormat::F16;
        let as_f32 = |m: &HostMatrix| matches!(m, HostMatrix::F32(_));
        let dense = matches!(format, WeightFormat::F32 | WeightFormat::F16) && as_f32(&kv_a);
        let f32_layer =
            format == WeightFormat::F32 && [&q_host, &kv_b_host, &o_host].into_iter().all(as_f32);
        let up = |label: &str, dims: &[usize], data: &HostMatrix| {
            upload_matrix(ctx, upload, label, dims, data.clone())
        };
        let kv_b = kv_b_host.to_f32();
        // The absorbed matrices come from f32 copies of q, kv_b and o on the GPU (the
        // layer's own when its matrices are f32), cast to f16 when they are f16, read back and
        // quantized on the host when they are quantized (natively; f32 in the browser, where a
        // load cannot wait for a readback).
        let f32_up =
            |label: &str, dims: &[usize], data: &[f32]| GpuTensor::from_f32(ctx, label, dims, data);
        let q32 = f32_up(&name("q"), &[h * qk, q_in], &q_host.to_f32())?;
        let kv_b32 = f32_up(&name("kv_b_proj.weight"), &[h * (nope + v), r], &kv_b)?;
        let o32 = f32_up(&name("o_proj.weight"), &[d, h * v], &o_host.to_f32())?;
        let mut b = Batch::new(ctx);
        let (q_abs, o_abs) = absorbed_matrices(&mut b, &shape, &kv_b32, &q32, &o32)?;
        let (q_absorbed, o_absorbed) = match f16 {
            true => (ops::to_f16(&mut b, &q_abs)?, ops::to_f16(&mut b, &o_abs)?),
            false => (q_abs, o_abs),
        };
        let q_absorbed = q_absorbed.labelled(&name("absorbed q"));
        let o_absorbed = o_absorbed.labelled(&name("absorbed o"));
        let kv_a_label = name("kv_a_proj_with_mqa.weight");
        // Past the block limit, the weights built here are split as the uploaded ones are.
        let limit = upload.block_bytes;
        let o_absorbed_whole = o_absorbed.clone();
        let o_absorbed = split_rows(&mut b, &o_absorbed, limit)?;
        let mut q_absorbed_t = split_rows(&mut b, &q_absorbed, limit)?;
        let (kv_a_t, decode_in) = match (dense, shape.q_lora_rank) {
            (true, None) => {
                let whole = Upload {
                    block_bytes: u64::MAX,
                    ..upload
                };
                let kv_a_whole =
                    upload_matrix(ctx, whole, &kv_a_label, &[r + rope, d], kv_a.clone())?;
                let kv_a_whole = kv_a_whole.dense().cloned().ok_or_else(|| Error::Invalid {
                    what: kv_a_label.clone(),
                    expected: "a dense matrix".into(),
                    found: kv_a_whole.format().name().into(),
                })?;
                let rows = h * (r + rope);
                let stacked = GpuTensor::empty(
                    ctx,
                    &name("absorbed q and kv_a"),
                    &[rows + r + rope, d],
                    q_absorbed.dtype(),
                )?;
                b.copy_elements(&q_absorbed, 0, &stacked, 0, rows * d)?;
                b.copy_elements(&kv_a_whole, 0, &stacked, rows * d, (r + rope) * d)?;
                let stacked = split_rows(&mut b, &stacked, limit)?;
                let mut kv_a_t = split_rows(&mut b, &kv_a_whole, limit)?;
                if !stacked.is_split() {
                    // The separate matrices as views of the stacked one, when kernels can bind
                    // them.
                    let align = ctx.limits.min_storage_buffer_offset_alignment as usize;
                    if (rows * d * q_absorbed.dtype().size()).is_multiple_of(align) {
                        q_absorbed_t = stacked.row_range(0, rows)?.labelled(&name("absorbed q"));
                        kv_a_t = stacked.row_range(rows, r + rope)?.labelled(&kv_a_label);
                    }
                }
                (Weight::Dense(kv_a_t), Some(stacked))
            }
            _ => (up(&kv_a_label, &[r + rope, d], &kv_a)?, None),
        };
        let (q, kv_b_t, o) = match f32_layer {
            true => (
                Weight::Dense(split_rows(&mut b, &q32, limit)?),
                Weight::Dense(split_rows(&mut b, &kv_b32, limit)?),
                Weight::Dense(split_rows(&mut b, &o32, limit)?),
            ),
            false => (
                up(&name("q"), &[h * qk, q_in], &q_host)?,
                up(&name("kv_b_proj.weight"), &[h * (nope + v), r], &kv_b_host)?,
                up(&name("o_proj.weight"), &[d, h * v], &o_host)?,
            ),
        };
        b.submit()?;
        let (q_absorbed, o_absorbed) = match absorbed_format {
            // From the unsplit matrices: the blocks are the quantized weight's own.
            WeightFormat::Quant(scheme) => (
                quantized(ctx, &q_absorbed, (&q_absorbed_t, scheme), limit)?,
                quantized(ctx, &o_absorbed_whole, (&o_absorbed, scheme), limit)?,
            ),
            _ => (Weight::Dense(q_absorbed_t), Weight::Dense(o_absorbed)),
        };
        Ok(MlaLayer {
            q_a,
            q,
            kv_a: kv_a_t,
            decode_in,
            kv_norm: load(ctx, file, &name("kv_a_layernorm.weight"), &[r])?,
            kv_b: kv_b_t,
            o,
            q_absorbed,
            o_absorbed,
            rope: rope_table.clone(),
            shape,
        })
    }

    /// Bytes of weights one decoded token reads on the absorbed path.
    pub fn decode_weight_bytes(&self) -> u64 {
        let q_a = self.q_a.as_ref().map_or(0, |(a, n)| a.bytes() + n.bytes());
        let inputs = match &self.decode_in {
            Some(stacked) => stacked.bytes(),
            None => self.q_absorbed.bytes() + self.kv_a.bytes(),
        };
        q_a + inputs + self.o_absorbed.bytes()
    }

    /// An empty compressed cache of `capacity` pool rows in `format`.
    pub fn new_cache(
        &self,
        ctx: &GpuContext,
        capacity: usize,
        format: KvFormat,
    ) -> Result<MlaCache> {
        let (r, rope) = (self.shape.kv_lora_rank, self.shape.qk_rope_head_dim);
        let dtype = format.dtype();
        Ok(MlaCache {
            c_kv: GpuTensor::empty(ctx, "mla c_kv cache", &[capacity, r], dtype)?,
            k_pe: GpuTensor::empty(ctx, "mla k_pe cache", &[capacity, rope], dtype)?,
        })
    }

    /// `x` `[n, d]` at positions `pos..pos+n` -> `[n, d]`; appends `c_kv` and `k_pe` to `cache`
    /// (at the pool rows `pages` gives, whose pages are held).
    pub fn forward(
        &self,
        b: &mut Batch,
        x: &GpuTensor,
        pos: usize,
        (cache, pages): (&MlaCache, Option<Pages>),
        path: MlaPath,
    ) -> Result<GpuTensor> {
        let s = &self.shape;
        let (n, h) = (x.shape()[0], s.heads);
        let (nope, rope, v, r) = (
            s.qk_nope_head_dim,
            s.qk_rope_head_dim,
            s.v_head_dim,
            s.kv_lora_rank,
        );
        let t = pos + n;
        if pages.is_none() && t > cache.c_kv.shape()[0] {
            return Err(Error::Invalid {
                what: "MLA context".into(),
                expected: format!("at most {} tokens", cache.c_kv.shape()[0]),
                found: format!("{pos} cached + {n} new"),
            });
        }
        let q_in = match &self.q_a {
            Some((a, norm)) => {
                let c = ops::linear(b, x, a)?;
                ops::rmsnorm(b, &c, norm, s.norm_eps)?
            }
            None => x.clone(),
        };
        // Queries: per head up-projected (prefill) or absorbed into the latent space (decode),
        // and the compressed KV of the new tokens.
        let stacked = self
            .decode_in
            .as_ref()
            .filter(|_| n == 1 && path == MlaPath::Absorbed);
        let (q, q_rot, kv) = match (path, stacked) {
            (MlaPath::Absorbed, Some(w)) => {
                // One product for both; the kv part is copied out, as the next kernel writes
                // the queries in place in the same buffer.
                let rows = h * (r + rope);
                let out = ops::matmul(b, x, w, true)?.reshape(&[rows + r + rope, 1])?;
                let q = out.row_range(0, rows)?.reshape(&[1, h, r + rope])?;
                let kv = GpuTensor::scratch(b.ctx(), "mla kv_a", &[1, r + rope], DType::F32)?;
                b.copy_elements(&out, rows, &kv, 0, r + rope)?;
                (q, r, kv)
            }
            (MlaPath::Absorbed, None) => (
                ops::linear(b, &q_in, &self.q_absorbed)?.reshape(&[n, h, r + rope])?,
                r,
                ops::linear(b, x, &self.kv_a)?,
            ),
            (MlaPath::Naive, _) => (
                ops::linear(b, &q_in, &self.q)?.reshape(&[n, h, nope + rope])?,
                nope,
                ops::linear(b, x, &self.kv_a)?,
            ),
        };
        // The compressed KV normalised and rotated into the cache, and the queries' RoPE part
        // rotated, in one dispatch.
        ops::mla_rope(
            b,
            &q,
            q_rot,
            &kv,
            (&self.kv_norm, s.norm_eps),
            (&self.rope, pos),
            (&cache.c_kv, &cache.k_pe, pages),
        )?;
        let how = AttentionShape {
            scale: s.softmax_scale(),
            causal: true,
            n_kv: t,
            window: 0,
        };
        match path {
            MlaPath::Naive => {
                // Every cached token's c_kv and k_pe, in order.
                let (c_all, pe_all) = (
                    ops::cache_rows_f32(b, &cache.c_kv, pages, t)?,
                    ops::cache_rows_f32(b, &cache.k_pe, pages, t)?,
                );
                let pe = View {
                    tensor: &pe_all,
                    offset: 0,
                    row_stride: rope,
                    head_stride: 0,
                };
                let kv = ops::linear(b, &c_all, &self.kv_b)?; // [t, h·(nope+v)]
                let o = GpuTensor::scratch(b.ctx(), "mla attention", &[n, h, v], DType::F32)?;
                let stride = h * (nope + v);
                let up = |offset| View {
                    tensor: &kv,
                    offset,
                    row_stride: stride,
                    head_stride: nope + v,
                };
                ops::attention_views(
                    b,
                    &AttentionViews {
                        q: View::contiguous(&q),
                        ka: up(0),
                        kb: Some(pe),
                        v: up(nope),
                        o: View::contiguous(&o),
                        n_q: n,
                        heads: h,
                        kv_heads: h,
                        d_qk: nope + rope,
                        d_a: nope,
                        d_v: v,
                        how,
                        pages: None,
                    },
                )?;
                ops::linear(b, &o.reshape(&[n, h * v])?, &self.o)
            }
            MlaPath::Absorbed => {
                let o =
                    GpuTensor::scratch(b.ctx(), "mla latent attention", &[n, h, r], DType::F32)?;
                let latent = View {
                    tensor: &cache.c_kv,
                    offset: 0,
                    row_stride: r,
                    head_stride: 0,
                };
                let pe = View {
                    tensor: &cache.k_pe,
                    offset: 0,
                    row_stride: rope,
                    head_stride: 0,
                };
                ops::attention_views(
                    b,
                    &AttentionViews {
                        q: View::contiguous(&q),
                        ka: latent,
                        kb: Some(pe),
                        v: latent,
                        o: View::contiguous(&o),
                        n_q: n,
                        heads: h,
                        kv_heads: 1,
                        d_qk: r + rope,
                        d_a: r,
                        d_v: r,
                        how,
                        pages,
                    },
                )?;
                ops::linear(b, &o.reshape(&[n, h * r])?, &self.o_absorbed)
            }
        }
    }
}

/// `t` (an absorbed matrix built on the GPU, submitted) quantized in `scheme` on the host, in
/// row blocks of at most `limit` bytes; else (rows that are not whole blocks of 32, or in the
/// browser) `dense`, its copy in blocks.
fn quantized(
    ctx: &GpuContext,
    t: &GpuTensor,
    (dense, scheme): (&GpuTensor, QuantScheme),
    limit: u64,
) -> Result<Weight> {
    let (rows, k) = (t.shape()[0], t.shape()[1]);
    let fits = !t.is_split() && WeightFormat::Quant(scheme).fits_row(k);
    #[cfg(not(target_arch = "wasm32"))]
    if fits {
        let values = t.read(ctx)?;
        let label = t.label().to_string();
        let q = ops::QuantWeight::quantize(ctx, &label, [rows, k], scheme, &values, limit)?;
        return Ok(Weight::Quant(Box::new(q)));
    }
    let _ = (ctx, rows, fits, limit);
    Ok(Weight::Dense(dense.clone()))
}
