//! What sampling means: the GPU sampler's processed scores against transformers' own logits
//! processors (fixtures from `reference/export_sampling_fixtures.py`), its draws against the
//! CPU reference, and proof that the fixtures catch the bugs they are there for.

mod common;

use common::sampling_checks::{self, cases, check, gpu_choose};
use common::{on_every_adapter, Rng};
use latentgpu::model::{Sampler, SamplingConfig};
use pollster::block_on;

#[test]
fn gpu_sampler_matches_transformers_logits_processors() {
    on_every_adapter(|ctx| block_on(sampling_checks::gpu_sampler_matches_transformers(ctx)));
}

#[test]
fn cpu_reference_matches_transformers_logits_processors() {
    for case in &cases() {
        let choice = Sampler::new(case.cfg.clone()).choose(&case.logits, &case.input_ids);
        check(case, &choice.scores).unwrap_or_else(|e| panic!("CPU reference: {e}"));
    }
}

#[test]
fn the_fixtures_catch_a_top_k_keeping_one_more_and_a_penalty_multiplying_positive_logits() {
    let cases = cases();
    // A top-k that keeps k+1 tokens (where the (k+1)-th is not tied with the k-th).
    for case in cases
        .iter()
        .filter(|c| ["top_k", "all"].contains(&c.name.as_str()))
    {
        let buggy = SamplingConfig {
            top_k: case.cfg.top_k + 1,
            ..case.cfg.clone()
        };
        let choice = Sampler::new(buggy).choose(&case.logits, &case.input_ids);
        assert!(
            check(case, &choice.scores).is_err(),
            "{}: k+1 passed",
            case.name
        );
    }
    // A repetition penalty that multiplies every seen logit, positive ones too.
    for case in cases.iter().filter(|c| c.cfg.repetition_penalty != 1.0) {
        let mut logits = case.logits.clone();
        for &t in &case.input_ids {
            let l = &mut case.logits[t as usize].clone();
            logits[t as usize] = *l * case.cfg.repetition_penalty;
        }
        let buggy = SamplingConfig {
            repetition_penalty: 1.0,
            ..case.cfg.clone()
        };
        let choice = Sampler::new(buggy).choose(&logits, &case.input_ids);
        assert!(
            check(case, &choice.scores).is_err(),
            "{}: multiplying passed",
            case.name
        );
    }
}

/// The probability within which the GPU's f32 running sums may put a draw on the other side of
/// a token boundary than the f64 reference: each weight exp(s − m) carries WGSL's exp error of
/// (3 + 2|x|) ulp, |x| ≤ 30 here, and an n-term f32 sum adds at most n·u of the total; with
/// n = 1009, 63u + 1009u < 1100 · 2^-24 ≈ 7e-5. Draws closer than this to a boundary are
/// excused (the test counts them and expects almost none).
const DRAW_MARGIN: f64 = 7e-5;

#[test]
fn gpu_draws_what_the_cpu_reference_draws() {
    let configs = [
        SamplingConfig {
            temperature: 0.0,
            top_k: 0,
            top_p: 1.0,
            repetition_penalty: 1.0,
            seed: 0,
        },
        SamplingConfig {
            temperature: 0.0,
            top_k: 0,
            top_p: 1.0,
            repetition_penalty: 1.7,
            seed: 0,
        },
        SamplingConfig {
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            repetition_penalty: 1.0,
            seed: 3,
        },
        SamplingConfig {
            temperature: 0.7,
            top_k: 40,
            top_p: 0.95,
            repetition_penalty: 1.0,
            seed: 5,
        },
        SamplingConfig {
            temperature: 1.3,
            top_k: 0,
            top_p: 0.8,
            repetition_penalty: 1.2,
            seed: 7,
        },
        SamplingConfig {
            temperature: 0.9,
            top_k: 1,
            top_p: 1.0,
            repetition_penalty: 1.0,
            seed: 9,
        },
    ];
    on_every_adapter(|ctx| {
        let mut rng = Rng::new(11);
        let mut excused = 0;
        for cfg in &configs {
            let (mut gpu, mut cpu) = (Sampler::new(cfg.clone()), Sampler::new(cfg.clone()));
            for round in 0..12 {
                let vocab = [1, 2, 255, 256, 257, 1009][round % 6];
                // Logits within ±10 (|x| ≤ 30 after the temperature), a few exact ties.
                let mut logits: Vec<f32> = (0..vocab).map(|_| rng.uniform(-10.0, 10.0)).collect();
                if vocab > 4 {
                    logits[vocab / 2] = logits[1];
                }
                let seen: Vec<u32> = (0..vocab.min(6)).map(|i| (i * 7 % vocab) as u32).collect();
                let want = cpu.choose(&logits, &seen);
                let (got, _) = block_on(gpu_choose(ctx, &mut gpu, &logits, &seen));
                if want.margin < DRAW_MARGIN {
                    excused += 1;
                    continue;
                }
                assert_eq!(got, want.token, "{cfg:?}, vocab {vocab}, round {round}");
            }
        }
        assert!(
            excused <= 2,
            "{excused} draws too close to a boundary to compare"
        );
    });
}
