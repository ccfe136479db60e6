//! The transformer: embedding, pre-norm blocks, final norm, LM head; prefill and decode.

use crate::error::{Error, Result};
use crate::gpu::{Batch, GpuContext, GpuTensor};
use crate::model::config::{AttentionConfig, LayerRope, ModelConfig};
use crate::model::formats::weights::{Unused, WeightFile};
use crate::model::layers::cache::{Cache, CacheOptions, LayerCache, Paging};
use crate::model::layers::ffn::{Ffn, Norm};
use crate::model::layers::latent::{LatentLayer, LatentShape};
use crate::model::layers::mha::MhaLayer;
use crate::model::layers::mla::{MlaLayer, MlaPath};
use crate::model::layers::moe::{FeedForward, MoeFfn};
use crate::model::layers::upload::{load_matrix, load_rows};
use crate::ops::{self, KvFormat, Pages, RopeMode, RopeTable, Weight, WeightFormat};

/// The attention of one block.
pub enum Attention {
    /// Multi-head (grouped-query) attention.
    Mha(Box<MhaLayer>),
    /// Causal three-phase latent attention.
    Latent(Box<LatentLayer>),
    /// DeepSeek Multi-head Latent Attention.
    Mla(Box<MlaLayer>),
}

impl Attention {
    /// An empty cache of `rows` pool rows in `format` (or the latent state) and how it is
    /// paged (`None`: not at all).
    pub fn new_cache(
        &self,
        ctx: &GpuContext,
        rows: usize,
        format: KvFormat,
    ) -> Result<(LayerCache, Option<Paging>)> {
        Ok(match self {
            Attention::Mha(l) => {
                let paging = match l.window() {
                    0 => Paging::Whole,
                    w => Paging::Window(w),
                };
                (
                    LayerCache::Kv(l.new_cache(ctx, rows, format)?),
                    Some(paging),
                )
            }
            Attention::Latent(l) => (LayerCache::Latent(Box::new(l.new_state(ctx)?)), None),
            Attention::Mla(l) => (
                LayerCache::Mla(l.new_cache(ctx, rows, format)?),
                Some(Paging::Whole),
            ),
        })
    }

    /// `h` `[n, d]` at positions `pos..pos+n` -> `[n, d]`, taking the tokens into `cache`
    /// (MLA takes the path [`MlaPath::for_tokens`] picks).
    pub fn forward(
        &self,
        b: &mut Batch,
        h: &GpuTensor,
        pos: usize,
        (cache, pages): (&LayerCache, Option<Pages>),
        rope: (&RopeTable, RopeMode),
    ) -> Result<GpuTensor> {
        match (self, cache) {
            (Attention::Mha(l), LayerCache::Kv(kv)) => {
                l.forward(b, h, pos, (kv, pages), rope.0, rope.1)
            }
            (Attention::Latent(l), LayerCache::Latent(s)) => {
                l.forward(b, h, pos, s, rope.0, rope.1)
            }
            (Attention::Mla(l), LayerCache::Mla(c)) => {
                l.forward(b, h, pos, (c, pages), MlaPath::for_tokens(h.shape()[0]))
            }
            _ => Err(Error::Invalid {
                what: "layer cache".into(),
                expected: format!(
                    "the cache of {} attention (from this model's new_cache)",
                    self.kind()
                ),
                found: "the cache of another attention kind".into(),
            }),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Attention::Mha(_) => "multi-head",
            Attention::Latent(_) => "latent",
            Attention::Mla(_) => "MLA",
        }
    }
}

/// One pre-norm block: `x + attn(norm(x))`, then `x + ffn(norm(x))`; with post-norms (Gemma 3),
/// `x + post_norm(attn(norm(x)))` and `x + post_norm(ffn(norm(x)))`.
pub struct Block {
    attn_norm: Norm,
    attn: Attention,
    /// The norm of the attention's output, before the residual add (Gemma 3).
    post_attn_norm: Option<Norm>,
    ffn_norm: Norm,
    ffn: FeedForward,
    /// The norm of the feed-forward's output, before the residual add (Gemma 3).
    post_ffn_norm: Option<Norm>,
    /// Which of the model's RoPE tables the attention rotates with.
    rope: LayerRope,
}

