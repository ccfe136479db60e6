//! The `latentgpu` command line.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use latentgpu::bench;
use latentgpu::gpu::{list_adapters, BackendChoice, GpuContext};
use latentgpu::model::{self, tokenizer, GenerateConfig, Model, SamplingConfig};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The model `generate` uses when no `--model` is given (shipped in the repository).
const DEFAULT_MODEL: &str = "models/shakespeare-latent";

#[derive(Parser)]
#[command(
    name = "latentgpu",
    version,
    about = "Transformer language models with latent attention on any GPU through WebGPU"
)]
struct Cli {
    /// Backend: vulkan, metal, dx12, gl, browser or any (default: $LATENTGPU_BACKEND, else any).
    #[arg(long, global = true, env = "LATENTGPU_BACKEND")]
    backend: Option<String>,
    /// Keep weight matrices in f16 on the GPU (adapters with shader-f16; f32 accumulation).
    #[arg(long, global = true)]
    f16_weights: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List every adapter with its backend, type, driver, features and limits.
    Info {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Generate text from a prompt, streaming tokens to stdout.
    Generate(GenerateArgs),
    /// Perplexity of a model on a text file (byte tokens), windowed as reference/train.py.
    Eval {
        /// Model directory.
        #[arg(long)]
        model: Option<PathBuf>,
        /// UTF-8 text file.
        #[arg(long)]
        text: PathBuf,
        /// Tokens per window (each window starts from an empty cache).
        #[arg(long, default_value_t = 256)]
        window: usize,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Compare every layer and the logits with a golden file from reference/export_golden.py.
    Compare {
        /// Model directory.
        #[arg(long)]
        model: Option<PathBuf>,
        /// Golden safetensors file.
        #[arg(long)]
        golden: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// KV-cache bytes per token and at a context length: MLA against MHA, GQA and MQA.
    KvCache {
        /// A Hugging Face DeepseekV2/V3 config.json.
        #[arg(long, conflicts_with = "preset")]
        config: Option<PathBuf>,
        /// A published shape: v2-lite, v2 or v3.
        #[arg(long)]
        preset: Option<String>,
        /// Context length in tokens.
        #[arg(long, default_value_t = 32768)]
        context: usize,
        /// Bytes per cached number (2 for bf16/f16, 4 for f32).
        #[arg(long, default_value_t = 2)]
        bytes: usize,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run a benchmark.
    Bench {
        #[command(subcommand)]
        which: BenchCommand,
    },
}

#[derive(clap::Args)]
struct GenerateArgs {
    /// Model directory (config.json + model.safetensors).
    #[arg(long)]
    model: Option<PathBuf>,
    /// The prompt.
    #[arg(long, default_value = "ROMEO:")]
    prompt: String,
    /// New tokens at most.
    #[arg(long, default_value_t = 200)]
    max_tokens: usize,
    /// Sampling temperature; 0 is greedy.
    #[arg(long, default_value_t = 0.8)]
    temperature: f32,
    /// Keep the k most likely tokens (0 = all).
    #[arg(long, default_value_t = 40)]
    top_k: usize,
    /// Nucleus sampling threshold (1 = off).
    #[arg(long, default_value_t = 0.95)]
    top_p: f32,
    /// Penalty on tokens already seen (1 = off).
    #[arg(long, default_value_t = 1.0)]
    repetition_penalty: f32,
    /// Seed: the same seed on the same adapter gives the same text.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Stop after generating this text.
    #[arg(long)]
    stop: Option<String>,
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Matrix products against the FMA and copy roofs of the same adapter.
    Matmul {
        /// Model width for the transformer-shaped products.
        #[arg(long, default_value_t = 1024)]
        width: usize,
        /// Only the square products of these sizes (e.g. --sizes 1024).
        #[arg(long, value_delimiter = ',')]
        sizes: Vec<usize>,
        /// Where to write the JSON results.
        #[arg(long, default_value = "bench-results/matmul.json")]
        out: PathBuf,
    },
    /// Prefill and decode tokens/s of whole models on the same adapter.
    Model {
        /// Model directories (default: every model shipped in models/).
        #[arg(long, value_delimiter = ',')]
        models: Vec<PathBuf>,
        /// Prompt tokens.
        #[arg(long, default_value_t = 256)]
        prompt: usize,
        /// Decoded tokens.
        #[arg(long, default_value_t = 64)]
        decode: usize,
        /// Where to write the JSON results.
        #[arg(long, default_value = "bench-results/model.json")]
        out: PathBuf,
    },
    /// MLA decode (naive and absorbed) against MHA of the same width: time and bytes per token.
    Mla {
        /// Model width.
        #[arg(long, default_value_t = 1024)]
        width: usize,
        /// Heads.
        #[arg(long, default_value_t = 8)]
        heads: usize,
        /// KV compression rank.
        #[arg(long, default_value_t = 256)]
        kv_lora_rank: usize,
        /// Context lengths.
        #[arg(long, value_delimiter = ',', default_value = "256,1024,4096,16384")]
        sizes: Vec<usize>,
        /// Where to write the JSON results.
        #[arg(long, default_value = "bench-results/mla.json")]
        out: PathBuf,
    },
    /// Causal latent attention against full causal attention: prefill scaling and decode.
    Attention {
        /// Model width.
        #[arg(long, default_value_t = 256)]
        width: usize,
        /// Heads.
        #[arg(long, default_value_t = 4)]
        heads: usize,
        /// Latents M.
        #[arg(long, default_value_t = 64)]
        latents: usize,
        /// Chunk length C.
        #[arg(long, default_value_t = 64)]
        chunk: usize,
        /// Context lengths.
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "256,512,1024,2048,4096,8192,16384"
        )]
        sizes: Vec<usize>,
        /// Where to write the JSON results.
        #[arg(long, default_value = "bench-results/attention.json")]
        out: PathBuf,
    },
}

fn backend(cli: &Cli) -> Result<BackendChoice> {
    Ok(match &cli.backend {
        Some(name) => name.parse()?,
        None => BackendChoice::Any,
    })
}

fn info(choice: BackendChoice, json: bool) -> Result<()> {
    let adapters = list_adapters(choice);
    if adapters.is_empty() {
        // Reuse the library's error: it names the backends tried and how to get one.
        GpuContext::new(choice)?;
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&adapters)?);
        return Ok(());
    }
    for (i, a) in adapters.iter().enumerate() {
        println!("adapter {i}: {}", a.name);
        println!("  backend:      {}", a.backend);
        println!("  device type:  {}", a.device_type);
        println!("  driver:       {} {}", a.driver, a.driver_info);
        println!(
            "  features:     shader-f16 {}, subgroups {}, timestamp-query {}",
            a.shader_f16, a.subgroups, a.timestamp_query
        );
        println!(
            "  limits:       storage binding {} MiB, buffer {} MiB, workgroup storage {} KiB, {} invocations/workgroup, {} storage buffers/stage",
            a.max_storage_buffer_binding_size >> 20,
            a.max_buffer_size >> 20,
            a.max_compute_workgroup_storage_size >> 10,
            a.max_compute_invocations_per_workgroup,
            a.max_storage_buffers_per_shader_stage
        );
    }
    Ok(())
}

