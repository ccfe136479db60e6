//! The kernels' checks against their f64 CPU references, written once as async functions: the
//! native tests (`tests/kernels.rs`) block on them for every adapter, the browser tests
//! (`tests/browser.rs`) await them on the browser's adapter.

use super::numeric::{assert_close, assert_close_by, bits, max_abs, reduction_tol, Rng, U};
use latentgpu::cpu;
use latentgpu::ops::{self, AttentionShape, BinaryOp, GatherState, RopeMode, RopeTable, UnaryOp};
use latentgpu::{Batch, DType, GpuContext, GpuTensor};

/// Uploads f32 data.
pub fn upload(ctx: &GpuContext, label: &str, shape: &[usize], data: &[f32]) -> GpuTensor {
    GpuTensor::from_f32(ctx, label, shape, data).expect("upload")
}

/// One product of random inputs in [-1, 1] against the reference.
#[allow(clippy::too_many_arguments)]
pub async fn run_matmul(
    ctx: &GpuContext,
    rng: &mut Rng,
    batch: usize,
    m: usize,
    n: usize,
    k: usize,
    t: bool,
    b_batched: bool,
) {
    let a = rng.vec(batch * m * k, -1.0, 1.0);
    let b = rng.vec(if b_batched { batch } else { 1 } * n * k, -1.0, 1.0);
    let a_shape = if batch == 1 {
        vec![m, k]
    } else {
        vec![batch, m, k]
    };
    let (r, c) = if t { (n, k) } else { (k, n) };
    let b_shape = if b_batched {
        vec![batch, r, c]
    } else {
        vec![r, c]
    };
    let ga = upload(ctx, "A", &a_shape, &a);
    let gb = upload(ctx, "B", &b_shape, &b);
    let mut bt = Batch::new(ctx);
    let gc = ops::matmul(&mut bt, &ga, &gb, t).expect("matmul");
    let out = bt.read_async(&[&gc]).await.expect("read").remove(0);
    let reference = cpu::matmul(&a, &b, batch, m, n, k, t, b_batched);
    // Inputs in [-1, 1]: every product is at most 1, so the reduction's scale is 1 per term and
    // the sum's rounding error is c·sqrt(K)·u·1 times sqrt(K) terms' magnitude... bounded by
    // c·sqrt(K)·u·max(|C|, sqrt(K)) with c = 8 (Gaussian tail over <= 10^6 outputs is < 5σ, and
    // each product's own rounding adds one more u per term).
    let scale = max_abs(&reference).max((k as f64).sqrt());
    let tol = reduction_tol(k, scale, 8.0);
    assert_close(
        &format!("matmul b{batch} m{m} n{n} k{k} t{t} bb{b_batched}"),
        &out,
        &reference,
        tol,
    );
}

#[allow(clippy::too_many_arguments)]
async fn check_attention(
    ctx: &GpuContext,
    rng: &mut Rng,
    n_q: usize,
    n_kv: usize,
    cap: usize,
    heads: usize,
    kv_heads: usize,
    d_qk: usize,
    d_v: usize,
    causal: bool,
    window: usize,
) {
    let q = rng.vec(n_q * heads * d_qk, -1.0, 1.0);
    let k = rng.vec(cap * kv_heads * d_qk, -1.0, 1.0);
    let v = rng.vec(cap * kv_heads * d_v, -1.0, 1.0);
    let scale = 1.0 / (d_qk as f32).sqrt();
    let gq = upload(ctx, "q", &[n_q, heads, d_qk], &q);
    let gk = upload(ctx, "k", &[cap, kv_heads, d_qk], &k);
    let gv = upload(ctx, "v", &[cap, kv_heads, d_v], &v);
    let mut b = Batch::new(ctx);
    let how = AttentionShape {
        scale,
        causal,
        n_kv,
        window,
    };
    // `attention` takes the products path for a prefill of 16 queries or more without a
    // window; `attention_into` always runs the fused kernel. Both are checked.
    let o = ops::attention(&mut b, &gq, &gk, &gv, how).unwrap();
    let fused = GpuTensor::zeros(ctx, "o", &[n_q, heads, d_v]).unwrap();
    ops::attention_into(&mut b, &gq, &gk, &gv, &fused, how).unwrap();
    let outs = b.read_async(&[&o, &fused]).await.unwrap();
    let reference = cpu::attention_windowed(
        &q, &k, &v, n_q, n_kv, heads, kv_heads, d_qk, d_v, scale, causal, window,
    );
    // Scores: a d_qk reduction of terms <= 1, scaled: error c·sqrt(d_qk)·u·sqrt(d_qk)·scale = c·sqrt(d_qk)·u.
    // That moves each probability by the same relative amount (times exp's few ULP), and the
    // weighted sum over n_kv values <= 1 adds c·sqrt(n_kv)·u; |o| <= 1. Absolute tol with c = 8.
    let tol = 8.0 * ((d_qk as f64).sqrt() + (n_kv as f64).sqrt() + 8.0) * U;
    for (path, out) in ["attention", "fused kernel"].iter().zip(&outs) {
        assert_close(
            &format!(
                "{path} q{n_q} kv{n_kv}/{cap} h{heads}/{kv_heads} d{d_qk}/{d_v} causal {causal} window {window}"
            ),
            out,
            &reference,
            tol,
        );
    }
}

/// `A·B` and `A·Bᵀ` on awkward shapes, scalar and vec4-tiled paths.
pub async fn matmul_on_awkward_shapes(ctx: &GpuContext) {
    let mut rng = Rng::new(1);
    for &(m, n, k) in &[
        (1, 1, 1),
        (3, 5, 7),
        (17, 63, 65),
        (64, 64, 64),
        (65, 63, 17),
        (1, 257, 1000),
        (2, 1003, 3),
        (129, 66, 257),
        // K % 4 == 0 (and for A·B, N % 4 == 0): the vec4 kernels, at and past their
        // 64-row, 64/128-column workgroup tiles.
        (1, 4, 4),
        (3, 12, 4),
        (65, 129, 68),
        (64, 128, 1024),
        (130, 260, 36),
        (17, 1000, 252),
    ] {
        for t in [false, true] {
            run_matmul(ctx, &mut rng, 1, m, n, k, t, false).await;
        }
    }
}

/// Batched products, with `B` batched or shared.
pub async fn batched_matmul(ctx: &GpuContext) {
    let mut rng = Rng::new(2);
    for t in [false, true] {
        run_matmul(ctx, &mut rng, 3, 17, 33, 65, t, true).await;
        run_matmul(ctx, &mut rng, 5, 1, 63, 257, t, true).await;
        run_matmul(ctx, &mut rng, 4, 9, 7, 5, t, false).await;
        // K % 4 == 0 and N % 4 == 0: the vec4 kernels, with rows past their 64-row tile (a
        // missing row guard writes into the next batch's rows) and one row per batch.
        run_matmul(ctx, &mut rng, 3, 65, 132, 68, t, true).await;
        run_matmul(ctx, &mut rng, 2, 17, 12, 4, t, false).await;
        run_matmul(ctx, &mut rng, 3, 1, 64, 128, t, true).await;
    }
}

