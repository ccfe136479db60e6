//! `latentgpu generate`: prefill and decode with the model's cache, streaming to stdout.

use super::args::{GenerateArgs, SamplingArgs};
use super::open_model;
use super::output;
use anyhow::Result;
use latentgpu::gpu::BackendChoice;
use latentgpu::model::formats::tokenizer;
use latentgpu::model::{self, GenerateConfig, GenerationDefaults, SamplingConfig};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// The sampling settings: the command line's, else the model's `generation_config.json`'s
/// (`do_sample: false` is greedy), else the library's defaults.
pub(super) fn sampling(args: &SamplingArgs, defaults: &GenerationDefaults) -> SamplingConfig {
    let base = SamplingConfig::default();
    let greedy_by_default = defaults.do_sample == Some(false);
    SamplingConfig {
        temperature: args.temperature.unwrap_or(if greedy_by_default {
            0.0
        } else {
            defaults.temperature.unwrap_or(base.temperature)
        }),
        top_k: args.top_k.or(defaults.top_k).unwrap_or(base.top_k),
        top_p: args.top_p.or(defaults.top_p).unwrap_or(base.top_p),
        repetition_penalty: args
            .repetition_penalty
            .or(defaults.repetition_penalty)
            .unwrap_or(base.repetition_penalty),
        seed: args.seed,
    }
}

/// The model's stop tokens and sampling defaults: a GGUF file's metadata, or a directory's
/// `generation_config.json`.
pub(super) fn generation_defaults(dir: &std::path::Path) -> Result<GenerationDefaults> {
    Ok(match model::families::is_gguf(dir) {
        true => model::families::gguf_generation_defaults(dir)?,
        false => GenerationDefaults::for_model(dir)?,
    })
}

/// Generates after the prompt, streaming text to stdout (or printing JSON with `--json`).
pub fn generate(choice: BackendChoice, args: &GenerateArgs) -> Result<()> {
    let (ctx, dir, model) = open_model(choice, &args.model)?;
    log::info!("generating on {}", ctx.name());
    let tok = tokenizer::Tokenizer::named_or_for_model(
        args.tokenizer.as_deref(),
        &dir,
        model.config.vocab_size,
    )?;
    let defaults = generation_defaults(&dir)?;
    let prompt = match &args.prompt_ids {
        Some(ids) => ids.clone(),
        None => tok.encode(&args.prompt)?,
    };
    let stop = args
        .stop
        .as_deref()
        .map(|s| tok.encode_plain(s))
        .transpose()?;
    let cfg = GenerateConfig {
        max_tokens: args.max_tokens,
        stop,
        eos_token_ids: match args.ignore_eos {
            true => Vec::new(),
            false => defaults.eos_token_ids.clone(),
        },
        sampling: sampling(&args.sampling, &defaults),
        cancel: Some(interrupted()?),
    };
    let shown_prompt = match &args.prompt_ids {
        Some(ids) => tok.decode(ids)?,
        None => args.prompt.clone(),
    };
    if !args.json {
        output::write(format_args!("{shown_prompt}"))?;
    }
    let mut decoder = tok.decoder();
    let mut text = String::new();
    // A failed write (the reader went away, a full disk) ends generation after this token.
    let mut written = Ok(());
    let start = std::time::Instant::now();
    let mut sequence = model::Decoder::new(&ctx, &model, cfg.sampling.clone())?;
    sequence.on_prefill_progress(super::progress::prefill_bar());
    let tokens = pollster::block_on(model::continue_async(&mut sequence, &prompt, &cfg, |t| {
        let piece = match decoder.push(t) {
            Ok(piece) => piece,
            Err(e) => {
                // Reported after generation ends, as a failed write is.
                written = Err(e.into());
                String::new()
            }
        };
        if !args.json && written.is_ok() {
            written = output::write(format_args!("{piece}"));
        }
        if written.is_err() {
            if let Some(cancel) = &cfg.cancel {
                cancel.store(true, Ordering::Relaxed);
            }
        }
        text.push_str(&piece);
    }))?;
    written?;
    let rest = decoder.finish()?;
    text.push_str(&rest);
    let stopped_by_user = cfg
        .cancel
        .as_ref()
        .is_some_and(|c| c.load(Ordering::Relaxed));
    let secs = start.elapsed().as_secs_f64();
    if args.json {
        let v = serde_json::json!({
            "prompt_ids": prompt, "ids": tokens, "text": text, "adapter": ctx.name(),
            "tokens_per_second": tokens.len() as f64 / secs,
        });
        outln!("{}", serde_json::to_string(&v)?);
    } else {
        outln!("{rest}");
        if args.print_ids {
            let join = |ids: &[u32]| ids.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
            outln!("prompt ids: {}", join(&prompt));
            outln!("ids: {}", join(&tokens));
        }
    }
    log::info!(
        "{} tokens in {secs:.2} s ({:.1} tokens/s)",
        tokens.len(),
        tokens.len() as f64 / secs
    );
    if stopped_by_user {
        eprintln!("interrupted after {} tokens", tokens.len());
        std::process::exit(INTERRUPTED_EXIT);
    }
    Ok(())
}

/// The exit status after Ctrl-C: 128 + SIGINT, as shells report a process that SIGINT ended.
pub(super) const INTERRUPTED_EXIT: i32 = 130;

/// A flag that Ctrl-C sets, so that generation ends after the token being chosen and the text
/// so far is printed; a second Ctrl-C exits at once.
pub(super) fn interrupted() -> Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    let handler_flag = flag.clone();
    ctrlc::set_handler(move || {
        if handler_flag.swap(true, Ordering::Relaxed) {
            std::process::exit(INTERRUPTED_EXIT);
        }
    })
    .map_err(|e| anyhow::anyhow!("installing the Ctrl-C handler: {e}"))?;
    Ok(flag)
}
