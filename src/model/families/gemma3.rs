//! Gemma 3 (`gemma3_text`; the text part of a multimodal `gemma3` checkpoint; GGUF `gemma3`).
//! Its block, as transformers' `modeling_gemma3.py` and llama.cpp's `gemma3.cpp` have it:
//! ```text
//! x = embed(ids) · sqrt(d)
//! x = x + post_attn_norm(attn(attn_norm(x)))      # q_norm, k_norm per head before RoPE
//! x = x + post_ffn_norm(ffn(ffn_norm(x)))         # GeGLU, tanh GELU
//! ```
//! Every RMSNorm scales by `1 + weight`: Hugging Face files store `weight` (the layout adds 1,
//! in f32 as transformers does), GGUF files store `1 + weight` already. Attention scores are
//! scaled by `query_pre_attn_scalar^-1/2`. Layers are sliding-window or full as `layer_types`
//! (or the older `sliding_window_pattern`) says, each kind with its own RoPE: the sliding
//! layers' base 10000 unless the config says otherwise, scaling on the full layers only.

use super::gguf::{GgufLayout, GgufMeta};
use super::hf::{
    activation, attention_bias, decoder, layer_types, mha, no_mlp_bias, rope_params, HfLayout,
    MhaExtras,
};
use super::Family;
use crate::error::Result;
use crate::model::config::ModelConfig;
use crate::model::formats::hf_json::{invalid, Fields};
use crate::model::formats::weights::{TensorLayout, WeightFile};
use serde_json::{json, Value};
use std::sync::Arc;

/// Gemma 3.
pub struct Gemma3;

/// The base of the sliding layers' RoPE where a config gives none (transformers'
/// `default_theta["local"]`, llama.cpp's `rope_freq_base_train_swa`).
const LOCAL_BASE: f64 = 10_000.0;
/// The base of the full layers' RoPE where a config gives none.
const GLOBAL_BASE: f64 = 1_000_000.0;
/// Every sixth layer is full where neither `layer_types` nor a pattern says.
const DEFAULT_PATTERN: usize = 6;

/// A Gemma 3 block's parts in Hugging Face checkpoints: four norms.
const HF_RENAMES: &[(&str, &str)] = &[
    ("attn_norm.", "input_layernorm."),
    ("post_attn_norm.", "post_attention_layernorm."),
    ("ffn_norm.", "pre_feedforward_layernorm."),
    ("post_ffn_norm.", "post_feedforward_layernorm."),
    ("attn.", "self_attn."),
    ("ffn.", "mlp."),
];

/// The norms after attention and the feed-forward in GGUF files.
const GGUF_NAMES: &[(&str, &str)] = &[
    ("post_attn_norm.", "post_attention_norm."),
    ("post_ffn_norm.", "post_ffw_norm."),
];

