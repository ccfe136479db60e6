//! Sampling semantics shared by the native and browser tests: transformers' logits processors
//! on fixed logits (`tests/fixtures/sampling/processors.json`, from
//! `reference/export_sampling_fixtures.py`) and the check of processed scores against them.
#![allow(dead_code)]

use latentgpu::gpu::{Batch, GpuContext, GpuTensor};
use latentgpu::model::{Sampler, SamplingConfig, REMOVED};
use latentgpu::ops::{self, SampleState};

/// One case of `tests/fixtures/sampling/processors.json`.
pub struct Case {
    pub name: String,
    pub cfg: SamplingConfig,
    pub input_ids: Vec<u32>,
    pub logits: Vec<f32>,
    /// transformers' processed scores (`None`: -inf, removed; ours are then `REMOVED`).
    pub scores: Vec<Option<f32>>,
}

/// Whether `err <= tol` (false for a NaN error).
fn within(err: f64, tol: f64) -> bool {
    err <= tol
}

/// The fixture's cases (embedded, so the browser tests have them too).
pub fn cases() -> Vec<Case> {
    let json: serde_json::Value =
        serde_json::from_str(include_str!("../fixtures/sampling/processors.json")).unwrap();
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
pub fn check(case: &Case, ours: &[f32]) -> Result<(), String> {
    const U: f64 = f32::EPSILON as f64 / 2.0;
    if ours.len() != case.scores.len() {
        return Err(format!(
            "{}: {} scores, transformers {}",
            case.name,
            ours.len(),
            case.scores.len()
        ));
    }
    let theirs_kept = case.scores.iter().filter(|s| s.is_some()).count();
    let ours_kept = ours.iter().filter(|&&s| s != REMOVED).count();
    if theirs_kept != ours_kept {
        return Err(format!(
            "{}: transformers keeps {theirs_kept} tokens, we keep {ours_kept}",
            case.name
        ));
    }
    for (i, (t, &o)) in case.scores.iter().zip(ours).enumerate() {
        match t {
            None if o != REMOVED => {
                return Err(format!(
                    "{}: token {i} kept ({o}), transformers removes it",
                    case.name
                ))
            }
            // A NaN is never within.
            Some(t) if !within((o - t).abs() as f64, 4.0 * U * (t.abs() as f64)) => {
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
pub async fn gpu_choose(
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
    // A slot past the first, so that the id must land where the slot says.
    let slot = 5;
    ops::sample(&mut b, &row, &state, slot, sampler.next_params(vocab)).unwrap();
    b.submit().unwrap();
    let ids = Batch::new(ctx)
        .read_u32_async(&[&state.token, &state.chosen])
        .await
        .unwrap();
    let token = ids[0][0];
    assert_eq!(ids[1][slot], token, "the id in the sampler's slot {slot}");
    let scores = Batch::new(ctx)
        .read_async(&[&state.scores])
        .await
        .unwrap()
        .remove(0);
    (token, scores)
}

/// The GPU sampler's processed scores against transformers' logits processors, and its draw
/// among the kept tokens.
pub async fn gpu_sampler_matches_transformers(ctx: &GpuContext) {
    let cases = cases();
    assert!(cases.len() >= 7);
    for case in &cases {
        let mut sampler = Sampler::new(case.cfg.clone());
        let (token, scores) = gpu_choose(ctx, &mut sampler, &case.logits, &case.input_ids).await;
        check(case, &scores).unwrap_or_else(|e| panic!("GPU sampler on {}: {e}", ctx.name()));
        assert!(
            scores[token as usize] != REMOVED,
            "{}: drew token {token}, which was removed",
            case.name
        );
    }
}
