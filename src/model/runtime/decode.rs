//! Decoding on the GPU, several tokens per submission.
//!
//! The sampler runs on the GPU and the next forward pass embeds the id where the sampler wrote
//! it, so nothing the host does sits between two decoded tokens: a batch can record the forward
//! pass and the sampler for several positions in a row, submit once and read back every chosen
//! id at once. What a submission and a wait cost (on GPUs and in browsers, as much as a small
//! model's whole forward pass) is then shared by the tokens of the batch. [`Decoder`] sizes
//! its batches so that one comes back about every [`STREAM_INTERVAL_S`], so the text still
//! streams smoothly; the tokens are exactly those of one batch per token.

use crate::error::Result;
use crate::gpu::{Batch, GpuContext};
use crate::model::layers::cache::Cache;
use crate::model::layers::transformer::{Logits, Model};
use crate::model::runtime::non_finite::non_finite_error;
use crate::model::runtime::sampling::{Sampler, SamplingConfig};
use crate::ops::{self, SampleState, CHOSEN_SLOTS, NON_FINITE_TOKEN};
use web_time::Instant;

/// A decode batch comes back about this often once the time per token is known (seconds).
pub const STREAM_INTERVAL_S: f64 = 0.05;

/// Tokens one decode batch takes at most; more would share the submission's cost among more
/// tokens for little further gain (1/16 of it per token is left).
pub const MAX_DECODE_BATCH: usize = 16;

/// A model's caches and the GPU sampler's state while generating one sequence.
pub struct Decoder<'a> {
    ctx: &'a GpuContext,
    model: &'a Model,
    cache: Cache,
    sampler: Sampler,
    state: SampleState,
    /// Seconds per decoded token of the last batch (wall time, submission to readback).
    seconds_per_token: Option<f64>,
    /// CPU seconds spent recording decode batches, and the tokens they recorded.
    encode: (f64, usize),
    /// The prompt and every token chosen since (to locate a NaN's origin).
    history: Vec<u32>,
    /// Tokens the last prefill ran.
    prefilled: usize,
    /// Told `(tokens done, tokens in all)` as a long prompt's chunks run.
    prefill_progress: Option<Box<dyn FnMut(usize, usize) + 'a>>,
}

impl<'a> Decoder<'a> {
    /// An empty sequence for `model`, choosing tokens with `sampling` (checked here).
    pub fn new(ctx: &'a GpuContext, model: &'a Model, sampling: SamplingConfig) -> Result<Self> {
        Self::with_cache(ctx, model, sampling, model.new_cache(ctx)?)
    }

    /// As [`Decoder::new`], going on after what `cache` holds (from `model`'s `new_cache`;
    /// the benchmarks give it the pages of a long context without running its tokens).
    pub fn with_cache(
        ctx: &'a GpuContext,
        model: &'a Model,
        sampling: SamplingConfig,
        cache: Cache,
    ) -> Result<Self> {
        sampling.validate()?;
        Ok(Decoder {
            ctx,
            model,
            cache,
            sampler: Sampler::new(sampling),
            state: SampleState::new(ctx, model.config.vocab_size)?,
            seconds_per_token: None,
            encode: (0.0, 0),
            history: Vec::new(),
            prefilled: 0,
            prefill_progress: None,
        })
    }

    /// Calls `progress(tokens done, tokens in all)` as each chunk of a prompt longer than
    /// [`PREFILL_CHUNK`](crate::model::layers::transformer::PREFILL_CHUNK) runs.
    pub fn on_prefill_progress(&mut self, progress: impl FnMut(usize, usize) + 'a) {
        self.prefill_progress = Some(Box::new(progress));
    }

    /// The caches; `len` counts the tokens whose batch has run.
    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// Positions left in the context.
    pub fn room(&self) -> usize {
        self.cache.capacity - self.cache.len
    }

    /// CPU milliseconds spent recording each decoded token's work (0 before any decode).
    pub fn encode_ms_per_token(&self) -> f64 {
        1e3 * self.encode.0 / self.encode.1.max(1) as f64
    }

    /// Tokens the next [`Decoder::decode_paced`] batch takes: 1 until a batch has been timed,
    /// then as many as come back in about [`STREAM_INTERVAL_S`] (1 to [`MAX_DECODE_BATCH`]).
    pub fn paced_batch(&self) -> usize {
        match self.seconds_per_token {
            None => 1,
            Some(s) => ((STREAM_INTERVAL_S / s) as usize).clamp(1, MAX_DECODE_BATCH),
        }
    }

    /// Runs the prompt through the model after what the cache holds (one batch) and returns
    /// the first token chosen (a token chosen but not yet run is replaced by the prompt).
    pub async fn prefill(&mut self, prompt: &[u32]) -> Result<u32> {
        let start = self.cache.len;
        self.history.truncate(start);
        self.history.extend_from_slice(prompt);
        // The repetition penalty sees the whole sequence, as transformers' does.
        self.state.set_seen(self.ctx, &self.history)?;
        self.run_from(start).await
    }

    /// Tokens the last prefill ran through the model (a chat's turn: what the conversation
    /// added to what the cache held).
    pub fn last_prefill(&self) -> usize {
        self.prefilled
    }