impl Family for Gemma3 {
    fn model_types(&self) -> &'static [&'static str] {
        &["gemma3_text", "gemma3"]
    }

    fn gguf_archs(&self) -> &'static [&'static str] {
        &["gemma3"]
    }

    fn config(&self, f: &Fields, model_type: &str) -> Result<ModelConfig> {
        if model_type == "gemma3" {
            // A multimodal checkpoint: the decoder is its `text_config`.
            let text = f
                .get("text_config")
                .filter(|t| t.is_object())
                .ok_or_else(|| {
                    invalid("text_config", "an object (the decoder's config)", "none")
                })?;
            return self.config(&Fields(text), "gemma3_text");
        }
        for field in ["final_logit_softcapping", "attn_logit_softcapping"] {
            if let Some(v) = f.get(field) {
                return Err(invalid(field, "null (Gemma 3 caps no logits)", v));
            }
        }
        if f.bool_or("use_bidirectional_attention", false)? {
            return Err(invalid(
                "use_bidirectional_attention",
                "false (a decoder attends causally)",
                true,
            ));
        }
        attention_bias(f, "gemma3", false)?;
        no_mlp_bias(f)?;
        let ffn = activation(f, "hidden_activation", "gelu_pytorch_tanh")?;
        let layers = f.usize("num_hidden_layers")?;
        let window = f.usize_or("sliding_window", 4096)?;
        let sliding = sliding_layers(f, layers)?;
        let extras = MhaExtras {
            qk_norm: true,
            sliding_window: sliding.iter().map(|&s| s.then_some(window)).collect(),
            scale: Some((f.f64_or("query_pre_attn_scalar", 256.0)?).powf(-0.5) as f32),
            ..MhaExtras::default()
        };
        let attention = mha(f, extras)?;
        let mut config = decoder(f, ffn, attention)?;
        // Gemma's head_dim is its own (256 at every size), not hidden / heads.
        config.head_dim = Some(f.usize_or("head_dim", 256)?);
        let (global, local) = ropes(f)?;
        config.rope = global;
        config.rope_sliding = Some(local);
        config.post_norms = true;
        // transformers: `torch.tensor(hidden_size**0.5)`, an f32 (then the weights' dtype, f32
        // in the runs `compare` checks); llama.cpp: `sqrtf(n_embd)`.
        config.embed_scale = Some((config.d_model as f64).sqrt() as f32);
        config.tie_embeddings = f.bool_or("tie_word_embeddings", true)?;
        Ok(config)
    }

    fn gguf_config(&self, meta: &GgufMeta) -> Result<Value> {
        let mut json = meta.decoder_json("gemma3_text")?;
        let head_dim = meta.int("attention.key_length")?;
        json["head_dim"] = head_dim.into();
        json["hidden_activation"] = "gelu_pytorch_tanh".into();
        // llama.cpp's attention scale: head_dim^-1/2, but d / heads at 27B (62 blocks).
        let scalar = match meta.int("block_count")? {
            62 => meta.int("embedding_length")? / meta.int("attention.head_count")?.max(1),
            _ => head_dim,
        };
        json["query_pre_attn_scalar"] = scalar.into();
        let mut full = json!({
            "rope_type": "default",
            "rope_theta": meta.float_or("rope.freq_base", GLOBAL_BASE)?,
        });
        match meta.get("rope.scaling.type").and_then(|v| v.as_str()) {
            None | Some("none") => {}
            Some("linear") => {
                full["rope_type"] = "linear".into();
                full["factor"] = meta.float_or("rope.scaling.factor", 1.0)?.into();
            }
            Some(other) => {
                return Err(meta.bad(
                    &format!("{}.rope.scaling.type", meta.arch),
                    "none or linear (Gemma 3's RoPE scalings)",
                    other.to_string(),
                ))
            }
        }
        json["rope_parameters"] = json!({
            "full_attention": full,
            "sliding_attention": {
                "rope_type": "default",
                "rope_theta": meta.float_or("rope.freq_base_swa", LOCAL_BASE)?,
            },
        });
        json.as_object_mut().map(|o| o.remove("rope_theta"));
        let layers = meta.int("block_count")? as usize;
        match meta
            .get("attention.sliding_window")
            .and_then(|v| v.as_u64())
        {
            Some(window) if window > 0 => {
                json["sliding_window"] = window.into();
                json["layer_types"] = layer_types_of_gguf(meta, layers)?.into();
            }
            _ => json["layer_types"] = vec!["full_attention"; layers].into(),
        }
        Ok(json)
    }

    fn hf_layout(&self, _config: &ModelConfig, file: &WeightFile) -> Arc<dyn TensorLayout> {
        // transformers 5 saves a multimodal model's decoder under `model.language_model.`;
        // checkpoints from before under `language_model.model.`.
        let prefix = ["model.language_model.", "language_model.model."]
            .into_iter()
            .find(|p| file.holds(&format!("{p}embed_tokens.weight")))
            .unwrap_or("model.");
        Arc::new(HfLayout {
            renames: HF_RENAMES,
            prefix,
            norms_minus_one: true,
            rename: None,
        })
    }

    fn gguf_layout(&self, _config: &ModelConfig) -> Arc<dyn TensorLayout> {
        Arc::new(GgufLayout {
            extra: GGUF_NAMES,
            permuted_qk: None,
        })
    }

    fn stop_texts(&self) -> &'static [&'static str] {
        &["<end_of_turn>"]
    }
}

