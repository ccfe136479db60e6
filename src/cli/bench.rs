//! `latentgpu bench`: matrix products, latent and full attention, MLA decode, whole models.

use super::output::Lines;
use super::{model_dir, write_json};
use anyhow::{Context, Result};
use latentgpu::bench;
use latentgpu::gpu::{BackendChoice, GpuContext};
use latentgpu::ops::WeightFormat;
use std::path::{Path, PathBuf};

/// Matrix products against the FMA and copy roofs measured in the same run.
pub fn bench_matmul(
    choice: BackendChoice,
    width: usize,
    sizes: &[usize],
    out: &PathBuf,
) -> Result<()> {
    let ctx = GpuContext::new(choice)?;
    outln!("adapter: {}", ctx.name());
    let weights = super::weights().unwrap_or(WeightFormat::F32);
    if weights != WeightFormat::F32 {
        outln!("weights (B stored [N, K]): {}", weights.name());
    }
    let cases = if sizes.is_empty() {
        bench::matmul::default_cases(width)
    } else {
        sizes
            .iter()
            .flat_map(|&s| {
                [
                    ("square A·Bᵀ".to_string(), s, s, s, true),
                    ("square A·B".to_string(), s, s, s, false),
                ]
            })
            .collect()
    };
    outln!(
        "{:<32} {:>6} {:>6} {:>6} {:>10} {:>8} {:>9} {:>8}",
        "product",
        "M",
        "N",
        "K",
        "GFLOP/s",
        "% FMA",
        "GB/s",
        "% copy"
    );
    let mut lines = Lines::new();
    let report = bench::matmul::run(&ctx, &cases, weights, |f| {
        lines.line(format_args!(
            "{:<32} {:>6} {:>6} {:>6} {:>10.2} {:>7.1}% {:>9.2} {:>7.1}%",
            f.name,
            f.m,
            f.n,
            f.k,
            f.gflops,
            100.0 * f.fraction_of_fma_roof,
            f.gbps,
            100.0 * f.fraction_of_copy_roof
        ));
    })?;
    lines.finish()?;
    outln!(
        "roofs (same run): FMA {:.2} GFLOP/s, copy {:.2} GB/s",
        report.fma_roof_gflops,
        report.copy_roof_gbps
    );
    write_json(out, &report)
}

