//! `compare` at real widths and depths: a Llama with SmolLM2-135M's shapes (30 layers, d 576,
//! 9/3 heads, head 64, MLP 1536, vocab 49152, tied) and seeded random weights passes on every
//! adapter.
//!
//! The checkpoint (538 MB) is generated, never committed. The first test writes it here in
//! Hugging Face's layout, and writes a golden beside it from the plain CPU reference
//! (`latentgpu::cpu::llama_forward`): float64, and f32 with sequential sums as a second correct
//! f32 implementation in the golden device's place. The second, opt-in test takes transformers'
//! own golden for the same shapes:
//!
//!     .venv/bin/python reference/export_hf_fixtures.py --real-shape /tmp/real/smollm2-shaped
//!     LATENTGPU_REAL_SHAPE=/tmp/real/smollm2-shaped cargo test --release --test hf_real_shape -- --ignored

mod common;

use common::llama_checkpoint::{write_checkpoint, LlamaCheckpoint};
use common::on_every_adapter;
use latentgpu::cpu::LlamaShape;
use latentgpu::model::tools::compare::{compare, CompareReport, Golden};
use latentgpu::model::Model;
use std::path::PathBuf;

const SHAPE: LlamaShape = LlamaShape {
    d: 576,
    heads: 9,
    kv_heads: 3,
    head_dim: 64,
    hidden: 1536,
    vocab: 49152,
    eps: 1e-5,
    rope_base: 100000.0,
};
const LAYERS: usize = 30;
const TOKENS: usize = 8;

/// Writes the checkpoint and its golden; returns (checkpoint dir, golden path).
fn generate() -> (PathBuf, PathBuf) {
    let root = std::env::temp_dir().join(format!("latentgpu-real-shape-{}", std::process::id()));
    let checkpoint = LlamaCheckpoint {
        shape: SHAPE,
        layers: LAYERS,
        context: 8192,
        tokens: TOKENS,
    };
    write_checkpoint(&checkpoint, &root, "smollm2-shaped")
}

fn check(report: &CompareReport) {
    let worst = report
        .rows
        .iter()
        .map(|r| r.ours_vs_f64 / r.theirs_vs_f64)
        .fold(0.0, f64::max);
    eprintln!(
        "{}: worst ours/theirs normwise error ratio {worst:.2} (the bound allows 4)",
        report.adapter
    );
    assert_eq!(report.first_failure, None, "{:#?}", report.rows);
    assert_eq!(report.rows.len(), LAYERS + 1);
    assert_eq!(report.rows.last().unwrap().top1_agreement, Some(1.0));
}

#[test]
fn a_real_shaped_llama_passes_compare_on_every_adapter() {
    let (dir, golden) = generate();
    on_every_adapter(|ctx| {
        let model = Model::load_dir(ctx, &dir).unwrap();
        check(&compare(ctx, &model, &Golden::open(&golden).unwrap()).unwrap());
    });
    let _ = std::fs::remove_dir_all(dir.parent().unwrap());
}

#[test]
#[ignore = "needs the checkpoint and golden from reference/export_hf_fixtures.py --real-shape"]
fn a_real_shaped_llama_passes_compare_against_transformers() {
    let dir = PathBuf::from(
        std::env::var("LATENTGPU_REAL_SHAPE").expect("LATENTGPU_REAL_SHAPE names the checkpoint"),
    );
    let golden = dir.with_file_name(format!(
        "{}-golden.safetensors",
        dir.file_name().unwrap().to_string_lossy()
    ));
    on_every_adapter(|ctx| {
        let model = Model::load_dir(ctx, &dir).unwrap();
        check(&compare(ctx, &model, &Golden::open(&golden).unwrap()).unwrap());
    });
}
