//! Fused multi-head attention (online softmax), causal or not, over a KV cache or a whole sequence.

use super::{as_u32, expect_rank, expect_rank_any_dtype, expect_shape, KvFormat, Pages};
use crate::error::{shape_err, Result};
use crate::gpu::batch::grid;
use crate::gpu::{Batch, DType, GpuTensor};
use crate::shaders;

/// Mirrors `AttentionParams` in `attention.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct AttentionParams {
    /// Query rows.
    pub n_q: u32,
    /// Valid key rows.
    pub n_kv: u32,
    /// Query heads.
    pub heads: u32,
    /// Key/value heads (divides `heads`).
    pub kv_heads: u32,
    /// Query/key head width.
    pub d_qk: u32,
    /// Key values read from `ka` (the rest from `kb`).
    pub d_a: u32,
    /// Value head width.
    pub d_v: u32,
    /// 1 for causal.
    pub causal: u32,
    /// Keys before the first query (causal offset).
    pub offset: u32,
    /// Score scale.
    pub scale: f32,
    /// Query view: first element, row stride, head stride.
    pub q: [u32; 3],
    /// First key part's view.
    pub ka: [u32; 3],
    /// Second key part's view.
    pub kb: [u32; 3],
    /// Value view.
    pub v: [u32; 3],
    /// Output view.
    pub o: [u32; 3],
    /// Sliding window in keys (0: none).
    pub window: u32,
    /// Query heads per workgroup of the decode kernel (0 for the fused kernel).
    pub heads_per_group: u32,
    /// Tokens per page of a paged cache whose page table maps the key and value rows (0: the
    /// rows as they are).
    pub page_tokens: u32,
}

/// A strided view of an attention operand: element `[row, head, j]` is at
/// `offset + row·row_stride + head·head_stride + j`. A head stride of 0 shares one head.
#[derive(Clone, Copy, Debug)]
pub struct View<'a> {
    /// The buffer.
    pub tensor: &'a GpuTensor,
    /// First element.
    pub offset: usize,
    /// Elements between rows.
    pub row_stride: usize,
    /// Elements between heads.
    pub head_stride: usize,
}

impl<'a> View<'a> {
    /// A contiguous `[rows, heads, width]` tensor.
    pub fn contiguous(tensor: &'a GpuTensor) -> Self {
        let (heads, width) = (tensor.shape()[1], tensor.shape()[2]);
        View {
            tensor,
            offset: 0,
            row_stride: heads * width,
            head_stride: width,
        }
    }

    /// The largest element index this view reads for `rows` rows, `heads` heads, `width` values.
    fn last(&self, rows: usize, heads: usize, width: usize) -> usize {
        self.offset + (rows - 1) * self.row_stride + (heads - 1) * self.head_stride + width - 1
    }

    /// Offset, row and head stride in words of a cache `format` (see [`KvFormat::words`]).
    fn words(&self, format: KvFormat, what: &str) -> Result<[u32; 3]> {
        const OP: &str = "attention";
        Ok([
            format.words(OP, what, self.offset)?,
            format.words(OP, what, self.row_stride)?,
            format.words(OP, what, self.head_stride)?,
        ])
    }

    fn packed(&self, op: &'static str, what: &str) -> Result<[u32; 3]> {
        Ok([
            as_u32(op, what, self.offset)?,
            as_u32(op, what, self.row_stride)?,
            as_u32(op, what, self.head_stride)?,
        ])
    }
}

/// Attention over strided views: `o = softmax(q·[ka; kb]ᵀ·scale [+ causal mask]) · v`.
#[derive(Clone, Copy, Debug)]
pub struct AttentionViews<'a> {
    /// Queries `[n_q, heads, d_qk]`.
    pub q: View<'a>,
    /// First `d_a` values of each key `[n_kv, kv_heads, d_a]`.
    pub ka: View<'a>,
    /// The other `d_qk − d_a` values of each key, if any.
    pub kb: Option<View<'a>>,
    /// Values `[n_kv, kv_heads, d_v]`.
    pub v: View<'a>,
    /// Output `[n_q, heads, d_v]`.
    pub o: View<'a>,
    /// Query rows.
    pub n_q: usize,
    /// Query heads.
    pub heads: usize,
    /// Key/value heads.
    pub kv_heads: usize,
    /// Query/key width.
    pub d_qk: usize,
    /// Key values from `ka`.
    pub d_a: usize,
    /// Value width.
    pub d_v: usize,
    /// Scale, causality and valid keys.
    pub how: AttentionShape,
    /// The page table that maps the rows of `ka`, `kb` and `v` (a paged cache), if any.
    pub pages: Option<Pages<'a>>,
}

