//! Hugging Face model directories as transformers writes them: `config.json` of the dense
//! families (Llama, Mistral, Qwen2, Qwen3) read into a [`ModelConfig`], and
//! `generation_config.json`'s stop tokens and sampling defaults.

use crate::error::{Error, Result};
use crate::model::config::{
    AttentionConfig, FfnKind, ModelConfig, MoeConfig, NormKind, RopeConfig, RopeScaling,
};
use crate::ops::RopeMode;
use serde_json::Value;

/// The `model_type`s this loader runs.
pub const FAMILIES: &[&str] = &[
    "llama",
    "mistral",
    "qwen2",
    "qwen3",
    "deepseek_v2",
    "deepseek_v3",
];

/// The RoPE types this loader runs (`rope_type` in `rope_parameters` or `rope_scaling`).
pub const ROPE_TYPES: &[&str] = &["default", "linear", "llama3"];

/// The `hidden_act` values this loader runs.
pub const ACTIVATIONS: &[&str] = &[
    "silu",
    "swish",
    "gelu",
    "gelu_pytorch_tanh",
    "gelu_new",
    "gelu_fast",
];

/// The longest context a Hugging Face model gets when its `max_position_embeddings` is larger:
/// the KV cache is allocated for the whole context up front.
pub const DEFAULT_CONTEXT_CAP: usize = 4096;

/// A Hugging Face model's configuration, as this runtime uses it.
#[derive(Clone, Debug, PartialEq)]
pub struct HfConfig {
    /// `model_type`: one of [`FAMILIES`].
    pub family: String,
    /// The runtime config (context capped at [`DEFAULT_CONTEXT_CAP`]).
    pub config: ModelConfig,
    /// `max_position_embeddings` as written.
    pub max_position_embeddings: usize,
}

fn invalid(field: &str, expected: impl Into<String>, found: impl std::fmt::Display) -> Error {
    Error::Invalid {
        what: format!("Hugging Face config field '{field}'"),
        expected: expected.into(),
        found: found.to_string(),
    }
}

/// Field access with errors that name the field.
struct Fields<'a>(&'a Value);

impl Fields<'_> {
    fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name).filter(|v| !v.is_null())
    }

    fn usize(&self, name: &str) -> Result<usize> {
        let v = self
            .get(name)
            .ok_or_else(|| invalid(name, "a positive integer", "nothing (missing)"))?;
        v.as_u64()
            .filter(|&n| n > 0)
            .map(|n| n as usize)
            .ok_or_else(|| invalid(name, "a positive integer", v))
    }

    fn usize_or(&self, name: &str, default: usize) -> Result<usize> {
        match self.get(name) {
            None => Ok(default),
            Some(_) => self.usize(name),
        }
    }

    /// A count that may be 0 (`first_k_dense_replace`, `n_shared_experts`), else `default`.
    fn count_or(&self, name: &str, default: usize) -> Result<usize> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v
                .as_u64()
                .map(|n| n as usize)
                .ok_or_else(|| invalid(name, "a whole number, 0 or more", v)),
        }
    }

    fn f64_or(&self, name: &str, default: f64) -> Result<f64> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v
                .as_f64()
                .filter(|x| x.is_finite())
                .ok_or_else(|| invalid(name, "a finite number", v)),
        }
    }

    fn bool_or(&self, name: &str, default: bool) -> Result<bool> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v.as_bool().ok_or_else(|| invalid(name, "true or false", v)),
        }
    }

    fn str_or<'b>(&'b self, name: &str, default: &'b str) -> Result<&'b str> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v.as_str().ok_or_else(|| invalid(name, "a string", v)),
        }
    }
}

/// Token ids from a JSON number or list of numbers (`eos_token_id`).
pub fn token_ids(field: &str, v: Option<&Value>) -> Result<Vec<u32>> {
    let id = |x: &Value| {
        x.as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| invalid(field, "a token id or a list of token ids", x))
    };
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items.iter().map(id).collect(),
        Some(x) => Ok(vec![id(x)?]),
    }
}

/// Whether a parsed `config.json` is a Hugging Face one (it names a `model_type`).
pub fn is_hf_config(json: &Value) -> bool {
    json.get("model_type").is_some()
}

