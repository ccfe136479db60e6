//! The `latentgpu` command line.

#[macro_use]
mod output;
mod progress;

mod args;
mod bench;
mod chat;
mod check;
mod generate;
mod info;
mod kl;
mod kv_cache;
mod serve;

use anyhow::{Context, Result};
use args::{BenchCommand, Cli, Command};
use clap::Parser;
use latentgpu::gpu::{BackendChoice, GpuContext};
use latentgpu::model::{CacheOptions, LoadOptions, Model};
use latentgpu::ops::WeightFormat;
use std::path::{Path, PathBuf};

/// The model `generate` uses when no `--model` is given (shipped in the repository).
const DEFAULT_MODEL: &str = "models/shakespeare-latent";

fn backend(cli: &Cli) -> Result<BackendChoice> {
    Ok(match &cli.backend {
        Some(name) => name.parse()?,
        None => BackendChoice::Any,
    })
}

fn write_json(path: &PathBuf, value: &impl serde::Serialize) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(path, serde_json::to_string_pretty(value)?)
        .with_context(|| format!("writing {}", path.display()))?;
    outln!("results written to {}", path.display());
    Ok(())
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

/// Opens the chosen adapter and loads the model directory `arg` (or the shipped default).
fn open_model(
    choice: BackendChoice,
    arg: &Option<PathBuf>,
) -> Result<(GpuContext, PathBuf, Model)> {
    let ctx = GpuContext::new(choice)?;
    let dir = model_dir(arg);
    let model =
        load_model(&ctx, &dir).with_context(|| format!("loading model {}", dir.display()))?;
    Ok((ctx, dir, model))
}

/// How the command line asks models to be loaded, set once.
#[derive(Clone, Copy, Debug, Default)]
struct LoadChoice {
    /// `--weights` (or `--f16-weights`).
    weights: Option<WeightFormat>,
    /// `--context`.
    context: Option<usize>,
    /// `--cache-memory` and `--page-tokens`.
    cache: CacheOptions,
}

static LOAD_CHOICE: std::sync::OnceLock<LoadChoice> = std::sync::OnceLock::new();

/// The weight format the command line asks for (`None`: as the files hold them).
fn weights() -> Option<WeightFormat> {
    LOAD_CHOICE.get().and_then(|c| c.weights)
}

/// The context the command line asks for (`None`: the model's).
fn context() -> Option<usize> {
    LOAD_CHOICE.get().and_then(|c| c.context)
}

/// How the command line asks the KV cache to be kept.
fn cache_options() -> CacheOptions {
    LOAD_CHOICE.get().map(|c| c.cache).unwrap_or_default()
}

fn load_model(ctx: &GpuContext, dir: &Path) -> Result<Model> {
    load_model_as(ctx, dir, weights())
}

/// Loads `dir` with its matrices in `weights`, with a progress bar.
fn load_model_as(ctx: &GpuContext, dir: &Path, weights: Option<WeightFormat>) -> Result<Model> {
    let bar = indicatif::ProgressBar::new(0).with_style(
        indicatif::ProgressStyle::with_template("loading {msg} [{bar:30}] {pos}/{len} blocks")
            .expect("static template"),
    );
    bar.set_message(dir.display().to_string());
    let options = LoadOptions {
        weights,
        context: context(),
        memory_budget: None,
        block_bytes: block_bytes_from_env()?,
        cache: cache_options(),
    };
    let model = Model::load_dir_with(ctx, dir, options, |i, n| {
        bar.set_length(n as u64);
        bar.set_position(i as u64);
    })?;
    bar.finish_and_clear();
    Ok(model)
}

/// Forces weights into row blocks of at most this many bytes (to test the split path on any
/// adapter; the values do not change).
pub const BLOCK_BYTES_ENV: &str = "LATENTGPU_BLOCK_BYTES";

/// `LATENTGPU_BLOCK_BYTES`, if set: a whole number of bytes, at least 16.
fn block_bytes_from_env() -> Result<Option<u64>> {
    let Some(value) = std::env::var_os(BLOCK_BYTES_ENV) else {
        return Ok(None);
    };
    let text = value.to_string_lossy();
    match text.trim().parse::<u64>() {
        Ok(n) if n >= 16 => Ok(Some(n)),
        _ => Err(latentgpu::error::Error::Invalid {
            what: format!("environment variable {BLOCK_BYTES_ENV}"),
            expected: "a whole number of bytes, at least 16".into(),
            found: latentgpu::error::shown(&text),
        }
        .into()),
    }
}

