//! The kernels that write and read a paged KV cache (`qkv_rope`, `mla_rope`, `attention` in
//! every path: products, fused, fused over vec4s, decode blocks, subgroup lanes) against the
//! same kernels over a whole cache: the pages only move rows, so the results must be the same
//! bits (tolerance 0). Page sizes 1, 7 and 256, pages in a shuffled order, and every pool row a
//! page table does not map filled with NaN, so a row read from a wrong place shows.

use super::kernel_checks::upload;
use super::numeric::Rng;
use latentgpu::ops::{self, AttentionShape, Pages, QkvExtras, RopeMode, RopeTable};
use latentgpu::{Batch, GpuContext, GpuTensor};

/// Tokens per page the checks take: one token, a prime, the default.
const PAGE_SIZES: [usize; 3] = [1, 7, 256];

/// A page table of `logical` pages in a seeded shuffled order over `logical + spare` pool
/// pages (the spare ones stay unmapped).
fn shuffled_table(rng: &mut Rng, logical: usize, spare: usize) -> Vec<u32> {
    let mut pool: Vec<u32> = (0..(logical + spare) as u32).collect();
    for i in (1..pool.len()).rev() {
        pool.swap(i, (rng.next_u64() % (i as u64 + 1)) as usize);
    }
    pool.truncate(logical);
    pool
}

/// `rows` `[n, width]` placed in a pool of `pool_pages` pages of `p` rows by `table`, every
/// other value NaN.
fn scatter(rows: &[f32], width: usize, table: &[u32], p: usize, pool_pages: usize) -> Vec<f32> {
    let mut pool = vec![f32::NAN; pool_pages * p * width];
    for (s, row) in rows.chunks(width).enumerate() {
        let at = (table[s / p] as usize * p + s % p) * width;
        pool[at..at + width].copy_from_slice(row);
    }
    pool
}

/// Rows `0..n` of `pool` `[pool rows, width]` in logical order, by `table`.
fn gather(
    pool: &[f32],
    width: usize,
    table: &[u32],
    p: usize,
    rows: std::ops::Range<usize>,
) -> Vec<f32> {
    let mut out = Vec::new();
    for s in rows {
        let at = (table[s / p] as usize * p + s % p) * width;
        out.extend_from_slice(&pool[at..at + width]);
    }
    out
}

/// Asserts `a` and `b` are the same bits.
fn assert_same_bits(what: &str, a: &[f32], b: &[f32]) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            x.to_bits() == y.to_bits(),
            "{what}: element {i} is {x} over the paged cache, {y} over the whole one"
        );
    }
}

/// Attention over a paged cache equals attention over the same rows in one whole cache, in
/// every path the shapes pick. Pages a sliding window has moved past point, in the GPU's
/// table, at a pool page of NaN (the host's table says they are not held).
pub async fn paged_attention(ctx: &GpuContext) {
    let mut rng = Rng::new(41);
    // (queries, keys, heads, kv heads, d_qk, d_v, window)
    let shapes = [
        (1, 1, 1, 1, 4, 4, 0),       // one key
        (1, 300, 4, 2, 64, 64, 0),   // decode: fused over vec4s, or subgroup lanes
        (1, 130, 20, 2, 32, 24, 0),  // decode: heads in blocks over shared rows
        (1, 130, 20, 2, 32, 24, 65), // the same in a window
        (3, 100, 2, 2, 17, 5, 0),    // scalar fused (widths not multiples of 4)
        (20, 70, 4, 2, 16, 16, 0),   // prefill: the products path, rows gathered
        (20, 90, 6, 2, 16, 16, 9),   // prefill in a window: fused
    ];
    for p in PAGE_SIZES {
        for &(n_q, n_kv, heads, kv_heads, d_qk, d_v, window) in &shapes {
            let q = rng.vec(n_q * heads * d_qk, -1.0, 1.0);
            let k = rng.vec(n_kv * kv_heads * d_qk, -1.0, 1.0);
            let v = rng.vec(n_kv * kv_heads * d_v, -1.0, 1.0);
            let logical = n_kv.div_ceil(p);
            let spare = 2;
            let mut table = shuffled_table(&mut rng, logical, spare);
            let pool_pages = logical + spare;
            let pool_k = scatter(&k, kv_heads * d_qk, &table, p, pool_pages);
            let pool_v = scatter(&v, kv_heads * d_v, &table, p, pool_pages);
            // Pages wholly before the first key any query sees: not held on the host; on the
            // GPU, a spare page (NaN) that must not be read.
            let first_key = match window {
                0 => 0,
                w => (n_kv - n_q + 1).saturating_sub(w),
            };
            let mut host = table.clone();
            let nan_page = (0..pool_pages as u32).find(|x| !table.contains(x)).unwrap();
            for page in 0..first_key / p {
                host[page] = Pages::NOT_HELD;
                table[page] = nan_page;
            }
            let how = AttentionShape {
                scale: 1.0 / (d_qk as f32).sqrt(),
                causal: true,
                n_kv,
                window,
            };
            let gq = upload(ctx, "q", &[n_q, heads, d_qk], &q);
            let gk = upload(ctx, "k", &[n_kv, kv_heads, d_qk], &k);
            let gv = upload(ctx, "v", &[n_kv, kv_heads, d_v], &v);
            let pk = upload(ctx, "k pool", &[pool_pages * p, kv_heads, d_qk], &pool_k);
            let pv = upload(ctx, "v pool", &[pool_pages * p, kv_heads, d_v], &pool_v);
            let gt = GpuTensor::from_u32(ctx, "page table", &[logical], &table).unwrap();
            let pages = Pages {
                table: &gt,
                host: &host,
                page_tokens: p,
            };
            let mut b = Batch::new(ctx);
            let whole = ops::attention(&mut b, &gq, &gk, &gv, how).unwrap();
            let paged = ops::attention_paged(&mut b, &gq, (&pk, &pv), Some(pages), how).unwrap();
            let out = b.read_async(&[&whole, &paged]).await.unwrap();
            assert_same_bits(
                &format!("attention q{n_q} kv{n_kv} h{heads}/{kv_heads} d{d_qk}/{d_v} window {window}, pages of {p}"),
                &out[1],
                &out[0],
            );
        }
    }
}

