//! Choosing the next token from logits: greedy, temperature, top-k, top-p, repetition penalty,
//! with a seeded generator so the same seed on the same adapter gives the same text.
//!
//! Generation samples on the GPU (`sample.wgsl`); [`Sampler::sample`] is its CPU reference,
//! step for step:
//! 1. seen tokens' scores are divided by the penalty when not negative, multiplied when
//!    negative (each token once, however often it was seen), then all are divided by the
//!    temperature (both as multiplications by the f32 reciprocal, as the GPU does);
//! 2. top-k keeps every token scoring at least the k-th largest score (ties kept, as
//!    transformers' `TopKLogitsWarper` does);
//! 3. top-p keeps a token when the probability of the kept tokens scoring strictly above it is
//!    below p (transformers' `TopPLogitsWarper`, ties kept);
//! 4. a draw u in [0, 1) picks the first kept token, in id order, whose running probability
//!    passes u.
//!
//! Greedy is the argmax of the penalised logits, lowest id on ties.

use crate::error::{Error, Result};
use crate::ops::SampleParams;

/// The score the sampler gives a token that top-k or top-p removed: transformers' -inf, as
/// the lowest f32 (WGSL may assume no infinities exist).
pub const REMOVED: f32 = f32::MIN;

/// Sampling settings.
#[derive(Clone, Debug, PartialEq)]
pub struct SamplingConfig {
    /// 0 means greedy (argmax).
    pub temperature: f32,
    /// Keep only the k most likely tokens, and any tied with the k-th (0 = all).
    pub top_k: usize,
    /// Keep the smallest set of tokens whose probability reaches p (1 = all).
    pub top_p: f32,
    /// Divide non-negative logits (multiply negative ones) of tokens already seen by this
    /// (1 = off).
    pub repetition_penalty: f32,
    /// Seed of the generator.
    pub seed: u64,
}

impl Default for SamplingConfig {
    fn default() -> Self {
        SamplingConfig {
            temperature: 0.8,
            top_k: 40,
            top_p: 0.95,
            repetition_penalty: 1.0,
            seed: 0,
        }
    }
}

impl SamplingConfig {
    /// Checks every value is one sampling can use.
    pub fn validate(&self) -> Result<()> {
        let bad = |what: &str, expected: &str, found: String| {
            Err(Error::Invalid {
                what: format!("sampling {what}"),
                expected: expected.into(),
                found,
            })
        };
        if !(self.temperature.is_finite() && self.temperature >= 0.0) {
            return bad(
                "temperature",
                "a finite value >= 0 (0 = greedy)",
                self.temperature.to_string(),
            );
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return bad("top_p", "a value in (0, 1]", self.top_p.to_string());
        }
        if !(self.repetition_penalty.is_finite() && self.repetition_penalty > 0.0) {
            return bad(
                "repetition_penalty",
                "a finite value > 0 (1 = off)",
                self.repetition_penalty.to_string(),
            );
        }
        if u32::try_from(self.top_k).is_err() {
            return bad("top_k", "a value below 2^32", self.top_k.to_string());
        }
        Ok(())
    }

    /// Whether tokens are drawn (temperature > 0) rather than taken greedily.
    pub fn samples(&self) -> bool {
        self.temperature > 0.0
    }
}

/// SplitMix64: the sampler's generator of uniform draws.
#[derive(Clone, Debug)]
struct SplitMix64(u64);

impl SplitMix64 {
    /// A uniform number in [0, 1) with 24 bits, so it is exact as an f32 (the GPU's draw).
    fn uniform(&mut self) -> f32 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 40) as f32 / (1u32 << 24) as f32
    }
}

/// A sampler: settings plus its generator's state.
pub struct Sampler {
    cfg: SamplingConfig,
    rng: SplitMix64,
}

/// Maps a float to a u32 whose unsigned order is the float's order (as `sample.wgsl` does).
fn key_of(s: f32) -> u32 {
    let b = s.to_bits();
    if b & 0x8000_0000 != 0 {
        !b
    } else {
        b | 0x8000_0000
    }
}

/// What the CPU reference decided, for tests that compare it with the GPU.
#[derive(Clone, Debug)]
pub struct Choice {
    /// The token.
    pub token: u32,
    /// The processed scores: penalty and temperature applied, removed tokens at [`REMOVED`].
    pub scores: Vec<f32>,
    /// How far (as a probability) the draw was from the nearest edge of the chosen token's
    /// interval; a GPU whose sums differ by less may pick a neighbour. Infinite for greedy.
    pub margin: f64,
}

impl Sampler {
    /// A sampler seeded from `cfg.seed`.
    pub fn new(cfg: SamplingConfig) -> Self {
        let rng = SplitMix64(cfg.seed);
        Sampler { cfg, rng }
    }