/// The tiled products write nothing past their output's rows: the output is a view of a
/// zero-filled tensor one row longer, whose element count leaves the binding (padded to 16
/// bytes) room for up to three more floats, and the row after it must stay zero. A kernel
/// whose row guard is missing writes there. (Batched shapes cannot show it on adapters that
/// run workgroups in order: a batch's stray rows land in the next batch before that batch's
/// own workgroups overwrite them.)
pub async fn matmul_writes_nothing_past_its_output(ctx: &GpuContext) {
    let mut rng = Rng::new(21);
    // (m, n, k, transpose_b): the vec4 A·Bᵀ kernel (K % 4 == 0) and the scalar one, with M
    // one past a 64-row tile and M·N = 1 mod 4.
    for &(m, n, k, t) in &[(65, 5, 8, true), (65, 5, 7, true), (65, 5, 7, false)] {
        let a = rng.vec(m * k, -1.0, 1.0);
        let b = rng.vec(n * k, -1.0, 1.0);
        let ga = upload(ctx, "A", &[m, k], &a);
        let gb = upload(ctx, "B", &if t { [n, k] } else { [k, n] }, &b);
        let whole = GpuTensor::zeros(ctx, "C and one row more", &[m + 1, n]).unwrap();
        let c = whole.rows(m).unwrap();
        let mut bt = Batch::new(ctx);
        ops::matmul_into(&mut bt, &ga, &gb, t, &c).unwrap();
        let out = bt.read_async(&[&whole]).await.unwrap().remove(0);
        assert!(
            out[m * n..].iter().all(|&v| v == 0.0),
            "matmul m{m} n{n} k{k} t{t} wrote past its output: {:?}",
            &out[m * n..]
        );
        let reference = cpu::matmul(&a, &b, 1, m, n, k, t, false);
        let tol = reduction_tol(k, max_abs(&reference).max((k as f64).sqrt()), 8.0);
        assert_close("matmul into a view", &out[..m * n], &reference, tol);
    }
}

/// The matrix-vector path that decoding one token takes.
pub async fn matvec_decode_path(ctx: &GpuContext) {
    let mut rng = Rng::new(3);
    for &(n, k) in &[(1, 1), (3, 17), (1000, 63), (4099, 257), (65, 1024)] {
        run_matmul(ctx, &mut rng, 1, 1, n, k, true, false).await;
    }
}

/// Row softmax, plain and causal.
pub async fn softmax(ctx: &GpuContext) {
    let mut rng = Rng::new(4);
    // (rows, cols, causal offset, lowest value): rows in [80, 96] overflow exp() in f32 unless
    // the kernel subtracts the row's maximum first.
    for &(rows, cols, causal, lo) in &[
        (1, 1, None, -8.0),
        (3, 17, None, -8.0),
        (17, 1000, None, -8.0),
        (5, 257, Some(0), -8.0),
        (63, 63, Some(0), -8.0),
        (4, 65, Some(61), -8.0),
        (3, 257, None, 80.0),
        (7, 33, Some(0), 80.0),
    ] {
        let x = rng.vec(rows * cols, lo, lo + 16.0);
        let gx = upload(ctx, "x", &[rows, cols], &x);
        let mut b = Batch::new(ctx);
        let y = ops::softmax(&mut b, &gx, causal).unwrap();
        let out = b.read_async(&[&y]).await.unwrap().remove(0);
        let reference = cpu::softmax(&x, cols, rows, causal);
        // Each output is exp(x - m)/s: exp is within (3 + 2|x - m|) ULP (WGSL spec, |x - m| <= 16
        // here), the sum adds sqrt(cols)·u relative, the division 2.5 ULP: relative tol
        // (3 + 2·16 + 2.5 + 4·sqrt(cols))·u, plus 1e-30 absolute for underflowed tails.
        let rel = (37.5 + 4.0 * (cols as f64).sqrt()) * U;
        assert_close_by(
            &format!("softmax {rows}x{cols} {causal:?}"),
            &out,
            &reference,
            |i| rel * reference[i].abs() + 1e-30,
        );
    }
}

/// RMSNorm and LayerNorm.
pub async fn norms(ctx: &GpuContext) {
    let mut rng = Rng::new(5);
    for &(rows, d) in &[(1, 1), (3, 17), (7, 1000), (2, 4099), (65, 64)] {
        let x = rng.vec(rows * d, -3.0, 3.0);
        let w = rng.vec(d, 0.5, 1.5);
        let bias = rng.vec(d, -1.0, 1.0);
        let gx = upload(ctx, "x", &[rows, d], &x);
        let gw = upload(ctx, "w", &[d], &w);
        let gbias = upload(ctx, "b", &[d], &bias);
        let mut b = Batch::new(ctx);
        let rms = ops::rmsnorm(&mut b, &gx, &gw, 1e-6).unwrap();
        let ln = ops::layernorm(&mut b, &gx, &gw, &gbias, 1e-5).unwrap();
        let out = b.read_async(&[&rms, &ln]).await.unwrap();
        // The row statistic is a length-d reduction (relative error c·sqrt(d)·u), then an
        // inverse square root (2 ULP) and two products: relative tol (8·sqrt(d) + 6)·u of
        // each output's own magnitude; LayerNorm's centring adds the mean's error times
        // w/σ, covered by the absolute term scaled by max|y|.
        let rms_ref = cpu::rmsnorm(&x, &w, 1e-6);
        let rel = (8.0 * (d as f64).sqrt() + 6.0) * U;
        assert_close_by(&format!("rmsnorm {rows}x{d}"), &out[0], &rms_ref, |i| {
            rel * rms_ref[i].abs() + U
        });
        let ln_ref = cpu::layernorm(&x, &w, &bias, 1e-5);
        let scale = max_abs(&ln_ref);
        assert_close_by(&format!("layernorm {rows}x{d}"), &out[1], &ln_ref, |i| {
            rel * ln_ref[i].abs() + rel * scale
        });
    }
}

/// add, mul, SwiGLU, SiLU and both GELUs.
pub async fn elementwise_ops(ctx: &GpuContext) {
    let mut rng = Rng::new(6);
    for &n in &[1usize, 3, 257, 1000, 65537] {
        let a = rng.vec(n, -10.0, 10.0);
        let bv = rng.vec(n, -2.0, 2.0);
        let ga = upload(ctx, "a", &[n], &a);
        let gb = upload(ctx, "b", &[n], &bv);
        let mut b = Batch::new(ctx);
        let outs = [
            ops::binary(&mut b, BinaryOp::Add, &ga, &gb).unwrap(),
            ops::binary(&mut b, BinaryOp::Mul, &ga, &gb).unwrap(),
            ops::binary(&mut b, BinaryOp::SwiGlu, &ga, &gb).unwrap(),
            ops::unary(&mut b, UnaryOp::Silu, &ga).unwrap(),
            ops::unary(&mut b, UnaryOp::Gelu, &ga).unwrap(),
            ops::unary(&mut b, UnaryOp::GeluTanh, &ga).unwrap(),
        ];
        let out = b
            .read_async(&outs.iter().collect::<Vec<_>>())
            .await
            .unwrap();
        let add: Vec<f64> = a
            .iter()
            .zip(&bv)
            .map(|(&x, &y)| x as f64 + y as f64)
            .collect();
        let mul: Vec<f64> = a
            .iter()
            .zip(&bv)
            .map(|(&x, &y)| x as f64 * y as f64)
            .collect();
        let swi: Vec<f64> = a
            .iter()
            .zip(&bv)
            .map(|(&x, &y)| cpu::silu(x) * y as f64)
            .collect();
        let silu: Vec<f64> = a.iter().map(|&x| cpu::silu(x)).collect();
        let gelu: Vec<f64> = a.iter().map(|&x| cpu::gelu(x)).collect();
        let gelu_t: Vec<f64> = a.iter().map(|&x| cpu::gelu_tanh(x)).collect();
        // add and mul are correctly rounded: half an ULP of the result.
        assert_close_by("add", &out[0], &add, |i| 0.5 * U * 2.0 * add[i].abs());
        assert_close_by("mul", &out[1], &mul, |i| 0.5 * U * 2.0 * mul[i].abs());
        // exp(-x) is within (3 + 2|x|) ULP (WGSL spec), then one add, one division (2.5 ULP)
        // and for swiglu one product: relative (8 + 2|x|)·2u, with |x| the input.
        let act = |x: f32| (8.0 + 2.0 * x.abs() as f64) * 2.0 * U;
        assert_close_by("swiglu", &out[2], &swi, |i| {
            act(a[i]) * swi[i].abs() + 1e-37
        });
        assert_close_by("silu", &out[3], &silu, |i| {
            act(a[i]) * silu[i].abs() + 1e-37
        });
        // GELU (erf form) also carries the erfc fit's 1.2e-7 relative error, which for
        // x > 0 is scaled by erfc/(2 - erfc) <= 1 and is absolute relative to x/2.
        assert_close_by("gelu", &out[4], &gelu, |i| {
            act(a[i]) * gelu[i].abs() + 1.2e-7 * a[i].abs() as f64 + 1e-37
        });
        // tanh form: x·sigmoid(2z), the cubic adds 3 ULP to z, which moves exp by |2z|·3u.
        assert_close_by("gelu_tanh", &out[5], &gelu_t, |i| {
            let z = 0.8 * (a[i].abs() as f64 + 0.045 * (a[i] as f64).powi(3).abs());
            (act(a[i]) + 2.0 * z * 6.0 * U + 4.0 * z * U) * gelu_t[i].abs() + 1e-37
        });
    }
}