/// Invocations per workgroup; each holds up to 16 output values, so `d_v <= 16 * WG`.
const WG: usize = 64;
const MAX_D_QK: usize = 1024;
const MAX_D_V: usize = 16 * WG;
/// The workgroup size of `attention_lanes.wgsl` for subgroups of `lanes`, if it is one the
/// kernel is built for.
pub(crate) fn lanes_constants(lanes: u32) -> Option<crate::gpu::pipeline::Constants> {
    Some(match lanes {
        4 => &[("WG", 4.0)],
        8 => &[("WG", 8.0)],
        16 => &[("WG", 16.0)],
        32 => &[("WG", 32.0)],
        64 => &[("WG", 64.0)],
        128 => &[("WG", 128.0)],
        _ => return None,
    })
}

/// Heads per workgroup of the decode kernel at most (`MAX_BLOCK` in `attention_decode.wgsl`).
const DECODE_MAX_BLOCK: usize = 8;
/// Query floats per workgroup of the decode kernel at most (`MAX_Q`).
const DECODE_MAX_Q: usize = 2048;
/// Query heads per key/value head from which decode reads shared rows once per block. With
/// fewer, one workgroup per head is as fast or faster on lavapipe (SmolLM2's 3: 27 ms per token
/// either way; the shipped MLA's 4 heads on one key head: 0.52 ms per token per-head, 0.88 ms
/// shared, as one workgroup leaves a thread idle), and the cache reads it saves are few.
const DECODE_MIN_GROUP: usize = 8;

/// How to attend.
#[derive(Clone, Copy, Debug)]
pub struct AttentionShape {
    /// Score scale, usually `1/sqrt(d_qk)`.
    pub scale: f32,
    /// Causal: query `i` (the last `n_q` of `n_kv` positions) sees keys `j <= n_kv − n_q + i`.
    pub causal: bool,
    /// Valid key rows (a KV cache may be larger than what is filled).
    pub n_kv: usize,
    /// Causal sliding window: query `i` at position `p` sees only keys `j > p − window`
    /// (the last `window` positions, itself included); 0 means no window.
    pub window: usize,
}

/// `o = softmax(q·kᵀ·scale [+ causal mask]) · v` per head.
/// q `[n_q, heads, d_qk]`, k `[cap, kv_heads, d_qk]`, v `[cap, kv_heads, d_v]` (first `n_kv` rows
/// valid) -> o `[n_q, heads, d_v]`.
pub fn attention(
    batch: &mut Batch,
    q: &GpuTensor,
    k: &GpuTensor,
    v: &GpuTensor,
    how: AttentionShape,
) -> Result<GpuTensor> {
    attention_paged(batch, q, (k, v), None, how)
}

/// As [`attention`] over a paged cache: `k` `[pool rows, kv_heads, d_qk]` and `v`
/// `[pool rows, kv_heads, d_v]` hold logical row `s` at the pool row `pages` gives (`None`: at
/// row `s`). A prefill that takes the products path reads the rows gathered in order.
pub fn attention_paged(
    batch: &mut Batch,
    q: &GpuTensor,
    (k, v): (&GpuTensor, &GpuTensor),
    pages: Option<Pages>,
    how: AttentionShape,
) -> Result<GpuTensor> {
    expect_rank("attention", "q", q, 3..=3)?;
    expect_rank_any_dtype("attention", "k", k, 3..=3)?;
    expect_rank_any_dtype("attention", "v", v, 3..=3)?;
    let shape = [q.shape()[0], q.shape()[1], v.shape()[2]];
    let rows_held = pages.is_some() || how.n_kv <= k.shape()[0];
    if products_fit(q, k.shape()[1], how) && rows_held {
        let plain = pages.is_none() && KvFormat::of("attention", "k", k)? == KvFormat::F32;
        let o = match plain {
            true => attention_by_products(batch, q, k, v, how)?,
            false => {
                let k = super::cache_rows_f32(batch, k, pages, how.n_kv)?;
                let v = super::cache_rows_f32(batch, v, pages, how.n_kv)?;
                attention_by_products(batch, q, &k, &v, how)?
            }
        };
        if let Some(o) = o {
            return Ok(o);
        }
    }
    let o = GpuTensor::scratch(batch.ctx(), "attention", &shape, DType::F32)?;
    attention_into_paged(batch, q, (k, v), &o, pages, how)?;
    Ok(o)
}

