//! Every kernel against its f64 CPU reference, on every adapter present, on awkward shapes.
//! The checks themselves are in `common/kernel_checks.rs`, shared with the browser tests.

mod common;

use common::kernel_checks::{self as checks, upload};
use common::{assert_close, max_abs, on_every_adapter, reduction_tol, Rng};
use latentgpu::cpu;
use latentgpu::ops;
use latentgpu::{Batch, GpuTensor};
use pollster::block_on;

#[test]
fn matmul_matches_reference_on_awkward_shapes() {
    on_every_adapter(|ctx| block_on(checks::matmul_on_awkward_shapes(ctx)));
}

#[test]
fn batched_matmul_matches_reference() {
    on_every_adapter(|ctx| block_on(checks::batched_matmul(ctx)));
}

#[test]
fn matvec_decode_path_matches_reference() {
    on_every_adapter(|ctx| block_on(checks::matvec_decode_path(ctx)));
}

#[test]
fn softmax_matches_reference() {
    on_every_adapter(|ctx| block_on(checks::softmax(ctx)));
}

#[test]
fn norms_match_reference() {
    on_every_adapter(|ctx| block_on(checks::norms(ctx)));
}

#[test]
fn elementwise_ops_match_reference() {
    on_every_adapter(|ctx| block_on(checks::elementwise_ops(ctx)));
}

#[test]
fn rope_matches_reference_in_both_conventions() {
    on_every_adapter(|ctx| block_on(checks::rope_in_both_conventions(ctx)));
}

#[test]
fn rope_table_matches_pytorch_fp32_construction() {
    // θ_i = 1 / base^(2i/r) rounded to f32, the angle pos·θ_i in f32: spot values.
    let f = latentgpu::ops::rope::inv_freq(8, 10000.0);
    assert_eq!(f[0], 1.0);
    assert!((f[1] as f64 - 0.1).abs() < 1e-8);
    assert!((f[3] as f64 - 10000f64.powf(-0.75)).abs() < 1e-10);
}

#[test]
fn embedding_matches_reference() {
    on_every_adapter(|ctx| block_on(checks::embedding(ctx)));
}

#[test]
fn attention_matches_reference() {
    on_every_adapter(|ctx| block_on(checks::attention(ctx)));
}

#[test]
fn attention_decode_over_kv_cache_matches_reference() {
    on_every_adapter(|ctx| block_on(checks::attention_decode_over_kv_cache(ctx)));
}

#[test]
fn f16_weight_matmul_matches_reference_on_rounded_weights() {
    on_every_adapter(|ctx| {
        if !ctx.has_f16() {
            return; // shader-f16 only; the model test checks the loader refuses elsewhere
        }
        let mut rng = Rng::new(11);
        for &(m, n, k) in &[
            (1, 1, 1),
            (1, 257, 1000),
            (3, 17, 65),
            (65, 63, 128),
            (130, 9, 7),
        ] {
            let a = rng.vec(m * k, -1.0, 1.0);
            let b = rng.vec(n * k, -1.0, 1.0);
            // The reference sees exactly the f16 values the GPU stores.
            let b16: Vec<f32> = b.iter().map(|&v| half::f16::from_f32(v).to_f32()).collect();
            let ga = upload(ctx, "A", &[m, k], &a);
            let gb = GpuTensor::from_f32_as_f16(ctx, "B16", &[n, k], &b).unwrap();
            let mut bt = Batch::new(ctx);
            let gc = ops::matmul(&mut bt, &ga, &gb, true).unwrap();
            let out = bt.read(&[&gc]).unwrap().remove(0);
            let reference = cpu::matmul(&a, &b16, 1, m, n, k, true, false);
            // As the f32 matmul: f16 -> f32 conversion is exact, accumulation is f32.
            let tol = reduction_tol(k, max_abs(&reference).max((k as f64).sqrt()), 8.0);
            assert_close(&format!("f16 matmul m{m} n{n} k{k}"), &out, &reference, tol);
        }
    });
}