/// `qkv_rope` writes the same keys and values into a paged cache as into a whole one, at the
/// rows the page table gives, across page boundaries; into an f16 cache, the same values
/// rounded to f16.
pub async fn paged_qkv_rope(ctx: &GpuContext) {
    let mut rng = Rng::new(42);
    // (tokens, heads, kv heads, head width, first position)
    let shapes: [(usize, usize, usize, usize, usize); 3] =
        [(1, 1, 1, 2, 0), (5, 4, 2, 6, 5), (9, 3, 1, 64, 250)];
    for p in PAGE_SIZES {
        for &(n, h, kv, dh, pos) in &shapes {
            let slots = h + 2 * kv;
            let end = pos + n;
            let logical = end.div_ceil(p);
            let table = shuffled_table(&mut rng, logical, 1);
            let pool_rows = (logical + 1) * p;
            let rope = RopeTable::new(ctx, dh, 10000.0, end).unwrap();
            let x = rng.vec(n * slots * dh, -2.0, 2.0);
            let aux = rng.vec((slots + 2) * dh, 0.5, 1.5);
            let gx = upload(ctx, "qkv", &[n, slots * dh], &x);
            let gaux = upload(ctx, "aux", &[(slots + 2) * dh], &aux);
            let extras = QkvExtras {
                aux: &gaux,
                bias: true,
                norm_eps: Some(1e-6),
            };
            let zeros = |rows: usize| GpuTensor::zeros(ctx, "cache", &[rows, kv, dh]).unwrap();
            let (wk, wv, pk, pv) = (zeros(end), zeros(end), zeros(pool_rows), zeros(pool_rows));
            let gt = GpuTensor::from_u32(ctx, "page table", &[logical], &table).unwrap();
            let pages = Pages {
                table: &gt,
                host: &table,
                page_tokens: p,
            };
            let f16 = |rows: usize| {
                GpuTensor::empty(ctx, "cache", &[rows, kv, dh], latentgpu::DType::F16).unwrap()
            };
            let (hk, hv) = (f16(pool_rows), f16(pool_rows));
            let mut b = Batch::new(ctx);
            let rope = (&rope, RopeMode::HalfSplit);
            let (h3, at) = ((h, kv, dh), (pos, pos));
            let q_whole =
                ops::qkv_rope(&mut b, &gx, h3, &extras, rope, at, (&wk, &wv, None)).unwrap();
            let q_paged =
                ops::qkv_rope(&mut b, &gx, h3, &extras, rope, at, (&pk, &pv, Some(pages))).unwrap();
            let q_half =
                ops::qkv_rope(&mut b, &gx, h3, &extras, rope, at, (&hk, &hv, Some(pages))).unwrap();
            let out = b
                .read_async(&[&q_whole, &q_paged, &wk, &wv, &pk, &pv, &q_half])
                .await
                .unwrap();
            let what = format!("qkv_rope n{n} h{h}/{kv} d{dh} pos{pos}, pages of {p}");
            let row = kv * dh;
            assert_same_bits(&format!("{what}: q"), &out[1], &out[0]);
            let whole_rows = |t: &[f32]| t[pos * row..end * row].to_vec();
            let paged_k = gather(&out[4], row, &table, p, pos..end);
            let paged_v = gather(&out[5], row, &table, p, pos..end);
            assert_same_bits(&format!("{what}: k"), &paged_k, &whole_rows(&out[2]));
            assert_same_bits(&format!("{what}: v"), &paged_v, &whole_rows(&out[3]));
            assert_same_bits(&format!("{what}: q, f16 cache"), &out[6], &out[0]);
            let half_k = gather(&read_f16(ctx, &hk).await, row, &table, p, pos..end);
            let half_v = gather(&read_f16(ctx, &hv).await, row, &table, p, pos..end);
            assert_f16_rounding(&format!("{what}: f16 k"), &half_k, &paged_k);
            assert_f16_rounding(&format!("{what}: f16 v"), &half_v, &paged_v);
        }
    }
}

