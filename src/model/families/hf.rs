//! What the families share in Hugging Face `config.json`s: the fields every decoder has, RoPE
//! (`rope_parameters`, or the older `rope_theta` + `rope_scaling`), sliding windows and the
//! activation; and the checkpoints' tensor names.

use crate::error::Result;
use crate::model::config::rope::Yarn;
use crate::model::config::{
    AttentionConfig, FfnKind, ModelConfig, NormKind, RopeConfig, RopeScaling,
};
use crate::model::formats::hf_json::{invalid, Fields};
use crate::model::formats::weights::{HostMatrix, TensorLayout, Unused, WeightFile};
use crate::ops::RopeMode;
use serde_json::Value;

/// The RoPE types this loader runs (`rope_type` in `rope_parameters` or `rope_scaling`).
pub const ROPE_TYPES: &[&str] = &["default", "linear", "dynamic", "llama3", "yarn", "longrope"];

/// The `hidden_act` values this loader runs.
pub const ACTIVATIONS: &[&str] = &[
    "silu",
    "swish",
    "gelu",
    "gelu_pytorch_tanh",
    "gelu_new",
    "gelu_fast",
];

/// A Hugging Face model's configuration, as this runtime uses it.
#[derive(Clone, Debug, PartialEq)]
pub struct HfConfig {
    /// `model_type`: one of [`super::model_types`].
    pub family: String,
    /// The runtime config (its context `max_position_embeddings`).
    pub config: ModelConfig,
    /// `max_position_embeddings` as written.
    pub max_position_embeddings: usize,
}

/// The RoPE settings: transformers 5's `rope_parameters`, or older `rope_theta` + `rope_scaling`.
pub fn rope(f: &Fields) -> Result<RopeConfig> {
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
    let theta = f.f64_or("rope_theta", 10000.0)?;
    rope_params(&Fields(params.unwrap_or(&Value::Null)), field, theta, f)
}

/// The rotated values of a head of `head_dim`: `int(head_dim · partial_rotary_factor)` as
/// transformers computes it, the factor from `rope_parameters` or the config (1 where neither
/// gives one).
pub fn rotary_dim(f: &Fields, head_dim: usize) -> Result<usize> {
    let params = f.get("rope_parameters").filter(|p| p.is_object());
    let inner = params
        .map(Fields)
        .map(|p| p.f64_or("partial_rotary_factor", f64::NAN));
    let factor = match inner.transpose()?.filter(|v| !v.is_nan()) {
        Some(v) => v,
        None => f.f64_or("partial_rotary_factor", 1.0)?,
    };
    if !(factor > 0.0 && factor <= 1.0) {
        return Err(invalid(
            "partial_rotary_factor",
            "a number in (0, 1]",
            factor,
        ));
    }
    Ok((head_dim as f64 * factor) as usize)
}

