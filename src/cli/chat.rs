//! `latentgpu chat`: a conversation through the model's chat template, one user message per
//! line of standard input, each reply streamed; the cache is kept between turns, so a turn
//! prefills only what the rendered conversation adds to what the cache holds.

use super::args::ChatArgs;
use super::generate::{generation_defaults, interrupted, sampling};
use super::output;
use super::{model_dir, open_model};
use anyhow::Result;
use latentgpu::gpu::BackendChoice;
use latentgpu::model::formats::{chat_template, tokenizer};
use latentgpu::model::runtime::chat::Message;
use latentgpu::model::{self, Decoder, GenerateConfig};
use std::io::{BufRead, IsTerminal};
use std::sync::atomic::Ordering;

/// Runs the conversation until `/exit` or the end of standard input.
pub fn chat(choice: BackendChoice, args: &ChatArgs) -> Result<()> {
    // A model without a template is refused before anything is loaded.
    let files = &args.files;
    let template =
        chat_template::for_model(&model_dir(&files.model), files.chat_template.as_deref())?;
    let (ctx, dir, model) = open_model(choice, &files.model)?;
    let tok = tokenizer::Tokenizer::named_or_for_model(
        files.tokenizer.as_deref(),
        &dir,
        model.config.vocab_size,
    )?;
    let defaults = generation_defaults(&dir)?;
    let cancel = interrupted()?;
    let cfg = GenerateConfig {
        max_tokens: args.max_tokens,
        stop: None,
        eos_token_ids: defaults.eos_token_ids.clone(),
        sampling: sampling(&args.sampling, &defaults),
        cancel: Some(cancel.clone()),
    };
    let opening: Vec<Message> = args
        .system
        .iter()
        .map(|s| Message::new("system", s))
        .collect();
    let mut messages = opening.clone();
    let mut decoder = Decoder::new(&ctx, &model, cfg.sampling.clone())?;
    decoder.on_prefill_progress(super::progress::prefill_bar());
    let interactive = std::io::stdin().is_terminal();
    let mut lines = std::io::stdin().lock().lines();
    loop {
        if interactive {
            eprint!("> ");
        }
        let Some(line) = lines.next().transpose()? else {
            break;
        };
        match line.trim() {
            "/exit" => break,
            "/reset" => {
                messages = opening.clone();
                decoder.rewind(0);
                continue;
            }
            "" => continue,
            _ => {}
        }
        messages.push(Message::new("user", &line));
        // The template adds BOS where the model wants one; the tokenizer adds nothing more.
        let prompt = tok.encode_plain(&template.render(&messages, true)?)?;
        let room = model.config.max_context;
        if prompt.len() >= room {
            eprintln!(
                "the conversation is {} tokens, past the context of {room}: /reset to start over",
                prompt.len()
            );
            messages.pop();
            continue;
        }
        cancel.store(false, Ordering::Relaxed);
        let mut stream = tok.decoder();
        let mut written = Ok(());
        let ids = pollster::block_on(model::continue_async(&mut decoder, &prompt, &cfg, |t| {
            if !args.json && written.is_ok() {
                if let Ok(piece) = stream.push(t) {
                    written = output::write(format_args!("{piece}"));
                }
            }
        }))?;
        written?;
        // Ctrl-C stopped this reply only: the next one starts afresh (a second Ctrl-C while it
        // runs exits, as generate's does).
        cancel.store(false, Ordering::Relaxed);
        let text = tok.decode(&ids)?;
        let prefilled = decoder.last_prefill();
        if args.json {
            let v = serde_json::json!({
                "prompt_ids": prompt, "reused": prompt.len() - prefilled, "prefilled": prefilled,
                "ids": ids, "text": text,
            });
            outln!("{}", serde_json::to_string(&v)?);
        } else {
            outln!("{}", stream.finish()?);
        }
        messages.push(Message::new("assistant", &text));
    }
    Ok(())
}
