//! Perplexity of a model on a token sequence, windowed exactly as `reference/train.py` does.

use crate::error::{Error, Result};
use crate::gpu::GpuContext;
use crate::model::layers::transformer::{Logits, Model};
use crate::model::runtime::non_finite::check_finite;
use crate::model::tools::kl_stats::{log_sum_exp, KlStats, KlSummary};

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
    log_sum_exp(logits) - logits[target as usize] as f64
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
    tokens: impl Iterator<Item = Result<u32>>,
    window: usize,
    mut progress: impl FnMut(usize),
) -> Result<Nll> {
    let vocab = model.config.vocab_size;
    let mut nll = Nll::default();
    for_each_window(model, tokens, window, |at, inputs, targets| {
        let logits = scored_logits(ctx, model, inputs, at)?;
        for (row, &target) in logits.chunks(vocab).zip(targets) {
            nll.total += nll_of(row, target);
            nll.count += 1;
        }
        progress(at.0 + 1);
        Ok(())
    })?;
    Ok(nll)
}

/// Scores `tokens` with `reference` and `candidate` (the same model loaded in two weight
/// formats) in windows of `window`, as [`evaluate_stream`] does, and compares their next-token
/// distributions position by position (f64), in the figures llama.cpp's
/// `perplexity --kl-divergence` reports. `progress(done)` is called after each window.
pub fn compare_formats(
    ctx: &GpuContext,
    reference: &Model,
    candidate: &Model,
    tokens: impl Iterator<Item = Result<u32>>,
    window: usize,
    mut progress: impl FnMut(usize),
) -> Result<KlSummary> {
    let vocab = reference.config.vocab_size;
    if candidate.config.vocab_size != vocab {
        return Err(Error::Invalid {
            what: "the models compared".into(),
            expected: format!("one vocabulary ({vocab} tokens)"),
            found: format!("{} tokens", candidate.config.vocab_size),
        });
    }
    let mut stats = KlStats::default();
    for_each_window(reference, tokens, window, |at, inputs, targets| {
        let p = scored_logits(ctx, reference, inputs, at)?;
        let q = scored_logits(ctx, candidate, inputs, at)?;
        for ((p, q), &target) in p.chunks(vocab).zip(q.chunks(vocab)).zip(targets) {
            let lse = log_sum_exp(p);
            let base: Vec<Option<f64>> = p.iter().map(|&v| Some(v as f64 - lse)).collect();
            stats.add(&base, q, target);
        }
        progress(at.0 + 1);
        Ok(())
    })?;
    Ok(stats.summary())
}

/// The logits of every position of `inputs` (window `at.0`, from the text's token `at.1`) from
/// an empty cache, checked finite: `[inputs.len(), vocab]`.
fn scored_logits(
    ctx: &GpuContext,
    model: &Model,
    inputs: &[u32],
    at: (usize, usize),
) -> Result<Vec<f32>> {
    let mut cache = model.new_cache(ctx)?;
    let logits = model.forward(ctx, inputs, &mut cache, Logits::All)?;
    for (j, row) in logits.chunks(model.config.vocab_size).enumerate() {
        let what = format!(
            "the logits of window {} (the text's token {})",
            at.0,
            at.1 + j
        );
        pollster::block_on(check_finite(ctx, model, (inputs, j), row, &what))?;
    }
    Ok(logits)
}

/// Cuts `tokens` into non-overlapping windows of `window` (at most the model's context) and
/// calls `score((window index, first token's index), inputs, targets)` for each, the targets
/// being the inputs shifted by one. Errors when the text has fewer than 2 tokens.
fn for_each_window(
    model: &Model,
    mut tokens: impl Iterator<Item = Result<u32>>,
    window: usize,
    mut score: impl FnMut((usize, usize), &[u32], &[u32]) -> Result<()>,
) -> Result<()> {
    let context = model.config.max_context;
    if window == 0 || window > context {
        return Err(Error::Invalid {
            what: "evaluation window".into(),
            expected: format!("1 to {context} tokens (the model's max_context)"),
            found: window.to_string(),
        });
    }
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
        score((windows, start), inputs, &held[1..])?;
        windows += 1;
        start += inputs.len();
        let next_first = held[held.len() - 1];
        held.clear();
        held.push(next_first);
    }
    if windows == 0 {
        return Err(Error::Invalid {
            what: "evaluation text".into(),
            expected: "at least 2 tokens".into(),
            found: format!("{} token(s)", held.len()),
        });
    }
    Ok(())
}