/// `mla_rope` writes the same `c_kv` and `k_pe` into a paged cache as into a whole one; into an
/// f16 cache (widths even), the same values rounded to f16.
pub async fn paged_mla_rope(ctx: &GpuContext) {
    let mut rng = Rng::new(43);
    // (tokens, heads, kv_lora, rope, first position)
    let shapes: [(usize, usize, usize, usize, usize); 4] = [
        (1, 1, 1, 2, 0),
        (6, 3, 65, 16, 4),
        (3, 2, 32, 8, 255),
        (9, 2, 66, 16, 3),
    ];
    for p in PAGE_SIZES {
        for &(n, h, r, rope, pos) in &shapes {
            let end = pos + n;
            let logical = end.div_ceil(p);
            let table = shuffled_table(&mut rng, logical, 1);
            let pool_rows = (logical + 1) * p;
            let rope_table = RopeTable::new(ctx, rope, 10000.0, end).unwrap();
            let q = rng.vec(n * h * rope, -2.0, 2.0);
            let kv = rng.vec(n * (r + rope), -2.0, 2.0);
            let w = rng.vec(r, 0.5, 1.5);
            let gkv = upload(ctx, "kv", &[n, r + rope], &kv);
            let gw = upload(ctx, "norm", &[r], &w);
            let (q1, q2, q3) = (
                upload(ctx, "q", &[n, h, rope], &q),
                upload(ctx, "q", &[n, h, rope], &q),
                upload(ctx, "q", &[n, h, rope], &q),
            );
            let zeros = |rows: usize, w: usize| GpuTensor::zeros(ctx, "cache", &[rows, w]).unwrap();
            let (wc, wp) = (zeros(end, r), zeros(end, rope));
            let (pc, pp) = (zeros(pool_rows, r), zeros(pool_rows, rope));
            let gt = GpuTensor::from_u32(ctx, "page table", &[logical], &table).unwrap();
            let pages = Pages {
                table: &gt,
                host: &table,
                page_tokens: p,
            };
            let mut b = Batch::new(ctx);
            let (norm, at) = ((&gw, 1e-6), (&rope_table, pos));
            ops::mla_rope(&mut b, &q1, 0, &gkv, norm, at, (&wc, &wp, None)).unwrap();
            ops::mla_rope(&mut b, &q2, 0, &gkv, norm, at, (&pc, &pp, Some(pages))).unwrap();
            // An f16 cache packs value pairs: even widths only.
            let half = r % 2 == 0;
            let f16 = |w: usize| {
                GpuTensor::empty(ctx, "cache", &[pool_rows, w], latentgpu::DType::F16).unwrap()
            };
            let (hc, hp) = (f16(r), f16(rope));
            if half {
                ops::mla_rope(&mut b, &q3, 0, &gkv, norm, at, (&hc, &hp, Some(pages))).unwrap();
            }
            let out = b
                .read_async(&[&q1, &q2, &wc, &wp, &pc, &pp, &q3])
                .await
                .unwrap();
            let what = format!("mla_rope n{n} h{h} r{r} rope{rope} pos{pos}, pages of {p}");
            assert_same_bits(&format!("{what}: q"), &out[1], &out[0]);
            let paged_c = gather(&out[4], r, &table, p, pos..end);
            let paged_pe = gather(&out[5], rope, &table, p, pos..end);
            assert_same_bits(
                &format!("{what}: c_kv"),
                &paged_c,
                &out[2][pos * r..end * r],
            );
            assert_same_bits(
                &format!("{what}: k_pe"),
                &paged_pe,
                &out[3][pos * rope..end * rope],
            );
            if half {
                assert_same_bits(&format!("{what}: q, f16 cache"), &out[6], &out[0]);
                let half_c = gather(&read_f16(ctx, &hc).await, r, &table, p, pos..end);
                let half_pe = gather(&read_f16(ctx, &hp).await, rope, &table, p, pos..end);
                assert_f16_rounding(&format!("{what}: f16 c_kv"), &half_c, &paged_c);
                assert_f16_rounding(&format!("{what}: f16 k_pe"), &half_pe, &paged_pe);
            }
        }
    }
}