fn write_json(path: &PathBuf, value: &impl serde::Serialize) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(path, serde_json::to_string_pretty(value)?)
        .with_context(|| format!("writing {}", path.display()))?;
    println!("results written to {}", path.display());
    Ok(())
}

fn bench_matmul(choice: BackendChoice, width: usize, sizes: &[usize], out: &PathBuf) -> Result<()> {
    let ctx = GpuContext::new(choice)?;
    println!("adapter: {}", ctx.name());
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
    println!(
        "{:<32} {:>6} {:>6} {:>6} {:>10} {:>8} {:>9} {:>8}",
        "product", "M", "N", "K", "GFLOP/s", "% FMA", "GB/s", "% copy"
    );
    let report = bench::matmul::run(&ctx, &cases, |f| {
        println!(
            "{:<32} {:>6} {:>6} {:>6} {:>10.2} {:>7.1}% {:>9.2} {:>7.1}%",
            f.name,
            f.m,
            f.n,
            f.k,
            f.gflops,
            100.0 * f.fraction_of_fma_roof,
            f.gbps,
            100.0 * f.fraction_of_copy_roof
        );
    })?;
    println!(
        "roofs (same run): FMA {:.2} GFLOP/s, copy {:.2} GB/s",
        report.fma_roof_gflops, report.copy_roof_gbps
    );
    write_json(out, &report)
}

