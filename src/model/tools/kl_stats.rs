//! How far one model's next-token distributions are from a base's, position by position, in
//! the figures llama.cpp's `llama-perplexity --kl-divergence` reports: mean KL divergence (with
//! its uncertainty), its percentiles, the share of positions whose most likely token is the
//! same, the RMS of the change in the probability of the token that came, and both
//! perplexities.

/// The running figures of a comparison.
#[derive(Clone, Debug, Default)]
pub struct KlStats {
    /// KL(base ‖ ours) of each position, nats.
    kld: Vec<f64>,
    /// p(ours) − p(base) of the token that came, at each position.
    p_diff: Vec<f64>,
    /// Positions where both most likely tokens are the same.
    same_top: usize,
    /// Our negative log-likelihood, summed over the positions.
    nll: f64,
    /// The base's.
    base_nll: f64,
}

/// The summary of a comparison (see the module doc).
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct KlSummary {
    /// Positions compared.
    pub positions: usize,
    /// Our perplexity.
    pub perplexity: f64,
    /// The base's perplexity.
    pub base_perplexity: f64,
    /// Mean KL(base ‖ ours), nats.
    pub kld_mean: f64,
    /// Its uncertainty (the standard error of the mean).
    pub kld_mean_uncertainty: f64,
    /// The median KL divergence.
    pub kld_median: f64,
    /// The 99th percentile.
    pub kld_p99: f64,
    /// The 99.9th percentile.
    pub kld_p999: f64,
    /// The largest.
    pub kld_max: f64,
    /// The share of positions whose most likely next token is the same in both.
    pub same_top: f64,
    /// The root mean square of p(ours) − p(base) of the token that came.
    pub rms_p_diff: f64,
}

impl KlStats {
    /// Adds one position: the base's log-probabilities `base_log_p` (f64, nats; `None` for a
    /// token the base leaves out, as llama.cpp's file does below e^-16), our `logits`, and the
    /// token that came.
    pub fn add(&mut self, base_log_p: &[Option<f64>], logits: &[f32], target: u32) {
        let lse = log_sum_exp(logits);
        let ours = |i: usize| logits[i] as f64 - lse;
        let kld: f64 = base_log_p
            .iter()
            .enumerate()
            .filter_map(|(i, b)| b.map(|b| b.exp() * (b - ours(i))))
            .sum();
        // Rounding's tiny negatives read as 0; a NaN stays NaN.
        self.kld.push(if kld < 0.0 { 0.0 } else { kld });
        let base_at = |i: usize| base_log_p[i].unwrap_or(f64::NEG_INFINITY);
        let t = target as usize;
        self.nll -= ours(t);
        self.base_nll -= base_at(t);
        self.p_diff.push(ours(t).exp() - base_at(t).exp());
        let base_top =
            (0..base_log_p.len()).fold(0, |b, i| if base_at(i) > base_at(b) { i } else { b });
        self.same_top += (argmax(logits) == base_top) as usize;
    }

    /// The figures so far.
    pub fn summary(&self) -> KlSummary {
        let n = self.kld.len();
        let mut sorted = self.kld.clone();
        sorted.sort_by(f64::total_cmp);
        let mean = self.kld.iter().sum::<f64>() / n.max(1) as f64;
        let var = self.kld.iter().map(|k| (k - mean).powi(2)).sum::<f64>() / n.max(2) as f64;
        KlSummary {
            positions: n,
            perplexity: (self.nll / n as f64).exp(),
            base_perplexity: (self.base_nll / n as f64).exp(),
            kld_mean: mean,
            kld_mean_uncertainty: match n > 10 {
                true => (var / (n - 1) as f64).sqrt(),
                false => 0.0,
            },
            kld_median: percentile(&sorted, 0.5),
            kld_p99: percentile(&sorted, 0.99),
            kld_p999: percentile(&sorted, 0.999),
            kld_max: sorted.last().copied().unwrap_or(0.0),
            same_top: self.same_top as f64 / n.max(1) as f64,
            rms_p_diff: (self.p_diff.iter().map(|d| d * d).sum::<f64>() / n.max(1) as f64).sqrt(),
        }
    }
}

/// The `fraction` percentile of `sorted` values, interpolated as llama.cpp's `percentile`.
fn percentile(sorted: &[f64], fraction: f64) -> f64 {
    let Some(&last) = sorted.last() else {
        return 0.0;
    };
    let p = fraction * (sorted.len() - 1) as f64;
    let i = p as usize;
    let next = sorted.get(i + 1).copied().unwrap_or(last);
    (1.0 - (p - i as f64)) * sorted[i] + (p - i as f64) * next
}

/// log Σ exp(logits) in f64.
pub(crate) fn log_sum_exp(logits: &[f32]) -> f64 {
    let m = logits.iter().fold(f64::MIN, |m, &v| m.max(v as f64));
    m + logits
        .iter()
        .map(|&v| (v as f64 - m).exp())
        .sum::<f64>()
        .ln()
}

/// The index of the largest value (the first of equals).
pub(crate) fn argmax(v: &[f32]) -> usize {
    v.iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |best, (i, &x)| match x > best.1 {
            true => (i, x),
            false => best,
        })
        .0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_interpolate_as_llama_cpps() {
        let v: Vec<f64> = (0..11).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), 5.0);
        assert!((percentile(&v, 0.999) - 9.99).abs() < 1e-12);
        assert_eq!(percentile(&v, 1.0), 10.0);
    }

    #[test]
    fn a_model_against_itself_is_zero_and_always_the_same_top() {
        let logits = [0.5f32, -1.0, 2.0, 0.0];
        let lse = log_sum_exp(&logits);
        let base: Vec<Option<f64>> = logits.iter().map(|&l| Some(l as f64 - lse)).collect();
        let mut s = KlStats::default();
        s.add(&base, &logits, 1);
        let r = s.summary();
        assert!(r.kld_mean.abs() < 1e-15 && r.same_top == 1.0 && r.rms_p_diff < 1e-15);
        assert!((r.perplexity - r.base_perplexity).abs() < 1e-12);
    }
}