/// A linear layer's bias row broadcast over rows, a row of factors likewise, and GeGLU (both GELU forms) as a gated FFN's
/// activation.
pub async fn bias_and_geglu(ctx: &GpuContext) {
    let mut rng = Rng::new(12);
    for &(rows, cols) in &[(1usize, 1usize), (3, 17), (7, 257), (65, 64)] {
        let a = rng.vec(rows * cols, -10.0, 10.0);
        let bv = rng.vec(rows * cols, -2.0, 2.0);
        let bias = rng.vec(cols, -2.0, 2.0);
        let ga = upload(ctx, "a", &[rows, cols], &a);
        let gb = upload(ctx, "b", &[rows, cols], &bv);
        let gbias = upload(ctx, "bias", &[cols], &bias);
        let mut b = Batch::new(ctx);
        let outs = [
            ops::add_bias(&mut b, &ga, &gbias).unwrap(),
            ops::scale_rows(&mut b, &ga, &gbias).unwrap(),
            ops::binary(&mut b, BinaryOp::GeGlu, &ga, &gb).unwrap(),
            ops::binary(&mut b, BinaryOp::GeGluTanh, &ga, &gb).unwrap(),
        ];
        let out = b
            .read_async(&outs.iter().collect::<Vec<_>>())
            .await
            .unwrap();
        let biased: Vec<f64> = (0..rows * cols)
            .map(|i| a[i] as f64 + bias[i % cols] as f64)
            .collect();
        let geglu: Vec<f64> = a
            .iter()
            .zip(&bv)
            .map(|(&x, &y)| cpu::gelu(x) * y as f64)
            .collect();
        let geglu_t: Vec<f64> = a
            .iter()
            .zip(&bv)
            .map(|(&x, &y)| cpu::gelu_tanh(x) * y as f64)
            .collect();
        let scaled: Vec<f64> = (0..rows * cols)
            .map(|i| a[i] as f64 * bias[i % cols] as f64)
            .collect();
        // One correctly rounded add: half an ULP of the result.
        assert_close_by(&format!("add_bias {rows}x{cols}"), &out[0], &biased, |i| {
            0.5 * U * 2.0 * biased[i].abs()
        });
        // One correctly rounded product of f32 values: half an ULP of the result.
        assert_close_by(
            &format!("scale_rows {rows}x{cols}"),
            &out[1],
            &scaled,
            |i| 0.5 * U * 2.0 * scaled[i].abs(),
        );
        let out = &out[1..];
        // The GELU bounds of `elementwise_ops`, plus one rounded product (2u relative).
        let act = |x: f32| (8.0 + 2.0 * x.abs() as f64) * 2.0 * U + 2.0 * U;
        assert_close_by("geglu", &out[1], &geglu, |i| {
            act(a[i]) * geglu[i].abs() + 1.2e-7 * (a[i] as f64 * bv[i] as f64).abs() + 1e-37
        });
        assert_close_by("geglu_tanh", &out[2], &geglu_t, |i| {
            let z = 0.8 * (a[i].abs() as f64 + 0.045 * (a[i] as f64).powi(3).abs());
            (act(a[i]) + 2.0 * z * 6.0 * U + 4.0 * z * U) * geglu_t[i].abs() + 1e-37
        });
    }
}

/// RoPE, interleaved and half-split, with offsets and partial rotation.
pub async fn rope_in_both_conventions(ctx: &GpuContext) {
    let mut rng = Rng::new(7);
    for &(tokens, heads, head_dim, rot, offset) in &[
        (1, 1, 2, 2, 0),
        (3, 5, 16, 16, 7),
        (17, 3, 64, 32, 0),
        (65, 2, 66, 66, 100),
    ] {
        let table = RopeTable::new(ctx, rot, 10000.0, 200).unwrap();
        let (cos, sin) = latentgpu::ops::rope::rope_tables(
            &latentgpu::ops::rope::inv_freq(rot, 10000.0),
            200,
            1.0,
        );
        for mode in [RopeMode::Interleaved, RopeMode::HalfSplit] {
            let x = rng.vec(tokens * heads * head_dim, -2.0, 2.0);
            let gx = upload(ctx, "x", &[tokens, heads, head_dim], &x);
            let mut b = Batch::new(ctx);
            ops::rope_inplace(&mut b, &gx, &table, offset, mode).unwrap();
            let out = b.read_async(&[&gx]).await.unwrap().remove(0);
            let reference = cpu::rope(&x, heads, head_dim, &cos, &sin, rot, offset, mode);
            // Two products and a sum of the same f32 table values: 3 roundings of terms of
            // size <= |x0|+|x1| <= 4, so 3·u·4 absolute (a fused fma only helps).
            assert_close(
                &format!("rope {tokens}x{heads}x{head_dim} r{rot} {mode:?}"),
                &out,
                &reference,
                3.0 * U * 4.0,
            );
        }
    }
}

/// Embedding lookup (exact).
pub async fn embedding(ctx: &GpuContext) {
    let mut rng = Rng::new(8);
    for &(vocab, d, tokens) in &[(1, 1, 1), (17, 3, 5), (257, 63, 100), (1000, 65, 3)] {
        let table = rng.vec(vocab * d, -1.0, 1.0);
        let ids: Vec<u32> = (0..tokens)
            .map(|_| (rng.next_u64() % vocab as u64) as u32)
            .collect();
        let gt = upload(ctx, "table", &[vocab, d], &table);
        let mut b = Batch::new(ctx);
        let out = ops::embedding(&mut b, &gt, &ids).unwrap();
        let out = b.read_async(&[&out]).await.unwrap().remove(0);
        // A copy: exact.
        assert_close("embedding", &out, &cpu::embedding(&table, d, &ids), 0.0);
        for dtype in [DType::F16, DType::BF16] {
            // From a 16-bit table: exactly the rounded values (16-bit -> f32 is exact).
            let t16 =
                GpuTensor::from_f32_as_half(ctx, "table16", &[vocab, d], dtype, &table).unwrap();
            let rounded: Vec<f32> = table.iter().map(|&v| round_to(dtype, v)).collect();
            let mut b = Batch::new(ctx);
            let out = ops::embedding(&mut b, &t16, &ids).unwrap();
            let out = b.read_async(&[&out]).await.unwrap().remove(0);
            assert_close(
                &format!("{dtype:?} embedding"),
                &out,
                &cpu::embedding(&rounded, d, &ids),
                0.0,
            );
        }
    }
}

