//! `latentgpu eval --against FORMAT` and `eval --kl-divergence-base FILE`: a model's next-token
//! distributions against a base's, printed as llama.cpp's `llama-perplexity --kl-divergence`
//! prints them.

use super::open_model;
use anyhow::Result;
use latentgpu::gpu::BackendChoice;
use latentgpu::model::tools::kl_base::{chunk_bos, compare_with_base, KlBase};
use latentgpu::model::tools::kl_stats::KlSummary;
use std::path::{Path, PathBuf};

/// Prints `s`, the model `model` (`ours`) against `base`, as text or JSON.
pub fn print(
    s: &KlSummary,
    model: &Path,
    ours: &str,
    base: &str,
    adapter: &str,
    json: bool,
) -> Result<()> {
    if json {
        let mut v = serde_json::to_value(s)?;
        v["model"] = model.display().to_string().into();
        v["weights"] = ours.into();
        v["against"] = base.into();
        v["adapter"] = adapter.into();
        outln!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    outln!(
        "{ours} against {base} over {} positions ({} on {adapter})",
        s.positions,
        model.display()
    );
    outln!("Mean PPL(Q)      : {:10.6}", s.perplexity);
    outln!("Mean PPL(base)   : {:10.6}", s.base_perplexity);
    outln!(
        "Mean    KLD      : {:10.6} ± {:.6}",
        s.kld_mean,
        s.kld_mean_uncertainty
    );
    outln!("Maximum KLD      : {:10.6}", s.kld_max);
    outln!("99.9%   KLD      : {:10.6}", s.kld_p999);
    outln!("99.0%   KLD      : {:10.6}", s.kld_p99);
    outln!("Median  KLD      : {:10.6}", s.kld_median);
    outln!("RMS Δp           : {:6.3} %", 100.0 * s.rms_p_diff);
    outln!("Same top p       : {:6.3} %", 100.0 * s.same_top);
    Ok(())
}

/// The model against the base file llama.cpp's `llama-perplexity --kl-divergence-base` wrote.
pub fn against_base(
    choice: BackendChoice,
    model: &Option<PathBuf>,
    base: &Path,
    json: bool,
) -> Result<()> {
    let (ctx, dir, model) = open_model(choice, model)?;
    let mut file = KlBase::open(base)?;
    let bar = indicatif::ProgressBar::new(file.n_chunk as u64).with_style(
        indicatif::ProgressStyle::with_template(
            "scoring against the base: {pos}/{len} chunks {elapsed}",
        )
        .expect("static template"),
    );
    let bos = chunk_bos(&dir)?;
    let s = compare_with_base(&ctx, &model, &mut file, bos, |done, _| {
        bar.set_position(done as u64)
    })?;
    bar.finish_and_clear();
    let base_name = format!("llama.cpp's {}", base.display());
    print(
        &s,
        &dir,
        model.weight_format().name(),
        &base_name,
        &ctx.name(),
        json,
    )
}