/// Keeps Mesa's Vulkan device-select layer quiet where there is no `XDG_RUNTIME_DIR` (servers,
/// containers, CI): the layer looks for a Wayland display there and prints two lines starting
/// with `error:` that are not ours. The layer only reorders devices for programs that take the
/// first one; we choose the adapter ourselves, so turning it off (its documented switch,
/// `NODEVICE_SELECT=1`) changes nothing else. Runs before any thread starts.
fn quiet_device_select_layer() {
    let runtime_dir = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from);
    let usable = runtime_dir.is_some_and(|d| d.is_dir());
    if !usable && std::env::var_os("NODEVICE_SELECT").is_none() {
        std::env::set_var("NODEVICE_SELECT", "1");
    }
}

/// Stack of the thread the command runs on: its own, not the main thread's, which the user's
/// `ulimit -s` sizes (parsing the command line alone takes more than 64 KiB).
const STACK_BYTES: usize = 32 << 20;

/// Runs the command line on a thread of its own stack (see [`STACK_BYTES`]).
pub fn main() {
    quiet_device_select_layer();
    let worker = std::thread::Builder::new()
        .name("latentgpu".into())
        .stack_size(STACK_BYTES)
        .spawn(run);
    match worker.map(|w| w.join()) {
        Ok(Ok(())) => {}
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Err(e) => {
            eprintln!("error: starting the command's thread ({STACK_BYTES} bytes of stack): {e}");
            std::process::exit(1);
        }
    }
}

/// Parses the command line, runs the command and exits 1 with the error on failure.
fn run() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let cli = Cli::parse();
    let format = match cli.f16_weights {
        true => Some(WeightFormat::F16),
        false => cli.weights,
    };
    LOAD_CHOICE.get_or_init(|| LoadChoice {
        weights: format,
        context: cli.context,
        cache: CacheOptions {
            page_tokens: cli.page_tokens,
            memory: cli.cache_memory,
            format: cli.kv_cache,
        },
    });
    let result = backend(&cli).and_then(|choice| match &cli.command {
        Command::Info { model, json } => match model {
            Some(dir) => info::model_info(choice, dir, *json),
            None => info::info(choice, *json),
        },
        Command::Generate(args) => generate::generate(choice, args),
        Command::Chat(args) => chat::chat(choice, args),
        Command::Serve(args) => serve::serve(choice, args),
        Command::Quantize { model, out } => check::quantize(model, out),
        Command::Eval {
            model,
            kl_divergence_base: Some(base),
            json,
            ..
        } => kl::against_base(choice, model, base, *json),
        Command::Eval {
            model,
            text,
            window,
            against,
            against_kv_cache,
            json,
            ..
        } => check::eval(
            choice,
            model,
            text.as_deref().unwrap_or(Path::new("")),
            *window,
            (*against, *against_kv_cache),
            *json,
        ),
        Command::Compare {
            model,
            golden,
            json,
        } => check::compare(choice, model, golden, *json),
        Command::KvCache {
            config,
            preset,
            context,
            bytes,
            json,
        } => kv_cache::kv_cache(config, preset, *context, *bytes as usize, *json),
        Command::Bench { which } => match which {
            BenchCommand::Matmul { width, sizes, out } => {
                bench::bench_matmul(choice, *width, sizes, out)
            }
            BenchCommand::Model {
                models,
                prompt,
                decode,
                profile,
                expert_readback,
                formats,
                out,
            } => bench::bench_model(
                choice,
                models,
                formats,
                (*prompt, *decode),
                (*profile, *expert_readback),
                out,
            ),
            BenchCommand::Context {
                models,
                contexts,
                decode,
                prompts,
                out,
            } => bench::bench_context(choice, models, (contexts, *decode), prompts, out),
            BenchCommand::Mla {
                width,
                heads,
                kv_lora_rank,
                sizes,
                out,
            } => bench::bench_mla(choice, *width, *heads, *kv_lora_rank, sizes, out),
            BenchCommand::Attention {
                width,
                heads,
                latents,
                chunk,
                sizes,
                out,
            } => {
                let shape = latentgpu::model::layers::latent::LatentShape {
                    d: *width,
                    heads: *heads,
                    latents: *latents,
                    chunk: *chunk,
                    rope_dim: (*width / *heads / 2).max(2) / 2 * 2,
                    synthesis: true,
                };
                bench::bench_attention(choice, shape, sizes, out)
            }
        },
    });
    if let Err(e) = result {
        if output::is_pipe_closed(&e) {
            std::process::exit(0);
        }
        // Bounded and escaped: a message may quote a user's value or a file's contents.
        eprintln!(
            "error: {}",
            latentgpu::error::shown_within(&format!("{e:#}"), 2000)
        );
        std::process::exit(1);
    }
}
