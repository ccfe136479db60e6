//! Model configuration (`config.json` of a model directory), with validation that names the field.

pub mod mla;
pub mod rope;

pub use rope::{RopeConfig, RopeScaling};

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Feed-forward kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FfnKind {
    /// `down(silu(gate(x)) * up(x))`.
    Swiglu,
    /// `fc2(gelu(fc1(x)))` (erf GELU).
    Gelu,
    /// `down(gelu(gate(x)) * up(x))` (GeGLU, erf GELU; Hugging Face `hidden_act: gelu`).
    Geglu,
    /// GeGLU with the tanh approximation of GELU (`gelu_pytorch_tanh`, `gelu_new`, `gelu_fast`).
    GegluTanh,
}

/// Normalisation kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NormKind {
    /// RMSNorm with a weight.
    Rmsnorm,
    /// LayerNorm with a weight and a bias.
    Layernorm,
}

/// Which attention every layer uses.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum AttentionConfig {
    /// Standard causal multi-head attention with a KV cache (grouped-query when
    /// `n_kv_heads < n_heads`).
    Mha {
        /// Key/value heads (defaults to `n_heads`).
        #[serde(default)]
        n_kv_heads: Option<usize>,
        /// Biases on the q, k and v projections (Qwen2; Llama's `attention_bias`).
        #[serde(default, skip_serializing_if = "is_false")]
        qkv_bias: bool,
        /// A bias on the output projection (Llama's `attention_bias`).
        #[serde(default, skip_serializing_if = "is_false")]
        o_bias: bool,
        /// RMSNorm over each head's query and key before RoPE (Qwen3's `q_norm`, `k_norm`).
        #[serde(default, skip_serializing_if = "is_false")]
        qk_norm: bool,
        /// Per layer, a causal sliding window in tokens (`None`: full attention). Empty means
        /// full attention in every layer.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        sliding_window: Vec<Option<usize>>,
        /// The factor on the scores, where it is not `head_dim^-1/2` (Gemma 3's
        /// `query_pre_attn_scalar^-1/2`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        scale: Option<f32>,
        /// Rotated values at the start of each head, where not the whole head
        /// (`partial_rotary_factor`: Phi-4-mini rotates three quarters).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rope_dim: Option<usize>,
    },
    /// Causal three-phase latent attention (docs/latent-attention.md): `latents` learnable
    /// latents gather from past chunks of `chunk` tokens, talk to each other (`synthesis`), and
    /// are read by every token together with the earlier tokens of its own chunk.
    Latent {
        /// Latents M.
        latents: usize,
        /// Chunk length C.
        chunk: usize,
        /// Phase 2 (latent self-attention) on or off (off: seed 004's phases 1 + 3).
        #[serde(default = "default_true")]
        synthesis: bool,
        /// Rotated values per head for the local attention (default: half the head width).
        #[serde(default)]
        rope_dim: Option<usize>,
    },
    /// DeepSeek Multi-head Latent Attention (Hugging Face DeepseekV2/V3 weight names); RoPE on
    /// interleaved pairs of the rope part, base `rope.base`.
    Mla {
        /// Query compression rank (`None`: plain `q_proj`).
        #[serde(default)]
        q_lora_rank: Option<usize>,
        /// KV compression rank (cached `c_kv` width).
        kv_lora_rank: usize,
        /// Per-head query/key width without position.
        qk_nope_head_dim: usize,
        /// Per-head query/key width with RoPE.
        qk_rope_head_dim: usize,
        /// Per-head value width.
        v_head_dim: usize,
        /// Epsilon of the `q_a`/`kv_a` RMSNorms.
        #[serde(default = "default_mla_eps")]
        norm_eps: f32,
        /// YaRN scaling, if any.
        #[serde(default)]
        yarn: Option<rope::Yarn>,
    },
}

fn default_mla_eps() -> f32 {
    1e-6
}