impl Block {
    /// `reference/model.py`'s block:
    /// ```text
    /// x = x + attn(attn_norm(x))            # x + post_attn_norm(attn(attn_norm(x)))
    /// x = x + ffn(ffn_norm(x))              # x + post_ffn_norm(ffn(ffn_norm(x)))
    /// ```
    /// Each residual add runs fused with the norm that reads its sum, so the block takes
    /// `h = attn_norm(x)` with `x`, and returns the new `x` with `next_norm(x)` (the next
    /// block's `attn_norm`, or the final norm).
    fn forward(
        &self,
        b: &mut Batch,
        (x, h): (GpuTensor, GpuTensor),
        (cache, pos): ((&LayerCache, Option<Pages>), usize),
        rope: (&RopeTable, RopeMode),
        next_norm: &Norm,
    ) -> Result<(GpuTensor, GpuTensor)> {
        let mut a = self.attn.forward(b, &h, pos, cache, rope)?;
        if let Some(norm) = &self.post_attn_norm {
            a = norm.forward(b, &a)?;
        }
        let (x, h) = self.ffn_norm.add_forward(b, &x, &a)?;
        let mut f = self.ffn.forward(b, &h)?;
        if let Some(norm) = &self.post_ffn_norm {
            f = norm.forward(b, &f)?;
        }
        next_norm.add_forward(b, &x, &f)
    }
}

/// Which rows of logits a forward pass returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Logits {
    /// Every position's (`[n, vocab]`).
    All,
    /// Only the last position's (`[1, vocab]`), all that sampling needs.
    Last,
}

/// A loaded model on one GPU.
pub struct Model {
    /// Its configuration.
    pub config: ModelConfig,
    /// Token embedding `[vocab, d]` (in the matrices' format when tied to the LM head).
    embed: Weight,
    blocks: Vec<Block>,
    norm: Norm,
    /// LM head `[vocab, d]` (the embedding when tied).
    lm_head: Weight,
    /// `[d]`, every element `embed_scale`, when the config has one (Gemma).
    embed_scale: Option<GpuTensor>,
    /// The RoPE tables a [`LayerRope`] picks: the model's, the sliding layers', none.
    ropes: Ropes,
    weights: WeightFormat,
    /// How [`Model::new_cache`] keeps a sequence's cache.
    cache: CacheOptions,
    /// This model among those loaded in the process: its caches carry it.
    id: u64,
}

/// Tokens a prefill records per batch at most: a longer prompt runs chunk by chunk, each
/// chunk's batch submitted before the next is recorded, so its scratch memory is that of one
/// chunk whatever the prompt's length.
pub const PREFILL_CHUNK: usize = 512;

/// The next [`Model`]'s id.
static NEXT_MODEL_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// The RoPE tables of a model's layers.
struct Ropes {
    /// `rope`'s (LongRoPE's short frequencies).
    global: RopeTable,
    /// LongRoPE's long frequencies, for a forward pass that ends past the original context
    /// (the second value).
    long: Option<(RopeTable, usize)>,
    /// `rope_sliding`'s, when the config has it.
    sliding: Option<RopeTable>,
    /// Zero frequencies (cos 1, sin 0: a rotation that leaves every value as it is), for NoPE
    /// layers.
    none: Option<RopeTable>,
}

impl Ropes {
    /// The table of a layer of `which` kind in a forward pass whose last position is `end - 1`.
    fn pick(&self, which: LayerRope, end: usize) -> &RopeTable {
        match which {
            LayerRope::Global => match &self.long {
                Some((long, original)) if end > *original => long,
                _ => &self.global,
            },
            LayerRope::Sliding => self.sliding.as_ref().unwrap_or(&self.global),
            LayerRope::None => self.none.as_ref().unwrap_or(&self.global),
        }
    }
}

/// How a model's weights go to the GPU.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// How matrices are kept: f32, f16, bf16 (16-bit on every adapter) or quantized (q8_0,
    /// q4_0, q4_1, quantized at load); `None`: as the files hold them (a GGUF file's quantized
    /// blocks as they are, float values in f16 or bf16 where every matrix is, else f32). Norms,
    /// embeddings not tied to the LM head, routers and latents stay f32.
    pub weights: Option<WeightFormat>,
    /// Split weights into row blocks of at most this many bytes even below the adapter's
    /// binding limit (tests use it to split every weight; the values do not change).
    pub block_bytes: Option<u64>,
    /// The context the cache is allocated for, at most the model's (`None`: the model's).
    pub context: Option<usize>,
    /// The GPU memory the model may take in bytes (`None`: what the adapter is known to give,
    /// see [`GpuContext::memory_budget`]); the plan is checked against it before any upload.
    pub memory_budget: Option<u64>,
    /// How a sequence's KV cache is kept: its page size and the memory its pages may take.
    pub cache: CacheOptions,
}