fn eval(
    choice: BackendChoice,
    model: &Option<PathBuf>,
    text: &Path,
    window: usize,
    json: bool,
) -> Result<()> {
    let ctx = GpuContext::new(choice)?;
    let dir = model_dir(model);
    let model =
        load_model(&ctx, &dir).with_context(|| format!("loading model {}", dir.display()))?;
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
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!(
            "perplexity {:.4} over {} tokens ({} on {})",
            nll.perplexity(),
            nll.count,
            dir.display(),
            ctx.name()
        );
    }
    Ok(())
}

fn compare(
    choice: BackendChoice,
    model: &Option<PathBuf>,
    golden: &Path,
    json: bool,
) -> Result<()> {
    let ctx = GpuContext::new(choice)?;
    let dir = model_dir(model);
    let model =
        load_model(&ctx, &dir).with_context(|| format!("loading model {}", dir.display()))?;
    let golden = latentgpu::model::compare::Golden::open(golden)?;
    let report = latentgpu::model::compare::compare(&ctx, &model, &golden)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("golden: {} ({})", report.golden_device, report.golden_torch);
        println!("ours:   {}", report.adapter);
        println!(
            "{:<10} {:>12} {:>12} {:>10} {:>12} {:>12} {:>12}  top-1",
            "layer", "max abs", "max rel", "cosine", "ours vs f64", "theirs f64", "tolerance"
        );
        for r in &report.rows {
            println!(
                "{:<10} {:>12.3e} {:>12.3e} {:>10.7} {:>12.3e} {:>12.3e} {:>12.3e}  {}{}",
                r.name,
                r.max_abs,
                r.max_rel,
                r.cosine,
                r.ours_vs_f64,
                r.theirs_vs_f64,
                r.tolerance,
                r.top1_agreement
                    .map(|a| format!("{:.2}%", 100.0 * a))
                    .unwrap_or_default(),
                if r.pass { "" } else { "  <-- past tolerance" }
            );
        }
    }
    match &report.first_failure {
        None => {
            if !json {
                println!("PASS: every layer within tolerance");
            }
            Ok(())
        }
        Some(layer) => anyhow::bail!("first layer past tolerance: {layer}"),
    }
}

fn bench_model(
    choice: BackendChoice,
    models: &[PathBuf],
    prompt: usize,
    decode: usize,
    out: &PathBuf,
) -> Result<()> {
    let ctx = GpuContext::new(choice)?;
    println!("adapter: {}", ctx.name());
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
    println!(
        "{:<32} {:<8} {:>16} {:>16} {:>12}",
        "model", "kind", "prefill tok/s", "decode tok/s", "cache B"
    );
    let mut figures = Vec::new();
    for dir in dirs {
        let model =
            load_model(&ctx, &dir).with_context(|| format!("loading model {}", dir.display()))?;
        let p = prompt
            .min(model.config.max_context.saturating_sub(decode))
            .max(1);
        let f = bench::model::run(&ctx, &model, &dir.display().to_string(), p, decode, 2)?;
        println!(
            "{:<32} {:<8} {:>16.1} {:>16.1} {:>12}",
            f.model, f.attention, f.prefill_tokens_per_s, f.decode_tokens_per_s, f.cache_bytes
        );
        figures.push(f);
    }
    write_json(
        out,
        &serde_json::json!({"adapter": ctx.name(), "figures": figures}),
    )
}

