//! `latentgpu eval` (perplexity) and `latentgpu compare` (every layer against a PyTorch golden).

use super::open_model;
use anyhow::{Context, Result};
use latentgpu::gpu::BackendChoice;
use latentgpu::model::formats::tokenizer;
use latentgpu::model::CacheOptions;
use latentgpu::ops::{KvFormat, WeightFormat};
use std::path::{Path, PathBuf};

/// Text read per piece for a Hugging Face tokenizer: pieces end at a newline (or, in a longer
/// line, after a whole character), so a text shorter than this is tokenized whole, and a
/// longer one never held whole.
const TEXT_PIECE_BYTES: usize = 1 << 20;

/// The tokens of the text file at `path`, read as they are needed: byte-level, its bytes as
/// they are (what reference/eval.py scores); with a Hugging Face tokenizer, pieces of about
/// 1 MiB ending at a newline (the first with the tokenizer's special tokens, as `encode` adds
/// them to a whole text).
fn text_tokens<'a>(
    path: &'a Path,
    tok: &'a tokenizer::Tokenizer,
) -> Result<Box<dyn Iterator<Item = latentgpu::Result<u32>> + 'a>> {
    use std::io::BufRead;
    let file = latentgpu::files::open_regular(path)?;
    let mut reader = std::io::BufReader::new(file);
    let io_err = move |e: std::io::Error| latentgpu::Error::io(path, e);
    if let tokenizer::Tokenizer::Bytes = tok {
        use std::io::Read;
        return Ok(Box::new(
            reader
                .bytes()
                .map(move |b| b.map(u32::from).map_err(io_err)),
        ));
    }
    let mut first = true;
    // Bytes read past the last whole character of a piece cut inside a line, for the next.
    let mut carry = Vec::new();
    let pieces = std::iter::from_fn(move || {
        let mut piece = std::mem::take(&mut carry);
        let mut end_of_file = false;
        while piece.len() < TEXT_PIECE_BYTES {
            let room = (TEXT_PIECE_BYTES - piece.len()) as u64;
            let mut limited = std::io::Read::take(std::io::Read::by_ref(&mut reader), room);
            match limited.read_until(b'\n', &mut piece) {
                Ok(0) => {
                    end_of_file = true;
                    break;
                }
                Ok(_) => {}
                Err(e) => return Some(Err(io_err(e))),
            }
        }
        if piece.is_empty() {
            return None;
        }
        if !end_of_file && !piece.ends_with(b"\n") {
            // A line longer than a piece: cut after its last whole UTF-8 character.
            let whole = match std::str::from_utf8(&piece) {
                Ok(_) => piece.len(),
                Err(e) if e.error_len().is_none() => e.valid_up_to(),
                Err(_) => piece.len(),
            };
            carry = piece.split_off(whole);
        }
        let text = String::from_utf8_lossy(&piece);
        let ids = match std::mem::replace(&mut first, false) {
            true => tok.encode(&text),
            false => tok.encode_plain(&text),
        };
        Some(ids)
    });
    Ok(Box::new(pieces.flat_map(|ids| match ids {
        Ok(ids) => ids.into_iter().map(Ok).collect::<Vec<_>>(),
        Err(e) => vec![Err(e)],
    })))
}

/// Perplexity of the model on a text file, windowed as the PyTorch reference; the text is
/// read and tokenized as it is scored. With `against` (a weight format, a KV cache format or
/// both), the agreement with the model loaded so.
pub fn eval(
    choice: BackendChoice,
    model: &Option<PathBuf>,
    text: &Path,
    window: usize,
    (against, against_kv): (Option<WeightFormat>, Option<KvFormat>),
    json: bool,
) -> Result<()> {
    let (ctx, dir, model) = open_model(choice, model)?;
    let tok = tokenizer::Tokenizer::for_model(&dir, model.config.vocab_size)?;
    let tokens = text_tokens(text, &tok).with_context(|| format!("reading {}", text.display()))?;
    let bar = indicatif::ProgressBar::new_spinner().with_style(
        indicatif::ProgressStyle::with_template("evaluating: {pos} windows {elapsed}")
            .expect("static template"),
    );
    if against.is_some() || against_kv.is_some() {
        let weights = against.or(super::weights());
        let mut reference = super::load_model_as(&ctx, &dir, weights)
            .with_context(|| format!("loading model {} again", dir.display()))?;
        let kv = against_kv.unwrap_or(model.cache_options().format);
        reference.set_cache_options(CacheOptions {
            format: kv,
            ..model.cache_options()
        });
        let a = latentgpu::model::tools::eval::compare_formats(
            &ctx,
            &reference,
            &model,
            tokens,
            window,
            |i| bar.set_position(i as u64),
        )?;
        bar.finish_and_clear();
        let named = |m: &latentgpu::model::Model| {
            let (w, c) = (m.weight_format().name(), m.cache_options().format.name());
            format!("{w} weights, {c} KV cache")
        };
        super::kl::print(
            &a,
            &dir,
            &named(&model),
            &named(&reference),
            &ctx.name(),
            json,
        )?;
        return Ok(());
    }
    let nll = latentgpu::model::tools::eval::evaluate_stream(&ctx, &model, tokens, window, |i| {
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
    let golden = latentgpu::model::tools::compare::Golden::open(golden)?;
    let report = latentgpu::model::tools::compare::compare(&ctx, &model, &golden)?;
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

/// `latentgpu quantize`: the model directory written again with its matrices in the scheme
/// `--weights` names.
pub fn quantize(model: &Option<PathBuf>, out: &Path) -> Result<()> {
    let dir = super::model_dir(model);
    let scheme = match super::weights() {
        Some(WeightFormat::Quant(s)) => s,
        other => anyhow::bail!(
            "quantize needs --weights q8, q4 or q4_1 (found {})",
            other.map_or("none", |f| f.name())
        ),
    };
    let report = latentgpu::model::tools::quantize::quantize_dir(&dir, scheme, out)
        .with_context(|| format!("quantizing {}", dir.display()))?;
    outln!(
        "{} tensors in {}, {} kept: {} -> {} bytes ({})",
        report.quantized,
        scheme.name(),
        report.kept,
        report.bytes_in,
        report.bytes_out,
        out.display()
    );
    Ok(())
}