/// Queries from which a prefill takes the products path.
const PRODUCTS_MIN_QUERIES: usize = 16;
/// Most bytes of scores the products path holds at once.
const PRODUCTS_MAX_SCORE_BYTES: usize = 64 << 20;

/// Whether a prefill of `q` `[n, heads, d_qk]` over `kv_heads` key heads takes the products
/// path: not for few queries, a sliding window, or scores over [`PRODUCTS_MAX_SCORE_BYTES`].
fn products_fit(q: &GpuTensor, kv_heads: usize, how: AttentionShape) -> bool {
    let (n, heads, n_kv) = (q.shape()[0], q.shape()[1], how.n_kv);
    n >= PRODUCTS_MIN_QUERIES
        && how.window == 0
        && n_kv >= 1
        && kv_heads > 0
        && heads % kv_heads == 0
        && heads * n * n_kv * 4 <= PRODUCTS_MAX_SCORE_BYTES
        && (!how.causal || n <= n_kv)
}

/// Prefill attention as transformers' eager attention computes it, on the tiled matrix
/// kernels: `S = Q·Kᵀ` per head, `P = softmax(scale·S)` with the causal mask, `O = P·V`, with
/// the heads moved to the front and back. `None` (the fused kernel's job) where
/// [`products_fit`] says no, or `k` holds fewer than `n_kv` rows.
fn attention_by_products(
    batch: &mut Batch,
    q: &GpuTensor,
    k: &GpuTensor,
    v: &GpuTensor,
    how: AttentionShape,
) -> Result<Option<GpuTensor>> {
    let (n, heads, d_qk) = (q.shape()[0], q.shape()[1], q.shape()[2]);
    let (kv_heads, d_v) = (k.shape()[1], v.shape()[2]);
    let n_kv = how.n_kv;
    if !products_fit(q, kv_heads, how) || n_kv > k.shape()[0] {
        return Ok(None);
    }
    let group = heads / kv_heads;
    // Head-major: the `group` query heads of each key head are contiguous rows.
    let qh = super::permute01(batch, q)?.reshape(&[kv_heads, group * n, d_qk])?;
    let kh = super::permute01(batch, &k.rows(n_kv)?)?;
    let vh = super::permute01(batch, &v.rows(n_kv)?)?;
    let scores = super::matmul(batch, &qh, &kh, true)?.reshape(&[heads, n, n_kv])?;
    let causal = how.causal.then(|| n_kv - n);
    let probs = super::softmax_scaled(batch, &scores, causal, how.scale)?;
    let probs = probs.reshape(&[kv_heads, group * n, n_kv])?;
    let o = super::matmul(batch, &probs, &vh, false)?.reshape(&[heads, n, d_v])?;
    Ok(Some(super::permute01(batch, &o)?))
}

/// As [`attention`], writing into `o` (always the fused kernels).
pub fn attention_into(
    batch: &mut Batch,
    q: &GpuTensor,
    k: &GpuTensor,
    v: &GpuTensor,
    o: &GpuTensor,
    how: AttentionShape,
) -> Result<()> {
    attention_into_paged(batch, q, (k, v), o, None, how)
}