fn bench_mla(
    choice: BackendChoice,
    width: usize,
    heads: usize,
    kv_lora_rank: usize,
    sizes: &[usize],
    out: &PathBuf,
) -> Result<()> {
    let ctx = GpuContext::new(choice)?;
    let dh = width / heads;
    let shape = latentgpu::model::mla::MlaShape {
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
    println!("adapter: {}", ctx.name());
    println!(
        "MLA: d {width}, {heads} heads, kv_lora {kv_lora_rank}, nope/rope/v {}/{}/{}; MHA: {heads} heads of {dh}",
        shape.qk_nope_head_dim, shape.qk_rope_head_dim, shape.v_head_dim
    );
    println!(
        "{:>8} {:>14} {:>16} {:>10} {:>16} {:>16}",
        "context",
        "naive ms/tok",
        "absorbed ms/tok",
        "MHA ms/tok",
        "MLA cache B read",
        "MHA cache B read"
    );
    let report = bench::mla::run(&ctx, shape, sizes, |f| {
        println!(
            "{:>8} {:>14.3} {:>16.3} {:>10.3} {:>16} {:>16}",
            f.context,
            1e3 * f.mla_naive_s,
            1e3 * f.mla_absorbed_s,
            1e3 * f.mha_s,
            f.mla_cache_bytes_read,
            f.mha_cache_bytes_read
        );
    })?;
    write_json(out, &report)
}

fn kv_cache(
    config: &Option<PathBuf>,
    preset: &Option<String>,
    context: usize,
    bytes: usize,
    json: bool,
) -> Result<()> {
    use latentgpu::model::kv_cache;
    let (name, layers, shape) = match (config, preset) {
        (Some(path), _) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let value: serde_json::Value = serde_json::from_str(&text)
                .with_context(|| format!("parsing {}", path.display()))?;
            let shape = latentgpu::model::mla::MlaShape::from_hf_config(&value)
                .with_context(|| format!("reading the MLA fields of {}", path.display()))?;
            let layers = value
                .get("num_hidden_layers")
                .and_then(|v| v.as_u64())
                .unwrap_or(1) as usize;
            (path.display().to_string(), layers, shape)
        }
        (None, Some(p)) => kv_cache::preset(p)?,
        (None, None) => kv_cache::preset("v3")?,
    };
    let report = kv_cache::mla_report(&name, layers, &shape, context, bytes);
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!("{name}: {layers} layers, context {context} tokens, {bytes} bytes per number");
    println!(
        "{:<36} {:>14} {:>16} {:>18} {:>8}",
        "layout", "numbers/token", "bytes/token", "bytes at context", "vs MLA"
    );
    println!(
        "{:<36} {:>14} {:>16} {:>18} {:>8}",
        "", "per layer", "all layers", "", ""
    );
    for r in &report.rows {
        println!(
            "{:<36} {:>14} {:>16} {:>18} {:>7.1}x",
            r.layout,
            r.numbers_per_token_per_layer,
            r.bytes_per_token,
            r.bytes_at_context,
            r.ratio_to_mla
        );
    }
    Ok(())
}

fn bench_attention(
    choice: BackendChoice,
    shape: latentgpu::model::latent::LatentShape,
    sizes: &[usize],
    out: &PathBuf,
) -> Result<()> {
    let ctx = GpuContext::new(choice)?;
    println!("adapter: {}", ctx.name());
    println!(
        "d {} heads {} latents {} chunk {}; prefill = one layer's forward over N tokens",
        shape.d, shape.heads, shape.latents, shape.chunk
    );
    println!(
        "{:>6} {:>12} {:>12} {:>8} {:>13} {:>13} {:>12} {:>12}",
        "N", "latent s", "full s", "full/lat", "lat dec ms", "full dec ms", "state B", "KV cache B"
    );
    let report = bench::attention::run(&ctx, shape, sizes, |f| {
        println!(
            "{:>6} {:>12.4} {:>12.4} {:>8.2} {:>13.3} {:>13.3} {:>12} {:>12}",
            f.n,
            f.latent_prefill_s,
            f.full_prefill_s,
            f.prefill_speedup,
            1e3 * f.latent_decode_s,
            1e3 * f.full_decode_s,
            f.latent_state_bytes,
            f.kv_cache_bytes
        );
    })?;
    println!(
        "scaling exponent (log-log slope of prefill time): latent {:.3}, full {:.3}",
        report.latent_exponent, report.full_exponent
    );
    match report.crossover_n {
        Some(n) => println!("latent attention is faster from N = {n} on"),
        None => println!("latent attention was not faster at the largest N measured"),
    }
    write_json(out, &report)
}