impl LoadOptions {
    /// The default options with f16 matrices when `f16`, else f32 ones.
    pub fn f16(f16: bool) -> Self {
        Self::weights(if f16 {
            WeightFormat::F16
        } else {
            WeightFormat::F32
        })
    }

    /// The default options with matrices in `weights`.
    pub fn weights(weights: WeightFormat) -> Self {
        LoadOptions {
            weights: Some(weights),
            ..Self::default()
        }
    }
}

impl Model {
    /// Builds a model from the text of its `config.json` and the bytes of its
    /// `model.safetensors` (what a web page fetches): this project's own format, every tensor of
    /// which must be used, or a Hugging Face one (its config names a `model_type`).
    pub fn from_bytes(
        ctx: &GpuContext,
        config_json: &str,
        weights: Vec<u8>,
        options: LoadOptions,
    ) -> Result<Self> {
        Self::from_shards_bytes(
            ctx,
            config_json,
            vec![("model.safetensors".into(), weights)],
            options,
        )
    }

    /// Builds a model from the bytes of a GGUF file (llama, mistral, qwen2, qwen3; `name` names
    /// it in errors): its config from the metadata, its tensors as [`Model::load_dir`] takes a
    /// `.gguf` path.
    pub fn from_gguf_bytes(
        ctx: &GpuContext,
        name: &str,
        bytes: Vec<u8>,
        options: LoadOptions,
    ) -> Result<Self> {
        Self::from_gguf_file(ctx, WeightFile::from_gguf_bytes(name, bytes)?, options)
    }

    /// As [`Model::from_gguf_bytes`], from the GGUF file opened already (a web page reads its
    /// tokenizer and stop tokens from it first).
    pub fn from_gguf_file(
        ctx: &GpuContext,
        file: WeightFile,
        options: LoadOptions,
    ) -> Result<Self> {
        let mut file = file;
        let config = crate::model::families::gguf_config(&mut file)?;
        Self::load_file(ctx, config, file, options, |_, _| {})
    }

    /// As [`Model::from_bytes`], with the weights in several safetensors files `(name, bytes)`
    /// (the shards of a Hugging Face checkpoint).
    pub fn from_shards_bytes(
        ctx: &GpuContext,
        config_json: &str,
        shards: Vec<(String, Vec<u8>)>,
        options: LoadOptions,
    ) -> Result<Self> {
        let json: serde_json::Value =
            serde_json::from_str(config_json).map_err(|e| Error::Invalid {
                what: "config JSON".into(),
                expected: "a JSON object".into(),
                found: e.to_string(),
            })?;
        let mut file = WeightFile::from_shards_bytes(shards)?;
        let config = if crate::model::formats::hf_json::is_hf_config(&json) {
            crate::model::families::hf_config(&json, &mut file)?
        } else {
            ModelConfig::from_json(config_json)?
        };
        Self::load_file(ctx, config, file, options, |_, _| {})
    }

    /// Uploads every tensor of `file` for `config` as `options` say, telling
    /// `progress(block, blocks)`; errors if the file holds tensors the model does not use.
    pub(crate) fn load_file(
        ctx: &GpuContext,
        config: ModelConfig,
        mut file: WeightFile,
        options: LoadOptions,
        mut progress: impl FnMut(usize, usize),
    ) -> Result<Self> {
        let blocks = config.n_layers;
        let LoadOptions {
            weights,
            block_bytes,
            context,
            memory_budget: _,
            cache,
        } = options;
        let mut config = config;
        if let Some(c) = context {
            if c == 0 || c > config.max_context {
                return Err(Error::Invalid {
                    what: "context".into(),
                    expected: format!("1 to {} tokens (the model's)", config.max_context),
                    found: c.to_string(),
                });
            }
            config.max_context = c;
        }
        file.weights = weights;
        file.block_bytes = block_bytes;
        let mut model = Self::load(ctx, config, &mut file, |i| progress(i + 1, blocks))?;
        model.cache = cache;
        match file.layout.unused() {
            Unused::Error => file.finish()?,
            Unused::Warn | Unused::ErrorInBlocks => {
                let unused = file.unused();
                // A GGUF block's tensors the model did not take: its block_count is smaller
                // than the blocks the file holds (running fewer blocks would be a wrong answer).
                let gguf_block = unused.iter().find(|n| n.starts_with("blk."));
                if let (Unused::ErrorInBlocks, Some(name)) = (file.layout.unused(), gguf_block) {
                    return Err(file.err(
                        name,
                        format!("tensors of the {blocks} blocks the metadata's block_count gives"),
                        "a tensor of a block past them",
                    ));
                }
                for name in unused {
                    log::warn!("tensor '{name}' is not used by the model");
                }
            }
        }
        Ok(model)
    }