/// The RoPE settings: transformers 5's `rope_parameters`, or older `rope_theta` + `rope_scaling`.
fn rope(f: &Fields) -> Result<RopeConfig> {
    let params = f.get("rope_parameters").or_else(|| f.get("rope_scaling"));
    let field = if f.get("rope_parameters").is_some() {
        "rope_parameters"
    } else {
        "rope_scaling"
    };
    if let Some(p) = params.filter(|p| !p.is_object()) {
        return Err(invalid(field, "an object", p));
    }
    // Both spellings at once: transformers 5 reads `rope_parameters`; one that disagrees with
    // the older keys is an ambiguity to refuse, not to resolve silently.
    if let (Some(new), Some(old)) = (f.get("rope_parameters"), f.get("rope_scaling")) {
        let differs = old
            .as_object()
            .is_none_or(|o| o.iter().any(|(k, v)| new.get(k) != Some(v)));
        if !old.is_null() && differs {
            return Err(invalid(
                "rope_scaling",
                "absent, null, or what rope_parameters says (transformers 5 reads rope_parameters)",
                old,
            ));
        }
    }
    if let (Some(new), Some(old)) = (
        f.get("rope_parameters").and_then(|p| p.get("rope_theta")),
        f.get("rope_theta"),
    ) {
        if new != old {
            return Err(invalid(
                "rope_theta",
                format!("absent or what rope_parameters says ({new})"),
                old,
            ));
        }
    }
    let p = Fields(params.unwrap_or(&Value::Null));
    let theta = match p.get("rope_theta") {
        Some(_) => p.f64_or("rope_theta", 10000.0)?,
        None => f.f64_or("rope_theta", 10000.0)?,
    };
    let partial = p.f64_or(
        "partial_rotary_factor",
        f.f64_or("partial_rotary_factor", 1.0)?,
    )?;
    if partial != 1.0 {
        return Err(invalid(
            "partial_rotary_factor",
            "1 (RoPE over the whole head; partial rotation is not supported)",
            partial,
        ));
    }
    let kind = match p.get("rope_type") {
        Some(_) => p.str_or("rope_type", "default")?,
        None => p.str_or("type", "default")?,
    };
    let factor = || -> Result<f32> {
        let v = p.f64_or("factor", f64::NAN)?;
        if v.is_nan() {
            return Err(invalid(
                &format!("{field}.factor"),
                "a number >= 1",
                "nothing (missing)",
            ));
        }
        Ok(v as f32)
    };
    let scaling = match kind {
        "default" => None,
        "linear" => Some(RopeScaling::Linear { factor: factor()? }),
        "llama3" => Some(RopeScaling::Llama3 {
            factor: factor()?,
            low_freq_factor: p.f64_or("low_freq_factor", 1.0)? as f32,
            high_freq_factor: p.f64_or("high_freq_factor", 4.0)? as f32,
            original_max_position_embeddings: p.usize("original_max_position_embeddings")?,
        }),
        other => {
            return Err(invalid(
                &format!("{field}.rope_type"),
                format!("one of {}", ROPE_TYPES.join(", ")),
                other,
            ))
        }
    };
    Ok(RopeConfig {
        base: theta as f32,
        mode: RopeMode::HalfSplit,
        scaling,
    })
}

/// Per layer, the sliding window: Mistral's `sliding_window` in every layer; Qwen2/Qwen3's
/// where `layer_types` says `sliding_attention` (or, in older configs, `use_sliding_window` from
/// `max_window_layers` on).
fn sliding_windows(f: &Fields, family: &str, layers: usize) -> Result<Vec<Option<usize>>> {
    let window = match f.get("sliding_window") {
        None => None,
        Some(_) => Some(f.usize("sliding_window")?),
    };
    let Some(window) = window else {
        return Ok(Vec::new());
    };
    let per_layer: Vec<bool> = match family {
        "mistral" => vec![true; layers],
        _ => {
            if !f.bool_or("use_sliding_window", false)? {
                return Ok(Vec::new());
            }
            match f.get("layer_types") {
                Some(types) => {
                    let types =
                        types
                            .as_array()
                            .filter(|t| t.len() == layers)
                            .ok_or_else(|| {
                                invalid(
                                    "layer_types",
                                    format!("a list of {layers} layer types"),
                                    types,
                                )
                            })?;
                    types
                        .iter()
                        .map(|t| match t.as_str() {
                            Some("sliding_attention") => Ok(true),
                            Some("full_attention") => Ok(false),
                            _ => Err(invalid(
                                "layer_types",
                                "full_attention or sliding_attention",
                                t,
                            )),
                        })
                        .collect::<Result<_>>()?
                }
                None => {
                    let from = f.usize_or("max_window_layers", 0)?;
                    (0..layers).map(|i| i >= from).collect()
                }
            }
        }
    };
    Ok(per_layer
        .into_iter()
        .map(|s| if s { Some(window) } else { None })
        .collect())
}

