//! The Rust model against the PyTorch twin's committed logits, prefill+decode against a full
//! forward, and seeded generation's determinism, for every attention kind and adapter.

mod common;

use common::{contexts, fixture, max_diff, max_diff64, on_every_adapter, Golden};
use latentgpu::model::{
    generate, Decoder, GenerateConfig, LoadOptions, Logits, Model, SamplingConfig,
};
use latentgpu::ops::WeightFormat;

const FIXTURES: &[&str] = &[
    "mha-tiny",
    "gqa-tiny-gelu-layernorm",
    "latent-tiny",
    "latent-tiny-nosynth",
    "mla-tiny",
    "mla-tiny-qlora-yarn",
];

/// math.md §6 (FlashAttention's rule): our error against the float64 reference may be at most
/// twice PyTorch fp32's own error against it, both measured on the same logits.
fn tolerance(torch_err: f64) -> f64 {
    2.0 * torch_err
}

/// A fixture's tokens, its float64 logits, and PyTorch fp32's own error against them.
fn reference(dir: &std::path::Path) -> (Vec<u32>, Vec<f64>, f64) {
    let golden = Golden::open(&dir.join("golden.safetensors"));
    let (ref64, _) = golden.f64("logits_f64");
    let (torch32, _) = golden.f64("logits_f32");
    let torch_err = max_diff64(&torch32, &ref64);
    (golden.tokens("tokens"), ref64, torch_err)
}

#[test]
fn logits_match_pytorch_twin() {
    on_every_adapter(|ctx| {
        for name in FIXTURES {
            let dir = fixture(name);
            let (tokens, ref64, torch_err) = reference(&dir);
            let model = Model::load_dir(ctx, &dir).unwrap();
            let mut cache = model.new_cache(ctx).unwrap();
            let ours = model
                .forward(ctx, &tokens, &mut cache, Logits::All)
                .unwrap();
            let our_err = max_diff(&ours, &ref64);
            let tol = tolerance(torch_err);
            eprintln!(
                "{name} on {}: ours {our_err:.3e}, torch fp32 {torch_err:.3e}, tol {tol:.3e}",
                ctx.name()
            );
            assert!(
                our_err <= tol,
                "{name}: logits error {our_err:.3e} > tol {tol:.3e} (torch fp32 {torch_err:.3e})"
            );
        }
    });
}

#[test]
fn prefill_then_decode_equals_full_forward() {
    on_every_adapter(|ctx| {
        for name in FIXTURES {
            let dir = fixture(name);
            let (tokens, ref64, torch_err) = reference(&dir);
            let tol = tolerance(torch_err);
            let model = Model::load_dir(ctx, &dir).unwrap();
            let v = model.config.vocab_size;
            let prefill = 5;
            let mut cache = model.new_cache(ctx).unwrap();
            let mut logits = model
                .forward(ctx, &tokens[..prefill], &mut cache, Logits::All)
                .unwrap();
            for &t in &tokens[prefill..] {
                logits.extend(model.forward(ctx, &[t], &mut cache, Logits::Last).unwrap());
            }
            assert_eq!(cache.len, tokens.len());
            // Both paths are measured against the same float64 logits at every position.
            for pos in 0..tokens.len() {
                let err = max_diff(
                    &logits[pos * v..(pos + 1) * v],
                    &ref64[pos * v..(pos + 1) * v],
                );
                assert!(
                    err <= tol,
                    "{name}: position {pos}: error {err:.3e} > {tol:.3e}"
                );
            }
        }
    });
}

#[test]
fn same_seed_gives_the_same_tokens() {
    on_every_adapter(|ctx| {
        let model = Model::load_dir(ctx, &fixture("mha-tiny")).unwrap();
        let cfg = GenerateConfig {
            eos_token_ids: Vec::new(),
            max_tokens: 20,
            stop: None,
            sampling: SamplingConfig {
                temperature: 1.0,
                top_k: 0,
                top_p: 0.9,
                repetition_penalty: 1.1,
                seed: 7,
            },
            cancel: None,
        };
        let prompt = latentgpu::model::formats::tokenizer::encode("ROMEO:");
        let a = generate(ctx, &model, &prompt, &cfg, |_| {}).unwrap();
        let b = generate(ctx, &model, &prompt, &cfg, |_| {}).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.len(), 20);
        let other = GenerateConfig {
            eos_token_ids: Vec::new(),
            sampling: SamplingConfig {
                seed: 8,
                ..cfg.sampling.clone()
            },
            ..cfg.clone()
        };
        let c = generate(ctx, &model, &prompt, &other, |_| {}).unwrap();
        assert_ne!(a, c, "a different seed should change a 20-token sample");
    });
}

/// Sampling that uses every stage of the GPU sampler, so that a batch that decodes several
/// tokens must carry the seen tokens, the draws and the positions from one token to the next.
fn busy_sampling(seed: u64) -> SamplingConfig {
    SamplingConfig {
        temperature: 0.9,
        top_k: 40,
        top_p: 0.95,
        repetition_penalty: 1.2,
        seed,
    }
}

#[test]
fn several_tokens_per_batch_choose_the_tokens_of_one_batch_per_token() {
    on_every_adapter(|ctx| {
        for name in ["mha-tiny", "latent-tiny", "mla-tiny"] {
            let model = Model::load_dir(ctx, &fixture(name)).unwrap();
            let prompt = latentgpu::model::formats::tokenizer::encode("ROMEO:");
            let run = |batches: &[usize]| {
                let mut d = Decoder::new(ctx, &model, busy_sampling(11)).unwrap();
                let mut out = vec![pollster::block_on(d.prefill(&prompt)).unwrap()];
                for &n in batches {
                    let got = pollster::block_on(d.decode(n)).unwrap();
                    assert_eq!(got.len(), n, "{name}: tokens of a batch of {n}");
                    out.extend(got);
                }
                assert_eq!(
                    d.cache().len,
                    prompt.len() + out.len() - 1,
                    "{name}: cached"
                );
                out
            };
            let one_by_one = run(&[1; 24]);
            let batched = run(&[5, 1, 16, 2]);
            assert_eq!(batched, one_by_one, "{name}");
        }
    });
}