    /// Builds the model from a config and an open weights file; every tensor the file holds must
    /// be used. `progress` is told each block as it is uploaded.
    pub fn load(
        ctx: &GpuContext,
        config: ModelConfig,
        file: &mut WeightFile,
        mut progress: impl FnMut(usize),
    ) -> Result<Self> {
        config.validate()?;
        file.max_tensor_bytes = Some(crate::gpu::split::block_limit(ctx, file.block_bytes));
        let cfg = &config;
        let (v, d) = (cfg.vocab_size, cfg.d_model);
        // Tied to the LM head, the embedding is a matrix (f16 or quantized when the matrices
        // are: one copy serves the gather and the head).
        let embed = match cfg.tie_embeddings {
            true => load_matrix(ctx, file, "embed_tokens.weight", &[v, d])?,
            false => Weight::Dense(load_rows(ctx, file, "embed_tokens.weight", &[v, d])?),
        };
        // Grown as the blocks load: a config's layer count is not trusted before its tensors.
        let mut blocks = Vec::new();
        // MLA's RoPE table, one for every layer.
        let mut mla_rope: Option<RopeTable> = None;
        for i in 0..cfg.n_layers {
            let p = format!("layers.{i}");
            let attn = match &cfg.attention {
                AttentionConfig::Mha { .. } => Attention::Mha(Box::new(MhaLayer::load(
                    ctx,
                    file,
                    cfg,
                    &format!("{p}.attn"),
                    i,
                )?)),
                AttentionConfig::Latent {
                    latents,
                    chunk,
                    synthesis,
                    ..
                } => {
                    let shape = LatentShape {
                        d: cfg.d_model,
                        heads: cfg.n_heads,
                        latents: *latents,
                        chunk: *chunk,
                        rope_dim: cfg.rope_dim(),
                        synthesis: *synthesis,
                    };
                    Attention::Latent(Box::new(LatentLayer::load(
                        ctx,
                        file,
                        shape,
                        &format!("{p}.attn"),
                    )?))
                }
                AttentionConfig::Mla { .. } => {
                    let shape = cfg.mla_shape().ok_or_else(|| Error::Invalid {
                        what: "MLA attention config".into(),
                        expected: "the MLA sizes".into(),
                        found: "none".into(),
                    })?;
                    let rope = match &mla_rope {
                        Some(table) => table.clone(),
                        None => MlaLayer::rope_table(ctx, &shape, cfg.max_context)?,
                    };
                    let layer = MlaLayer::load(ctx, file, shape, &format!("{p}.attn"), &rope)?;
                    mla_rope = Some(rope);
                    Attention::Mla(Box::new(layer))
                }
            };
            let post_norm = |file: &mut WeightFile, name: &str| match cfg.post_norms {
                true => Norm::load(ctx, file, cfg, &format!("{p}.{name}")).map(Some),
                false => Ok(None),
            };
            blocks.push(Block {
                attn_norm: Norm::load(ctx, file, cfg, &format!("{p}.attn_norm"))?,
                attn,
                post_attn_norm: post_norm(file, "post_attn_norm")?,
                ffn_norm: Norm::load(ctx, file, cfg, &format!("{p}.ffn_norm"))?,
                ffn: match &cfg.moe {
                    Some(moe) if moe.is_moe_layer(i) => FeedForward::Moe(Box::new(MoeFfn::load(
                        ctx,
                        file,
                        cfg,
                        moe,
                        &format!("{p}.ffn"),
                    )?)),
                    _ => FeedForward::Dense(Box::new(Ffn::load(
                        ctx,
                        file,
                        cfg,
                        &format!("{p}.ffn"),
                    )?)),
                },
                post_ffn_norm: post_norm(file, "post_ffn_norm")?,
                rope: cfg.layer_rope(i),
            });
            ctx.release_uploads();
            progress(i);
        }
        let norm = Norm::load(ctx, file, cfg, "norm")?;
        let lm_head = if cfg.tie_embeddings {
            embed.clone()
        } else {
            load_matrix(ctx, file, "lm_head.weight", &[v, d])?
        };
        let table = |rope: &crate::model::config::RopeConfig, inv_freq: &[f32]| {
            RopeTable::from_inv_freq(ctx, inv_freq, cfg.max_context, rope.attention_factor())
        };
        let plain =
            |rope: &crate::model::config::RopeConfig| table(rope, &rope.inv_freq(cfg.rope_dim()));
        let any_nope = (0..cfg.n_layers).any(|i| cfg.layer_rope(i) == LayerRope::None);
        let ropes = Ropes {
            global: plain(&cfg.rope)?,
            long: match cfg.rope.long_inv_freq(cfg.rope_dim()) {
                Some((inv_freq, original)) => Some((table(&cfg.rope, &inv_freq)?, original)),
                None => None,
            },
            sliding: cfg.rope_sliding.as_ref().map(plain).transpose()?,
            none: match any_nope {
                true => Some(RopeTable::from_inv_freq(
                    ctx,
                    &vec![0.0; cfg.rope_dim() / 2],
                    cfg.max_context,
                    1.0,
                )?),
                false => None,
            },
        };
        let embed_scale = match cfg.embed_scale {
            Some(s) => Some(GpuTensor::from_f32(ctx, "embed_scale", &[d], &vec![s; d])?),
            None => None,
        };
        let weights = file.weights.unwrap_or_else(|| lm_head.format());
        Ok(Model {
            config,
            embed,
            blocks,
            norm,
            lm_head,
            embed_scale,
            ropes,
            weights,
            cache: CacheOptions::default(),
            id: NEXT_MODEL_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        })
    }