fn default_true() -> bool {
    true
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A model's configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Vocabulary size (256 for the byte-level tokenizer).
    pub vocab_size: usize,
    /// Model width d.
    pub d_model: usize,
    /// Transformer blocks.
    pub n_layers: usize,
    /// Attention heads.
    pub n_heads: usize,
    /// Width of one attention head, when not `d_model / n_heads` (Qwen3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_dim: Option<usize>,
    /// Feed-forward kind.
    pub ffn_kind: FfnKind,
    /// Feed-forward hidden width.
    pub ffn_hidden: usize,
    /// Normalisation kind.
    pub norm_kind: NormKind,
    /// Normalisation epsilon.
    pub norm_eps: f32,
    /// Longest context (prompt plus generated tokens).
    pub max_context: usize,
    /// RoPE settings.
    #[serde(default)]
    pub rope: RopeConfig,
    /// Whether the LM head reuses the token embedding.
    #[serde(default)]
    pub tie_embeddings: bool,
    /// The attention of every layer.
    pub attention: AttentionConfig,
    /// A mixture-of-experts feed-forward in some layers (DeepSeek-V2/V3), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moe: Option<MoeConfig>,
    /// Norms on the attention's and the feed-forward's outputs, before each residual add
    /// (Gemma 3's four norms a block; weights `post_attn_norm`, `post_ffn_norm`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub post_norms: bool,
    /// A factor on the token embedding's rows (Gemma: `sqrt(d_model)`), not on the tied head.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embed_scale: Option<f32>,
    /// The RoPE of the sliding-window layers, where it is not `rope` (Gemma 3's local base).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rope_sliding: Option<RopeConfig>,
    /// Layers that rotate nothing (SmolLM3's NoPE layers).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nope_layers: Vec<usize>,
}

/// Which RoPE a layer rotates its queries and keys with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerRope {
    /// The model's `rope`.
    Global,
    /// `rope_sliding`.
    Sliding,
    /// None (a NoPE layer).
    None,
}

/// A mixture-of-experts feed-forward (DeepSeek-V2/V3): routed experts chosen per token, plus
/// shared experts every token goes through.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MoeConfig {
    /// Routed experts (`n_routed_experts`).
    pub experts: usize,
    /// Experts chosen per token (`num_experts_per_tok`).
    pub top_k: usize,
    /// Width of one expert (`moe_intermediate_size`).
    pub expert_hidden: usize,
    /// Shared experts (`n_shared_experts`), one gated feed-forward of their total width.
    pub shared_experts: usize,
    /// `greedy`, `group_limited_greedy` (DeepSeek-V2), `noaux_tc` (DeepSeek-V3) or `softmax`
    /// (Qwen3-MoE, Mixtral: softmax scores, their top k; the same router as `greedy`).
    pub topk_method: String,
    /// Expert groups (`n_group`).
    pub groups: usize,
    /// Groups kept per token (`topk_group`).
    pub topk_group: usize,
    /// Divide the chosen weights by their sum (`norm_topk_prob`; the DeepSeek family clears it
    /// for V2, whose router in transformers 5 ignores it).
    pub norm_topk_prob: bool,
    /// Multiplies the routed experts' weights (`routed_scaling_factor`).
    pub routed_scaling_factor: f32,
    /// Leading layers with a dense feed-forward (`first_k_dense_replace`).
    pub first_dense: usize,
    /// Of the other layers, every `layer_freq`-th is a mixture (1 from Hugging Face configs:
    /// transformers 5 ignores their `moe_layer_freq`).
    pub layer_freq: usize,
    /// Further layers with a dense feed-forward (Qwen3-MoE's `mlp_only_layers` and the layers
    /// its `decoder_sparse_step` skips).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dense_layers: Vec<usize>,
}

impl MoeConfig {
    /// Whether layer `i` has the mixture (else the dense feed-forward of `ffn_hidden`).
    pub fn is_moe_layer(&self, i: usize) -> bool {
        i >= self.first_dense
            && i.is_multiple_of(self.layer_freq.max(1))
            && !self.dense_layers.contains(&i)
    }

