//! `compare` against committed goldens (reference/export_golden.py) and `eval` against PyTorch's
//! perplexity on a committed slice of the test split.

mod common;

use common::on_every_adapter;
use latentgpu::model::tools::compare::{compare, Golden};
use latentgpu::model::tools::eval::evaluate;
use latentgpu::model::Model;
use safetensors::tensor::TensorView;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

const SHIPPED: &[&str] = &["shakespeare-latent", "shakespeare-mla", "shakespeare-mha"];

#[test]
fn compare_passes_on_the_committed_goldens() {
    on_every_adapter(|ctx| {
        for name in SHIPPED {
            let model = Model::load_dir(ctx, &root().join("models").join(name)).unwrap();
            let golden =
                Golden::open(&root().join(format!("tests/fixtures/golden/{name}-cpu.safetensors")))
                    .unwrap();
            let report = compare(ctx, &model, &golden).unwrap();
            assert_eq!(report.first_failure, None, "{name}: {:#?}", report.rows);
            assert_eq!(report.rows.len(), model.config.n_layers + 1);
            let logits = report.rows.last().unwrap();
            assert_eq!(logits.top1_agreement, Some(1.0));
            assert!(logits.cosine > 0.999_999);
        }
    });
}

/// Writes a copy of `golden` whose block `layer` output is shifted by `delta` in both its fp32
/// and float64 forms (a golden from a model that differs in that layer).
fn perturbed(golden: &Path, layer: usize, delta: f64) -> PathBuf {
    let bytes = std::fs::read(golden).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let mut data: Vec<(String, safetensors::Dtype, Vec<usize>, Vec<u8>)> = st
        .tensors()
        .into_iter()
        .map(|(n, v)| (n, v.dtype(), v.shape().to_vec(), v.data().to_vec()))
        .collect();
    for (name, dtype, _, b) in data.iter_mut() {
        if *name == format!("hidden.{layer}") {
            let v: Vec<f32> = b
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()) + delta as f32)
                .collect();
            *b = bytemuck::cast_slice(&v).to_vec();
        } else if *name == format!("hidden_f64.{layer}") {
            assert_eq!(*dtype, safetensors::Dtype::F64);
            let v: Vec<f64> = b
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap()) + delta)
                .collect();
            *b = bytemuck::cast_slice(&v).to_vec();
        }
    }
    let views: Vec<(String, TensorView)> = data
        .iter()
        .map(|(n, d, s, b)| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    let out = std::env::temp_dir().join(format!(
        "perturbed-{}-{layer}.safetensors",
        std::process::id()
    ));
    std::fs::write(
        &out,
        safetensors::serialize(views, meta.metadata().clone()).unwrap(),
    )
    .unwrap();
    out
}

#[test]
fn compare_names_the_first_layer_past_tolerance() {
    let ctx = &common::contexts()[0];
    let model = Model::load_dir(ctx, &root().join("models/shakespeare-mha")).unwrap();
    let bad = perturbed(
        &root().join("tests/fixtures/golden/shakespeare-mha-cpu.safetensors"),
        1,
        1e-3,
    );
    let report = compare(ctx, &model, &Golden::open(&bad).unwrap()).unwrap();
    assert_eq!(report.first_failure.as_deref(), Some("block 1"));
    assert!(report.rows[0].pass && !report.rows[1].pass);

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_latentgpu"))
        .args([
            "compare",
            "--model",
            root().join("models/shakespeare-mha").to_str().unwrap(),
            "--golden",
            bad.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("first layer past tolerance: block 1"),
        "{stderr}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("<-- past tolerance"));
}

#[test]
fn eval_matches_pytorch_perplexity_within_a_thousandth() {
    let ctx = &common::contexts()[0];
    for name in SHIPPED {
        let expected: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(root().join(format!("tests/fixtures/eval/{name}.json")))
                .unwrap(),
        )
        .unwrap();
        let model = Model::load_dir(ctx, &root().join("models").join(name)).unwrap();
        let text = std::fs::read(root().join("tests/fixtures/eval/test-slice.txt")).unwrap();
        let tokens: Vec<u32> = text.iter().map(|&b| b as u32).collect();
        let nll = evaluate(
            ctx,
            &model,
            &tokens,
            expected["window"].as_u64().unwrap() as usize,
            |_, _| {},
        )
        .unwrap();
        let theirs = expected["perplexity"].as_f64().unwrap();
        let rel = (nll.perplexity() - theirs).abs() / theirs;
        assert!(
            rel < 1e-3,
            "{name}: perplexity {} vs PyTorch {theirs} ({rel:.2e} relative)",
            nll.perplexity()
        );
    }
}

#[test]
fn eval_reads_its_text_as_it_scores_and_through_the_cli() {
    use latentgpu::model::tools::eval::evaluate_stream;
    let ctx = &common::contexts()[0];
    let model = Model::load_dir(ctx, &root().join("models/shakespeare-mha")).unwrap();
    // An endless text that fails after 1000 tokens: the windows before it are scored while it
    // is read, and no more than one window (and the token after it) is ever pulled ahead.
    let pulled = std::cell::Cell::new(0usize);
    let text = (0..).map(|i| {
        pulled.set(pulled.get() + 1);
        match i < 1000 {
            true => Ok(32 + (i % 90) as u32),
            false => Err(latentgpu::Error::Invalid {
                what: "text".into(),
                expected: "more".into(),
                found: "a read error".into(),
            }),
        }
    });
    let window = 64;
    let e = evaluate_stream(ctx, &model, text, window, |done| {
        assert!(
            pulled.get() <= done * window + 1,
            "read ahead of the windows scored"
        );
    })
    .unwrap_err();
    assert!(e.to_string().contains("a read error"), "{e}");

    // The CLI reads the file as a stream and gives PyTorch's perplexity.
    let expected: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("tests/fixtures/eval/shakespeare-mha.json")).unwrap(),
    )
    .unwrap();
    let model = root().join("models/shakespeare-mha");
    let text = root().join("tests/fixtures/eval/test-slice.txt");
    let window = expected["window"].to_string();
    let stdout = common::cli_stdout([
        "eval",
        "--json",
        "--model",
        model.to_str().unwrap(),
        "--text",
        text.to_str().unwrap(),
        "--window",
        &window,
    ]);
    let ours: serde_json::Value = serde_json::from_slice(&stdout).unwrap();
    let (ours, theirs) = (
        ours["perplexity"].as_f64().unwrap(),
        expected["perplexity"].as_f64().unwrap(),
    );
    assert!((ours - theirs).abs() / theirs < 1e-3, "{ours} vs {theirs}");
}