/// As [`attention_paged`], writing into `o` (always the fused kernels).
pub fn attention_into_paged(
    batch: &mut Batch,
    q: &GpuTensor,
    (k, v): (&GpuTensor, &GpuTensor),
    o: &GpuTensor,
    pages: Option<Pages>,
    how: AttentionShape,
) -> Result<()> {
    const OP: &str = "attention";
    expect_rank(OP, "q", q, 3..=3)?;
    expect_rank_any_dtype(OP, "k", k, 3..=3)?;
    expect_rank_any_dtype(OP, "v", v, 3..=3)?;
    let (n_q, heads, d_qk) = (q.shape()[0], q.shape()[1], q.shape()[2]);
    let (cap, kv_heads) = (k.shape()[0], k.shape()[1]);
    let d_v = v.shape()[2];
    expect_shape(OP, "k", k, &[cap, kv_heads, d_qk])?;
    expect_shape(OP, "v", v, &[cap, kv_heads, d_v])?;
    expect_shape(OP, "o", o, &[n_q, heads, d_v])?;
    if pages.is_none() && how.n_kv > cap {
        return Err(shape_err(OP, "valid keys", format!("1..={cap}"), how.n_kv));
    }
    attention_views(
        batch,
        &AttentionViews {
            q: View::contiguous(q),
            ka: View::contiguous(k),
            kb: None,
            v: View::contiguous(v),
            o: View::contiguous(o),
            n_q,
            heads,
            kv_heads,
            d_qk,
            d_a: d_qk,
            d_v,
            how,
            pages,
        },
    )
}

