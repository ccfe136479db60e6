//! GGUF files of the newer families as llama.cpp's own converter classes write them
//! (`reference/export_gguf_families.py`, from the Hugging Face fixtures of `tests/hf_models.rs`):
//! each loads as its directory does, on every adapter — the same logits bit for bit, every layer
//! within `compare`'s tolerance of transformers' golden, and transformers' greedy tokens — and a
//! Gemma file stops at `<end_of_turn>` as well as at its end-of-sequence token.

mod common;

use common::{bits, fixture, greedy_and_expected, on_every_adapter};
use latentgpu::gpu::GpuContext;
use latentgpu::model::tools::compare::{compare, Golden};
use latentgpu::model::{Logits, Model, WeightFile};
use std::path::PathBuf;

/// Gemma 3 (its norms stored as 1 + weight, post-norms, two RoPE bases and a window), SmolLM3
/// (q/k rows permuted, NoPE every fourth layer), Qwen3-MoE (stacked experts, normalised as
/// llama.cpp always does for qwen3moe), Mixtral (a `llama` file with experts) and Phi-4-mini's
/// Phi-3 (fused q/k/v and gate/up, partial rotary, LongRoPE's factors as tensors).
const FAMILIES: &[&str] = &[
    "gemma3-window-full",
    "smollm3-nope",
    "qwen3-moe-normed",
    "mixtral-top2",
    "phi4-mini-longrope",
];

fn gguf(name: &str) -> PathBuf {
    fixture("gguf")
        .join("families")
        .join(format!("{name}-f32.gguf"))
}

fn hf(name: &str) -> PathBuf {
    fixture("hf-dense").join(name)
}

fn load(ctx: &GpuContext, path: &std::path::Path) -> Model {
    Model::load_dir(ctx, path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn expected(name: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(hf(name).join("expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn each_file_gives_its_directorys_logits_bit_for_bit() {
    on_every_adapter(|ctx| {
        for name in FAMILIES {
            let golden = Golden::open(&hf(name).join("golden.safetensors")).unwrap();
            let tokens = golden.tokens().unwrap();
            let logits = |model: &Model| {
                let mut cache = model.new_cache(ctx).unwrap();
                bits(
                    &model
                        .forward(ctx, &tokens, &mut cache, Logits::All)
                        .unwrap(),
                )
            };
            let (file, dir) = (load(ctx, &gguf(name)), load(ctx, &hf(name).join("model")));
            assert_eq!(file.config, dir.config, "{name}: the metadata's config");
            assert_eq!(logits(&file), logits(&dir), "{name}");
        }
    });
}

#[test]
fn compare_passes_and_greedy_decoding_gives_transformers_tokens() {
    on_every_adapter(|ctx| {
        for name in FAMILIES {
            let model = load(ctx, &gguf(name));
            let golden = Golden::open(&hf(name).join("golden.safetensors")).unwrap();
            let report = compare(ctx, &model, &golden).unwrap();
            assert_eq!(report.first_failure, None, "{name}: {:#?}", report.rows);
            let (got, want) = greedy_and_expected(ctx, &model, &expected(name));
            assert_eq!(got, want, "{name} on {}", ctx.name());
        }
    });
}

#[test]
fn a_gemma_file_stops_at_end_of_turn_too() {
    let file = WeightFile::open_gguf(&gguf("gemma3-window-full")).unwrap();
    // `<eos>` (the metadata's) and `<end_of_turn>`, found by its text as llama.cpp finds it.
    assert_eq!(
        latentgpu::model::families::gguf_stop_tokens(&file).unwrap(),
        vec![1, 5]
    );
    let file = WeightFile::open_gguf(&gguf("smollm3-nope")).unwrap();
    assert_eq!(
        latentgpu::model::families::gguf_stop_tokens(&file).unwrap(),
        vec![1]
    );
}
