//! What a model directory holds, read from its headers before anything is uploaded: family,
//! parameters, dtypes, weight and cache bytes, and which tensors fit the adapter's binding limit.

use crate::error::{Error, Result};
use crate::model::config::{AttentionConfig, ModelConfig};
use crate::model::families::hf::HfConfig;
use crate::model::families::open_dir;
use crate::model::formats::hf_json::is_hf_config;
use crate::model::layers::cache::DEFAULT_PAGE_TOKENS;
use crate::model::layers::transformer::PREFILL_CHUNK;
use crate::ops::{KvFormat, WeightFormat};
use serde::Serialize;
use std::path::Path;

/// One tensor of the summary.
#[derive(Clone, Debug, Serialize)]
pub struct TensorSummary {
    /// Its name in the files.
    pub name: String,
    /// Its shape.
    pub shape: Vec<usize>,
    /// Its dtype on disk.
    pub dtype: String,
    /// Bytes it takes on the GPU.
    pub gpu_bytes: u64,
    /// The storage bindings it takes on the adapter: 1 when it fits one, more when it is split
    /// into row blocks, 0 when it cannot be (one row, or a vector, past the limit).
    pub bindings: u64,
}

/// What matrices of the on-disk `dtypes` become when no format is asked: quantized blocks keep
/// their format (each chunk's scales and minimums as f32), other values become f32.
fn as_loaded(dtypes: &[String]) -> String {
    let quantized = dtypes
        .iter()
        .any(|d| crate::ops::QuantScheme::from_name(d).is_some());
    let values = dtypes
        .iter()
        .any(|d| crate::ops::QuantScheme::from_name(d).is_none());
    match (quantized, values) {
        (true, true) => "quantized blocks in their own formats, other values as f32".into(),
        (true, false) => "quantized blocks in their own formats".into(),
        _ => "f32".into(),
    }
}

/// A model directory, summarised.
#[derive(Clone, Debug, Serialize)]
pub struct ModelSummary {
    /// Hugging Face `model_type`, or `latentgpu-<attention kind>` for this project's own format.
    pub family: String,
    /// Parameters (elements of every tensor in the files).
    pub parameters: u64,
    /// Parameters one token goes through: all but the routed experts it is not sent to (the
    /// same as `parameters` without a mixture of experts).
    pub active_parameters: u64,
    /// The dtypes on disk, e.g. `BF16`, comma separated.
    pub dtype_on_disk: String,
    /// The format of weight matrices on the GPU (`f32`, `f16`, `q8_0`, `q4_0`, `q4_1`).
    pub dtype_on_gpu: String,
    /// Bytes of the weights on disk.
    pub weight_bytes_on_disk: u64,
    /// Bytes of the weights on the GPU.
    pub weight_bytes_on_gpu: u64,
    /// Cache bytes added by each token in the layers that keep every token (0 for latent
    /// attention, whose state is constant; sliding-window layers keep only their window).
    pub cache_bytes_per_token: u64,
    /// Cache bytes at the full context.
    pub cache_bytes_at_context: u64,
    /// Cache bytes at 1k, 8k and 32k tokens (those within the context) and at the context.
    pub cache_bytes_at: Vec<CacheAt>,
    /// The KV cache's format the cache figures are for.
    pub kv_cache: KvFormat,
    /// The context: the longest sequence, its cache growing in pages as tokens come.
    pub context: usize,
    /// A Hugging Face config's `max_position_embeddings`.
    pub max_position_embeddings: Option<usize>,
    /// The adapter's largest storage binding, in bytes.
    pub binding_limit: u64,
    /// How a mixture of experts stacks each layer's routed experts on the GPU, if it has one.
    pub expert_stacks: Option<ExpertStacks>,
    /// The GPU memory loading it takes, summed before anything is uploaded.
    pub plan: MemoryPlan,
    /// Every tensor.
    pub tensors: Vec<TensorSummary>,
}

/// The cache at a number of tokens.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct CacheAt {
    /// Tokens cached.
    pub tokens: usize,
    /// Bytes their pages take (pages of [`DEFAULT_PAGE_TOKENS`], in the summary's cache
    /// format).
    pub bytes: u64,
}

/// The GPU memory a model takes at a context, summed from its files' headers and config.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct MemoryPlan {
    /// Weights in the requested format (with MLA's absorbed matrices and the RoPE tables).
    pub weights: u64,
    /// The cache (or latent state) at the context.
    pub cache: u64,
    /// Scratch activations of a prefill chunk ([`PREFILL_CHUNK`] tokens; longer prompts run
    /// chunk by chunk), an estimate: the widest buffers a block holds at once (residual,
    /// q/k/v, three of the feed-forward's width) for every token, and the logits of up to 256
    /// positions (an evaluation window).
    pub activations: u64,
    /// Their sum.
    pub total: u64,
}