/// Prefill and decode tokens/s of whole models.
pub fn bench_model(
    choice: BackendChoice,
    models: &[PathBuf],
    formats: &[WeightFormat],
    (prompt, decode): (usize, usize),
    (profile, expert_readback): (bool, bool),
    out: &PathBuf,
) -> Result<()> {
    let ctx = GpuContext::new(choice)?;
    outln!("adapter: {}", ctx.name());
    let copy = bench::copy_roof_gbps(&ctx)?;
    let roofs = if profile {
        let r = (bench::fma_roof_gflops(&ctx)?, copy);
        outln!(
            "roofs (same run): FMA {:.2} GFLOP/s, copy {:.2} GB/s",
            r.0,
            r.1
        );
        Some(r)
    } else {
        outln!("copy roof (same run): {copy:.2} GB/s");
        None
    };
    let formats: Vec<Option<WeightFormat>> = match formats.is_empty() {
        true => vec![super::weights()],
        false => formats.iter().copied().map(Some).collect(),
    };
    let dirs: Vec<PathBuf> = if models.is_empty() {
        let root = model_dir(&None)
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let mut d: Vec<PathBuf> = std::fs::read_dir(&root)
            .with_context(|| format!("listing {}", root.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.join("config.json").exists())
            .collect();
        d.sort();
        d
    } else {
        models.to_vec()
    };
    let mut figures = Vec::new();
    let mut profiles = Vec::new();
    let mut experts = Vec::new();
    let runs = dirs
        .iter()
        .flat_map(|d| formats.iter().map(move |f| (d.clone(), *f)));
    let mut baseline: Option<(PathBuf, f64)> = None;
    for (dir, format) in runs {
        let mut model = super::load_model_as(&ctx, &dir, format)
            .with_context(|| format!("loading model {}", dir.display()))?;
        let p = prompt
            .min(model.config.max_context.saturating_sub(decode))
            .max(1);
        let f = bench::model::run(&ctx, &model, &dir.display().to_string(), p, decode, 2)?;
        outln!(
            "{}: {} attention{}, prompt {}: prefill {:.1} tok/s, decode {:.2} tok/s \
             ({} per batch, {:.3} ms CPU encode per token; {:.1} MB of weights a token, {:.2} GB/s), \
             first run {:.2} s, cache {} B",
            f.model,
            f.attention,
            match f.weights.as_str() {
                "f32" => String::new(),
                w => format!(", {w} matrices"),
            },
            f.prompt_tokens,
            f.prefill_tokens_per_s,
            f.decode_tokens_per_s,
            f.decode_batch,
            f.encode_ms_per_token,
            f.weight_bytes_per_token as f64 / 1e6,
            f.decode_weight_gbps,
            f.first_run_s,
            f.cache_bytes
        );
        let base = match &baseline {
            Some((d, tps)) if *d == dir => *tps,
            _ => {
                baseline = Some((dir.clone(), f.decode_tokens_per_s));
                f.decode_tokens_per_s
            }
        };
        outln!(
            "  {}: decode {:.2}× the first format's; weights read at {:.1}% of the copy roof",
            f.weights,
            f.decode_tokens_per_s / base,
            100.0 * f.decode_weight_gbps / copy
        );
        if let Some((fma, copy)) = roofs {
            let wall = (
                p as f64 / f.prefill_tokens_per_s,
                1.0 / f.decode_tokens_per_s,
                f.encode_ms_per_token / 1e3,
            );
            let prof = bench::profile::run(&ctx, &model, p, 4, wall)?;
            print_profile(&prof, fma, copy)?;
            profiles.push(prof);
        }
        if expert_readback && model.config.moe.is_some() {
            experts.push(expert_comparison(&ctx, &mut model, &dir, &f)?);
        }
        figures.push(f);
    }
    let roofs = serde_json::json!({"fma_gflops": roofs.map(|r| r.0), "copy_gbps": copy});
    write_json(
        out,
        &serde_json::json!({"adapter": ctx.name(), "roofs": roofs, "figures": figures,
            "profiles": profiles, "experts": experts}),
    )
}

/// A mixture-of-experts model's decode with its experts' ids read back per layer, against
/// `f` (the GPU-routed run), and the weight bytes a token reads against a dense model of the
/// same parameters.
fn expert_comparison(
    ctx: &GpuContext,
    model: &mut latentgpu::model::Model,
    dir: &Path,
    f: &bench::model::ModelFigure,
) -> Result<serde_json::Value> {
    model.set_expert_readback(true);
    let r = bench::model::run(
        ctx,
        model,
        &dir.display().to_string(),
        f.prompt_tokens,
        f.decode_tokens,
        2,
    );
    model.set_expert_readback(false);
    let r = r?;
    let s = latentgpu::model::tools::summary::summarize(
        dir,
        ctx.limits.max_storage_buffer_binding_size,
        Some(model.weight_format()),
        None,
    )?;
    let element = model.weight_format().bytes_per_weight();
    // A token reads every weight it goes through once, except an embedding not tied to the
    // LM head (one row of it).
    let c = &model.config;
    let embedding = match c.tie_embeddings {
        true => 0.0,
        false => (c.vocab_size * c.d_model) as f64,
    };
    let active = (s.active_parameters as f64 - embedding) * element;
    let dense = (s.parameters as f64 - embedding) * element;
    outln!(
        "  experts' ids read back per layer: decode {:.2} tok/s, GPU-routed {:.2}× that; \
         weights read per token {:.2} GB, a dense model of the same size {:.2} GB ({:.1}× fewer)",
        r.decode_tokens_per_s,
        f.decode_tokens_per_s / r.decode_tokens_per_s,
        active / 1e9,
        dense / 1e9,
        dense / active
    );
    Ok(serde_json::json!({
        "model": f.model,
        "decode_tokens_per_s_gpu_routed": f.decode_tokens_per_s,
        "decode_tokens_per_s_ids_read_back": r.decode_tokens_per_s,
        "weight_bytes_per_token": active,
        "dense_equivalent_bytes_per_token": dense,
    }))
}

/// Prints a model's profile: decode and prefill per kernel kind, the products alone.
fn print_profile(p: &bench::profile::ModelProfile, fma: f64, copy: f64) -> Result<()> {
    outln!(
        "  decode, per token ({:?} timing): wall {:.2} ms, GPU {:.2} ms in dispatches, CPU encode {:.3} ms; \
         an empty submission and readback {:.3} ms (once per decode batch)",
        p.timing, p.wall_ms_per_token, p.gpu_ms_per_token, p.encode_ms_per_token, p.round_trip_ms
    );
    let table = |kernels: &[bench::profile::KernelShare]| -> Result<()> {
        outln!(
            "    {:<22} {:>8} {:>10} {:>7} {:>12}",
            "kernel",
            "count",
            "GPU ms",
            "share",
            "MB bound"
        );
        for k in kernels {
            outln!(
                "    {:<22} {:>8.1} {:>10.3} {:>6.1}% {:>12.2}",
                k.kernel,
                k.dispatches,
                k.gpu_ms,
                100.0 * k.share,
                k.bytes_bound / 1e6
            );
        }
        Ok(())
    };
    table(&p.decode_kernels)?;
    let d = &p.decode_products;
    outln!(
        "    products: {} dispatches, {:.1} MB; alone {:.2} GB/s ({:.1}% of copy roof); in the \
         token {:.2} GB/s = {:.1}% of alone",
        d.dispatches,
        d.bytes as f64 / 1e6,
        d.alone_gbps,
        100.0 * d.alone_gbps / copy,
        d.pass_gbps,
        100.0 * d.pass_vs_alone
    );
    outln!("  prefill of {} tokens:", p.prefill_tokens);
    table(&p.prefill_kernels)?;
    let q = &p.prefill_products;
    outln!(
        "    products: {} dispatches, {:.2} GFLOP; alone {:.2} GFLOP/s ({:.1}% of FMA roof); in \
         the prefill {:.2} GFLOP/s = {:.1}% of alone",
        q.dispatches,
        q.flops / 1e9,
        q.alone_gflops,
        100.0 * q.alone_gflops / fma,
        q.pass_gflops,
        100.0 * q.pass_vs_alone
    );
    Ok(())
}

/// The paged KV cache at long contexts: prefill tokens/s and peak resident memory against the
/// prompt's length (first, so the peaks are the prefills'), then memory held and decode
/// tokens/s against the copy roof of the same run.
pub fn bench_context(
    choice: BackendChoice,
    models: &[PathBuf],
    (contexts, decode): (&[usize], usize),
    prompts: &[usize],
    out: &PathBuf,
) -> Result<()> {
    let ctx = GpuContext::new(choice)?;
    outln!("adapter: {}", ctx.name());
    let copy = bench::copy_roof_gbps(&ctx)?;
    outln!("copy roof (same run): {copy:.2} GB/s");
    let mut decode_figures = Vec::new();
    let mut prefill_figures = Vec::new();
    let mut prompts = prompts.to_vec();
    prompts.sort_unstable();
    for dir in models {
        let model = super::load_model_as(&ctx, dir, super::weights())
            .with_context(|| format!("loading model {}", dir.display()))?;
        let name = dir.display().to_string();
        let options = model.cache_options();
        outln!(
            "{name}: {} cache, pages of {} tokens",
            options.format.name(),
            options.page_tokens
        );
        outln!(
            "{:>8} {:>12} {:>16}",
            "prompt",
            "prefill tok/s",
            "peak resident MB"
        );
        for &p in prompts.iter().filter(|&&p| p < model.config.max_context) {
            let f = bench::context::prefill(&ctx, &model, &name, p)?;
            outln!(
                "{:>8} {:>12.1} {:>16.0}",
                f.prompt_tokens,
                f.prefill_tokens_per_s,
                f.peak_resident_bytes as f64 / 1e6
            );
            prefill_figures.push(f);
        }
        outln!(
            "{:>8} {:>12} {:>14} {:>10} {:>12} {:>9}",
            "context",
            "held MiB",
            "allocated MiB",
            "tok/s",
            "MB/token",
            "of roof"
        );
        let mib = |b: u64| b as f64 / (1u64 << 20) as f64;
        for &c in contexts.iter().filter(|&&c| c <= model.config.max_context) {
            let f = bench::context::decode_at(&ctx, &model, &name, (c, decode), copy)?;
            outln!(
                "{:>8} {:>12.1} {:>14.1} {:>10.2} {:>12.1} {:>8.0}%",
                f.context,
                mib(f.cache_bytes_held),
                mib(f.cache_bytes_allocated),
                f.decode_tokens_per_s,
                f.bytes_per_token as f64 / 1e6,
                100.0 * f.roof_fraction
            );
            decode_figures.push(f);
        }
    }
    write_json(
        out,
        &serde_json::json!({
            "adapter": ctx.name(),
            "copy_roof_gbps": copy,
            "decode": decode_figures,
            "prefill": prefill_figures,
        }),
    )
}

/// MLA decode per token, naive and absorbed, against MHA.
pub fn bench_mla(
    choice: BackendChoice,
    width: usize,
    heads: usize,
    kv_lora_rank: usize,
    sizes: &[usize],
    out: &PathBuf,
) -> Result<()> {
    let ctx = GpuContext::new(choice)?;
    let dh = width / heads;
    let shape = latentgpu::model::config::mla::MlaShape {
        d: width,
        heads,
        q_lora_rank: None,
        kv_lora_rank,
        qk_nope_head_dim: dh / 2,
        qk_rope_head_dim: dh / 4,
        v_head_dim: dh / 2,
        norm_eps: 1e-6,
        rope_base: 10000.0,
        yarn: None,
    };
    shape.validate()?;
    outln!("adapter: {}", ctx.name());
    outln!(
        "MLA: d {width}, {heads} heads, kv_lora {kv_lora_rank}, nope/rope/v {}/{}/{}; MHA: {heads} heads of {dh}",
        shape.qk_nope_head_dim, shape.qk_rope_head_dim, shape.v_head_dim
    );
    outln!(
        "{:>8} {:>14} {:>16} {:>10} {:>16} {:>16}",
        "context",
        "naive ms/tok",
        "absorbed ms/tok",
        "MHA ms/tok",
        "MLA cache B read",
        "MHA cache B read"
    );
    let mut lines = Lines::new();
    let report = bench::mla::run(&ctx, shape, sizes, |f| {
        lines.line(format_args!(
            "{:>8} {:>14.3} {:>16.3} {:>10.3} {:>16} {:>16}",
            f.context,
            1e3 * f.mla_naive_s,
            1e3 * f.mla_absorbed_s,
            1e3 * f.mha_s,
            f.mla_cache_bytes_read,
            f.mha_cache_bytes_read
        ));
    })?;
    lines.finish()?;
    write_json(out, &report)
}

/// Causal latent attention against full causal attention: prefill scaling and decode.
pub fn bench_attention(
    choice: BackendChoice,
    shape: latentgpu::model::layers::latent::LatentShape,
    sizes: &[usize],
    out: &PathBuf,
) -> Result<()> {
    let ctx = GpuContext::new(choice)?;
    outln!("adapter: {}", ctx.name());
    outln!(
        "d {} heads {} latents {} chunk {}; prefill = one layer's forward over N tokens",
        shape.d,
        shape.heads,
        shape.latents,
        shape.chunk
    );
    outln!(
        "{:>6} {:>12} {:>12} {:>8} {:>13} {:>13} {:>12} {:>12}",
        "N",
        "latent s",
        "full s",
        "full/lat",
        "lat dec ms",
        "full dec ms",
        "state B",
        "KV cache B"
    );
    let mut lines = Lines::new();
    let report = bench::attention::run(&ctx, shape, sizes, |f| {
        lines.line(format_args!(
            "{:>6} {:>12.4} {:>12.4} {:>8.2} {:>13.3} {:>13.3} {:>12} {:>12}",
            f.n,
            f.latent_prefill_s,
            f.full_prefill_s,
            f.prefill_speedup,
            1e3 * f.latent_decode_s,
            1e3 * f.full_decode_s,
            f.latent_state_bytes,
            f.kv_cache_bytes
        ));
    })?;
    lines.finish()?;
    outln!(
        "scaling exponent (log-log slope of prefill time): latent {:.3}, full {:.3}",
        report.latent_exponent,
        report.full_exponent
    );
    match report.crossover_n {
        Some(n) => outln!("latent attention is faster from N = {n} on"),
        None => outln!("latent attention was not faster at the largest N measured"),
    }
    write_json(out, &report)
}
