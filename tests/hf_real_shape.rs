//! `compare` at real widths and depths: a Llama with SmolLM2-135M's shapes (30 layers, d 576,
//! 9/3 heads, vocab 49152, tied) and random weights must pass against transformers' golden.
//! The checkpoint (538 MB) and golden are generated, never committed, so this test is opt-in:
//!
//!     .venv/bin/python reference/export_hf_fixtures.py --real-shape /tmp/real/smollm2-shaped
//!     LATENTGPU_REAL_SHAPE=/tmp/real/smollm2-shaped cargo test --release --test hf_real_shape -- --ignored

mod common;

use common::on_every_adapter;
use latentgpu::model::compare::{compare, Golden};
use latentgpu::model::Model;
use std::path::PathBuf;

#[test]
#[ignore = "needs the generated real-shaped checkpoint (see the file's doc)"]
fn a_real_shaped_llama_passes_compare_on_every_adapter() {
    let dir = PathBuf::from(
        std::env::var("LATENTGPU_REAL_SHAPE").expect("LATENTGPU_REAL_SHAPE names the checkpoint"),
    );
    let golden_path = dir.with_file_name(format!(
        "{}-golden.safetensors",
        dir.file_name().unwrap().to_string_lossy()
    ));
    on_every_adapter(|ctx| {
        let model = Model::load_dir(ctx, &dir).unwrap();
        assert_eq!(model.config.n_layers, 30);
        let golden = Golden::open(&golden_path).unwrap();
        let report = compare(ctx, &model, &golden).unwrap();
        let worst = report
            .rows
            .iter()
            .map(|r| r.ours_vs_f64 / r.theirs_vs_f64)
            .fold(0.0, f64::max);
        eprintln!(
            "{}: worst ours/theirs normwise error ratio {worst:.2}",
            ctx.name()
        );
        assert_eq!(report.first_failure, None, "{:#?}", report.rows);
        assert_eq!(report.rows.last().unwrap().top1_agreement, Some(1.0));
    });
}
