//! `latentgpu generate`: prefill and decode with the model's cache, streaming to stdout.

use super::args::GenerateArgs;
use super::open_model;
use anyhow::Result;
use latentgpu::gpu::BackendChoice;
use latentgpu::model::{self, tokenizer, GenerateConfig, SamplingConfig};
use std::io::Write;

/// Generates after the prompt, streaming text to stdout.
pub fn generate(choice: BackendChoice, args: &GenerateArgs) -> Result<()> {
    let (ctx, dir, model) = open_model(choice, &args.model)?;
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