    /// Makes every mixture-of-experts layer read its chosen experts back to the CPU before
    /// computing them: one round trip per layer, as an engine that dispatches the experts from
    /// the host makes (`bench model --expert-readback` compares the two; native only).
    pub fn set_expert_readback(&mut self, on: bool) {
        for block in &mut self.blocks {
            if let FeedForward::Moe(moe) = &mut block.ffn {
                moe.read_back_ids = on;
            }
        }
    }

    /// Bytes of weights one decoded token reads: every block's attention and feed-forward (a
    /// mixture's chosen experts only), and the LM head.
    pub fn decode_weight_bytes(&self) -> u64 {
        let blocks: u64 = self
            .blocks
            .iter()
            .map(|b| {
                let attn = match &b.attn {
                    Attention::Mha(l) => l.decode_weight_bytes(),
                    Attention::Latent(l) => l.decode_weight_bytes(),
                    Attention::Mla(l) => l.decode_weight_bytes(),
                };
                attn + b.ffn.decode_weight_bytes()
            })
            .sum();
        blocks + self.lm_head.bytes()
    }

    /// Whether the matrices were uploaded in f16.
    pub fn has_f16_matrices(&self) -> bool {
        self.weights == WeightFormat::F16
    }

    /// The format the matrices were uploaded in (loaded as the files hold them, which may mix
    /// formats: the LM head's).
    pub fn weight_format(&self) -> WeightFormat {
        self.weights
    }

    /// LongRoPE's original context, past which a forward pass rotates with the long factors
    /// (`None` without LongRoPE): a decoder runs the sequence again when it first passes it.
    pub fn long_rope_context(&self) -> Option<usize> {
        self.ropes.long.as_ref().map(|(_, original)| *original)
    }

    /// An empty decode state for up to `max_context` tokens, kept as the load options said
    /// (one page per layer until tokens come).
    pub fn new_cache(&self, ctx: &GpuContext) -> Result<Cache> {
        self.new_cache_with(ctx, self.cache)
    }

    /// As [`Model::new_cache`], kept as `options` say.
    pub fn new_cache_with(&self, ctx: &GpuContext, options: CacheOptions) -> Result<Cache> {
        let page = options.page_tokens.clamp(1, self.config.max_context.max(1));
        let layers = self
            .blocks
            .iter()
            .map(|b| b.attn.new_cache(ctx, page, options.format))
            .collect::<Result<_>>()?;
        Cache::new(ctx, (self.id, self.config.max_context), layers, options)
    }

