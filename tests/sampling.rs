//! What sampling means: the GPU sampler's processed scores against transformers' own logits
//! processors (fixtures from `reference/export_sampling_fixtures.py`), its draws against the
//! CPU reference, and proof that the fixtures catch the bugs they are there for.

mod common;

use common::{fixture, on_every_adapter, Rng};
use latentgpu::gpu::{Batch, GpuContext, GpuTensor};
use latentgpu::model::{Sampler, SamplingConfig};
use latentgpu::ops::{self, SampleState};

/// One case of `tests/fixtures/sampling/processors.json`.
struct Case {
    name: String,
    cfg: SamplingConfig,
    input_ids: Vec<u32>,
    logits: Vec<f32>,
    /// transformers' processed scores (`None`: -inf, removed).
    scores: Vec<Option<f32>>,
}

fn cases() -> Vec<Case> {
    let path = fixture("sampling").join("processors.json");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let f32s = |v: &serde_json::Value| -> Vec<Option<f32>> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().map(|x| x as f32))
            .collect()
    };
    json["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| Case {
            name: c["name"].as_str().unwrap().to_string(),
            cfg: SamplingConfig {
                temperature: c["temperature"].as_f64().unwrap() as f32,
                top_k: c["top_k"].as_u64().unwrap() as usize,
                top_p: c["top_p"].as_f64().unwrap() as f32,
                repetition_penalty: c["repetition_penalty"].as_f64().unwrap() as f32,
                seed: 1,
            },
            input_ids: c["input_ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t.as_u64().unwrap() as u32)
                .collect(),
            logits: f32s(&c["logits"]).into_iter().map(Option::unwrap).collect(),
            scores: f32s(&c["scores"]),
        })
        .collect()
}

/// Checks processed scores against transformers': the same tokens removed, and the kept ones
/// equal within 4 units of f32 roundoff. transformers divides by the penalty and by the
/// temperature (one correctly rounded division each); we multiply by the f32 reciprocals (one
/// rounding for the reciprocal and one for the product, each). Each of the two steps is
/// therefore at most 2u off a correctly rounded quotient, where a correctly rounded quotient
/// is itself within u/2 of the exact one: relative 4u covers both steps.
fn check(case: &Case, ours: &[f32]) -> Result<(), String> {
    const U: f64 = f32::EPSILON as f64 / 2.0;
    let theirs_kept = case.scores.iter().filter(|s| s.is_some()).count();
    let ours_kept = ours.iter().filter(|s| s.is_finite()).count();
    if theirs_kept != ours_kept {
        return Err(format!(
            "{}: transformers keeps {theirs_kept} tokens, we keep {ours_kept}",
            case.name
        ));
    }
    for (i, (t, &o)) in case.scores.iter().zip(ours).enumerate() {
        match t {
            None if o != f32::NEG_INFINITY => {
                return Err(format!(
                    "{}: token {i} kept ({o}), transformers removes it",
                    case.name
                ))
            }
            Some(t) if ((o - t).abs() as f64) > 4.0 * U * (t.abs() as f64) => {
                return Err(format!(
                    "{}: token {i} scores {o}, transformers {t} (logit {})",
                    case.name, case.logits[i]
                ))
            }
            _ => {}
        }
    }
    Ok(())
}

/// The GPU sampler's processed scores and token for `logits`, with `seen` marked.
fn gpu_choose(
    ctx: &GpuContext,
    sampler: &mut Sampler,
    logits: &[f32],
    seen: &[u32],
) -> (u32, Vec<f32>) {
    let vocab = logits.len();
    let state = SampleState::new(ctx, vocab).unwrap();
    state.set_seen(ctx, seen).unwrap();
    let row = GpuTensor::from_f32(ctx, "logits", &[1, vocab], logits).unwrap();
    let mut b = Batch::new(ctx);
    ops::sample(&mut b, &row, &state, sampler.next_params(vocab)).unwrap();
    b.submit().unwrap();
    let token = pollster::block_on(Batch::new(ctx).read_u32_async(&[&state.token])).unwrap()[0][0];
    (token, state.scores.read(ctx).unwrap())
}

#[test]
fn gpu_sampler_matches_transformers_logits_processors() {
    let cases = cases();
    assert!(cases.len() >= 7);
    on_every_adapter(|ctx| {
        for case in &cases {
            let mut sampler = Sampler::new(case.cfg.clone());
            let (token, scores) = gpu_choose(ctx, &mut sampler, &case.logits, &case.input_ids);
            check(case, &scores).unwrap_or_else(|e| panic!("GPU sampler: {e}"));
            assert!(
                scores[token as usize].is_finite(),
                "{}: drew token {token}, which was removed",
                case.name
            );
        }
    });
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
                let (got, _) = gpu_choose(ctx, &mut gpu, &logits, &seen);
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
