//! Launchers reject bad shapes and arguments with errors that name the thing, never a panic.

mod common;

use common::on_every_adapter;
use latentgpu::ops::{self, AttentionShape, RopeMode, RopeTable};
use latentgpu::{BackendChoice, Batch, Error, GpuTensor};

fn t(ctx: &latentgpu::GpuContext, label: &str, shape: &[usize]) -> GpuTensor {
    GpuTensor::zeros(ctx, label, shape).unwrap()
}

/// Asserts an error whose message mentions every fragment.
fn expect_err<T: std::fmt::Debug>(r: latentgpu::Result<T>, fragments: &[&str]) {
    let e = r.expect_err("expected an error");
    let msg = e.to_string();
    for f in fragments {
        assert!(msg.contains(f), "error '{msg}' should mention '{f}'");
    }
}

#[test]
fn matmul_rejects_mismatched_shapes() {
    on_every_adapter(|ctx| {
        let mut b = Batch::new(ctx);
        let a = t(ctx, "A", &[3, 5]);
        expect_err(
            ops::matmul(&mut b, &a, &t(ctx, "W", &[4, 6]), true),
            &["matmul", "W", "expected 5", "found 6"],
        );
        expect_err(
            ops::matmul(&mut b, &a, &t(ctx, "B", &[6, 4]), false),
            &["expected 5", "found 6"],
        );
        let a3 = t(ctx, "A3", &[2, 3, 5]);
        expect_err(
            ops::matmul(&mut b, &a3, &t(ctx, "B3", &[3, 5, 4]), false),
            &["batch", "1 or 2", "found 3"],
        );
        expect_err(ops::matmul(&mut b, &t(ctx, "v", &[5]), &a, true), &["rank"]);
        expect_err(
            ops::matmul(&mut b, &t(ctx, "z", &[0, 5]), &a, true),
            &["no zero dimension"],
        );
        let c = t(ctx, "C", &[3, 3]);
        expect_err(
            ops::matmul_into(&mut b, &a, &t(ctx, "W", &[4, 5]), true, &c),
            &["C", "[3, 4]", "[3, 3]"],
        );
        b.submit().unwrap();
    });
}

#[test]
fn attention_rejects_bad_heads_and_lengths() {
    on_every_adapter(|ctx| {
        let mut b = Batch::new(ctx);
        let q = t(ctx, "q", &[4, 6, 8]);
        let k = t(ctx, "k", &[10, 4, 8]);
        let v = t(ctx, "v", &[10, 4, 8]);
        let how = AttentionShape {
            scale: 1.0,
            causal: true,
            n_kv: 10,
            window: 0,
        };
        expect_err(
            ops::attention(&mut b, &q, &k, &v, how),
            &["kv heads", "divisor of 6", "found 4"],
        );
        let k = t(ctx, "k", &[10, 3, 8]);
        let v = t(ctx, "v", &[10, 3, 8]);
        expect_err(
            ops::attention(&mut b, &q, &k, &v, AttentionShape { n_kv: 11, ..how }),
            &["valid keys", "1..=10", "found 11"],
        );
        expect_err(
            ops::attention(&mut b, &q, &k, &v, AttentionShape { n_kv: 3, ..how }),
            &["causal queries"],
        );
        let k7 = t(ctx, "k7", &[10, 3, 7]);
        expect_err(
            ops::attention(&mut b, &q, &k7, &v, how),
            &["k7", "[10, 3, 8]", "[10, 3, 7]"],
        );
        b.submit().unwrap();
    });
}

#[test]
fn rope_norm_softmax_embedding_reject_bad_input() {
    on_every_adapter(|ctx| {
        let mut b = Batch::new(ctx);
        let table = RopeTable::new(ctx, 8, 10000.0, 16).unwrap();
        let x = t(ctx, "x", &[4, 2, 8]);
        expect_err(
            ops::rope_inplace(&mut b, &x, &table, 13, RopeMode::Interleaved),
            &["rope position", "out of range", "16"],
        );
        expect_err(
            ops::rope_inplace(
                &mut b,
                &t(ctx, "x4", &[4, 2, 4]),
                &table,
                0,
                RopeMode::HalfSplit,
            ),
            &["rotated width", "<= head width 4"],
        );
        expect_err(
            ops::rmsnorm(&mut b, &t(ctx, "h", &[3, 8]), &t(ctx, "g", &[7]), 1e-5),
            &["weight", "[8]", "[7]"],
        );
        expect_err(
            ops::softmax(&mut b, &t(ctx, "s", &[5, 4]), Some(0)),
            &["causal", "<= columns (4)"],
        );
        let emb = t(ctx, "emb", &[10, 4]);
        expect_err(
            ops::embedding(&mut b, &emb, &[1, 10]),
            &["token id at position 1", "10", "< 10"],
        );
        expect_err(ops::embedding(&mut b, &emb, &[]), &["token ids"]);
        b.submit().unwrap();
    });
}

#[test]
fn buffers_over_the_adapters_limits_are_errors() {
    on_every_adapter(|ctx| {
        let too_many = (ctx.limits.max_storage_buffer_binding_size / 4 + 1) as usize;
        expect_err(
            GpuTensor::zeros(ctx, "huge", &[too_many]),
            &["huge", "max storage buffer binding size"],
        );
        expect_err(
            GpuTensor::from_f32(ctx, "short", &[2, 3], &[1.0; 5]),
            &["short", "6 elements", "5 elements"],
        );
    });
}

#[test]
fn unknown_backend_is_an_error() {
    let e = "metl".parse::<BackendChoice>().unwrap_err();
    assert!(matches!(e, Error::UnknownBackend { .. }));
    assert!(e.to_string().contains("'metl'") && e.to_string().contains("vulkan, metal, dx12, gl"));
    assert_eq!(
        "VULKAN".parse::<BackendChoice>().unwrap(),
        BackendChoice::Vulkan
    );
}

#[test]
fn missing_backend_names_what_was_tried() {
    // Metal and DX12 never exist on Linux: the error names the backend and says how to get one.
    if cfg!(target_os = "linux") {
        let e = latentgpu::GpuContext::new(BackendChoice::Metal).unwrap_err();
        assert!(e.to_string().contains("metal"), "{e}");
        assert!(e.to_string().contains("lavapipe"), "{e}");
    }
}