/// A DeepSeek-V2/V3 config's attention (MLA, with its own RoPE and YaRN), RoPE base and
/// mixture of experts.
fn deepseek_parts(
    json: &Value,
    f: &Fields,
    family: &str,
) -> Result<(AttentionConfig, RopeConfig, Option<MoeConfig>)> {
    let shape = crate::model::config::mla::MlaShape::from_hf_config(json)?;
    let attention = AttentionConfig::Mla {
        q_lora_rank: shape.q_lora_rank,
        kv_lora_rank: shape.kv_lora_rank,
        qk_nope_head_dim: shape.qk_nope_head_dim,
        qk_rope_head_dim: shape.qk_rope_head_dim,
        v_head_dim: shape.v_head_dim,
        norm_eps: shape.norm_eps,
        yarn: shape.yarn,
    };
    // DeepSeek rotates interleaved pairs.
    let rope = RopeConfig {
        base: shape.rope_base as f32,
        mode: RopeMode::Interleaved,
        scaling: None,
    };
    let v3 = family == "deepseek_v3";
    let default_method = if v3 { "noaux_tc" } else { "greedy" };
    let moe = MoeConfig {
        experts: f.usize("n_routed_experts")?,
        top_k: f.usize("num_experts_per_tok")?,
        expert_hidden: f.usize("moe_intermediate_size")?,
        shared_experts: f.count_or("n_shared_experts", 0)?,
        topk_method: match v3 {
            true => default_method.to_string(),
            false => f.str_or("topk_method", default_method)?.to_string(),
        },
        groups: f.usize_or("n_group", 1)?,
        topk_group: f.usize_or("topk_group", 1)?,
        norm_topk_prob: f.bool_or("norm_topk_prob", false)?,
        routed_scaling_factor: f.f64_or("routed_scaling_factor", 1.0)? as f32,
        first_dense: f.count_or("first_k_dense_replace", 0)?,
        // transformers 5 puts a mixture in every layer from first_k_dense_replace on, whatever
        // moe_layer_freq says (DeepSeek's own code honoured it); its checkpoints are laid out so.
        layer_freq: 1,
    };
    if f.usize_or("moe_layer_freq", 1)? > 1 {
        log::warn!("moe_layer_freq is ignored, as transformers 5 ignores it: every layer from first_k_dense_replace on is a mixture");
    }
    moe.routing()
        .map_err(|e| e.in_context(|what| format!("{what} (from the Hugging Face config)")))?;
    if f.count_or("num_nextn_predict_layers", 0)? > 0 {
        log::info!("the multi-token-prediction layer is not used for generation; not loaded");
    }
    Ok((attention, rope, Some(moe)))
}

impl HfConfig {
    /// Reads a parsed `config.json`; any unsupported family, RoPE type, activation or option is
    /// an error naming it and what is supported.
    pub fn from_json(json: &Value) -> Result<Self> {
        let f = Fields(json);
        let family = f.str_or("model_type", "")?.to_string();
        if !FAMILIES.contains(&family.as_str()) {
            return Err(invalid(
                "model_type",
                format!("one of {}", FAMILIES.join(", ")),
                format!("'{family}'"),
            ));
        }
        let act = f.str_or("hidden_act", "silu")?;
        let ffn_kind = match act {
            "silu" | "swish" => FfnKind::Swiglu,
            "gelu" => FfnKind::Geglu,
            "gelu_pytorch_tanh" | "gelu_new" | "gelu_fast" => FfnKind::GegluTanh,
            other => {
                return Err(invalid(
                    "hidden_act",
                    format!("one of {}", ACTIVATIONS.join(", ")),
                    other,
                ))
            }
        };
        // Which biases each family can have: Qwen2 always has q/k/v biases; Llama and Qwen3 take
        // `attention_bias` (q, k, v and o); Mistral and Qwen2 have no such option.
        let attention_bias = f.bool_or("attention_bias", false)?;
        if attention_bias && (family == "mistral" || family == "qwen2") {
            return Err(invalid(
                "attention_bias",
                format!("false or absent ({family} has no such option)"),
                true,
            ));
        }
        if f.bool_or("mlp_bias", false)? {
            return Err(invalid(
                "mlp_bias",
                "false (biases in the MLP are not supported)",
                true,
            ));
        }
        let (d, heads, layers) = (
            f.usize("hidden_size")?,
            f.usize("num_attention_heads")?,
            f.usize("num_hidden_layers")?,
        );
        let head_dim = match f.get("head_dim") {
            None => None,
            Some(_) => Some(f.usize("head_dim")?).filter(|&dh| d % heads != 0 || dh != d / heads),
        };
        let max_position_embeddings = f.usize("max_position_embeddings")?;
        let max_context = max_position_embeddings.min(DEFAULT_CONTEXT_CAP);
        if max_context < max_position_embeddings {
            log::info!(
                "max_position_embeddings {max_position_embeddings}: the KV cache holds the first \
                 {max_context} positions"
            );
        }
        let norm_eps = f.f64_or("rms_norm_eps", 1e-6)? as f32;
        let deepseek = family.starts_with("deepseek");
        let (attention, rope_config, moe) = match deepseek {
            true => deepseek_parts(json, &f, &family)?,
            false => (
                AttentionConfig::Mha {
                    n_kv_heads: Some(f.usize_or("num_key_value_heads", heads)?),
                    qkv_bias: family == "qwen2" || attention_bias,
                    o_bias: attention_bias,
                    qk_norm: family == "qwen3",
                    sliding_window: sliding_windows(&f, &family, layers)?,
                },
                rope(&f)?,
                None,
            ),
        };
        let config = ModelConfig {
            vocab_size: f.usize("vocab_size")?,
            d_model: d,
            n_layers: layers,
            n_heads: heads,
            // DeepSeek's `head_dim` is its RoPE width; MLA's widths are its own fields.
            head_dim: head_dim.filter(|_| !deepseek),
            ffn_kind,
            ffn_hidden: f.usize("intermediate_size")?,
            norm_kind: NormKind::Rmsnorm,
            norm_eps,
            max_context,
            rope: rope_config,
            tie_embeddings: f.bool_or("tie_word_embeddings", false)?,
            attention,
            moe,
        };
        config
            .validate()
            .map_err(|e| e.in_context(|what| format!("{what} (from the Hugging Face config)")))?;
        Ok(HfConfig {
            family,
            config,
            max_position_embeddings,
        })
    }
}