impl MemoryPlan {
    /// Activation bytes per token of `cfg` (see [`MemoryPlan::activations`]).
    fn activations_per_token(cfg: &ModelConfig) -> u64 {
        let ffn = match &cfg.moe {
            Some(m) => cfg.ffn_hidden.max(m.expert_hidden * m.top_k.max(1)),
            None => cfg.ffn_hidden,
        };
        let qkv = (cfg.n_heads + 2 * cfg.n_kv_heads()) * cfg.head_dim();
        4 * (6 * cfg.d_model + 2 * qkv + 3 * ffn) as u64
    }

    /// Activation bytes of a prefill of `tokens` (see [`MemoryPlan::activations`]).
    fn activations(cfg: &ModelConfig, tokens: usize) -> u64 {
        let logits = 4 * (cfg.vocab_size * tokens.min(256)) as u64;
        Self::activations_per_token(cfg) * tokens as u64 + logits
    }

    /// Errors when the plan for `context` tokens is past `budget` bytes (`source` says where the
    /// figure comes from), with the figures and what would fit: a smaller format (`smaller`: its
    /// name and weight bytes) or a shorter context.
    pub fn check(
        &self,
        what: &str,
        (budget, context): ((u64, &str), usize),
        smaller: Option<(&str, u64)>,
        per_token: u64,
    ) -> Result<()> {
        if self.total <= budget.0 {
            return Ok(());
        }
        let mut hints = Vec::new();
        let others = self.cache + self.activations;
        if let Some((name, weights)) = smaller.filter(|s| s.1 + others <= budget.0) {
            hints.push(format!("--weights {name} (weights {})", gib(weights)));
        }
        let room = budget.0.saturating_sub(self.weights);
        let fits = room.checked_div(per_token).unwrap_or(0) as usize;
        if (1..context).contains(&fits) {
            hints.push(format!("--context {fits}"));
        }
        Err(Error::Invalid {
            what: format!("GPU memory for {what}"),
            expected: format!("at most {} ({})", gib(budget.0), budget.1),
            found: format!(
                "weights {} + cache {} + activations {} = {} at {context} tokens{}",
                gib(self.weights),
                gib(self.cache),
                gib(self.activations),
                gib(self.total),
                match hints.is_empty() {
                    true => String::new(),
                    false => format!("; try {}", hints.join(" or ")),
                }
            ),
        })
    }
}

/// `bytes` in GiB, two decimals.
fn gib(bytes: u64) -> String {
    format!("{:.2} GiB", bytes as f64 / (1u64 << 30) as f64)
}

/// Each layer's stacked expert matrices (gate, up and down alike) on the GPU.
#[derive(Clone, Debug, Serialize)]
pub struct ExpertStacks {
    /// Bytes of one stacked matrix (all of a layer's experts; f32).
    pub bytes: u64,
    /// Bindings it takes (blocks of whole experts; 0 when one expert is past the limit).
    pub bindings: u64,
}

/// Bytes one cached token takes in one layer of `cfg` in cache `format` (0 for a latent state).
fn layer_row_bytes(cfg: &ModelConfig, format: KvFormat) -> u64 {
    let values = match &cfg.attention {
        AttentionConfig::Mha { .. } => 2 * (cfg.n_kv_heads() * cfg.head_dim()) as u64,
        AttentionConfig::Mla {
            kv_lora_rank,
            qk_rope_head_dim,
            ..
        } => (kv_lora_rank + qk_rope_head_dim) as u64,
        AttentionConfig::Latent { .. } => 0,
    };
    values * format.value_bytes()
}

/// Bytes of the pages the cache of `cfg` holds once `tokens` tokens are decoded, in pages of
/// `page_tokens` in cache `format`: a layer that attends to the whole context holds the pages
/// of every token, a sliding-window layer only the pages its window spans for the next token
/// (`window / page_tokens` and one or two more: a page straddling each end), a latent layer
/// its constant-size state.
pub fn cache_bytes_at(
    cfg: &ModelConfig,
    tokens: usize,
    page_tokens: usize,
    format: KvFormat,
) -> u64 {
    let p = page_tokens.max(1);
    let row = layer_row_bytes(cfg, format);
    // Pages from the one holding the first token the last query saw to the last token's.
    let held = |first: usize| match tokens {
        0 => 0,
        t => (t - 1) / p - first / p + 1,
    };
    let layers: u64 = (0..cfg.n_layers)
        .map(|i| {
            let pages = match cfg.sliding_window(i) {
                Some(w) => held(tokens.saturating_sub(w)),
                None => held(0),
            };
            pages as u64 * p as u64 * row
        })
        .sum();
    let latent = match &cfg.attention {
        AttentionConfig::Latent {
            latents,
            chunk,
            synthesis,
            ..
        } => {
            let shape = crate::model::layers::latent::LatentShape {
                d: cfg.d_model,
                heads: cfg.n_heads,
                latents: *latents,
                chunk: *chunk,
                rope_dim: cfg.rope_dim(),
                synthesis: *synthesis,
            };
            cfg.n_layers as u64 * shape.state_bytes()
        }
        _ => 0,
    };
    layers + latent
}

