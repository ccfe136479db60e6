//! Greedy generation with the shipped models, checked against committed tokens
//! (`tests/fixtures/generate/greedy.json`): natively on every adapter (`tests/greedy.rs`) and in
//! the browser (`tests/browser.rs`), so the browser's tokens are the native run's.

use latentgpu::model::{
    generate_async, GenerateConfig, LoadOptions, Logits, Model, SamplingConfig,
};
use latentgpu::GpuContext;

/// The committed tokens.
pub const FIXTURE: &str = include_str!("../fixtures/generate/greedy.json");

/// The fixture: where it was made and one run per shipped model.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct GreedyFixture {
    /// How to remake it.
    pub made_by: String,
    /// The adapter that made it.
    pub made_on: String,
    /// One greedy run per model.
    pub runs: Vec<GreedyRun>,
}

/// One greedy run: the prompt's text and the tokens generated after it.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct GreedyRun {
    /// The model's directory name under `models/`.
    pub model: String,
    /// The prompt (byte-level tokens).
    pub prompt: String,
    /// The generated tokens.
    pub tokens: Vec<u32>,
    /// The smallest gap between the largest and second-largest logit over the generated
    /// positions: how far a token is from flipping (logit errors are ~1e-5 here).
    pub min_margin: f32,
}

/// The shipped model `name`'s `config.json` text and `model.safetensors` bytes, built into the
/// test binary so the browser needs no file access.
pub fn shipped_model(name: &str) -> (&'static str, &'static [u8]) {
    match name {
        "shakespeare-latent" => (
            include_str!("../../models/shakespeare-latent/config.json"),
            include_bytes!("../../models/shakespeare-latent/model.safetensors"),
        ),
        "shakespeare-mha" => (
            include_str!("../../models/shakespeare-mha/config.json"),
            include_bytes!("../../models/shakespeare-mha/model.safetensors"),
        ),
        "shakespeare-mla" => (
            include_str!("../../models/shakespeare-mla/config.json"),
            include_bytes!("../../models/shakespeare-mla/model.safetensors"),
        ),
        other => panic!("no shipped model '{other}'"),
    }
}

/// Loads the shipped model `name` on `ctx`.
pub fn load_shipped(ctx: &GpuContext, name: &str) -> Model {
    let (config, weights) = shipped_model(name);
    Model::from_bytes(ctx, config, weights.to_vec(), LoadOptions::default())
        .unwrap_or_else(|e| panic!("loading {name} on {}: {e}", ctx.name()))
}

/// Generates `max_tokens` greedily after `prompt` with the shipped model `model`; returns the
/// tokens and the smallest top-1/top-2 logit gap over them, after checking that one prefill of
/// prompt + tokens picks the same tokens as decoding did.
pub async fn greedy_run(
    ctx: &GpuContext,
    model: &str,
    prompt: &str,
    max_tokens: usize,
) -> GreedyRun {
    let m = load_shipped(ctx, model);
    let ids = latentgpu::model::formats::tokenizer::encode(prompt);
    let cfg = GenerateConfig {
        eos_token_ids: Vec::new(),
        max_tokens,
        stop: None,
        sampling: SamplingConfig {
            temperature: 0.0,
            ..SamplingConfig::default()
        },
        cancel: None,
    };
    let tokens = generate_async(ctx, &m, &ids, &cfg, |_| {})
        .await
        .unwrap_or_else(|e| panic!("generating with {model} on {}: {e}", ctx.name()));
    assert_eq!(tokens.len(), max_tokens, "{model}: tokens generated");
    // Logits at every position of prompt + tokens (but the last token, which nothing follows).
    let mut all = ids.clone();
    all.extend_from_slice(&tokens[..tokens.len() - 1]);
    let mut cache = m.new_cache(ctx).unwrap();
    let logits = m
        .forward_async(ctx, &all, &mut cache, Logits::All)
        .await
        .unwrap();
    let vocab = m.config.vocab_size;
    let mut min_margin = f32::INFINITY;
    for (i, &token) in tokens.iter().enumerate() {
        let row = &logits[(ids.len() - 1 + i) * vocab..][..vocab];
        let (best, top1) =
            row.iter().enumerate().fold(
                (0, f32::NEG_INFINITY),
                |b, (j, &v)| if v > b.1 { (j, v) } else { b },
            );
        let top2 = row
            .iter()
            .enumerate()
            .filter(|&(j, _)| j != best)
            .fold(f32::NEG_INFINITY, |m, (_, &v)| m.max(v));
        assert_eq!(
            best as u32,
            token,
            "{model} on {}: prefill and decode disagree at generated token {i}",
            ctx.name()
        );
        min_margin = min_margin.min(top1 - top2);
    }
    GreedyRun {
        model: model.to_string(),
        prompt: prompt.to_string(),
        tokens,
        min_margin,
    }
}

/// Checks that greedy generation on `ctx` gives the committed tokens for the fixture's run of
/// `model`.
pub async fn check_greedy(ctx: &GpuContext, model: &str) {
    let fixture: GreedyFixture = serde_json::from_str(FIXTURE).expect("greedy.json");
    let want = fixture
        .runs
        .iter()
        .find(|r| r.model == model)
        .unwrap_or_else(|| panic!("greedy.json has no run of {model}"));
    let got = greedy_run(ctx, model, &want.prompt, want.tokens.len()).await;
    assert_eq!(
        got.tokens,
        want.tokens,
        "{model} on {}: greedy tokens differ from the native run on {} (text {:?} vs {:?})",
        ctx.name(),
        fixture.made_on,
        latentgpu::model::formats::tokenizer::decode(&got.tokens),
        latentgpu::model::formats::tokenizer::decode(&want.tokens)
    );
}