    /// The router's settings.
    pub fn routing(&self) -> Result<crate::ops::Routing> {
        use crate::ops::RouteMethod;
        let method = match self.topk_method.as_str() {
            "greedy" | "softmax" => RouteMethod::Greedy,
            "group_limited_greedy" => RouteMethod::GroupLimitedGreedy,
            "noaux_tc" => RouteMethod::NoauxTc,
            other => {
                return Err(invalid(
                    "moe.topk_method",
                    "greedy, softmax, group_limited_greedy or noaux_tc",
                    other,
                ))
            }
        };
        let routing = crate::ops::Routing {
            method,
            top_k: self.top_k,
            groups: self.groups,
            topk_group: self.topk_group,
            norm_topk_prob: self.norm_topk_prob,
            scaling: self.routed_scaling_factor,
        };
        routing.validate(self.experts)?;
        Ok(routing)
    }
}

fn invalid(field: &str, expected: impl Into<String>, found: impl std::fmt::Display) -> Error {
    Error::Invalid {
        what: format!("config field '{field}'"),
        expected: expected.into(),
        found: found.to_string(),
    }
}

/// Largest vocabulary, width, feed-forward width or latent count a config may give (2^20).
pub const MAX_WIDTH: usize = 1 << 20;
/// Most heads, key/value heads, or head width (2^16).
pub const MAX_HEADS: usize = 1 << 16;
/// Most layers (2^16).
pub const MAX_LAYERS: usize = 1 << 16;
/// Longest context (2^24 tokens).
pub const MAX_CONTEXT: usize = 1 << 24;