/// Fused attention: causal and not, GQA/MQA, d_qk ≠ d_v.
pub async fn attention(ctx: &GpuContext) {
    let mut rng = Rng::new(9);
    check_attention(ctx, &mut rng, 1, 1, 1, 1, 1, 1, 1, true, 0).await;
    check_attention(ctx, &mut rng, 17, 17, 17, 3, 3, 16, 16, true, 0).await;
    check_attention(ctx, &mut rng, 65, 65, 65, 2, 1, 63, 17, true, 0).await;
    check_attention(ctx, &mut rng, 13, 257, 257, 4, 2, 32, 32, false, 0).await;
    check_attention(ctx, &mut rng, 3, 100, 128, 2, 2, 192, 128, true, 0).await;
}

/// Causal sliding-window attention (Mistral): windows of 1, shorter than a tile, just past a
/// tile (65 > 64 keys per tile), longer than the sequence; prefill and decode over a cache.
pub async fn attention_sliding_window(ctx: &GpuContext) {
    let mut rng = Rng::new(11);
    check_attention(ctx, &mut rng, 17, 17, 17, 3, 3, 16, 16, true, 1).await;
    check_attention(ctx, &mut rng, 70, 70, 70, 6, 2, 17, 17, true, 5).await;
    check_attention(ctx, &mut rng, 200, 200, 256, 2, 1, 32, 24, true, 65).await;
    check_attention(ctx, &mut rng, 9, 9, 9, 2, 2, 8, 8, true, 100).await;
    check_attention(ctx, &mut rng, 3, 300, 320, 4, 2, 64, 64, true, 129).await;
    check_attention(ctx, &mut rng, 1, 1000, 1024, 3, 1, 64, 64, true, 257).await;
}

/// One query over a partly filled KV cache (decode: heads sharing a key/value head scored
/// together), MQA with absorbed-MLA widths, GQA groups past one block.
pub async fn attention_decode_over_kv_cache(ctx: &GpuContext) {
    let mut rng = Rng::new(10);
    // One query reading a partly filled cache; MQA with DeepSeek-like absorbed widths.
    check_attention(ctx, &mut rng, 1, 1000, 1024, 4, 4, 64, 64, true, 0).await;
    check_attention(ctx, &mut rng, 1, 257, 300, 8, 1, 576, 512, true, 0).await;
    check_attention(ctx, &mut rng, 1, 63, 63, 6, 3, 17, 5, true, 0).await;
    // Ten query heads per key/value head: a block of 8 and one of 2 (the decode kernel's
    // largest block), and a window.
    check_attention(ctx, &mut rng, 1, 130, 200, 20, 2, 32, 24, true, 0).await;
    check_attention(ctx, &mut rng, 1, 130, 200, 20, 2, 32, 24, true, 65).await;
}

/// The latent gather state (phase 1's online softmax over chunks) fed in pieces equals one
/// attention of the latent queries over all tokens.
pub async fn latent_gather_in_pieces(ctx: &GpuContext) {
    let mut rng = Rng::new(33);
    for &(m, h, dh, pieces) in &[
        (1, 1, 1, &[1usize][..]),
        (5, 3, 7, &[4, 9, 1][..]),
        (64, 2, 64, &[65, 63, 130][..]),
    ] {
        let n: usize = pieces.iter().sum();
        let q1 = rng.vec(m * h * dh, -1.0, 1.0);
        let k = rng.vec(n * h * dh, -1.0, 1.0);
        let v = rng.vec(n * h * dh, -1.0, 1.0);
        let scale = 1.0 / (dh as f32).sqrt();
        let gq = GpuTensor::from_f32(ctx, "q1", &[m, h, dh], &q1).unwrap();
        let state = GatherState::new(ctx, m, h, dh).unwrap();
        let mut start = 0;
        let mut b = Batch::new(ctx);
        for &p in pieces {
            let gk = GpuTensor::from_f32(
                ctx,
                "k",
                &[p, h, dh],
                &k[start * h * dh..(start + p) * h * dh],
            )
            .unwrap();
            let gv = GpuTensor::from_f32(
                ctx,
                "v",
                &[p, h, dh],
                &v[start * h * dh..(start + p) * h * dh],
            )
            .unwrap();
            ops::gather_update(&mut b, &gq, &gk, &gv, p, &state, scale).unwrap();
            start += p;
        }
        let g = b.read_async(&[&state.g]).await.unwrap().remove(0);
        let reference = cpu::attention(&q1, &k, &v, m, n, h, h, dh, dh, scale, false);
        // As the attention kernel: scores are dh-long reductions, the weighted sum n-long.
        let tol = 8.0 * ((dh as f64).sqrt() + (n as f64).sqrt() + 8.0) * U;
        assert_close(
            &format!("gather m{m} h{h} dh{dh} {pieces:?}"),
            &g,
            &reference,
            tol,
        );
    }
}

/// `A·Bᵀ` with `B` stored in f16 and in bf16, on every adapter (read natively with shader-f16,
/// as u32 words without it and for bf16), against the reference on the rounded weights; and a
/// 16-bit `B` whose rows are not whole quads is refused by name.
pub async fn half_weight_matmul(ctx: &GpuContext) {
    let mut rng = Rng::new(11);
    for dtype in [DType::F16, DType::BF16] {
        for &(m, n, k) in &[
            (1, 1, 4),
            (1, 257, 1000),
            (3, 17, 68),
            (65, 63, 128),
            (130, 9, 8),
            (1, 65, 4),
            (67, 129, 12),
            (2, 5, 260),
        ] {
            let a = rng.vec(m * k, -1.0, 1.0);
            let b = rng.vec(n * k, -1.0, 1.0);
            // The reference sees exactly the 16-bit values the GPU stores.
            let rounded: Vec<f32> = b.iter().map(|&v| round_to(dtype, v)).collect();
            let ga = upload(ctx, "A", &[m, k], &a);
            let gb = GpuTensor::from_f32_as_half(ctx, "B16", &[n, k], dtype, &b).unwrap();
            let mut bt = Batch::new(ctx);
            let gc = ops::matmul(&mut bt, &ga, &gb, true).unwrap();
            let out = bt.read_async(&[&gc]).await.unwrap().remove(0);
            let reference = cpu::matmul(&a, &rounded, 1, m, n, k, true, false);
            // As the f32 matmul: 16-bit -> f32 conversion is exact, accumulation is f32.
            let tol = reduction_tol(k, max_abs(&reference).max((k as f64).sqrt()), 8.0);
            let what = format!("{dtype:?} matmul m{m} n{n} k{k}");
            assert_close(&what, &out, &reference, tol);
        }
        let ga = upload(ctx, "A", &[1, 7], &[0.5; 7]);
        let gb = GpuTensor::from_f32_as_half(ctx, "B16", &[3, 7], dtype, &[0.5; 21]).unwrap();
        let e = ops::matmul(&mut Batch::new(ctx), &ga, &gb, true).unwrap_err();
        assert!(e.to_string().contains("K % 4 == 0"), "{e}");
    }
}

/// `v` rounded to `dtype` (F16 or BF16, round to nearest even) and back: exact in f32.
pub fn round_to(dtype: DType, v: f32) -> f32 {
    match dtype {
        DType::BF16 => half::bf16::from_f32(v).to_f32(),
        _ => half::f16::from_f32(v).to_f32(),
    }
}

