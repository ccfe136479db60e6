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
    let total = tokens.len().saturating_sub(1).div_ceil(window.max(1));
    let stream = tokens.iter().map(|&t| Ok(t));
    evaluate_stream(ctx, model, stream, window, |done| progress(done, total))
}

/// As [`evaluate`], over tokens as they arrive (a text file read and tokenized while it is
/// scored): one window and the token after it are held at a time, whatever the text's length.
/// An error from `tokens` ends the evaluation with it. `progress(done)` is called after each
/// window.
pub fn evaluate_stream(
    ctx: &GpuContext,
    model: &Model,
    mut tokens: impl Iterator<Item = Result<u32>>,
    window: usize,
    mut progress: impl FnMut(usize),
) -> Result<Nll> {
    let context = model.config.max_context;
    if window == 0 || window > context {
        return Err(Error::Invalid {
            what: "evaluation window".into(),
            expected: format!("1 to {context} tokens (the model's max_context)"),
            found: window.to_string(),
        });
    }
    let vocab = model.config.vocab_size;
    let mut nll = Nll::default();
    // The window's tokens and the one after it (its last target, and the next window's first).
    let mut held: Vec<u32> = Vec::with_capacity(window + 1);
    let (mut windows, mut start) = (0, 0);
    loop {
        while held.len() < window + 1 {
            match tokens.next() {
                Some(t) => held.push(t?),
                None => break,
            }
        }
        if held.len() < 2 {
            break;
        }
        let inputs = &held[..held.len() - 1];
        let mut cache = model.new_cache(ctx)?;
        let logits = model.forward(ctx, inputs, &mut cache, Logits::All)?;
        for (j, row) in logits.chunks(vocab).enumerate() {
            let what = format!(
                "the logits of window {windows} (the text's token {})",
                start + j
            );
            pollster::block_on(check_finite(ctx, model, (inputs, j), row, &what))?;
            nll.total += nll_of(row, held[j + 1]);
            nll.count += 1;
        }
        windows += 1;
        start += inputs.len();
        progress(windows);
        let next_first = held[held.len() - 1];
        held.clear();
        held.push(next_first);
    }
    if nll.count == 0 {
        return Err(Error::Invalid {
            what: "evaluation text".into(),
            expected: "at least 2 tokens".into(),
            found: format!("{} token(s)", held.len()),
        });
    }
    Ok(nll)
}
