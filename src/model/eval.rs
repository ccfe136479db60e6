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

/// log Σ exp(logits) in f64.
fn log_sum_exp(logits: &[f32]) -> f64 {
    let m = logits.iter().fold(f64::MIN, |m, &v| m.max(v as f64));
    m + logits
        .iter()
        .map(|&v| (v as f64 - m).exp())
        .sum::<f64>()
        .ln()
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

/// How a model in one weight format agrees with the same model in another (the reference), over
/// the same windows of the same text: the figures llama.cpp's `perplexity --kl-divergence`
/// reports.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct Agreement {
    /// The reference's negative log-likelihood.
    pub reference: Nll,
    /// The candidate's.
    pub candidate: Nll,
    /// Mean over positions of KL(P_reference ‖ P_candidate) of the next-token distributions,
    /// in nats.
    pub kld_mean: f64,
    /// The largest KL divergence of one position.
    pub kld_max: f64,
    /// The share of positions where both models' most likely next token is the same.
    pub top1: f64,
}

/// Scores `tokens` with `reference` and `candidate` (the same model loaded in two weight
/// formats) in windows of `window`, as [`evaluate_stream`] does, and compares their next-token
/// distributions position by position (f64). `progress(done)` is called after each window.
pub fn compare_formats(
    ctx: &GpuContext,
    reference: &Model,
    candidate: &Model,
    tokens: impl Iterator<Item = Result<u32>>,
    window: usize,
    mut progress: impl FnMut(usize),
) -> Result<Agreement> {
    let vocab = reference.config.vocab_size;
    if candidate.config.vocab_size != vocab {
        return Err(Error::Invalid {
            what: "the models compared".into(),
            expected: format!("one vocabulary ({vocab} tokens)"),
            found: format!("{} tokens", candidate.config.vocab_size),
        });
    }
    let mut a = Agreement::default();
    let (mut kld_sum, mut same) = (0.0, 0usize);
    for_each_window(reference, tokens, window, |at, inputs, targets| {
        let p = scored_logits(ctx, reference, inputs, at)?;
        let q = scored_logits(ctx, candidate, inputs, at)?;
        for ((p, q), &target) in p.chunks(vocab).zip(q.chunks(vocab)).zip(targets) {
            a.reference.total += nll_of(p, target);
            a.candidate.total += nll_of(q, target);
            let kld = kl_divergence(p, q);
            kld_sum += kld;
            // Not f64::max, which would drop a NaN.
            if kld.is_nan() || kld > a.kld_max {
                a.kld_max = kld;
            }
            same += (argmax(p) == argmax(q)) as usize;
        }
        a.reference.count += targets.len();
        progress(at.0 + 1);
        Ok(())
    })?;
    a.candidate.count = a.reference.count;
    a.kld_mean = kld_sum / a.reference.count as f64;
    a.top1 = same as f64 / a.reference.count as f64;
    Ok(a)
}

/// The log-softmax of `logits` in f64.
fn log_softmax(logits: &[f32]) -> Vec<f64> {
    let lse = log_sum_exp(logits);
    logits.iter().map(|&v| v as f64 - lse).collect()
}

/// KL(softmax(p) ‖ softmax(q)) in f64, nats (rounding's tiny negatives read as 0; a NaN
/// stays NaN).
fn kl_divergence(p: &[f32], q: &[f32]) -> f64 {
    let (lp, lq) = (log_softmax(p), log_softmax(q));
    let kld: f64 = lp.iter().zip(&lq).map(|(a, b)| a.exp() * (a - b)).sum();
    if kld < 0.0 {
        0.0
    } else {
        kld
    }
}

/// The index of the largest value (the first of equals).
fn argmax(v: &[f32]) -> usize {
    v.iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |best, (i, &x)| {
            if x > best.1 {
                (i, x)
            } else {
                best
            }
        })
        .0
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