/// The fused gated product of one row (the decode feed-forward) gives exactly what its unfused
/// ops give: both sum each product in the same order (`matvec_nt_v4`'s vec4 accumulators) and
/// apply the same activation, so equality is bitwise, for f32, f16 and bf16 weights.
/// The unfused ops are checked against the f64 reference by the tests above.
pub async fn fused_gated_matvec(ctx: &GpuContext) {
    let mut rng = Rng::new(13);
    let acts = [
        (ops::GateAct::Silu, BinaryOp::SwiGlu),
        (ops::GateAct::Gelu, BinaryOp::GeGlu),
        (ops::GateAct::GeluTanh, BinaryOp::GeGluTanh),
    ];
    for &(n, k) in &[(1usize, 4usize), (63, 12), (65, 1000), (257, 64)] {
        let x = rng.vec(k, -2.0, 2.0);
        let g = rng.vec(n * k, -1.0, 1.0);
        let u = rng.vec(n * k, -1.0, 1.0);
        let gx = upload(ctx, "x", &[1, k], &x);
        let mut weights = vec![(
            upload(ctx, "gate", &[n, k], &g),
            upload(ctx, "up", &[n, k], &u),
        )];
        for dtype in [DType::F16, DType::BF16] {
            weights.push((
                GpuTensor::from_f32_as_half(ctx, "gate16", &[n, k], dtype, &g).unwrap(),
                GpuTensor::from_f32_as_half(ctx, "up16", &[n, k], dtype, &u).unwrap(),
            ));
        }
        for (gate, up) in &weights {
            for &(act, op) in &acts {
                let mut b = Batch::new(ctx);
                let fused = ops::matvec_glu(&mut b, &gx, gate, up, act)
                    .unwrap()
                    .expect("a row with K % 4 == 0 takes the fused path");
                let gg = ops::matmul(&mut b, &gx, gate, true).unwrap();
                let uu = ops::matmul(&mut b, &gx, up, true).unwrap();
                let unfused = ops::binary(&mut b, op, &gg, &uu).unwrap();
                let out = b.read_async(&[&fused, &unfused]).await.unwrap();
                let what = format!("{act:?} n{n} k{k} {:?}", gate.dtype());
                assert_eq!(
                    out[0].iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                    out[1].iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                    "fused gated product {what} differs from the unfused ops"
                );
            }
        }
    }
}

/// The residual add fused with the next norm gives exactly the add and then the norm: the same
/// float operations on the same values (RMSNorm and LayerNorm, awkward widths).
pub async fn fused_add_norm(ctx: &GpuContext) {
    let mut rng = Rng::new(14);
    for &(rows, d) in &[(1usize, 1usize), (3, 17), (5, 160), (2, 1025)] {
        let x = rng.vec(rows * d, -3.0, 3.0);
        let r = rng.vec(rows * d, -3.0, 3.0);
        let w = rng.vec(d, 0.5, 1.5);
        let bias = rng.vec(d, -0.5, 0.5);
        let (gx, gr) = (
            upload(ctx, "x", &[rows, d], &x),
            upload(ctx, "r", &[rows, d], &r),
        );
        let (gw, gbias) = (upload(ctx, "w", &[d], &w), upload(ctx, "bias", &[d], &bias));
        for layer in [false, true] {
            let mut b = Batch::new(ctx);
            let bias_arg = layer.then_some(&gbias);
            let (sum, y) = ops::add_norm(&mut b, &gx, &gr, &gw, bias_arg, 1e-5).unwrap();
            let sum2 = ops::binary(&mut b, BinaryOp::Add, &gx, &gr).unwrap();
            let y2 = match layer {
                true => ops::layernorm(&mut b, &sum2, &gw, &gbias, 1e-5).unwrap(),
                false => ops::rmsnorm(&mut b, &sum2, &gw, 1e-5).unwrap(),
            };
            let out = b.read_async(&[&sum, &y, &sum2, &y2]).await.unwrap();
            let bits = |v: &Vec<f32>| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            let what = format!("{} {rows}x{d}", if layer { "layernorm" } else { "rmsnorm" });
            assert_eq!(
                bits(&out[0]),
                bits(&out[2]),
                "fused add {what}: sum differs"
            );
            assert_eq!(
                bits(&out[1]),
                bits(&out[3]),
                "fused add {what}: norm differs"
            );
        }
    }
}

/// Rotates one head (f64) as RoPE does at `pos`.
fn rope_head(head: &mut [f64], cos: &[f32], sin: &[f32], rot: usize, pos: usize, mode: RopeMode) {
    let half = rot / 2;
    for i in 0..half {
        let (i0, i1) = match mode {
            RopeMode::Interleaved => (2 * i, 2 * i + 1),
            RopeMode::HalfSplit => (i, i + half),
        };
        let (c, s) = (cos[pos * half + i] as f64, sin[pos * half + i] as f64);
        let (x0, x1) = (head[i0], head[i1]);
        head[i0] = x0 * c - x1 * s;
        head[i1] = x0 * s + x1 * c;
    }
}

/// The step after the fused q|k|v product: bias, per-head RMSNorm of q and k, RoPE, and the
/// keys and values written into the cache at their rows, against an f64 reference.
pub async fn qkv_rope(ctx: &GpuContext) {
    let mut rng = Rng::new(15);
    // (tokens, heads, kv heads, head width, rotated width, first position); the cache rows
    // start at pos / 2 (a latent layer's rows differ from the positions).
    for &(n, h, kv, dh, rot, pos) in &[
        (1, 1, 1, 2, 2, 0),
        (3, 4, 2, 6, 6, 5),
        (5, 3, 1, 66, 66, 60),
        (2, 2, 2, 130, 64, 3),
    ] {
        let slots = h + 2 * kv;
        let row = pos / 2;
        let cap = pos + n + 3;
        let table = RopeTable::new(ctx, rot, 10000.0, cap).unwrap();
        let (cos, sin) = latentgpu::ops::rope::rope_tables(
            &latentgpu::ops::rope::inv_freq(rot, 10000.0),
            cap,
            1.0,
        );
        for (bias, norm, mode) in [
            (false, false, RopeMode::HalfSplit),
            (true, false, RopeMode::Interleaved),
            (true, true, RopeMode::HalfSplit),
        ] {
            let x = rng.vec(n * slots * dh, -2.0, 2.0);
            let mut aux = rng.vec((slots + 2) * dh, -0.5, 0.5);
            aux[slots * dh..].iter_mut().for_each(|w| *w += 1.0);
            let gx = upload(ctx, "qkv", &[n, slots * dh], &x);
            let gaux = upload(ctx, "aux", &[(slots + 2) * dh], &aux);
            let kc = GpuTensor::zeros(ctx, "k cache", &[cap, kv, dh]).unwrap();
            let vc = GpuTensor::zeros(ctx, "v cache", &[cap, kv, dh]).unwrap();
            let extras = ops::QkvExtras {
                aux: &gaux,
                bias,
                norm_eps: norm.then_some(1e-6),
            };
            let mut b = Batch::new(ctx);
            let q = ops::qkv_rope(
                &mut b,
                &gx,
                (h, kv, dh),
                &extras,
                (&table, mode),
                (pos, row),
                (&kc, &vc, None),
            )
            .unwrap();
            let out = b.read_async(&[&q, &kc, &vc]).await.unwrap();
            let (mut q_ref, mut k_ref, mut v_ref) = (
                vec![0.0; n * h * dh],
                vec![0.0; cap * kv * dh],
                vec![0.0; cap * kv * dh],
            );
            let mut q_tol = vec![0.0; n * h * dh];
            let mut k_tol = vec![0.0; cap * kv * dh];
            for t in 0..n {
                for s in 0..slots {
                    let src = &x[(t * slots + s) * dh..(t * slots + s + 1) * dh];
                    let mut head: Vec<f64> = (0..dh)
                        .map(|j| src[j] as f64 + if bias { aux[s * dh + j] as f64 } else { 0.0 })
                        .collect();
                    // Error of the rotated input: the bias add's rounding (u relative), and
                    // with the norm its bound from `norms` ((8·sqrt(dh) + 6)·u relative).
                    let input_rel = if norm {
                        (8.0 * (dh as f64).sqrt() + 6.0) * U
                    } else {
                        0.0
                    } + if bias { U } else { 0.0 };
                    if norm && s < h + kv {
                        let ms = head.iter().map(|v| v * v).sum::<f64>() / dh as f64;
                        let inv = 1.0 / (ms + 1e-6).sqrt();
                        let w = &aux[(slots + usize::from(s >= h)) * dh..];
                        head.iter_mut()
                            .enumerate()
                            .for_each(|(j, v)| *v *= inv * w[j] as f64);
                    }
                    let mags = head.clone();
                    if s < h + kv {
                        rope_head(&mut head, &cos, &sin, rot, pos + t, mode);
                    }
                    // The rotation of each pair: rope's 3 roundings of terms <= |x0| + |x1|,
                    // plus the input's error carried through (|cos|, |sin| <= 1).
                    let tol = |j: usize| {
                        let partner = if j >= rot {
                            j
                        } else {
                            match mode {
                                RopeMode::Interleaved => j ^ 1,
                                RopeMode::HalfSplit => (j + rot / 2) % rot,
                            }
                        };
                        let m = mags[j].abs() + mags[partner].abs();
                        (3.0 * U + input_rel) * m + 1e-30
                    };
                    for j in 0..dh {
                        if s < h {
                            q_ref[(t * h + s) * dh + j] = head[j];
                            q_tol[(t * h + s) * dh + j] = tol(j);
                        } else if s < h + kv {
                            let at = ((row + t) * kv + s - h) * dh + j;
                            k_ref[at] = head[j];
                            k_tol[at] = tol(j);
                        } else {
                            v_ref[((row + t) * kv + s - h - kv) * dh + j] = head[j];
                        }
                    }
                }
            }
            let what =
                format!("qkv_rope n{n} {h}/{kv}x{dh} r{rot} pos{pos} bias {bias} norm {norm}");
            assert_close_by(&format!("{what} q"), &out[0], &q_ref, |i| q_tol[i]);
            assert_close_by(&format!("{what} k"), &out[1], &k_ref, |i| k_tol[i]);
            // Values: the bias add's rounding only (u relative).
            assert_close_by(&format!("{what} v"), &out[2], &v_ref, |i| {
                U * v_ref[i].abs()
            });
        }
    }
}

