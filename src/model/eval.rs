//! Perplexity of a model on a token sequence, windowed exactly as `reference/train.py` does.

use super::non_finite::check_finite;
use super::transformer::{Logits, Model};
use crate::error::{Error, Result};
use crate::gpu::GpuContext;

/// Negative log-likelihood totals.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct Nll {
    /// Sum of −log p(next token), in nats.
    pub total: f64,
    /// Tokens predicted.
    pub count: usize,
}

impl Nll {
    /// `exp(total / count)`.
    pub fn perplexity(&self) -> f64 {
        (self.total / self.count as f64).exp()
    }
}

/// −log softmax(logits)[target] in f64.
fn nll_of(logits: &[f32], target: u32) -> f64 {
    let m = logits.iter().fold(f64::MIN, |m, &v| m.max(v as f64));
    let lse = m + logits
        .iter()
        .map(|&v| (v as f64 - m).exp())
        .sum::<f64>()
        .ln();
    lse - logits[target as usize] as f64
}

/// Perplexity over `tokens` in non-overlapping windows of `window` tokens: window `s` feeds
/// `tokens[s..s+window]` from an empty cache and scores each next token. `progress(done, total)`
/// is called after each window.
pub fn evaluate(
    ctx: &GpuContext,
    model: &Model,
    tokens: &[u32],
    window: usize,
    mut progress: impl FnMut(usize, usize),
) -> Result<Nll> {
    if tokens.len() < 2 || window == 0 {
        return Err(Error::Invalid {
            what: "evaluation text".into(),
            expected: "at least 2 tokens and a window of at least 1".into(),
            found: format!("{} tokens, window {window}", tokens.len()),
        });
    }
    let vocab = model.config.vocab_size;
    let starts: Vec<usize> = (0..tokens.len() - 1).step_by(window).collect();
    let mut nll = Nll::default();
    for (i, &s) in starts.iter().enumerate() {
        let end = (s + window).min(tokens.len() - 1);
        let mut cache = model.new_cache(ctx)?;
        let logits = model.forward(ctx, &tokens[s..end], &mut cache, Logits::All)?;
        for (j, row) in logits.chunks(vocab).enumerate() {
            let what = format!("the logits of window {i} (the text's token {})", s + j);
            let at = (&tokens[s..end], j);
            pollster::block_on(check_finite(ctx, model, at, row, &what))?;
            nll.total += nll_of(row, tokens[s + j + 1]);
            nll.count += 1;
        }
        progress(i + 1, starts.len());
    }
    Ok(nll)
}