    /// How many of `tokens`' first tokens the cache holds already.
    pub fn cached_prefix(&self, tokens: &[u32]) -> usize {
        let cached = &self.history[..self.cache.len.min(self.history.len())];
        cached
            .iter()
            .zip(tokens)
            .take_while(|(a, b)| a == b)
            .count()
    }

    /// Forgets every token from position `len` on, returning their pages to the pool, and
    /// returns the tokens kept: `len`, or 0 where a sliding window has already dropped the
    /// pages the token at `len` would see (the sequence then runs again from the start).
    pub fn rewind(&mut self, len: usize) -> usize {
        let len = match self.cache.can_resume_at(len) {
            true => len.min(self.cache.len),
            false => 0,
        };
        self.cache.truncate(len);
        self.history.truncate(len);
        len
    }

    /// Runs the history from position `start` on through the model into the cache from there
    /// (a batch per prefill chunk) and returns the next token chosen.
    async fn run_from(&mut self, start: usize) -> Result<u32> {
        let vocab = self.model.config.vocab_size;
        self.cache.len = start;
        let tokens = &self.history[start..];
        self.prefilled = tokens.len();
        let mut no_progress = |_, _| {};
        let progress = match &mut self.prefill_progress {
            Some(p) => p.as_mut(),
            None => &mut no_progress,
        };
        let done = self
            .model
            .prefill_chunks(self.ctx, tokens, &mut self.cache, progress)
            .await?;
        let tokens = &self.history[start + done..];
        let mut b = Batch::new(self.ctx);
        let (logits, _) =
            self.model
                .record_forward(&mut b, tokens, &mut self.cache, Logits::Last)?;
        ops::sample(
            &mut b,
            &logits,
            &self.state,
            0,
            self.sampler.next_params(vocab),
        )?;
        let token = b.read_u32_async(&[&self.state.token]).await?[0][0];
        self.cache.len = self.history.len();
        self.check_chosen(&[token]).await?;
        Ok(token)
    }

    /// Decodes the next tokens after the last one chosen, at most `at_most`, in a batch sized
    /// by [`Decoder::paced_batch`]; returns them in order (none when the context is full).
    pub async fn decode_paced(&mut self, at_most: usize) -> Result<Vec<u32>> {
        let start = Instant::now();
        let tokens = self.decode(self.paced_batch().min(at_most)).await?;
        if !tokens.is_empty() {
            self.seconds_per_token = Some(start.elapsed().as_secs_f64() / tokens.len() as f64);
        }
        Ok(tokens)
    }

    /// Decodes `n` tokens after the last one chosen in one submission and one readback of
    /// their ids; fewer when the context, the sampler's slots ([`CHOSEN_SLOTS`]) or the
    /// batch's uniform ring (whose overflow would allocate) run out first. Returns them in
    /// order. `cache().len` advances once the batch has run.
    pub async fn decode(&mut self, n: usize) -> Result<Vec<u32>> {
        let mut n = n.min(self.room()).min(CHOSEN_SLOTS);
        if n == 0 {
            return Ok(Vec::new());
        }
        // LongRoPE: the keys cached so far were rotated with the short factors. At the first
        // position past the original context, transformers' Phi-3 drops its cache and runs the
        // whole sequence again on the long ones; so does this (the batch ends before it).
        if let Some(original) = self.model.long_rope_context() {
            let len = self.cache.len;
            if len == original {
                return self.run_from(0).await.map(|t| vec![t]);
            }
            if len < original {
                n = n.min(original - len);
            }
        }
        let vocab = self.model.config.vocab_size;
        let start = Instant::now();
        // Every position's pages before the batch records the first (see Cache::reserve);
        // where the memory allowed runs out within them, one token, whose error (if it has
        // no room either) names the position reached.
        let len = self.cache.len;
        if self.cache.reserve(self.ctx, len, len + n).is_err() {
            n = 1;
            self.cache.reserve(self.ctx, len, len + 1)?;
        }
        let mut b = Batch::new(self.ctx);
        let (mut steps, mut step_bytes) = (0, 0);
        while steps < n && (steps == 0 || b.ring_room() >= step_bytes) {
            let room = b.ring_room();
            let pos = self.cache.len + steps;
            let logits =
                self.model
                    .record_decode(&mut b, &self.state.token, &mut self.cache, pos)?;
            let params = self.sampler.next_params(vocab);
            ops::sample(&mut b, &logits, &self.state, steps, params)?;
            step_bytes = step_bytes.max(room.saturating_sub(b.ring_room()));
            steps += 1;
        }
        self.encode.0 += start.elapsed().as_secs_f64();
        self.encode.1 += steps;
        let chosen = self.state.chosen.rows(steps)?;
        let tokens = b.read_u32_async(&[&chosen]).await?.remove(0);
        self.cache.len += steps;
        self.check_chosen(&tokens).await?;
        Ok(tokens)
    }

    /// Adds `tokens` (chosen after the history) to the history; the sampler's mark for scores
    /// that are not finite is an error naming the first layer that produced them.
    async fn check_chosen(&mut self, tokens: &[u32]) -> Result<()> {
        for &t in tokens {
            if t == NON_FINITE_TOKEN {
                let (ids, what) = (&self.history, "the next token's scores");
                let at = ids.len() - 1;
                return Err(non_finite_error(self.ctx, self.model, ids, at, what).await);
            }
            self.history.push(t);
        }
        Ok(())
    }
}