/// Swapping the first two dimensions (a copy: exact).
pub async fn permute(ctx: &GpuContext) {
    let mut rng = Rng::new(16);
    for &(a, b, c) in &[
        (1usize, 1usize, 1usize),
        (3, 5, 7),
        (17, 2, 65),
        (257, 3, 4),
    ] {
        let x = rng.vec(a * b * c, -1.0, 1.0);
        let gx = upload(ctx, "x", &[a, b, c], &x);
        let mut bt = Batch::new(ctx);
        let y = ops::permute01(&mut bt, &gx).unwrap();
        assert_eq!(y.shape(), &[b, a, c]);
        let out = bt.read_async(&[&y]).await.unwrap().remove(0);
        assert_eq!(out.len(), a * b * c, "permute {a}x{b}x{c}: length");
        for (i, &v) in out.iter().enumerate() {
            let (bb, aa, cc) = (i / (a * c), (i / c) % a, i % c);
            assert_eq!(v, x[(aa * b + bb) * c + cc], "permute {a}x{b}x{c} at {i}");
        }
    }
}

/// f32 to f16 on the GPU: round to nearest even, as `half` (and the CPU upload) does.
pub async fn cast_to_f16(ctx: &GpuContext) {
    let mut rng = Rng::new(18);
    for &n in &[1usize, 2, 3, 257, 1000] {
        // Within f16's range (beyond it, WGSL leaves pack2x16float's result undefined).
        let mut x = rng.vec(n, -65000.0, 65000.0);
        // Ties and tiny values too.
        x.iter_mut()
            .step_by(7)
            .for_each(|v| *v = (*v / 1000.0).round() * 0.5 + 1.0 / 4096.0);
        let gx = upload(ctx, "x", &[n], &x);
        let mut b = Batch::new(ctx);
        let y = ops::to_f16(&mut b, &gx).unwrap();
        b.submit().unwrap();
        assert_eq!(y.dtype(), latentgpu::gpu::DType::F16);
        let bytes = Batch::new(ctx)
            .read_bytes_async(&[&y])
            .await
            .unwrap()
            .remove(0);
        for (i, &v) in x.iter().enumerate() {
            let bits = u16::from_le_bytes([bytes[2 * i], bytes[2 * i + 1]]);
            assert_eq!(
                bits,
                half::f16::from_f32(v).to_bits(),
                "to_f16 of {v} (n {n}, index {i}) on {}",
                ctx.name()
            );
        }
    }
}

/// The decode product by each path the adapter has: one invocation per output, a workgroup
/// per output with a workgroup tree, and with subgroup sums (where the device has subgroups),
/// against the f64 reference with `run_matmul`'s bound.
pub async fn matvec_paths(ctx: &GpuContext) {
    let mut rng = Rng::new(19);
    let mut paths = vec![
        ops::MatvecPath::RowPerInvocation,
        ops::MatvecPath::Workgroup,
    ];
    if ctx.has_subgroups() {
        paths.push(ops::MatvecPath::Subgroup);
    }
    for &(n, k) in &[
        (1usize, 4usize),
        (3, 68),
        (65, 1024),
        (1000, 260),
        (257, 4100),
    ] {
        let x = rng.vec(k, -1.0, 1.0);
        let w = rng.vec(n * k, -1.0, 1.0);
        let (gx, gw) = (upload(ctx, "x", &[1, k], &x), upload(ctx, "w", &[n, k], &w));
        let reference = cpu::matmul(&x, &w, 1, 1, n, k, true, false);
        let scale = max_abs(&reference).max((k as f64).sqrt());
        for &path in &paths {
            let mut b = Batch::new(ctx);
            let c = ops::matvec_with(&mut b, &gx, &gw, path).unwrap();
            let out = b.read_async(&[&c]).await.unwrap().remove(0);
            assert_close(
                &format!("matvec {path:?} n{n} k{k}"),
                &out,
                &reference,
                reduction_tol(k, scale, 8.0),
            );
        }
    }
}

