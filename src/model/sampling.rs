//! Choosing the next token from logits: greedy, temperature, top-k, top-p, repetition penalty,
//! with a seeded generator so the same seed on the same adapter gives the same text.

/// Sampling settings.
#[derive(Clone, Debug, PartialEq)]
pub struct SamplingConfig {
    /// 0 means greedy (argmax).
    pub temperature: f32,
    /// Keep only the k most likely tokens (0 = all).
    pub top_k: usize,
    /// Keep the smallest set of tokens whose probability reaches p (1 = all).
    pub top_p: f32,
    /// Divide positive logits (multiply negative ones) of tokens already seen by this (1 = off).
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

/// A sampler: settings plus its generator's state.
pub struct Sampler {
    cfg: SamplingConfig,
    state: u64,
}

impl Sampler {
    /// A sampler seeded from `cfg.seed`.
    pub fn new(cfg: SamplingConfig) -> Self {
        let state = cfg.seed;
        Sampler { cfg, state }
    }

    /// A uniform number in [0, 1) (SplitMix64).
    fn uniform(&mut self) -> f64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Picks the next token from `logits` given the tokens generated or seen so far.
    pub fn sample(&mut self, logits: &[f32], history: &[u32]) -> u32 {
        let mut l: Vec<f64> = logits.iter().map(|&v| v as f64).collect();
        let penalty = self.cfg.repetition_penalty as f64;
        if penalty != 1.0 {
            let mut seen = vec![false; l.len()];
            for &t in history {
                if let Some(s) = seen.get_mut(t as usize) {
                    *s = true;
                }
            }
            for (v, s) in l.iter_mut().zip(seen) {
                if s {
                    *v = if *v > 0.0 { *v / penalty } else { *v * penalty };
                }
            }
        }
        // Ties go to the lowest id, so greedy is deterministic.
        let argmax = l
            .iter()
            .enumerate()
            .fold(0, |best, (i, &v)| if v > l[best] { i } else { best });
        if self.cfg.temperature <= 0.0 {
            return argmax as u32;
        }
        let t = self.cfg.temperature as f64;
        let mut order: Vec<usize> = (0..l.len()).collect();
        order.sort_by(|&a, &b| l[b].total_cmp(&l[a]).then(a.cmp(&b)));
        if self.cfg.top_k > 0 {
            order.truncate(self.cfg.top_k);
        }
        let m = l[order[0]];
        let mut probs: Vec<f64> = order.iter().map(|&i| ((l[i] - m) / t).exp()).collect();
        let total: f64 = probs.iter().sum();
        probs.iter_mut().for_each(|p| *p /= total);
        if self.cfg.top_p < 1.0 {
            let mut acc = 0.0;
            let keep = probs
                .iter()
                .position(|p| {
                    acc += p;
                    acc >= self.cfg.top_p as f64
                })
                .map_or(probs.len(), |i| i + 1);
            order.truncate(keep);
            probs.truncate(keep);
            let total: f64 = probs.iter().sum();
            probs.iter_mut().for_each(|p| *p /= total);
        }
        let r = self.uniform();
        let mut acc = 0.0;
        for (&i, &p) in order.iter().zip(&probs) {
            acc += p;
            if r < acc {
                return i as u32;
            }
        }
        order[order.len() - 1] as u32
    }
}
