//! `latentgpu generate`: prefill and decode with the model's cache, streaming to stdout.

use super::args::GenerateArgs;
use super::open_model;
use anyhow::Result;
use latentgpu::gpu::BackendChoice;
use latentgpu::model::{self, tokenizer, GenerateConfig, GenerationDefaults, SamplingConfig};
use std::io::Write;

/// The sampling settings: the command line's, else the model's `generation_config.json`'s
/// (`do_sample: false` is greedy), else the library's defaults.
fn sampling(args: &GenerateArgs, defaults: &GenerationDefaults) -> SamplingConfig {
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

/// Generates after the prompt, streaming text to stdout (or printing JSON with `--json`).
pub fn generate(choice: BackendChoice, args: &GenerateArgs) -> Result<()> {
    let (ctx, dir, model) = open_model(choice, &args.model)?;
    log::info!("generating on {}", ctx.name());
    let tok = tokenizer::Tokenizer::for_model(&dir)?;
    let defaults = GenerationDefaults::for_model(&dir)?;
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
        sampling: sampling(args, &defaults),
        cancel: None,
    };
    let mut out = std::io::stdout().lock();
    let shown_prompt = match &args.prompt_ids {
        Some(ids) => tok.decode(ids),
        None => args.prompt.clone(),
    };
    if !args.json {
        write!(out, "{shown_prompt}")?;
    }
    let mut decoder = tok.decoder();
    let mut text = String::new();
    let start = std::time::Instant::now();
    let tokens = model::generate(&ctx, &model, &prompt, &cfg, |t| {
        let piece = decoder.push(t);
        if !args.json {
            let _ = write!(out, "{piece}");
            let _ = out.flush();
        }
        text.push_str(&piece);
    })?;
    let rest = decoder.finish();
    text.push_str(&rest);
    let secs = start.elapsed().as_secs_f64();
    if args.json {
        let v = serde_json::json!({
            "prompt_ids": prompt, "ids": tokens, "text": text, "adapter": ctx.name(),
            "tokens_per_second": tokens.len() as f64 / secs,
        });
        writeln!(out, "{}", serde_json::to_string(&v)?)?;
    } else {
        writeln!(out, "{rest}")?;
        if args.print_ids {
            let join = |ids: &[u32]| ids.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
            writeln!(out, "prompt ids: {}", join(&prompt))?;
            writeln!(out, "ids: {}", join(&tokens))?;
        }
    }
    log::info!(
        "{} tokens in {secs:.2} s ({:.1} tokens/s)",
        tokens.len(),
        tokens.len() as f64 / secs
    );
    Ok(())
}