/// MLA's step after its products: the queries' RoPE part rotated in place, c_kv RMS-normalised
/// and k_pe rotated into the compressed cache, against an f64 reference.
pub async fn mla_rope(ctx: &GpuContext) {
    let mut rng = Rng::new(20);
    // (tokens, heads, q width, rotated start, kv_lora, rope, first position)
    for &(n, h, qw, q_rot, r, rope, pos) in &[
        (1usize, 1usize, 4usize, 2usize, 1usize, 2usize, 0usize),
        (3, 4, 80, 64, 64, 16, 5),
        (2, 3, 48, 32, 65, 16, 70),
        (5, 2, 130, 2, 129, 128, 1),
    ] {
        let cap = pos + n + 2;
        let table = RopeTable::new(ctx, rope, 10000.0, cap).unwrap();
        let (cos, sin) = latentgpu::ops::rope::rope_tables(
            &latentgpu::ops::rope::inv_freq(rope, 10000.0),
            cap,
            1.0,
        );
        let q = rng.vec(n * h * qw, -2.0, 2.0);
        let kv = rng.vec(n * (r + rope), -2.0, 2.0);
        let w = rng.vec(r, 0.5, 1.5);
        let gq = upload(ctx, "q", &[n, h, qw], &q);
        let gkv = upload(ctx, "kv", &[n, r + rope], &kv);
        let gw = upload(ctx, "norm", &[r], &w);
        let c_cache = GpuTensor::zeros(ctx, "c_kv", &[cap, r]).unwrap();
        let pe_cache = GpuTensor::zeros(ctx, "k_pe", &[cap, rope]).unwrap();
        let mut b = Batch::new(ctx);
        ops::mla_rope(
            &mut b,
            &gq,
            q_rot,
            &gkv,
            (&gw, 1e-6),
            (&table, pos),
            (&c_cache, &pe_cache, None),
        )
        .unwrap();
        let out = b.read_async(&[&gq, &c_cache, &pe_cache]).await.unwrap();
        let (mut q_ref, mut q_tol) = (Vec::new(), Vec::new());
        for head in q.chunks(qw) {
            let t = q_ref.len() / (h * qw);
            let mut x: Vec<f64> = head.iter().map(|&v| v as f64).collect();
            rope_head(
                &mut x[q_rot..q_rot + rope],
                &cos,
                &sin,
                rope,
                pos + t,
                RopeMode::Interleaved,
            );
            for j in 0..qw {
                // Rotated pairs: rope's 3 roundings of terms <= |x0| + |x1|; others exact.
                let m = if (q_rot..q_rot + rope).contains(&j) {
                    let k = q_rot + ((j - q_rot) & !1);
                    3.0 * U * (head[k].abs() + head[k + 1].abs()) as f64
                } else {
                    0.0
                };
                q_tol.push(m);
            }
            q_ref.extend(x);
        }
        let (mut c_ref, mut c_tol) = (vec![0.0; cap * r], vec![0.0; cap * r]);
        let (mut pe_ref, mut pe_tol) = (vec![0.0; cap * rope], vec![0.0; cap * rope]);
        for t in 0..n {
            let row = &kv[t * (r + rope)..(t + 1) * (r + rope)];
            let ms = row[..r].iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / r as f64;
            let inv = 1.0 / (ms + 1e-6).sqrt();
            for j in 0..r {
                let y = row[j] as f64 * inv * w[j] as f64;
                c_ref[(pos + t) * r + j] = y;
                // The norms' bound: relative (8·sqrt(r) + 6)·u.
                c_tol[(pos + t) * r + j] = (8.0 * (r as f64).sqrt() + 6.0) * U * y.abs();
            }
            let mut pe: Vec<f64> = row[r..].iter().map(|&v| v as f64).collect();
            rope_head(&mut pe, &cos, &sin, rope, pos + t, RopeMode::Interleaved);
            for j in 0..rope {
                pe_ref[(pos + t) * rope + j] = pe[j];
                let k = j & !1;
                pe_tol[(pos + t) * rope + j] =
                    3.0 * U * (row[r + k].abs() + row[r + k + 1].abs()) as f64;
            }
        }
        let what = format!("mla_rope n{n} h{h} q{qw}@{q_rot} r{r} rope{rope} pos{pos}");
        assert_close_by(&format!("{what} q"), &out[0], &q_ref, |i| q_tol[i]);
        assert_close_by(&format!("{what} c_kv"), &out[1], &c_ref, |i| {
            c_tol[i] + 1e-30
        });
        assert_close_by(&format!("{what} k_pe"), &out[2], &pe_ref, |i| {
            pe_tol[i] + 1e-30
        });
    }
}

/// Mixture-of-experts routing against the f64 reference: each DeepSeek method at real expert
/// counts (64, 160, 256) and awkward ones (13 experts, every expert chosen, groups of two), one
/// token and several, every token preferring the same expert, and exact ties (all logits
/// equal; a tie across the k-th place), which go to the lower index as in `torch.topk`.
pub async fn moe_routing(ctx: &GpuContext) {
    use ops::{RouteMethod, Routing};
    let mut rng = Rng::new(31);
    let route = |method, top_k, groups, topk_group, norm_topk_prob, scaling| Routing {
        method,
        top_k,
        groups,
        topk_group,
        norm_topk_prob,
        scaling,
    };
    let cases = [
        (1, 64, route(RouteMethod::Greedy, 6, 1, 1, false, 1.0)),
        (
            7,
            160,
            route(RouteMethod::GroupLimitedGreedy, 6, 8, 3, false, 16.0),
        ),
        (5, 256, route(RouteMethod::NoauxTc, 8, 8, 4, true, 2.5)),
        (3, 13, route(RouteMethod::Greedy, 13, 1, 1, true, 1.0)),
        (2, 12, route(RouteMethod::NoauxTc, 3, 6, 2, false, 1.0)),
        (
            4,
            12,
            route(RouteMethod::GroupLimitedGreedy, 5, 4, 1, true, 1.0),
        ),
    ];
    for (tokens, experts, how) in cases {
        let mut logits = rng.vec(tokens * experts, -4.0, 4.0);
        let bias = rng.vec(experts, -0.5, 0.5);
        if tokens >= 3 {
            // Token 0: every logit equal. Token 1: prefers expert `experts - 1` by far.
            // Token 2: ties across the k-th place (experts 1 and 3 equal and the best).
            logits[..experts].fill(0.25);
            logits[experts + experts - 1] = 30.0;
            logits[2 * experts + 1] = 6.0;
            logits[2 * experts + 3] = 6.0;
        }
        let g_logits = upload(ctx, "router logits", &[tokens, experts], &logits);
        let g_bias = upload(ctx, "bias", &[experts], &bias);
        let mut b = Batch::new(ctx);
        let (ids, weights) = ops::moe_route(&mut b, &g_logits, &g_bias, &how).unwrap();
        let got_ids = b.read_u32_async(&[&ids]).await.unwrap().remove(0);
        let got_w = Batch::new(ctx)
            .read_async(&[&weights])
            .await
            .unwrap()
            .remove(0);
        let (want_ids, want_w) = cpu::moe_route(&logits, &bias, experts, &how);
        let what = format!("route {tokens}x{experts} {how:?}");
        assert_eq!(got_ids, want_ids, "{what}: experts");
        if tokens >= 3 && how.method != RouteMethod::NoauxTc {
            assert_eq!(
                got_ids[..how.top_k.min(3)],
                [0, 1, 2][..how.top_k.min(3)],
                "{what}: ties"
            );
        }
        // A weight is a softmax or sigmoid score: exp within (3 + 2|x|) ULP for |x| <= 8
        // (WGSL), the softmax's sum of `experts` terms within experts·u, the normalisation's
        // sum of top_k and its division, the scaling: (19 + 2.5 + experts + 2·top_k + 4)·u
        // relative, plus 1e-30 for weights that underflow.
        let rel = (26.0 + experts as f64 + 2.0 * how.top_k as f64) * U;
        assert_close_by(&what, &got_w, &want_w, |i| rel * want_w[i].abs() + 1e-30);
    }
}

