//! `eval --kl-divergence-base`: the base file llama.cpp's own `llama-perplexity
//! --kl-divergence-base` wrote for an f32 file (`reference/export_kl_base.py`), read (its
//! perplexity is llama.cpp's), and the same file run by our engine scored against it, giving
//! the figures transformers in float64 gives against the same base, on every adapter and
//! through the command line. A malformed base file is a named error.

mod common;

use common::on_every_adapter;
use latentgpu::model::tools::kl_base::{chunk_bos, compare_with_base, KlBase};
use latentgpu::model::{LoadOptions, Model};
use std::path::PathBuf;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gguf/kl-base")
}

/// The perplexity llama.cpp printed after the last chunk while it wrote the base
/// (`[4]475.1335,` on its standard output).
fn llama_cpp_ppl() -> f64 {
    let log = std::fs::read_to_string(dir().join("llama-perplexity.txt")).unwrap();
    let last = log.split(',').rfind(|p| p.contains(']')).unwrap();
    last.rsplit(']').next().unwrap().trim().parse().unwrap()
}

/// transformers in float64 on the same file, scored against the same base.
fn transformers() -> serde_json::Value {
    let text = std::fs::read_to_string(dir().join("transformers.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn our_engine_against_llama_cpps_base_gives_transformers_figures() {
    let model_path = dir().join("model-f32.gguf");
    let tf = transformers();
    let f = |k: &str| tf[k].as_f64().unwrap();
    on_every_adapter(|ctx| {
        let model =
            Model::load_dir_with(ctx, &model_path, LoadOptions::default(), |_, _| {}).unwrap();
        let mut base = KlBase::open(&dir().join("base.bin")).unwrap();
        assert_eq!((base.n_ctx, base.n_chunk, base.n_vocab), (32, 4, 400));
        let bos = chunk_bos(&model_path).unwrap();
        assert_eq!(bos, None, "the vocabulary adds no BOS");
        let s = compare_with_base(ctx, &model, &mut base, bos, |_, _| {}).unwrap();
        assert_eq!(s.positions, 4 * 15);
        // The base's perplexity, from its 16-bit log-probabilities, is llama.cpp's own figure
        // (printed to 4 decimals): each log-probability is rounded by at most half of
        // (max - min logit) / 65535 ≤ 16 / 131070 ≈ 1.2e-4 nats, so the mean NLL by as much.
        let theirs = llama_cpp_ppl();
        assert!(
            (s.base_perplexity.ln() - theirs.ln()).abs() < 1.3e-4 + 1e-4 / theirs,
            "base perplexity {} against llama.cpp's {theirs}",
            s.base_perplexity
        );
        // Ours against transformers in float64 on the same file (llama.cpp's f32 run strays
        // from both: its perplexity 475.1335 against 475.1916). Our logits are within ~1e-5 of
        // float64 (|logits| < 10, 64-wide sums of f32: tests/hf_models.rs's bound), so a
        // position's NLL moves by at most 2e-5 and the perplexity's log by as much; the KL
        // divergence from the base moves by at most Σ p·|δ log q| ≤ 2e-5 per position.
        assert!(
            (s.perplexity.ln() - f("perplexity").ln()).abs() < 2e-5,
            "{s:?} {tf}"
        );
        assert!((s.kld_mean - f("kld_mean")).abs() < 2e-5, "{s:?} {tf}");
        assert!(s.kld_max <= f("kld_max") + 2e-5, "{s:?} {tf}");
        assert_eq!(s.same_top, 1.0, "{s:?}");
    });
}

#[test]
fn the_command_line_scores_against_the_base() {
    let (model, base) = (dir().join("model-f32.gguf"), dir().join("base.bin"));
    let out = common::cli::succeeds(&[
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--kl-divergence-base",
        base.to_str().unwrap(),
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["positions"], 60);
    let tf = transformers();
    let kld = v["kld_mean"].as_f64().unwrap();
    assert!((kld - tf["kld_mean"].as_f64().unwrap()).abs() < 2e-5, "{v}");
    assert_eq!(v["same_top"], 1.0);
}

#[test]
fn a_malformed_base_is_a_named_error() {
    let good = std::fs::read(dir().join("base.bin")).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let cases: [(&str, Vec<u8>, &str); 3] = [
        (
            "truncated",
            good[..good.len() - 2].to_vec(),
            "bytes for n_ctx 32",
        ),
        (
            "no magic",
            [b"_logitz_", &good[8..]].concat(),
            "the magic '_logits_'",
        ),
        ("empty", Vec::new(), "a 20-byte header"),
    ];
    for (what, bytes, fragment) in cases {
        let path = tmp.path().join(format!("{}.bin", what.replace(' ', "-")));
        std::fs::write(&path, bytes).unwrap();
        let err = KlBase::open(&path)
            .err()
            .unwrap_or_else(|| panic!("{what}: opened"));
        let text = err.to_string();
        assert!(text.contains(fragment), "{what}: {text}");
    }
}