#[test]
fn a_batch_stops_at_the_end_of_the_context_and_generation_at_eos_inside_a_batch() {
    let ctx = &contexts()[0];
    let model = Model::load_dir(ctx, &fixture("mha-tiny")).unwrap();
    let capacity = model.config.max_context;
    let prompt: Vec<u32> = (0..capacity as u32 - 6).map(|i| 32 + i % 60).collect();
    let mut d = Decoder::new(ctx, &model, busy_sampling(3)).unwrap();
    pollster::block_on(d.prefill(&prompt)).unwrap();
    assert_eq!(d.room(), 6);
    assert_eq!(
        pollster::block_on(d.decode(16)).unwrap().len(),
        6,
        "the room left"
    );
    assert!(
        pollster::block_on(d.decode(16)).unwrap().is_empty(),
        "a full context"
    );

    // Generation that ends on an end-of-sequence token chosen inside a batch keeps exactly the
    // tokens up to it (the paced batches take several tokens each on a model this small).
    let cfg = GenerateConfig {
        eos_token_ids: Vec::new(),
        max_tokens: 40,
        stop: None,
        sampling: busy_sampling(5),
        cancel: None,
    };
    let prompt = latentgpu::model::formats::tokenizer::encode("ROMEO:");
    let all = generate(ctx, &model, &prompt, &cfg, |_| {}).unwrap();
    assert_eq!(all.len(), 40);
    let at = (20..40)
        .find(|&i| !all[..i].contains(&all[i]))
        .expect("a token first chosen after the 20th");
    let eos = GenerateConfig {
        eos_token_ids: vec![all[at]],
        ..cfg
    };
    let mut streamed = Vec::new();
    let out = generate(ctx, &model, &prompt, &eos, |t| streamed.push(t)).unwrap();
    assert_eq!(out, all[..=at], "tokens up to the end-of-sequence token");
    assert_eq!(streamed, out, "what on_token saw");
}

#[test]
fn cancelling_ends_generation_after_the_current_token() {
    let ctx = &contexts()[0];
    let model = Model::load_dir(ctx, &fixture("mha-tiny")).unwrap();
    let cancel = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let cfg = GenerateConfig {
        eos_token_ids: Vec::new(),
        max_tokens: 20,
        stop: None,
        sampling: SamplingConfig::default(),
        cancel: Some(cancel.clone()),
    };
    let mut seen = 0;
    let out = generate(ctx, &model, &[1, 2, 3], &cfg, |_| {
        seen += 1;
        if seen == 3 {
            cancel.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    })
    .unwrap();
    assert_eq!(out.len(), 3, "tokens after cancelling at the third");
}

#[test]
fn half_weights_stay_within_their_tolerance_of_f32() {
    on_every_adapter(|ctx| {
        for name in FIXTURES {
            let dir = fixture(name);
            let tokens = Golden::open(&dir.join("golden.safetensors")).tokens("tokens");
            let run = |weights| {
                let model =
                    Model::load_dir_with(ctx, &dir, LoadOptions::weights(weights), |_, _| {})
                        .unwrap();
                assert_eq!(model.weight_format(), weights, "{name}");
                let mut cache = model.new_cache(ctx).unwrap();
                let prefill = model
                    .forward(ctx, &tokens[..40], &mut cache, Logits::All)
                    .unwrap();
                let decode = model
                    .forward(ctx, &tokens[40..41], &mut cache, Logits::Last)
                    .unwrap();
                (prefill, decode, model.config.n_layers)
            };
            let (p32, d32, layers) = run(WeightFormat::F32);
            // f16 keeps 11 significant bits (unit roundoff 2^-11), bf16 8 (2^-8).
            for (weights, u16) in [
                (WeightFormat::F16, 2f64.powi(-11)),
                (WeightFormat::BF16, 2f64.powi(-8)),
            ] {
                let (p16, d16, _) = run(weights);
                // Rounding a weight perturbs it by at most u16 relative; a product of length K
                // with such weights moves by about u16 of its size (the perturbations are
                // independent), and a logit sits behind 2 + 4·layers products in sequence whose
                // errors add in quadrature: 4·u16·sqrt(2 + 4·layers)·max|logit|, c = 4.
                let scale = p32.iter().fold(0.0f32, |m, v| m.max(v.abs())) as f64;
                let tol = 4.0 * u16 * ((2 + 4 * layers) as f64).sqrt() * scale;
                assert_eq!(
                    (p32.len(), d32.len()),
                    (p16.len(), d16.len()),
                    "{name}: lengths"
                );
                let all32: Vec<f64> = p32.iter().chain(&d32).map(|&v| v as f64).collect();
                let all16: Vec<f32> = p16.iter().chain(&d16).copied().collect();
                let err = max_diff(&all16, &all32);
                let what = weights.name();
                eprintln!(
                    "{name}: {what} weights vs f32 {err:.3e} (tol {tol:.3e}) on {}",
                    ctx.name()
                );
                assert!(
                    err <= tol,
                    "{name}: {what} weights moved logits by {err:.3e} > {tol:.3e}"
                );
            }
        }
    });
}