impl ModelConfig {
    /// Parses and validates a config from JSON text.
    pub fn from_json(text: &str) -> Result<Self> {
        let cfg: ModelConfig = serde_json::from_str(text).map_err(|e| Error::Invalid {
            what: "config JSON".into(),
            expected: "a valid model config".into(),
            found: e.to_string(),
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Reads and validates `path`.
    pub fn load(path: &Path) -> Result<Self> {
        let text = crate::files::read_text_capped(path, crate::files::CONFIG_CAP)?;
        Self::from_json(&text)
            .map_err(|e| e.in_context(|what| format!("{} in {}", what, path.display())))
    }

    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.head_dim.unwrap_or(self.d_model / self.n_heads)
    }

    /// The sliding window of layer `layer` (`None`: full attention).
    pub fn sliding_window(&self, layer: usize) -> Option<usize> {
        match &self.attention {
            AttentionConfig::Mha { sliding_window, .. } => {
                sliding_window.get(layer).copied().flatten()
            }
            _ => None,
        }
    }

    /// The attention kind's name as written in config.json: `mha`, `latent` or `mla`.
    pub fn attention_kind(&self) -> &'static str {
        match &self.attention {
            AttentionConfig::Mha { .. } => "mha",
            AttentionConfig::Latent { .. } => "latent",
            AttentionConfig::Mla { .. } => "mla",
        }
    }

    /// Rotated values per head: the whole head for MHA unless it says, `rope_dim` for latent
    /// attention.
    pub fn rope_dim(&self) -> usize {
        match &self.attention {
            AttentionConfig::Mha {
                rope_dim: Some(r), ..
            } => *r,
            AttentionConfig::Latent { rope_dim, .. } => {
                rope_dim.unwrap_or(self.head_dim() / 2 / 2 * 2)
            }
            _ => self.head_dim(),
        }
    }

    /// The MLA layer shape, for `mla` attention.
    pub fn mla_shape(&self) -> Option<crate::model::config::mla::MlaShape> {
        match &self.attention {
            AttentionConfig::Mla {
                q_lora_rank,
                kv_lora_rank,
                qk_nope_head_dim,
                qk_rope_head_dim,
                v_head_dim,
                norm_eps,
                yarn,
            } => Some(crate::model::config::mla::MlaShape {
                d: self.d_model,
                heads: self.n_heads,
                q_lora_rank: *q_lora_rank,
                kv_lora_rank: *kv_lora_rank,
                qk_nope_head_dim: *qk_nope_head_dim,
                qk_rope_head_dim: *qk_rope_head_dim,
                v_head_dim: *v_head_dim,
                norm_eps: *norm_eps,
                rope_base: self.rope.base as f64,
                yarn: *yarn,
            }),
            _ => None,
        }
    }

    /// Key/value heads of MHA/GQA.
    pub fn n_kv_heads(&self) -> usize {
        match &self.attention {
            AttentionConfig::Mha { n_kv_heads, .. } => n_kv_heads.unwrap_or(self.n_heads),
            _ => self.n_heads,
        }
    }

    /// Which RoPE layer `layer` rotates with.
    pub fn layer_rope(&self, layer: usize) -> LayerRope {
        if self.nope_layers.contains(&layer) {
            LayerRope::None
        } else if self.rope_sliding.is_some() && self.sliding_window(layer).is_some() {
            LayerRope::Sliding
        } else {
            LayerRope::Global
        }
    }

    /// Checks every field; the error names the first bad one.
    pub fn validate(&self) -> Result<()> {
        // Bounds far past any published model, which keep every size the loaders compute (a
        // product of up to three of these) inside 64 bits.
        let bounded = [
            ("vocab_size", self.vocab_size, MAX_WIDTH),
            ("d_model", self.d_model, MAX_WIDTH),
            ("ffn_hidden", self.ffn_hidden, MAX_WIDTH),
            ("n_heads", self.n_heads, MAX_HEADS),
            ("head_dim", self.head_dim.unwrap_or(0), MAX_HEADS),
            ("attention.n_kv_heads", self.n_kv_heads(), MAX_HEADS),
            ("n_layers", self.n_layers, MAX_LAYERS),
            ("max_context", self.max_context, MAX_CONTEXT),
        ];
        for (field, v, max) in bounded {
            if v > max {
                return Err(invalid(field, format!("at most {max}"), v));
            }
        }
        if let Some(moe) = &self.moe {
            for (field, v, max) in [
                (
                    "moe.experts",
                    moe.experts,
                    crate::ops::moe_route::MAX_EXPERTS,
                ),
                ("moe.expert_hidden", moe.expert_hidden, MAX_WIDTH),
                ("moe.shared_experts", moe.shared_experts, MAX_HEADS),
                ("moe.first_dense", moe.first_dense, MAX_LAYERS),
                ("moe.layer_freq", moe.layer_freq, MAX_LAYERS),
            ] {
                if v > max {
                    return Err(invalid(field, format!("at most {max}"), v));
                }
            }
            for (field, v) in [
                ("moe.expert_hidden", moe.expert_hidden),
                ("moe.layer_freq", moe.layer_freq),
            ] {
                if v == 0 {
                    return Err(invalid(field, "a positive integer", v));
                }
            }
            moe.routing()?;
        }
        if let AttentionConfig::Latent { latents, chunk, .. } = &self.attention {
            for (field, v) in [("attention.latents", *latents), ("attention.chunk", *chunk)] {
                if v > MAX_WIDTH {
                    return Err(invalid(field, format!("at most {MAX_WIDTH}"), v));
                }
            }
        }
        let positive = [
            ("vocab_size", self.vocab_size),
            ("d_model", self.d_model),
            ("n_layers", self.n_layers),
            ("n_heads", self.n_heads),
            ("ffn_hidden", self.ffn_hidden),
            ("max_context", self.max_context),
        ];
        for (field, v) in positive {
            if v == 0 {
                return Err(invalid(field, "a positive integer", v));
            }
        }
        if self.vocab_size > u32::MAX as usize {
            return Err(invalid("vocab_size", "< 2^32", self.vocab_size));
        }
        if self.head_dim == Some(0) {
            return Err(invalid("head_dim", "a positive integer", 0));
        }
        if self.head_dim.is_some() && !matches!(self.attention, AttentionConfig::Mha { .. }) {
            return Err(invalid(
                "head_dim",
                "absent for latent and MLA attention (their widths are their own)",
                format!("{:?}", self.head_dim),
            ));
        }
        if self.head_dim.is_none() && !self.d_model.is_multiple_of(self.n_heads) {
            return Err(invalid(
                "n_heads",
                format!("a divisor of d_model ({})", self.d_model),
                self.n_heads,
            ));
        }
        if !(self.norm_eps > 0.0 && self.norm_eps < 1.0) {
            return Err(invalid("norm_eps", "in (0, 1)", self.norm_eps));
        }
        if let Some(scale) = self.embed_scale.filter(|s| !(s.is_finite() && *s > 0.0)) {
            return Err(invalid("embed_scale", "a finite number > 0", scale));
        }
        if let Some(&layer) = self.nope_layers.iter().find(|&&l| l >= self.n_layers) {
            return Err(invalid(
                "nope_layers",
                format!("layers below n_layers ({})", self.n_layers),
                layer,
            ));
        }
        match &self.attention {
            AttentionConfig::Mha {
                n_kv_heads,
                sliding_window,
                scale,
                ..
            } => {
                if let Some(s) = scale.filter(|s| !(s.is_finite() && *s > 0.0)) {
                    return Err(invalid("attention.scale", "a finite number > 0", s));
                }
                let kv = n_kv_heads.unwrap_or(self.n_heads);
                if !sliding_window.is_empty() && sliding_window.len() != self.n_layers {
                    return Err(invalid(
                        "attention.sliding_window",
                        format!("one entry per layer ({})", self.n_layers),
                        sliding_window.len(),
                    ));
                }
                if sliding_window.contains(&Some(0)) {
                    return Err(invalid(
                        "attention.sliding_window",
                        "positive windows or null",
                        0,
                    ));
                }
                if kv == 0 || !self.n_heads.is_multiple_of(kv) {
                    return Err(invalid(
                        "attention.n_kv_heads",
                        format!("a positive divisor of n_heads ({})", self.n_heads),
                        kv,
                    ));
                }
                if !self.head_dim().is_multiple_of(2) {
                    return Err(invalid(
                        "n_heads",
                        "a head width (d_model / n_heads) that is even, for RoPE",
                        self.head_dim(),
                    ));
                }
                let r = self.rope_dim();
                if r == 0 || !r.is_multiple_of(2) || r > self.head_dim() {
                    return Err(invalid(
                        "attention.rope_dim",
                        format!("an even number in 2..={}", self.head_dim()),
                        r,
                    ));
                }
            }
            AttentionConfig::Latent {
                latents,
                chunk,
                rope_dim,
                ..
            } => {
                if *latents == 0 {
                    return Err(invalid("attention.latents", "a positive integer", latents));
                }
                if *chunk == 0 {
                    return Err(invalid("attention.chunk", "a positive integer", chunk));
                }
                let r = rope_dim.unwrap_or(self.head_dim() / 2 / 2 * 2);
                if r == 0 || !r.is_multiple_of(2) || r > self.head_dim() {
                    return Err(invalid(
                        "attention.rope_dim",
                        format!("an even number in 2..={}", self.head_dim()),
                        r,
                    ));
                }
            }
            AttentionConfig::Mla { .. } => {
                if let Some(shape) = self.mla_shape() {
                    shape
                        .validate()
                        .map_err(|e| e.in_context(|what| format!("config attention: {what}")))?;
                }
            }
        }
        for rope in std::iter::once(&self.rope).chain(&self.rope_sliding) {
            rope.validate()?;
            if let Some(RopeScaling::LongRope {
                short_factor,
                long_factor,
                ..
            }) = &rope.scaling
            {
                let half = self.rope_dim() / 2;
                for (field, factors) in
                    [("short_factor", short_factor), ("long_factor", long_factor)]
                {
                    if factors.len() != half {
                        return Err(invalid(
                            &format!("rope.scaling.{field}"),
                            format!("one factor per rotated pair ({half})"),
                            format!("{} factors", factors.len()),
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}