    /// The settings.
    pub fn config(&self) -> &SamplingConfig {
        &self.cfg
    }

    /// The GPU kernel's params for the next token of a `vocab`-token model; draws from the
    /// generator when sampling (as [`Sampler::sample`] does).
    pub fn next_params(&mut self, vocab: usize) -> SampleParams {
        let c = &self.cfg;
        let sampling = c.samples();
        SampleParams {
            vocab: vocab as u32,
            top_k: c.top_k.min(u32::MAX as usize) as u32,
            top_p: c.top_p,
            inv_temperature: if sampling { 1.0 / c.temperature } else { 0.0 },
            penalty: c.repetition_penalty,
            inv_penalty: 1.0 / c.repetition_penalty,
            u: if sampling { self.rng.uniform() } else { 0.0 },
            slot: 0,
        }
    }

    /// Picks the next token from `logits` given the tokens generated or seen so far.
    pub fn sample(&mut self, logits: &[f32], history: &[u32]) -> u32 {
        self.choose(logits, history).token
    }

    /// As [`Sampler::sample`], with the processed scores and the draw's margin.
    pub fn choose(&mut self, logits: &[f32], history: &[u32]) -> Choice {
        let p = self.next_params(logits.len());
        let mut seen = vec![false; logits.len()];
        for &t in history {
            if let Some(s) = seen.get_mut(t as usize) {
                *s = true;
            }
        }
        let mut scores: Vec<f32> = logits
            .iter()
            .zip(&seen)
            .map(|(&l, &s)| match (s, l < 0.0) {
                (false, _) => l,
                (true, true) => l * p.penalty,
                (true, false) => l * p.inv_penalty,
            })
            .map(|s| {
                if p.inv_temperature > 0.0 {
                    s * p.inv_temperature
                } else {
                    s
                }
            })
            .collect();
        // Ties go to the lowest id, so greedy is deterministic.
        let argmax = (0..scores.len()).fold(0, |best, i| {
            if key_of(scores[i]) > key_of(scores[best]) {
                i
            } else {
                best
            }
        });
        if p.inv_temperature == 0.0 {
            return Choice {
                token: argmax as u32,
                scores,
                margin: f64::INFINITY,
            };
        }
        let floor = keep_floor(&scores, p.top_k as usize, p.top_p);
        let m = scores[argmax] as f64;
        let weight = |s: f32| (s as f64 - m).exp();
        let total: f64 = scores
            .iter()
            .filter(|&&s| key_of(s) >= floor)
            .map(|&s| weight(s))
            .sum();
        let target = p.u as f64 * total;
        let mut acc = 0.0;
        let mut choice = None;
        let mut last = argmax;
        for (i, &s) in scores.iter().enumerate() {
            if key_of(s) < floor {
                continue;
            }
            last = i;
            let next = acc + weight(s);
            if choice.is_none() && target < next {
                let margin = (target - acc).min(next - target) / total;
                choice = Some((i, margin));
            }
            acc = next;
        }
        let (token, margin) = choice.unwrap_or((last, 0.0));
        for s in scores.iter_mut() {
            if key_of(*s) < floor {
                *s = REMOVED;
            }
        }
        Choice {
            token: token as u32,
            scores,
            margin,
        }
    }
}

/// The smallest key kept by top-k then top-p.
fn keep_floor(scores: &[f32], top_k: usize, top_p: f32) -> u32 {
    let mut keys: Vec<u32> = scores.iter().map(|&s| key_of(s)).collect();
    keys.sort_unstable_by(|a, b| b.cmp(a));
    let mut floor = 0;
    if top_k > 0 && top_k < keys.len() {
        floor = keys[top_k - 1];
    }
    if top_p < 1.0 {
        let m = scores.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
        let kept: Vec<(u32, f64)> = scores
            .iter()
            .filter(|&&s| key_of(s) >= floor)
            .map(|&s| (key_of(s), (s as f64 - m).exp()))
            .collect();
        let total: f64 = kept.iter().map(|k| k.1).sum();
        let target = top_p as f64 * total;
        // Smallest kept key whose strictly-larger kept mass is below the target.
        let mut by_key = kept.clone();
        by_key.sort_unstable_by_key(|k| std::cmp::Reverse(k.0));
        let mut above = 0.0;
        let mut i = 0;
        let mut p_floor = by_key[0].0;
        while i < by_key.len() {
            let key = by_key[i].0;
            if above >= target {
                break;
            }
            p_floor = key;
            while i < by_key.len() && by_key[i].0 == key {
                above += by_key[i].1;
                i += 1;
            }
        }
        floor = floor.max(p_floor);
    }
    floor
}