/// What `generation_config.json` says about generating: stop tokens and sampling defaults.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GenerationDefaults {
    /// `eos_token_id`, single or list: generation stops after any of them.
    pub eos_token_ids: Vec<u32>,
    /// `do_sample` (false: greedy).
    pub do_sample: Option<bool>,
    /// `temperature`.
    pub temperature: Option<f32>,
    /// `top_k`.
    pub top_k: Option<usize>,
    /// `top_p`.
    pub top_p: Option<f32>,
    /// `repetition_penalty`.
    pub repetition_penalty: Option<f32>,
}

impl GenerationDefaults {
    /// Reads a parsed `generation_config.json`.
    pub fn from_json(json: &Value) -> Result<Self> {
        let f = Fields(json);
        let num = |name: &str| -> Result<Option<f64>> {
            match f.get(name) {
                None => Ok(None),
                Some(_) => f.f64_or(name, 0.0).map(Some),
            }
        };
        Ok(GenerationDefaults {
            eos_token_ids: token_ids("eos_token_id", f.get("eos_token_id"))?,
            do_sample: match f.get("do_sample") {
                None => None,
                Some(_) => Some(f.bool_or("do_sample", false)?),
            },
            temperature: num("temperature")?.map(|v| v as f32),
            top_k: match f.get("top_k") {
                None => None,
                Some(v) => Some(
                    v.as_u64()
                        .ok_or_else(|| invalid("top_k", "a non-negative integer", v))?
                        as usize,
                ),
            },
            top_p: num("top_p")?.map(|v| v as f32),
            repetition_penalty: num("repetition_penalty")?.map(|v| v as f32),
        })
    }

    /// `dir/generation_config.json` (falling back to `config.json`'s `eos_token_id`), or the
    /// defaults when the model has neither (native; a GGUF file's are
    /// [`crate::model::formats::gguf::generation_defaults`]).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn for_model(dir: &std::path::Path) -> Result<Self> {
        let read = |name: &str| -> Result<Option<Value>> {
            let path = dir.join(name);
            if !path.exists() {
                return Ok(None);
            }
            let text = crate::files::read_text_capped(&path, crate::files::CONFIG_CAP)?;
            serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| Error::Invalid {
                    what: path.display().to_string(),
                    expected: "JSON".into(),
                    found: e.to_string(),
                })
        };
        let mut defaults = match read("generation_config.json")? {
            Some(json) => Self::from_json(&json)?,
            None => Self::default(),
        };
        if defaults.eos_token_ids.is_empty() {
            if let Some(config) = read("config.json")? {
                defaults.eos_token_ids = token_ids("eos_token_id", config.get("eos_token_id"))?;
            }
        }
        Ok(defaults)
    }
}