/// Bytes of the RoPE tables `cfg` loads for its context: the model's (and LongRoPE's long one,
/// the sliding layers', NoPE's), MLA's shared one; each holds cos and sin for every position,
/// as one table and as two.
fn rope_table_bytes(cfg: &ModelConfig) -> u64 {
    let table = |rot: usize| 4 * 4 * cfg.max_context as u64 * (rot / 2) as u64;
    let nope =
        (0..cfg.n_layers).any(|i| cfg.layer_rope(i) == crate::model::config::LayerRope::None);
    let tables = 1
        + cfg.rope.long_inv_freq(cfg.rope_dim()).is_some() as u64
        + cfg.rope_sliding.is_some() as u64
        + nope as u64;
    let mla = cfg.mla_shape().map_or(0, |s| table(s.qk_rope_head_dim));
    tables * table(cfg.rope_dim()) + mla
}

/// Cache bytes each token adds (in the layers that keep every token) and at the full context
/// of `cfg`, in pages of [`DEFAULT_PAGE_TOKENS`] in cache `format`.
fn cache_bytes(cfg: &ModelConfig, format: KvFormat) -> (u64, u64) {
    let whole = (0..cfg.n_layers)
        .filter(|&i| cfg.sliding_window(i).is_none())
        .count() as u64;
    let per_token = whole * layer_row_bytes(cfg, format);
    (
        per_token,
        cache_bytes_at(cfg, cfg.max_context, DEFAULT_PAGE_TOKENS, format),
    )
}

/// Bindings a tensor of `shape` and `bytes` takes when split between rows into blocks of at
/// most `limit` bytes (as the loader splits matrices); 0 when it cannot be.
fn bindings(shape: &[usize], bytes: u64, limit: u64) -> u64 {
    if bytes <= limit {
        return 1;
    }
    let rows = shape.first().copied().unwrap_or(1) as u64;
    let row_bytes = bytes / rows.max(1);
    if shape.len() < 2 || row_bytes > limit || row_bytes == 0 {
        return 0;
    }
    // Rows per block as the loader picks them: a multiple of 4 when 4 fit.
    let fit = limit / row_bytes;
    let per_block = if fit >= 4 { fit / 4 * 4 } else { fit };
    rows.div_ceil(per_block)
}

/// Summarises the model directory `dir` for an adapter whose largest storage binding is
/// `binding_limit` bytes, with matrices in `weights` (`None`: as the files hold them), at
/// `context` tokens (`None`: the model's), with an f32 KV cache.
pub fn summarize(
    dir: &Path,
    binding_limit: u64,
    weights: Option<WeightFormat>,
    context: Option<usize>,
) -> Result<ModelSummary> {
    summarize_with(dir, binding_limit, weights, (context, KvFormat::F32))
}