/// The RoPE of one `rope_parameters` object `p` (named `field` in errors), its base
/// `default_theta` where it gives none; `top` is the whole config (`max_position_embeddings`,
/// and Phi-3's `original_max_position_embeddings` beside `rope_scaling`).
pub fn rope_params(
    p: &Fields,
    field: &str,
    default_theta: f64,
    top: &Fields,
) -> Result<RopeConfig> {
    let theta = p.f64_or("rope_theta", default_theta)?;
    // The pretrained context: in the RoPE parameters, else beside them (Phi-3).
    let original = || match p.get("original_max_position_embeddings") {
        Some(_) => p.usize("original_max_position_embeddings"),
        None => top.usize("original_max_position_embeddings"),
    };
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
        // Dynamic NTK scales the base only for a sequence past max_position_embeddings
        // (transformers' `_compute_dynamic_ntk_parameters` with `seq_len` at most that is plain
        // RoPE), and the context never holds more.
        "dynamic" => {
            let f = factor()?;
            if !(f >= 1.0 && f.is_finite()) {
                return Err(invalid(
                    &format!("{field}.factor"),
                    "a finite number >= 1",
                    f,
                ));
            }
            None
        }
        "linear" => Some(RopeScaling::Linear { factor: factor()? }),
        "llama3" => Some(RopeScaling::Llama3 {
            factor: factor()?,
            low_freq_factor: p.f64_or("low_freq_factor", 1.0)? as f32,
            high_freq_factor: p.f64_or("high_freq_factor", 4.0)? as f32,
            original_max_position_embeddings: p.usize("original_max_position_embeddings")?,
        }),
        "yarn" => {
            if !p.bool_or("truncate", true)? {
                return Err(invalid(
                    &format!("{field}.truncate"),
                    "true or absent (YaRN's correction range rounded out)",
                    false,
                ));
            }
            let original = original()?;
            // transformers: the factor from the contexts' ratio where none is given.
            let factor = match p.get("factor") {
                Some(_) => factor()? as f64,
                None => top.usize("max_position_embeddings")? as f64 / original as f64,
            };
            let attention_factor = match p.get("attention_factor") {
                Some(_) => Some(p.f64_or("attention_factor", 1.0)?),
                None => None,
            };
            Some(RopeScaling::Yarn(Yarn {
                factor,
                original_max_position_embeddings: original,
                // transformers: `get("beta_fast") or 32`, so 0 and null are the default too.
                beta_fast: Some(p.f64_or("beta_fast", 32.0)?)
                    .filter(|&b| b != 0.0)
                    .unwrap_or(32.0),
                beta_slow: Some(p.f64_or("beta_slow", 1.0)?)
                    .filter(|&b| b != 0.0)
                    .unwrap_or(1.0),
                mscale: p.f64_or("mscale", 0.0)?,
                mscale_all_dim: p.f64_or("mscale_all_dim", 0.0)?,
                attention_factor,
            }))
        }
        "longrope" | "su" => {
            let original = original()?;
            let factors = |name: &str| -> Result<Vec<f32>> {
                let v = p.get(name).ok_or_else(|| {
                    invalid(
                        &format!("{field}.{name}"),
                        "a list of numbers",
                        "nothing (missing)",
                    )
                })?;
                v.as_array()
                    .and_then(|a| a.iter().map(|x| x.as_f64().map(|x| x as f32)).collect())
                    .ok_or_else(|| invalid(&format!("{field}.{name}"), "a list of numbers", v))
            };
            // transformers: the factor from the contexts' ratio where none is given, and the
            // attention factor from it.
            let factor = match p.get("factor") {
                Some(_) => factor()? as f64,
                None => top.usize("max_position_embeddings")? as f64 / original as f64,
            };
            let attention_factor = match p.get("attention_factor") {
                Some(_) => p.f64_or("attention_factor", 1.0)?,
                None if factor <= 1.0 => 1.0,
                None => (1.0 + factor.ln() / (original as f64).ln()).sqrt(),
            };
            Some(RopeScaling::LongRope {
                short_factor: factors("short_factor")?,
                long_factor: factors("long_factor")?,
                original_max_position_embeddings: original,
                attention_factor: attention_factor as f32,
            })
        }
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

/// Per layer, whether `layer_types` says `sliding_attention` (else `full_attention`), `None`
/// where the config has no `layer_types`.
pub fn layer_types(f: &Fields, layers: usize) -> Result<Option<Vec<bool>>> {
    let Some(types) = f.get("layer_types") else {
        return Ok(None);
    };
    let types = types
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
        .collect::<Result<_>>()
        .map(Some)
}

/// Per layer, the sliding window: Mistral's `sliding_window` in every layer; Qwen2/Qwen3's
/// where `layer_types` says `sliding_attention` (or, in older configs, `use_sliding_window` from
/// `max_window_layers` on).
pub fn sliding_windows(f: &Fields, family: &str, layers: usize) -> Result<Vec<Option<usize>>> {
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
            match layer_types(f, layers)? {
                Some(sliding) => sliding,
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

impl HfConfig {
    /// Reads a parsed `config.json`: its family's file maps it; any unsupported family, RoPE
    /// type, activation or option is an error naming it and what is supported.
    pub fn from_json(json: &Value) -> Result<Self> {
        let f = Fields(json);
        let model_type = f.str_or("model_type", "")?;
        let family = super::by_model_type(model_type).ok_or_else(|| {
            invalid(
                "model_type",
                format!("one of {}", super::model_types().join(", ")),
                format!("'{model_type}'"),
            )
        })?;
        let config = family.config(&f, model_type)?;
        config
            .validate()
            .map_err(|e| e.in_context(|what| format!("{what} (from the Hugging Face config)")))?;
        Ok(HfConfig {
            family: model_type.to_string(),
            config,
            // A multimodal checkpoint's decoder has its own config (`text_config`).
            max_position_embeddings: match f.get("text_config").filter(|t| t.is_object()) {
                Some(text) => Fields(text).usize("max_position_embeddings")?,
                None => f.usize("max_position_embeddings")?,
            },
        })
    }
}

/// The feed-forward kind of the activation field `key` (`hidden_act`; Gemma's
/// `hidden_activation`), `default` where absent.
pub fn activation(f: &Fields, key: &str, default: &str) -> Result<FfnKind> {
    Ok(match f.str_or(key, default)? {
        "silu" | "swish" => FfnKind::Swiglu,
        "gelu" => FfnKind::Geglu,
        "gelu_pytorch_tanh" | "gelu_new" | "gelu_fast" => FfnKind::GegluTanh,
        other => {
            return Err(invalid(
                key,
                format!("one of {}", ACTIVATIONS.join(", ")),
                other,
            ))
        }
    })
}

/// Refuses `mlp_bias: true`.
pub fn no_mlp_bias(f: &Fields) -> Result<()> {
    if f.bool_or("mlp_bias", false)? {
        return Err(invalid(
            "mlp_bias",
            "false (biases in the MLP are not supported)",
            true,
        ));
    }
    Ok(())
}

/// The fields every decoder has (widths, heads, layers, context, RMSNorm epsilon, tied head)
/// with `ffn_kind` and `attention`, RoPE as [`rope`] reads it: a family's config starts here.
pub fn decoder(f: &Fields, ffn_kind: FfnKind, attention: AttentionConfig) -> Result<ModelConfig> {
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
    let max_context = max_position_embeddings;
    let norm_eps = f.f64_or("rms_norm_eps", 1e-6)? as f32;
    let mut attention = attention;
    if let AttentionConfig::Mha { rope_dim, .. } = &mut attention {
        let whole = head_dim.unwrap_or(d / heads);
        *rope_dim = Some(rotary_dim(f, whole)?).filter(|&r| r != whole);
    }
    Ok(ModelConfig {
        vocab_size: f.usize("vocab_size")?,
        d_model: d,
        n_layers: layers,
        n_heads: heads,
        head_dim,
        ffn_kind,
        ffn_hidden: f.usize("intermediate_size")?,
        norm_kind: NormKind::Rmsnorm,
        norm_eps,
        max_context,
        rope: RopeConfig::default(),
        tie_embeddings: f.bool_or("tie_word_embeddings", false)?,
        attention,
        moe: None,
        post_norms: false,
        embed_scale: None,
        rope_sliding: None,
        nope_layers: Vec::new(),
    })
}

/// What a family's multi-head attention adds to Llama's.
#[derive(Clone, Debug, Default)]
pub struct MhaExtras {
    /// Biases on the q, k and v projections.
    pub qkv_bias: bool,
    /// A bias on the output projection.
    pub o_bias: bool,
    /// RMSNorm over each head's query and key before RoPE.
    pub qk_norm: bool,
    /// Per layer, the sliding window (empty: none).
    pub sliding_window: Vec<Option<usize>>,
    /// The factor on the scores, where not `head_dim^-1/2`.
    pub scale: Option<f32>,
}

/// Multi-head attention of `num_key_value_heads` (all heads where absent) with `extras`.
pub fn mha(f: &Fields, extras: MhaExtras) -> Result<AttentionConfig> {
    Ok(AttentionConfig::Mha {
        n_kv_heads: Some(f.usize_or("num_key_value_heads", f.usize("num_attention_heads")?)?),
        qkv_bias: extras.qkv_bias,
        o_bias: extras.o_bias,
        qk_norm: extras.qk_norm,
        sliding_window: extras.sliding_window,
        scale: extras.scale,
        rope_dim: None,
    })
}

/// Llama's block with `extras` on its attention: `hidden_act` (SwiGLU where absent), no MLP
/// biases, RoPE as [`rope`] reads it. Every family with Llama's block starts here.
pub fn llama_like(f: &Fields, extras: MhaExtras) -> Result<ModelConfig> {
    let ffn = activation(f, "hidden_act", "silu")?;
    no_mlp_bias(f)?;
    let mut config = decoder(f, ffn, mha(f, extras)?)?;
    config.rope = rope(f)?;
    Ok(config)
}

/// `attention_bias` (biases on q, k, v and o), refused by name where `family` has no such
/// option.
pub fn attention_bias(f: &Fields, family: &str, has_option: bool) -> Result<bool> {
    let bias = f.bool_or("attention_bias", false)?;
    if bias && !has_option {
        return Err(invalid(
            "attention_bias",
            format!("false or absent ({family} has no such option)"),
            true,
        ));
    }
    Ok(bias)
}

/// The names of a Hugging Face checkpoint's tensors (`model.layers.3.self_attn.q_proj.weight`),
/// by a family's renames of a block's parts (`attn_norm.` -> `input_layernorm.`), the model's
/// top-level tensors under `prefix` (`model.`), and whether its norms store `weight - 1`
/// (Gemma's `(1 + weight)` RMSNorm: the layout adds the 1 back).
pub struct HfLayout {
    /// The block parts' renames, first match wins.
    pub renames: &'static [(&'static str, &'static str)],
    /// Where the decoder's tensors are (`model.`; a multimodal checkpoint's
    /// `model.language_model.`).
    pub prefix: &'static str,
    /// Whether every norm weight is stored as `weight - 1`.
    pub norms_minus_one: bool,
    /// A family's own spelling of a block part that prefix renames cannot say (Mixtral's
    /// `experts.{j}.w1`), tried first on the part after `layers.{i}.`.
    pub rename: Option<fn(&str) -> Option<String>>,
}

/// The renames of the Llama layout: `input_layernorm`, `post_attention_layernorm` (the
/// feed-forward's norm), `self_attn`, `mlp`.
pub const LLAMA_RENAMES: &[(&str, &str)] = &[
    ("attn_norm.", "input_layernorm."),
    ("ffn_norm.", "post_attention_layernorm."),
    ("attn.", "self_attn."),
    ("ffn.", "mlp."),
];

impl HfLayout {
    /// The Llama layout under `model.`.
    pub const LLAMA: HfLayout = HfLayout {
        renames: LLAMA_RENAMES,
        prefix: "model.",
        norms_minus_one: false,
        rename: None,
    };

    fn is_norm(name: &str) -> bool {
        name.ends_with("norm.weight")
    }
}

impl TensorLayout for HfLayout {
    fn file_name(&self, name: &str) -> String {
        if name.starts_with("lm_head.") {
            return name.to_string();
        }
        let Some(rest) = name.strip_prefix("layers.") else {
            return format!("{}{name}", self.prefix);
        };
        let (index, inner) = rest.split_once('.').unwrap_or((rest, ""));
        let own = self.rename.and_then(|rename| rename(inner));
        let inner = own.unwrap_or_else(|| {
            self.renames
                .iter()
                .find_map(|(ours, theirs)| inner.strip_prefix(ours).map(|r| format!("{theirs}{r}")))
                .unwrap_or_else(|| inner.to_string())
        });
        format!("{}layers.{index}.{inner}", self.prefix)
    }

    fn take(&self, files: &mut WeightFile, name: &str, shape: &[usize]) -> Result<HostMatrix> {
        let m = files.read_tensor(&self.file_name(name), shape, None)?;
        match (self.norms_minus_one && Self::is_norm(name), m) {
            // transformers computes `x̂ · (1 + w)` with `1 + w` in f32: this sum, exactly.
            (true, HostMatrix::F32(w)) => Ok(HostMatrix::F32(w.iter().map(|w| 1.0 + w).collect())),
            (_, m) => Ok(m),
        }
    }

    fn reads_rows(&self, name: &str) -> bool {
        !(self.norms_minus_one && Self::is_norm(name))
    }

    fn unused(&self) -> Unused {
        Unused::Warn
    }
}
