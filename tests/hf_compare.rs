//! `compare`'s bound catches real bugs by orders of magnitude: each test runs a fixture of
//! `tests/fixtures/hf-dense/` with one deliberate mistake and checks that the first block is
//! past tolerance by at least 100x, while the correct run passes (tests/hf_models.rs). It also
//! accepts a golden computed in bf16, with the bound scaled to its unit roundoff.

mod common;

use common::{contexts, fixture};
use latentgpu::gpu::{Batch, GpuContext};
use latentgpu::model::families::open_dir;
use latentgpu::model::tools::compare::{compare, compare_outputs, CompareReport, Golden};
use latentgpu::model::{AttentionConfig, Logits, Model, ModelConfig};
use latentgpu::ops::RopeMode;

fn golden(name: &str) -> Golden {
    Golden::open(&fixture("hf-dense").join(name).join("golden.safetensors")).unwrap()
}

/// Loads fixture `name` with its config changed by `edit`.
fn load_with(ctx: &GpuContext, name: &str, edit: impl FnOnce(&mut ModelConfig)) -> Model {
    let (mut config, mut file) = open_dir(&fixture("hf-dense").join(name).join("model")).unwrap();
    edit(&mut config);
    Model::load(ctx, config, &mut file, |_| {}).unwrap()
}

/// Runs the golden's tokens starting at cache position `start` (0 is correct) and compares.
fn run(ctx: &GpuContext, model: &Model, golden: &Golden, start: usize) -> CompareReport {
    let tokens = golden.tokens().unwrap();
    let mut cache = model.new_cache(ctx).unwrap();
    cache.len = start;
    let mut b = Batch::new(ctx);
    let (logits, hidden) = model
        .record_forward(&mut b, &tokens, &mut cache, Logits::All)
        .unwrap();
    let mut all: Vec<_> = hidden.iter().collect();
    all.push(&logits);
    let mut outs = b.read(&all).unwrap();
    let logits = outs.pop().unwrap();
    compare_outputs(&ctx.name(), golden, &outs, &logits).unwrap()
}

/// The bug must fail at block 0 (every fixture's bugs act in the first layer) by >= 100x.
fn assert_caught(what: &str, report: &CompareReport) {
    let first = &report.rows[0];
    let ratio = first.ours_vs_f64 / first.tolerance;
    eprintln!(
        "{what}: block 0 error {:.2e}, tolerance {:.2e} ({ratio:.0}x)",
        first.ours_vs_f64, first.tolerance
    );
    assert_eq!(report.first_failure.as_deref(), Some("block 0"), "{what}");
    assert!(ratio >= 100.0, "{what}: only {ratio:.1}x past tolerance");
}

#[test]
fn rope_with_the_wrong_pair_convention_fails() {
    let ctx = &contexts()[0];
    let model = load_with(ctx, "llama-gqa3", |c| c.rope.mode = RopeMode::Interleaved);
    assert_caught(
        "interleaved RoPE pairs",
        &run(ctx, &model, &golden("llama-gqa3"), 0),
    );
}

#[test]
fn a_dropped_bias_fails() {
    let ctx = &contexts()[0];
    let model = load_with(ctx, "qwen2-bias", |c| {
        if let AttentionConfig::Mha { qkv_bias, .. } = &mut c.attention {
            *qkv_bias = false;
        }
    });
    assert_caught(
        "q/k/v biases dropped",
        &run(ctx, &model, &golden("qwen2-bias"), 0),
    );
}

#[test]
fn an_off_by_one_cache_position_fails() {
    let ctx = &contexts()[0];
    let model = load_with(ctx, "mistral-window-sharded", |_| {});
    let g = golden("mistral-window-sharded");
    assert_eq!(run(ctx, &model, &g, 0).first_failure, None);
    assert_caught("cache position off by one", &run(ctx, &model, &g, 1));
}

#[test]
fn a_wrong_norm_epsilon_fails() {
    let ctx = &contexts()[0];
    // 1e-5 for the checkpoint's 1e-6: the usual mix-up between Llama 1/2 and later configs.
    let model = load_with(ctx, "qwen3-head-dim", |c| c.norm_eps = 1e-5);
    assert_caught(
        "norm eps 1e-5 for 1e-6",
        &run(ctx, &model, &golden("qwen3-head-dim"), 0),
    );
}

#[test]
fn a_golden_with_more_layers_than_the_model_is_an_error() {
    let ctx = &contexts()[0];
    let model = load_with(ctx, "llama-gqa3", |c| c.n_layers = 1);
    let err = compare(ctx, &model, &golden("llama-gqa3"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("hidden.1") && err.contains("more layers"),
        "{err}"
    );
}

#[test]
fn short_or_ragged_outputs_are_an_error_not_a_partial_match() {
    let g = golden("llama-gqa3");
    let n = g.tokens().unwrap().len();
    let (d, v) = (36, 131);
    let hidden = vec![vec![0.0; n * d]; 2];
    let err = compare_outputs("test", &g, &hidden, &vec![0.0; n * v - 1]).unwrap_err();
    assert!(err.to_string().contains("logits"), "{err}");
    let short = vec![vec![0.0; n * d], vec![0.0; n * d - 3]];
    let err = compare_outputs("test", &g, &short, &vec![0.0; n * v]).unwrap_err();
    assert!(err.to_string().contains("hidden.1"), "{err}");
}

#[test]
fn a_bf16_golden_scales_the_bound_by_its_unit_roundoff() {
    let ctx = &contexts()[0];
    let model = Model::load_dir(ctx, &fixture("hf-dense/qwen2-bias/model")).unwrap();
    let bf16 = Golden::open(&fixture("hf-dense/qwen2-bias/golden-bf16.safetensors")).unwrap();
    let report = compare(ctx, &model, &bf16).unwrap();
    assert_eq!(report.golden_dtype, "bfloat16");
    assert_eq!(report.first_failure, None, "{:#?}", report.rows);
    // The golden's own error is that of bf16 (~1e-3 normwise), ours that of f32.
    let first = &report.rows[0];
    assert!(first.theirs_vs_f64 > 1e-4, "{first:?}");
    assert!(first.ours_vs_f64 < 1e-5, "{first:?}");
}
