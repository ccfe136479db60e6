//! `latentgpu eval` (perplexity) and `latentgpu compare` (every layer against a PyTorch golden).

use super::open_model;
use anyhow::{Context, Result};
use latentgpu::gpu::BackendChoice;
use latentgpu::model::tokenizer;
use std::path::{Path, PathBuf};

/// Perplexity of the model on a text file, windowed as the PyTorch reference.
pub fn eval(
    choice: BackendChoice,
    model: &Option<PathBuf>,
    text: &Path,
    window: usize,
    json: bool,
) -> Result<()> {
    let (ctx, dir, model) = open_model(choice, model)?;
    let bytes = std::fs::read(text).with_context(|| format!("reading {}", text.display()))?;
    let tokens: Vec<u32> = match tokenizer::Tokenizer::for_model(&dir)? {
        // Byte-level: the file's bytes as they are (what reference/eval.py scores).
        tokenizer::Tokenizer::Bytes => bytes.iter().map(|&b| b as u32).collect(),
        tok => tok.encode(&String::from_utf8_lossy(&bytes))?,
    };
    let bar = indicatif::ProgressBar::new(0).with_style(
        indicatif::ProgressStyle::with_template("evaluating [{bar:30}] {pos}/{len} windows {eta}")
            .expect("static template"),
    );
    let nll = latentgpu::model::eval::evaluate(&ctx, &model, &tokens, window, |i, n| {
        bar.set_length(n as u64);
        bar.set_position(i as u64);
    })?;
    bar.finish_and_clear();
    if json {
        let v = serde_json::json!({"model": dir.display().to_string(), "text": text.display().to_string(),
            "window": window, "tokens_scored": nll.count, "nll_nats": nll.total, "perplexity": nll.perplexity(),
            "adapter": ctx.name()});
        outln!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        outln!(
            "perplexity {:.4} over {} tokens ({} on {})",
            nll.perplexity(),
            nll.count,
            dir.display(),
            ctx.name()
        );
    }
    Ok(())
}

/// Every layer and the logits against a golden file; an error names the first layer past
/// tolerance.
pub fn compare(
    choice: BackendChoice,
    model: &Option<PathBuf>,
    golden: &Path,
    json: bool,
) -> Result<()> {
    let (ctx, _, model) = open_model(choice, model)?;
    let golden = latentgpu::model::compare::Golden::open(golden)?;
    let report = latentgpu::model::compare::compare(&ctx, &model, &golden)?;
    if json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        outln!(
            "golden: {} ({}, {})",
            report.golden_device,
            report.golden_torch,
            report.golden_dtype
        );
        outln!("ours:   {}", report.adapter);
        outln!(
            "against float64: max abs, max rel and normwise ‖·−f64‖/‖f64‖ errors (ours, theirs);"
        );
        outln!("against theirs: cosine and top-1 agreement; KL of ours from float64");
        outln!(
            "{:<10} {:>10} {:>10} {:>10} {:>11} {:>11} {:>10}  top-1 / max KL",
            "layer",
            "max abs",
            "max rel",
            "cosine",
            "ours f64",
            "theirs f64",
            "tolerance"
        );
        for r in &report.rows {
            let logits = match (r.top1_agreement, r.kl_max) {
                (Some(a), Some(kl)) => format!("{:.2}% / {kl:.1e}", 100.0 * a),
                _ => String::new(),
            };
            outln!(
                "{:<10} {:>10.3e} {:>10.3e} {:>10.7} {:>11.3e} {:>11.3e} {:>10.3e}  {logits}{}",
                r.name,
                r.max_abs,
                r.max_rel,
                r.cosine,
                r.ours_vs_f64,
                r.theirs_vs_f64,
                r.tolerance,
                match (&r.non_finite, r.pass) {
                    (Some(what), _) => format!("  <-- not finite: {what}"),
                    (None, false) => "  <-- past tolerance".to_string(),
                    (None, true) => String::new(),
                }
            );
        }
    }
    match &report.first_failure {
        None => {
            if !json {
                outln!("PASS: every layer within tolerance");
            }
            Ok(())
        }
        Some(layer) => {
            let row = report.rows.iter().find(|r| &r.name == layer);
            match row.and_then(|r| r.non_finite.as_ref()) {
                Some(what) => anyhow::bail!("first layer that fails: {layer} (not finite: {what})"),
                None => anyhow::bail!("first layer past tolerance: {layer}"),
            }
        }
    }
}