    /// The options [`Model::new_cache`] keeps a cache with.
    pub fn cache_options(&self) -> CacheOptions {
        self.cache
    }

    /// Makes [`Model::new_cache`] keep caches as `options` say.
    pub fn set_cache_options(&mut self, options: CacheOptions) {
        self.cache = options;
    }

    /// Checks `cache` was made by this model's [`Model::new_cache`].
    fn check_cache(&self, cache: &Cache) -> Result<()> {
        if cache.layers.len() != self.blocks.len() || cache.model_id() != self.id {
            return Err(Error::Invalid {
                what: "cache".into(),
                expected: format!(
                    "one made by this model's new_cache ({} layers)",
                    self.blocks.len()
                ),
                found: format!("another model's ({} layers)", cache.layers.len()),
            });
        }
        Ok(())
    }

    /// Checks tokens are in the vocabulary and fit the context left in `cache`.
    fn check_tokens(&self, ids: &[u32], cache: &Cache) -> Result<()> {
        if ids.is_empty() {
            return Err(Error::Invalid {
                what: "tokens".into(),
                expected: "at least one".into(),
                found: "none".into(),
            });
        }
        if cache.len + ids.len() > cache.capacity {
            return Err(Error::Invalid {
                what: "context".into(),
                expected: format!("at most {} tokens (max_context)", cache.capacity),
                found: format!("{} cached + {} new", cache.len, ids.len()),
            });
        }
        let vocab = self.config.vocab_size;
        if let Some((i, &id)) = ids.iter().enumerate().find(|(_, &t)| t as usize >= vocab) {
            return Err(Error::OutOfRange {
                what: format!("token id at position {}", cache.len + i),
                found: id as u64,
                bound: vocab as u64,
            });
        }
        Ok(())
    }

    /// Records the forward pass of `ids` (at positions `cache.len..`) into `b`; returns the
    /// logits and every block's output `[n, d]` (for layer-by-layer comparison). The layer
    /// caches take the tokens when the batch runs; `cache.len` is the caller's to advance once
    /// it has run.
    pub fn record_forward(
        &self,
        b: &mut Batch,
        ids: &[u32],
        cache: &mut Cache,
        which: Logits,
    ) -> Result<(GpuTensor, Vec<GpuTensor>)> {
        self.check_cache(cache)?;
        self.check_tokens(ids, cache)?;
        cache.reserve(b.ctx(), cache.len, cache.len + ids.len())?;
        let ids = ops::upload_ids(b, ids, self.config.vocab_size)?;
        let x = self.embed(b, &ids)?;
        self.record_blocks(b, x, cache, cache.len, which)
    }

    /// As [`Model::record_forward`] for one token whose id is already on the GPU (`[1]` u32,
    /// the sampler's output), at position `pos`: decoding without a round trip of the id.
    /// `pos` may run ahead of `cache.len` when the positions between are recorded earlier in
    /// the same batch (several tokens decoded per submission); such a batch reserves the
    /// pages of all its positions first ([`Cache::reserve`]).
    pub fn record_decode(
        &self,
        b: &mut Batch,
        id: &GpuTensor,
        cache: &mut Cache,
        pos: usize,
    ) -> Result<GpuTensor> {
        if pos < cache.len || pos >= cache.capacity {
            return Err(Error::Invalid {
                what: "decode position".into(),
                expected: format!(
                    "from {} (cached) to {} (max_context)",
                    cache.len,
                    cache.capacity.saturating_sub(1)
                ),
                found: pos.to_string(),
            });
        }
        self.check_cache(cache)?;
        cache.reserve(b.ctx(), pos, pos + 1)?;
        let x = self.embed(b, id)?;
        Ok(self.record_blocks(b, x, cache, pos, Logits::Last)?.0)
    }

    /// The embedding rows of the token ids `ids` `[n]` (on the GPU) -> `[n, d]`, scaled where
    /// the config says.
    fn embed(&self, b: &mut Batch, ids: &GpuTensor) -> Result<GpuTensor> {
        let x = ops::gather_rows(b, &self.embed, ids)?;
        match &self.embed_scale {
            Some(scale) => ops::scale_rows(b, &x, scale),
            None => Ok(x),
        }
    }