/// Attention over strided views (see [`AttentionViews`]); checks every view stays inside its
/// buffer.
pub fn attention_views(batch: &mut Batch, a: &AttentionViews) -> Result<()> {
    const OP: &str = "attention";
    let (n_q, heads, kv_heads, n_kv) = (a.n_q, a.heads, a.kv_heads, a.how.n_kv);
    if n_q == 0 || heads == 0 || kv_heads == 0 || a.d_qk == 0 || a.d_v == 0 {
        return Err(shape_err(OP, "sizes", "all positive", format!("{a:?}")));
    }
    if heads % kv_heads != 0 {
        return Err(shape_err(
            OP,
            "kv heads",
            format!("a divisor of {heads}"),
            kv_heads,
        ));
    }
    if n_kv == 0 {
        return Err(shape_err(OP, "valid keys", "at least 1", n_kv));
    }
    if a.how.window > 0 && !a.how.causal {
        return Err(shape_err(
            OP,
            "sliding window",
            "causal attention (or window 0)",
            format!("window {} without causal", a.how.window),
        ));
    }
    if a.how.causal && n_q > n_kv {
        return Err(shape_err(
            OP,
            "causal queries",
            format!("<= keys ({n_kv})"),
            n_q,
        ));
    }
    if a.d_qk > MAX_D_QK {
        return Err(shape_err(
            OP,
            "query/key head width",
            format!("<= {MAX_D_QK}"),
            a.d_qk,
        ));
    }
    if a.d_v > MAX_D_V {
        return Err(shape_err(
            OP,
            "value head width",
            format!("<= {MAX_D_V}"),
            a.d_v,
        ));
    }
    if a.d_a > a.d_qk || (a.d_a < a.d_qk && a.kb.is_none()) {
        return Err(shape_err(
            OP,
            "key split",
            format!("d_a <= d_qk ({}) and a second key part when less", a.d_qk),
            a.d_a,
        ));
    }
    let kb = a.kb.unwrap_or(a.ka);
    // Keys and values in one cache format, the kernels counting its words.
    let format = KvFormat::of_all(
        OP,
        &[
            ("k", a.ka.tensor),
            ("k (second part)", kb.tensor),
            ("v", a.v.tensor),
        ],
    )?;
    // The key and value rows the queries see, and through a page table the pool rows they
    // are: the views must hold them.
    let first_key = match a.how.causal && a.how.window > 0 {
        true => (n_kv - n_q + 1).saturating_sub(a.how.window),
        false => 0,
    };
    let kv_rows = match &a.pages {
        Some(pages) => pages.last_row(OP, first_key, n_kv)? + 1,
        None => n_kv,
    };
    let checks = [
        ("q", &a.q, n_q, heads, a.d_qk),
        ("k", &a.ka, kv_rows, kv_heads, a.d_a.max(1)),
        (
            "k (second part)",
            &kb,
            kv_rows,
            kv_heads,
            (a.d_qk - a.d_a).max(1),
        ),
        ("v", &a.v, kv_rows, kv_heads, a.d_v),
        ("o", &a.o, n_q, heads, a.d_v),
    ];
    for (what, view, rows, hs, width) in checks {
        let last = view.last(rows, hs, width);
        if last >= view.tensor.numel() {
            return Err(shape_err(
                OP,
                format!("{what} view of '{}'", view.tensor.label()),
                format!("indices below {}", view.tensor.numel()),
                format!("index {last}"),
            ));
        }
    }
    let u = |what: &str, v: usize| as_u32(OP, what, v);
    let params = AttentionParams {
        n_q: u("queries", n_q)?,
        n_kv: u("keys", n_kv)?,
        heads: u("heads", heads)?,
        kv_heads: u("kv heads", kv_heads)?,
        d_qk: u("d_qk", a.d_qk)?,
        d_a: u("d_a", a.d_a)?,
        d_v: u("d_v", a.d_v)?,
        causal: a.how.causal as u32,
        offset: u("offset", n_kv - n_q.min(n_kv))?,
        scale: a.how.scale,
        q: a.q.packed(OP, "q view")?,
        ka: a.ka.words(format, "k view")?,
        kb: kb.words(format, "k view")?,
        v: a.v.words(format, "v view")?,
        o: a.o.packed(OP, "o view")?,
        window: u("window", a.how.window)?,
        heads_per_group: 0,
        page_tokens: match &a.pages {
            Some(pages) => pages.param(OP)?,
            None => 0,
        },
    };
    // Unpaged, the table is not read: the queries stand in for it.
    let table = a.pages.map_or(a.q.tensor, |p| p.table);
    let bound = (
        format.bound(a.ka.tensor)?,
        format.bound(kb.tensor)?,
        format.bound(a.v.tensor)?,
    );
    let tensors = [a.q.tensor, &bound.0, &bound.1, &bound.2, a.o.tensor, table];
    let group = heads / kv_heads;
    if n_q == 1 && group >= DECODE_MIN_GROUP {
        // Decode where many heads share a key/value head (MLA's absorbed path, wide GQA): each
        // of its rows is read once per block of up to 8 heads whose queries fit 2048 floats of
        // workgroup memory, instead of once per head.
        let per_block = group
            .min(DECODE_MAX_BLOCK)
            .min(DECODE_MAX_Q / a.d_qk)
            .max(1);
        let params = AttentionParams {
            heads_per_group: per_block as u32,
            ..params
        };
        let workgroups = kv_heads * group.div_ceil(per_block);
        let wg = grid(batch.ctx(), OP, workgroups as u64)?;
        let kernel = match format {
            KvFormat::F32 => &shaders::ATTENTION_DECODE,
            KvFormat::F16 => &shaders::ATTENTION_DECODE_F16,
        };
        return batch.dispatch(kernel, &[], Some(bytemuck::bytes_of(&params)), &tensors, wg);
    }
    // Keys (both parts) and values in whole groups of four values: the wide-load kernels.
    let aligned = |view: &View| {
        [view.offset, view.row_stride, view.head_stride]
            .iter()
            .all(|x| x % 4 == 0)
    };
    let wide = a.d_a.is_multiple_of(4)
        && a.d_qk.is_multiple_of(4)
        && a.d_v.is_multiple_of(4)
        && aligned(&a.ka)
        && aligned(&kb)
        && aligned(&a.v);
    let v4 = format == KvFormat::F32 && wide;
    // Decode with subgroups of one size: a subgroup per head, no barriers.
    if let Some(lanes) = batch.ctx().fixed_subgroup_size() {
        let fits = |d: usize| d <= 16 * lanes as usize;
        if n_q == 1 && wide && aligned(&a.q) && fits(a.d_qk) && fits(a.d_v) {
            if let Some(constants) = lanes_constants(lanes) {
                let wg = grid(batch.ctx(), OP, heads as u64)?;
                let params = Some(bytemuck::bytes_of(&params));
                let kernel = match format {
                    KvFormat::F32 => &shaders::ATTENTION_LANES,
                    KvFormat::F16 => &shaders::ATTENTION_LANES_F16,
                };
                return batch.dispatch(kernel, constants, params, &tensors, wg);
            }
        }
    }
    let kernel = match (format, v4) {
        (KvFormat::F16, _) => &shaders::ATTENTION_FUSED_F16,
        (KvFormat::F32, true) => &shaders::ATTENTION_FUSED_V4,
        (KvFormat::F32, false) => &shaders::ATTENTION_FUSED,
    };
    let wg = grid(batch.ctx(), OP, (n_q * heads) as u64)?;
    batch.dispatch(kernel, &[], Some(bytemuck::bytes_of(&params)), &tensors, wg)?;
    Ok(())
}