/// Asserts each of `f16` (read from an f16 cache) is its twin of `f32` rounded to f16: within
/// half an f16 ulp, |x|·2⁻¹¹, or 2⁻²⁵ below f16's normal range (a NaN fails).
fn assert_f16_rounding(what: &str, f16: &[f32], f32s: &[f32]) {
    assert_eq!(f16.len(), f32s.len(), "{what}: lengths");
    for (i, (a, b)) in f16.iter().zip(f32s).enumerate() {
        let bound = (b.abs() as f64 * 2f64.powi(-11)).max(2f64.powi(-25));
        let err = (*a as f64 - *b as f64).abs();
        assert!(err <= bound, "{what}: value {i} is {a} in f16, {b} in f32");
    }
}

/// `values` rounded to f16 (round to nearest even), as f32.
fn to_f16_values(values: &[f32]) -> Vec<f32> {
    values
        .iter()
        .map(|&x| half::f16::from_f32(x).to_f32())
        .collect()
}

/// An f16 tensor's values read back.
async fn read_f16(ctx: &GpuContext, t: &GpuTensor) -> Vec<f32> {
    let bytes = Batch::new(ctx)
        .read_bytes_async(&[t])
        .await
        .unwrap()
        .remove(0);
    bytes
        .chunks_exact(2)
        .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
        .collect()
}

/// Attention over a paged f16 cache against the f64 reference on the same (f16) values, in
/// the paths an f16 cache takes: fused (scalar loads), decode blocks, and the products path
/// over rows gathered and widened to f32.
pub async fn f16_attention(ctx: &GpuContext) {
    let mut rng = Rng::new(44);
    // (queries, keys, heads, kv heads, d_qk, d_v, window)
    let shapes = [
        (1, 1, 1, 1, 2, 2, 0),
        (1, 300, 4, 2, 64, 64, 0),
        (1, 130, 20, 2, 32, 24, 0),
        (3, 100, 2, 2, 18, 6, 0),
        (20, 70, 4, 2, 16, 16, 0),
        (20, 90, 6, 2, 16, 16, 9),
    ];
    for p in PAGE_SIZES {
        for &(n_q, n_kv, heads, kv_heads, d_qk, d_v, window) in &shapes {
            let q = rng.vec(n_q * heads * d_qk, -1.0, 1.0);
            let k = to_f16_values(&rng.vec(n_kv * kv_heads * d_qk, -1.0, 1.0));
            let v = to_f16_values(&rng.vec(n_kv * kv_heads * d_v, -1.0, 1.0));
            let logical = n_kv.div_ceil(p);
            let table = shuffled_table(&mut rng, logical, 1);
            let pool_pages = logical + 1;
            let pool = |rows: &[f32], width: usize, label: &str| {
                let data = scatter(rows, kv_heads * width, &table, p, pool_pages);
                let shape = [pool_pages * p, kv_heads, width];
                GpuTensor::from_f32_as_f16(ctx, label, &shape, &data).unwrap()
            };
            let (pk, pv) = (pool(&k, d_qk, "k pool"), pool(&v, d_v, "v pool"));
            let gq = upload(ctx, "q", &[n_q, heads, d_qk], &q);
            let gt = GpuTensor::from_u32(ctx, "page table", &[logical], &table).unwrap();
            let pages = Pages {
                table: &gt,
                host: &table,
                page_tokens: p,
            };
            let scale = 1.0 / (d_qk as f32).sqrt();
            let how = AttentionShape {
                scale,
                causal: true,
                n_kv,
                window,
            };
            let mut b = Batch::new(ctx);
            let o = ops::attention_paged(&mut b, &gq, (&pk, &pv), Some(pages), how).unwrap();
            let out = b.read_async(&[&o]).await.unwrap().remove(0);
            let reference = latentgpu::cpu::attention_windowed(
                &q, &k, &v, n_q, n_kv, heads, kv_heads, d_qk, d_v, scale, true, window,
            );
            // The f32 kernels' bound (kernel_checks::check_attention) on the f16 values: the
            // cache adds no error of its own once the values are f16.
            let tol = 8.0 * ((d_qk as f64).sqrt() + (n_kv as f64).sqrt() + 8.0) * super::numeric::U;
            super::numeric::assert_close(
                &format!("f16 cache attention q{n_q} kv{n_kv} h{heads}/{kv_heads} d{d_qk}/{d_v} window {window}, pages of {p}"),
                &out,
                &reference,
                tol,
            );
        }
    }
}