/// Per layer, whether it is a sliding-window one: `layer_types`, else every
/// `sliding_window_pattern`-th layer full (6 where absent).
fn sliding_layers(f: &Fields, layers: usize) -> Result<Vec<bool>> {
    if let Some(sliding) = layer_types(f, layers)? {
        return Ok(sliding);
    }
    let pattern = f.usize_or("sliding_window_pattern", DEFAULT_PATTERN)?;
    Ok((0..layers).map(|i| (i + 1) % pattern != 0).collect())
}

/// The full and the sliding layers' RoPE: transformers 5's `rope_parameters` per layer type,
/// or older `rope_theta`, `rope_local_base_freq` and `rope_scaling` (the full layers' only).
fn ropes(
    f: &Fields,
) -> Result<(
    crate::model::config::RopeConfig,
    crate::model::config::RopeConfig,
)> {
    if f.f64_or("partial_rotary_factor", 1.0)? != 1.0 {
        return Err(invalid(
            "partial_rotary_factor",
            "1 (Gemma 3 rotates whole heads)",
            f.f64_or("partial_rotary_factor", 1.0)?,
        ));
    }
    let params = f.get("rope_parameters");
    let by_type = params
        .filter(|p| p.get("full_attention").is_some() || p.get("sliding_attention").is_some());
    match by_type {
        Some(p) => {
            let of = |kind: &str, base: f64| {
                let sub = p.get(kind).unwrap_or(&Value::Null);
                if !sub.is_null() && !sub.is_object() {
                    return Err(invalid(
                        &format!("rope_parameters.{kind}"),
                        "an object",
                        sub,
                    ));
                }
                rope_params(&Fields(sub), &format!("rope_parameters.{kind}"), base, f)
            };
            Ok((
                of("full_attention", GLOBAL_BASE)?,
                of("sliding_attention", LOCAL_BASE)?,
            ))
        }
        None => {
            let scaling = params
                .or_else(|| f.get("rope_scaling"))
                .unwrap_or(&Value::Null);
            let global = rope_params(
                &Fields(scaling),
                "rope_scaling",
                f.f64_or("rope_theta", GLOBAL_BASE)?,
                f,
            )?;
            let local = rope_params(
                &Fields(&Value::Null),
                "rope_local_base_freq",
                f.f64_or("rope_local_base_freq", LOCAL_BASE)?,
                f,
            )?;
            Ok((global, local))
        }
    }
}

/// A GGUF file's layer types: `attention.sliding_window_pattern` as a list of booleans (true:
/// sliding) or a period (every n-th layer full), else llama.cpp's 6.
fn layer_types_of_gguf(meta: &GgufMeta, layers: usize) -> Result<Vec<&'static str>> {
    use crate::model::formats::gguf::Value as G;
    let name = |sliding: bool| {
        if sliding {
            "sliding_attention"
        } else {
            "full_attention"
        }
    };
    match meta.get("attention.sliding_window_pattern") {
        Some(G::Array(items)) if items.len() == layers => items
            .iter()
            .map(|v| match v {
                G::Bool(b) => Ok(name(*b)),
                other => Err(meta.bad(
                    &format!("{}.attention.sliding_window_pattern", meta.arch),
                    "booleans, one per layer",
                    format!("{other:?}"),
                )),
            })
            .collect(),
        Some(v) => match v.as_u64() {
            Some(n) if n > 0 => Ok((0..layers as u64).map(|i| name(i % n < n - 1)).collect()),
            _ => Err(meta.bad(
                &format!("{}.attention.sliding_window_pattern", meta.arch),
                &format!("a positive period or {layers} booleans"),
                format!("{v:?}"),
            )),
        },
        None => Ok((0..layers)
            .map(|i| name(i % DEFAULT_PATTERN < DEFAULT_PATTERN - 1))
            .collect()),
    }
}