/// As [`summarize`], with the KV cache in `kv`.
pub fn summarize_with(
    dir: &Path,
    binding_limit: u64,
    weights: Option<WeightFormat>,
    (context, kv): (Option<usize>, KvFormat),
) -> Result<ModelSummary> {
    let (mut config, mut file) = open_dir(dir)?;
    if let Some(c) = context {
        config.max_context = c;
    }
    let arch = file.gguf_metadata().map(|meta| {
        meta.get("general.architecture")
            .and_then(|v| v.as_str())
            .unwrap_or("unknown")
            .to_string()
    });
    let (family, max_position_embeddings) = match arch {
        Some(arch) => {
            let model_type = crate::model::families::gguf_model_type(&mut file)?;
            match model_type == arch {
                true => (format!("{arch} (GGUF)"), None),
                false => (format!("{model_type} (GGUF {arch})"), None),
            }
        }
        None => {
            let path = dir.join("config.json");
            let text = crate::files::read_text_capped(&path, crate::files::CONFIG_CAP)?;
            let json: serde_json::Value =
                serde_json::from_str(&text).map_err(|e| Error::Invalid {
                    what: path.display().to_string(),
                    expected: "JSON".into(),
                    found: e.to_string(),
                })?;
            match is_hf_config(&json) {
                true => {
                    let hf = HfConfig::from_json(&json)?;
                    (hf.family.clone(), Some(hf.max_position_embeddings))
                }
                false => (format!("latentgpu-{}", config.attention_kind()), None),
            }
        }
    };
    let infos = file.infos();
    let values = file.values_format();
    let mut dtypes: Vec<String> = infos.iter().map(|t| t.dtype.clone()).collect();
    dtypes.sort();
    dtypes.dedup();
    let tensors: Vec<TensorSummary> = infos
        .iter()
        .map(|t| {
            let numel: u64 = t.shape.iter().map(|&s| s as u64).product();
            // Quantized blocks in the file stay as they are unless another format is asked.
            let stored = crate::ops::QuantScheme::from_name(&t.dtype.to_lowercase());
            let wanted = match (weights, stored) {
                (None, Some(s)) => WeightFormat::Quant(s),
                (w, _) => w.unwrap_or(values),
            };
            // Embeddings not tied to the LM head and routers stay f32; so do matrices whose
            // rows are not whole blocks (quads for 16-bit formats).
            let mut f32_kept = vec![".gate.weight"];
            if !config.tie_embeddings {
                f32_kept.push("embed_tokens");
            }
            let matrix = t.shape.len() == 2
                && !f32_kept.iter().any(|k| t.name.contains(k))
                && wanted.fits_row(t.shape[1]);
            let format = if matrix { wanted } else { WeightFormat::F32 };
            let gpu_bytes = (numel as f64 * format.bytes_per_weight()) as u64;
            // The largest binding: the records of a quantized matrix.
            let binding_bytes = match format {
                WeightFormat::Quant(s) => s.gpu_bytes(numel as usize),
                _ => gpu_bytes,
            };
            TensorSummary {
                name: t.name.clone(),
                shape: t.shape.clone(),
                dtype: t.dtype.clone(),
                gpu_bytes,
                bindings: bindings(&t.shape, binding_bytes, binding_limit),
            }
        })
        .collect();
    let (per_token, at_context) = cache_bytes(&config, kv);
    // MLA's absorbed matrices, built at load: per layer [h·(kv_lora + rope), q_in] and
    // [d, h·kv_lora], in the matrices' format.
    let absorbed = config.mla_shape().map_or(0, |s| {
        let q_in = s.q_lora_rank.unwrap_or(s.d);
        let per_layer =
            s.heads * (s.kv_lora_rank + s.qk_rope_head_dim) * q_in + s.d * s.heads * s.kv_lora_rank;
        let format = weights.unwrap_or_default();
        (per_layer as f64 * format.bytes_per_weight()) as u64 * config.n_layers as u64
    });
    let weight_bytes: u64 =
        tensors.iter().map(|t| t.gpu_bytes).sum::<u64>() + absorbed + rope_table_bytes(&config);
    let activations = MemoryPlan::activations(&config, config.max_context.min(PREFILL_CHUNK));
    let cache_bytes_at = [1024, 8192, 32768]
        .into_iter()
        .filter(|&t| t < config.max_context)
        .chain([config.max_context])
        .map(|tokens| CacheAt {
            tokens,
            bytes: cache_bytes_at(&config, tokens, DEFAULT_PAGE_TOKENS, kv),
        })
        .collect();
    let plan = MemoryPlan {
        weights: weight_bytes,
        cache: at_context,
        activations,
        total: weight_bytes + at_context + activations,
    };
    let parameters: u64 = infos
        .iter()
        .map(|t| t.shape.iter().map(|&s| s as u64).product::<u64>())
        .sum();
    // Each mixture layer: the experts a token is not routed to, three matrices each.
    let idle = config.moe.as_ref().map_or(0, |m| {
        let layers = (0..config.n_layers).filter(|&i| m.is_moe_layer(i)).count() as u64;
        let per_expert = 3 * m.expert_hidden as u64 * config.d_model as u64;
        layers * m.experts.saturating_sub(m.top_k) as u64 * per_expert
    });
    let expert_stacks = config.moe.as_ref().map(|m| {
        let shape = [m.experts, m.expert_hidden, config.d_model];
        let bytes = shape.iter().map(|&s| s as u64).product::<u64>() * 4;
        ExpertStacks {
            bytes,
            bindings: bindings(&shape, bytes, binding_limit),
        }
    });
    Ok(ModelSummary {
        family,
        parameters,
        active_parameters: parameters.saturating_sub(idle),
        dtype_on_disk: dtypes.join(", "),
        dtype_on_gpu: weights.map_or_else(|| as_loaded(&dtypes), |w| w.name().into()),
        weight_bytes_on_disk: infos.iter().map(|t| t.bytes).sum(),
        weight_bytes_on_gpu: weight_bytes,
        cache_bytes_per_token: per_token,
        cache_bytes_at_context: at_context,
        cache_bytes_at,
        kv_cache: kv,
        context: config.max_context,
        max_position_embeddings,
        binding_limit,
        expert_stacks,
        plan,
        tensors,
    })
}