    /// The blocks, final norm and LM head over the embedded tokens `x` `[n, d]` at positions
    /// `pos..`.
    fn record_blocks(
        &self,
        b: &mut Batch,
        x: GpuTensor,
        cache: &Cache,
        pos: usize,
        which: Logits,
    ) -> Result<(GpuTensor, Vec<GpuTensor>)> {
        let n = x.shape()[0];
        self.check_cache(cache)?;
        let mut outputs = Vec::with_capacity(self.blocks.len());
        let mode = self.config.rope.mode;
        let first_norm = self.blocks.first().map_or(&self.norm, |b| &b.attn_norm);
        let h = first_norm.forward(b, &x)?;
        let mut state = (x, h);
        for (i, block) in self.blocks.iter().enumerate() {
            let next_norm = self.blocks.get(i + 1).map_or(&self.norm, |b| &b.attn_norm);
            let rope = (self.ropes.pick(block.rope, pos + n), mode);
            let layer_cache = cache.layer(i).ok_or_else(|| Error::Invalid {
                what: "cache".into(),
                expected: format!("{} layers", self.blocks.len()),
                found: format!("{} layers", cache.layers.len()),
            })?;
            state = block.forward(b, state, (layer_cache, pos), rope, next_norm)?;
            outputs.push(state.0.clone());
        }
        // The final norm of every row is in `state.1`.
        let h = match which {
            Logits::All => state.1,
            Logits::Last => b.bindable(&state.1.row_range(n - 1, 1)?)?,
        };
        let logits = ops::linear(b, &h, &self.lm_head)?;
        Ok((logits, outputs))
    }

    /// Runs `ids` through the model (one command encoder, one readback) and returns the logits,
    /// `[n or 1, vocab]` row-major (native: blocks).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn forward(
        &self,
        ctx: &GpuContext,
        ids: &[u32],
        cache: &mut Cache,
        which: Logits,
    ) -> Result<Vec<f32>> {
        pollster::block_on(self.forward_async(ctx, ids, cache, which))
    }

    /// As [`Model::forward`], awaiting the readback (the browser's event loop runs meanwhile).
    /// For the last position's logits, a prompt longer than [`PREFILL_CHUNK`] runs chunk by
    /// chunk ([`Model::prefill_chunks`]).
    pub async fn forward_async(
        &self,
        ctx: &GpuContext,
        ids: &[u32],
        cache: &mut Cache,
        which: Logits,
    ) -> Result<Vec<f32>> {
        let ids = match which {
            Logits::Last => &ids[self.prefill_chunks(ctx, ids, cache, &mut |_, _| {}).await?..],
            Logits::All => ids,
        };
        let mut b = Batch::new(ctx);
        let (logits, _) = self.record_forward(&mut b, ids, cache, which)?;
        let logits = b.read_async(&[&logits]).await?.remove(0);
        cache.len += ids.len();
        Ok(logits)
    }

    /// Runs `ids` but their last chunk (the last 1 to [`PREFILL_CHUNK`] tokens) into `cache`,
    /// one batch of [`PREFILL_CHUNK`] tokens at a time, waiting for each and telling
    /// `progress(tokens done, tokens in all)`; returns how many ran (0 for a prompt of one
    /// chunk). The caller records the last chunk, whose logits it wants. A LongRoPE model whose
    /// prompt ends past its original context runs it whole, as its rotation depends on where
    /// the whole pass ends.
    pub async fn prefill_chunks(
        &self,
        ctx: &GpuContext,
        ids: &[u32],
        cache: &mut Cache,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<usize> {
        self.check_cache(cache)?;
        self.check_tokens(ids, cache)?;
        let end = cache.len + ids.len();
        if self
            .long_rope_context()
            .is_some_and(|original| end > original)
        {
            return Ok(0);
        }
        let leading = (ids.len() - 1) / PREFILL_CHUNK * PREFILL_CHUNK;
        let mut done = 0;
        while done < leading {
            let chunk = &ids[done..done + PREFILL_CHUNK];
            let mut b = Batch::new(ctx);
            self.record_forward(&mut b, chunk, cache, Logits::Last)?;
            b.submit_async().await?;
            cache.len += chunk.len();
            done += chunk.len();
            progress(done, ids.len());
        }
        Ok(done)
    }
}