/// The model directory: the argument, or the shipped default (found from the working directory or
/// next to the crate's sources).
fn model_dir(arg: &Option<PathBuf>) -> PathBuf {
    match arg {
        Some(p) => p.clone(),
        None => {
            let local = Path::new(DEFAULT_MODEL);
            if local.exists() {
                local.to_path_buf()
            } else {
                Path::new(env!("CARGO_MANIFEST_DIR")).join(DEFAULT_MODEL)
            }
        }
    }
}

/// `--f16-weights`, set once from the command line.
static F16_WEIGHTS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn load_model(ctx: &GpuContext, dir: &Path) -> Result<Model> {
    let bar = indicatif::ProgressBar::new(0).with_style(
        indicatif::ProgressStyle::with_template("loading {msg} [{bar:30}] {pos}/{len} blocks")
            .expect("static template"),
    );
    bar.set_message(dir.display().to_string());
    let f16 = F16_WEIGHTS.load(std::sync::atomic::Ordering::Relaxed);
    let model = Model::load_dir_with(ctx, dir, f16, |i, n| {
        bar.set_length(n as u64);
        bar.set_position(i as u64);
    })?;
    bar.finish_and_clear();
    Ok(model)
}

fn generate(choice: BackendChoice, args: &GenerateArgs) -> Result<()> {
    let ctx = GpuContext::new(choice)?;
    let dir = model_dir(&args.model);
    let model =
        load_model(&ctx, &dir).with_context(|| format!("loading model {}", dir.display()))?;
    log::info!("generating on {}", ctx.name());
    let tok = tokenizer::Tokenizer::for_model(&dir)?;
    let prompt = tok.encode(&args.prompt)?;
    let stop = args.stop.as_deref().map(|s| tok.encode(s)).transpose()?;
    let cfg = GenerateConfig {
        max_tokens: args.max_tokens,
        stop,
        sampling: SamplingConfig {
            temperature: args.temperature,
            top_k: args.top_k,
            top_p: args.top_p,
            repetition_penalty: args.repetition_penalty,
            seed: args.seed,
        },
        cancel: None,
    };
    let mut out = std::io::stdout().lock();
    write!(out, "{}", args.prompt)?;
    let mut decoder = tok.decoder();
    let start = std::time::Instant::now();
    let tokens = model::generate(&ctx, &model, &prompt, &cfg, |t| {
        let _ = write!(out, "{}", decoder.push(t));
        let _ = out.flush();
    })?;
    writeln!(out, "{}", decoder.finish())?;
    let secs = start.elapsed().as_secs_f64();
    log::info!(
        "{} tokens in {secs:.2} s ({:.1} tokens/s)",
        tokens.len(),
        tokens.len() as f64 / secs
    );
    Ok(())
}

/// Parses the command line, runs the command and exits 1 with the error on failure.
pub fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let cli = Cli::parse();
    F16_WEIGHTS.store(cli.f16_weights, std::sync::atomic::Ordering::Relaxed);
    let result = backend(&cli).and_then(|choice| match &cli.command {
        Command::Info { json } => info(choice, *json),
        Command::Generate(args) => generate(choice, args),
        Command::Eval {
            model,
            text,
            window,
            json,
        } => eval(choice, model, text, *window, *json),
        Command::Compare {
            model,
            golden,
            json,
        } => compare(choice, model, golden, *json),
        Command::KvCache {
            config,
            preset,
            context,
            bytes,
            json,
        } => kv_cache(config, preset, *context, *bytes, *json),
        Command::Bench { which } => match which {
            BenchCommand::Matmul { width, sizes, out } => bench_matmul(choice, *width, sizes, out),
            BenchCommand::Model {
                models,
                prompt,
                decode,
                out,
            } => bench_model(choice, models, *prompt, *decode, out),
            BenchCommand::Mla {
                width,
                heads,
                kv_lora_rank,
                sizes,
                out,
            } => bench_mla(choice, *width, *heads, *kv_lora_rank, sizes, out),
            BenchCommand::Attention {
                width,
                heads,
                latents,
                chunk,
                sizes,
                out,
            } => {
                let shape = latentgpu::model::latent::LatentShape {
                    d: *width,
                    heads: *heads,
                    latents: *latents,
                    chunk: *chunk,
                    rope_dim: (*width / *heads / 2).max(2) / 2 * 2,
                    synthesis: true,
                };
                bench_attention(choice, shape, sizes, out)
            }
        },
    });
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