/// The routed experts read by index against the f64 reference: one token (decode) and several,
/// prime widths, one expert per token, every token choosing the same experts while others go
/// unused (19 tokens: passes of 4, 4, 4, 4 and 3 tokens per expert); and the same values bit for bit
/// with the stacked matrices split into blocks of whole experts.
pub async fn moe_experts(ctx: &GpuContext) {
    use ops::{ExpertStack, Experts, GateAct};
    let mut rng = Rng::new(37);
    // (tokens, top_k, experts, d, inter, act, every token the same experts)
    let cases = [
        (1, 6, 8, 64, 48, GateAct::Silu, false),
        (5, 2, 13, 33, 31, GateAct::Gelu, false),
        (3, 1, 4, 16, 8, GateAct::GeluTanh, false),
        (4, 3, 7, 20, 12, GateAct::Silu, true),
        (19, 2, 5, 24, 20, GateAct::Silu, true),
        (17, 3, 11, 9, 7, GateAct::Gelu, false),
    ];
    for (tokens, top_k, n_experts, d, inter, act, same) in cases {
        let x = rng.vec(tokens * d, -1.0, 1.0);
        let gate = rng.vec(n_experts * inter * d, -1.0, 1.0);
        let up = rng.vec(n_experts * inter * d, -1.0, 1.0);
        let down = rng.vec(n_experts * d * inter, -1.0, 1.0);
        let weights = rng.vec(tokens * top_k, 0.0, 1.0);
        // Distinct experts per token, as a router chooses them.
        let ids = expert_ids(tokens, top_k, n_experts, same);
        let g_ids = GpuTensor::from_u32(ctx, "ids", &[tokens, top_k], &ids).unwrap();
        let g_w = upload(ctx, "weights", &[tokens, top_k], &weights);
        let g_gate = upload(ctx, "gate", &[n_experts, inter, d], &gate);
        let g_up = upload(ctx, "up", &[n_experts, inter, d], &up);
        let g_down = upload(ctx, "down", &[n_experts, d, inter], &down);
        let (g_gate, g_up, g_down) = (
            ExpertStack::Dense(g_gate),
            ExpertStack::Dense(g_up),
            ExpertStack::Dense(g_down),
        );
        let experts = Experts {
            gate: &g_gate,
            up: &g_up,
            down: &g_down,
            act,
        };
        let mut b = Batch::new(ctx);
        let y = ops::moe_ffn(
            &mut b,
            &upload(ctx, "x", &[tokens, d], &x),
            (&g_ids, &g_w),
            &experts,
        )
        .unwrap();
        let out = b.read_async(&[&y]).await.unwrap().remove(0);
        // Split into blocks of 2 experts (gate, up and down alike).
        let block = (2 * inter * d * 4) as u64;
        let split = |label: &str, shape: &[usize], data: &[f32]| {
            latentgpu::gpu::split::upload_rows(
                ctx,
                label,
                shape,
                latentgpu::gpu::DType::F32,
                data,
                block,
            )
            .unwrap()
        };
        let (s_gate, s_up, s_down) = (
            split("gate", &[n_experts, inter, d], &gate),
            split("up", &[n_experts, inter, d], &up),
            split("down", &[n_experts, d, inter], &down),
        );
        assert_eq!(s_gate.is_split(), n_experts > 2);
        let (s_gate, s_up, s_down) = (
            ExpertStack::Dense(s_gate),
            ExpertStack::Dense(s_up),
            ExpertStack::Dense(s_down),
        );
        let split_experts = Experts {
            gate: &s_gate,
            up: &s_up,
            down: &s_down,
            act,
        };
        let mut b = Batch::new(ctx);
        let x_t = upload(ctx, "x", &[tokens, d], &x);
        let y = ops::moe_ffn(&mut b, &x_t, (&g_ids, &g_w), &split_experts).unwrap();
        let out_split = b.read_async(&[&y]).await.unwrap().remove(0);
        assert_eq!(
            bits(&out),
            bits(&out_split),
            "moe experts t{tokens} e{n_experts}: split differs"
        );
        // Dot products of d and then inter terms in f32 are within
        // c·(sqrt(d) + sqrt(inter) + 8)·u of the magnitudes' bound, c = 4.
        let (reference, bound) =
            experts_reference(&x, (&ids, &weights), (&gate, &up, &down), (d, inter), act);
        let c = 4.0 * ((d as f64).sqrt() + (inter as f64).sqrt() + 8.0) * U;
        assert_close_by(
            &format!("moe experts t{tokens} k{top_k} e{n_experts} d{d} i{inter} {act:?}"),
            &out,
            &reference,
            |i| c * bound[i] + 1e-30,
        );
        if d % 4 != 0 || inter % 4 != 0 {
            continue;
        }
        // 16-bit stacks (rows of whole quads): the same sums of the rounded values, whole and
        // split into blocks of 2 experts alike.
        for dtype in [DType::F16, DType::BF16] {
            let round = |v: &[f32]| v.iter().map(|&w| round_to(dtype, w)).collect::<Vec<_>>();
            let (gate16, up16, down16) = (round(&gate), round(&up), round(&down));
            let stack = |label: &str, shape: &[usize], data: &[f32], limit: u64| {
                ExpertStack::Dense(
                    latentgpu::gpu::split::upload_rows(ctx, label, shape, dtype, data, limit)
                        .unwrap(),
                )
            };
            let mut outs = Vec::new();
            for limit in [u64::MAX, (2 * inter * d * 2) as u64] {
                let (g, u, dn) = (
                    stack("gate16", &[n_experts, inter, d], &gate, limit),
                    stack("up16", &[n_experts, inter, d], &up, limit),
                    stack("down16", &[n_experts, d, inter], &down, limit),
                );
                let experts = Experts {
                    gate: &g,
                    up: &u,
                    down: &dn,
                    act,
                };
                let mut b = Batch::new(ctx);
                let x_t = upload(ctx, "x", &[tokens, d], &x);
                let y = ops::moe_ffn(&mut b, &x_t, (&g_ids, &g_w), &experts).unwrap();
                outs.push(b.read_async(&[&y]).await.unwrap().remove(0));
            }
            let what = format!("moe experts {dtype:?} t{tokens} e{n_experts} d{d} i{inter}");
            assert_eq!(bits(&outs[0]), bits(&outs[1]), "{what}: split differs");
            let (reference, bound) = experts_reference(
                &x,
                (&ids, &weights),
                (&gate16, &up16, &down16),
                (d, inter),
                act,
            );
            assert_close_by(&what, &outs[0], &reference, |i| c * bound[i] + 1e-30);
        }
    }
}

/// Distinct experts per token, as a router chooses them: `[tokens, top_k]`; with `same`, every
/// token the same experts (others unused).
pub fn expert_ids(tokens: usize, top_k: usize, n_experts: usize, same: bool) -> Vec<u32> {
    (0..tokens)
        .flat_map(|t| {
            let start = if same { 2 } else { (t * 5 + 1) % n_experts };
            (0..top_k).map(move |j| ((start + j * 3) % n_experts) as u32)
        })
        .collect()
}

/// The experts' f64 reference and, from every value's magnitude, the bound of what each
/// output's terms add up to in magnitude (|act(g)| <= act(|g|) for these activations).
pub fn experts_reference(
    x: &[f32],
    (ids, weights): (&[u32], &[f32]),
    (gate, up, down): (&[f32], &[f32], &[f32]),
    (d, inter): (usize, usize),
    act: ops::GateAct,
) -> (Vec<f64>, Vec<f64>) {
    let f = move |g: f32| match act {
        ops::GateAct::Silu => cpu::silu(g),
        ops::GateAct::Gelu => cpu::gelu(g),
        ops::GateAct::GeluTanh => cpu::gelu_tanh(g),
    };
    let reference = cpu::moe_ffn(x, (ids, weights), (gate, up, down), d, inter, f);
    let abs = |v: &[f32]| v.iter().map(|a| a.abs()).collect::<Vec<f32>>();
    let (ax, ag, au, ad, aw) = (abs(x), abs(gate), abs(up), abs(down), abs(weights));
    let bound = cpu::moe_ffn(&ax, (ids, &aw), (&ag, &au, &ad), d, inter, move |g| {
        f(g.abs()).abs()
    });
    (reference, bound)
}
