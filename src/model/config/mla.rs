//! The shape of DeepSeek's Multi-head Latent Attention: its ranks and per-head widths, the
//! YaRN scaling of its RoPE, and the frequencies and softmax scale they give.

use super::rope::{yarn_mscale, Yarn};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// The sizes and RoPE settings of one MLA layer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MlaShape {
    /// Model width.
    pub d: usize,
    /// Heads.
    pub heads: usize,
    /// Rank of the query compression (`None`: a plain `q_proj`).
    pub q_lora_rank: Option<usize>,
    /// Rank of the KV compression (the cached `c_kv` width).
    pub kv_lora_rank: usize,
    /// Per-head query/key width without position.
    pub qk_nope_head_dim: usize,
    /// Per-head query/key width with RoPE (the cached `k_pe` width).
    pub qk_rope_head_dim: usize,
    /// Per-head value width.
    pub v_head_dim: usize,
    /// Epsilon of `q_a_layernorm` and `kv_a_layernorm`.
    pub norm_eps: f32,
    /// RoPE base.
    pub rope_base: f64,
    /// YaRN scaling, if any.
    pub yarn: Option<Yarn>,
}

impl MlaShape {
    /// Query/key head width `nope + rope`.
    pub fn qk_head_dim(&self) -> usize {
        self.qk_nope_head_dim + self.qk_rope_head_dim
    }

    /// Numbers cached per token per layer: `kv_lora_rank + qk_rope_head_dim`.
    pub fn cache_numbers_per_token(&self) -> usize {
        self.kv_lora_rank + self.qk_rope_head_dim
    }

    /// Softmax scale `(nope+rope)^-1/2`, times `m²` with YaRN's `mscale_all_dim` (as HF).
    pub fn softmax_scale(&self) -> f32 {
        let mut s = (self.qk_head_dim() as f64).powf(-0.5);
        if let Some(y) = &self.yarn {
            if y.mscale_all_dim != 0.0 {
                let m = yarn_mscale(y.factor, y.mscale_all_dim);
                s *= m * m;
            }
        }
        s as f32
    }

    /// RoPE inverse frequencies (fp32, as HF computes them) and the cos/sin magnitude factor.
    pub fn inv_freq(&self) -> (Vec<f32>, f32) {
        super::rope::yarn_inv_freq(self.qk_rope_head_dim, self.rope_base, self.yarn.as_ref())
    }

    /// Reads the MLA fields of a Hugging Face DeepseekV2/V3 `config.json` (RoPE settings from
    /// `rope_parameters` (transformers 5) or `rope_scaling` and `rope_theta` (older files)).
    pub fn from_hf_config(json: &serde_json::Value) -> Result<Self> {
        let field = |name: &str| -> Result<&serde_json::Value> {
            json.get(name)
                .filter(|v| !v.is_null())
                .ok_or_else(|| Error::Invalid {
                    what: format!("Hugging Face config field '{name}'"),
                    expected: "present".into(),
                    found: "missing".into(),
                })
        };
        let usize_of = |name: &str| -> Result<usize> {
            field(name)?
                .as_u64()
                .map(|v| v as usize)
                .ok_or_else(|| Error::Invalid {
                    what: format!("Hugging Face config field '{name}'"),
                    expected: "a non-negative integer".into(),
                    found: json[name].to_string(),
                })
        };
        let rope = json
            .get("rope_parameters")
            .filter(|v| v.is_object())
            .or_else(|| json.get("rope_scaling").filter(|v| v.is_object()));
        let rope_type = rope
            .and_then(|r| r.get("rope_type").or_else(|| r.get("type")))
            .and_then(|t| t.as_str())
            .unwrap_or("default");
        let rope_base = rope
            .and_then(|r| r.get("rope_theta"))
            .or_else(|| json.get("rope_theta"))
            .and_then(|v| v.as_f64())
            .unwrap_or(10000.0);
        let yarn = match rope_type {
            "yarn" => {
                let r = rope.cloned().unwrap_or_default();
                Some(serde_json::from_value::<Yarn>(r).map_err(|e| Error::Invalid {
                    what: "Hugging Face config field 'rope_parameters' (yarn)".into(),
                    expected: "factor, original_max_position_embeddings, beta_fast, beta_slow, mscale, mscale_all_dim".into(),
                    found: e.to_string(),
                })?)
            }
            "default" => None,
            other => {
                return Err(Error::Invalid {
                    what: "Hugging Face config RoPE type".into(),
                    expected: "default or yarn".into(),
                    found: other.to_string(),
                })
            }
        };
        let shape = MlaShape {
            d: usize_of("hidden_size")?,
            heads: usize_of("num_attention_heads")?,
            q_lora_rank: json
                .get("q_lora_rank")
                .and_then(|v| v.as_u64())
                .map(|v| v as usize),
            kv_lora_rank: usize_of("kv_lora_rank")?,
            qk_nope_head_dim: usize_of("qk_nope_head_dim")?,
            qk_rope_head_dim: usize_of("qk_rope_head_dim")?,
            v_head_dim: usize_of("v_head_dim")?,
            norm_eps: json
                .get("rms_norm_eps")
                .and_then(|v| v.as_f64())
                .unwrap_or(1e-6) as f32,
            rope_base,
            yarn,
        };
        shape.validate()?;
        Ok(shape)
    }

    /// Checks the sizes; the error names the field.
    pub fn validate(&self) -> Result<()> {
        let fields = [
            ("hidden_size", self.d),
            ("num_attention_heads", self.heads),
            ("kv_lora_rank", self.kv_lora_rank),
            ("qk_nope_head_dim", self.qk_nope_head_dim),
            ("qk_rope_head_dim", self.qk_rope_head_dim),
            ("v_head_dim", self.v_head_dim),
        ];
        for (name, v) in fields {
            if v == 0 || v > crate::model::config::MAX_WIDTH {
                return Err(Error::Invalid {
                    what: format!("MLA field '{name}'"),
                    expected: format!(
                        "a positive integer up to {}",
                        crate::model::config::MAX_WIDTH
                    ),
                    found: v.to_string(),
                });
            }
        }
        if self.heads > crate::model::config::MAX_HEADS
            || self
                .q_lora_rank
                .is_some_and(|r| r > crate::model::config::MAX_WIDTH)
        {
            return Err(Error::Invalid {
                what: "MLA fields 'num_attention_heads' and 'q_lora_rank'".into(),
                expected: format!(
                    "at most {} heads and a rank up to {}",
                    crate::model::config::MAX_HEADS,
                    crate::model::config::MAX_WIDTH
                ),
                found: format!("{} heads, rank {:?}", self.heads, self.q_lora_rank),
            });
        }
        if !self.qk_rope_head_dim.is_multiple_of(2) {
            return Err(Error::Invalid {
                what: "MLA field 'qk_rope_head_dim'".into(),
                expected: "an even number (RoPE rotates pairs)".into(),
                found: self.qk_rope_head_dim.to_string(),
            });
        }
        if self.q_lora_rank == Some(0) {
            return Err(Error::Invalid {
                what: "MLA field 'q_lora_rank'".into(),
                expected: "a positive integer or null".into(),
                found: "0".into(),
            });
        }
        let field = |name: &str, expected: &str, found: f64| Error::Invalid {
            what: format!("MLA field '{name}'"),
            expected: expected.into(),
            found: found.to_string(),
        };
        let eps = self.norm_eps as f64;
        if !(eps > 0.0 && eps < 1.0) {
            return Err(field("rms_norm_eps", "in (0, 1)", eps));
        }
        if !(self.rope_base > 1.0 && self.rope_base.is_finite()) {
            return Err(field("rope_theta", "a finite number > 1", self.rope_base));
        }
        if let Some(y) = &self.yarn {
            if !(y.factor >= 1.0 && y.factor.is_finite()) {
                return Err(field("YaRN factor", "a finite number >= 1", y.factor));
            }
            if y.original_max_position_embeddings == 0 {
                return Err(field(
                    "YaRN original_max_position_embeddings",
                    "a positive integer",
                    0.0,
                ));
            }
            if !(y.beta_slow > 0.0 && y.beta_fast > y.beta_slow && y.beta_fast.is_finite()) {
                return Err(Error::Invalid {
                    what: "MLA fields 'YaRN beta_fast' and 'beta_slow'".into(),
                    expected: "finite, beta_fast > beta_slow > 0".into(),
                    found: format!("beta_fast {}, beta_slow {}", y.beta_fast, y.beta_slow),
                });
            }
            for (name, v) in [("mscale", y.mscale), ("mscale_all_dim", y.mscale_all_dim)] {
                if !(v >= 0.0 && v.is_finite()) {
                    return Err(field(
                        &format!("YaRN {name}"),
                        "a finite number >= 0 (0: none)",
                        v,
                    ));
                }
            }
        }
        // What the fields give must be usable too: a finite positive softmax scale, finite
        // positive inverse frequencies and a finite positive magnitude.
        let scale = self.softmax_scale();
        let (inv_freq, magnitude) = self.inv_freq();
        let usable = |v: f32| v.is_finite() && v > 0.0;
        if !usable(scale) || !usable(magnitude) || !inv_freq.iter().all(|&f| usable(f)) {
            return Err(Error::Invalid {
                what: "MLA RoPE and YaRN fields".into(),
                expected: "a finite positive softmax scale, frequencies and magnitude".into(),
                found: format!(
                    "softmax scale {scale}, magnitude {magnitude}, frequencies from {:?} to {:?}",
                    inv_freq.first(),
                    inv_freq.last()
                ),
            });
        }
        Ok(())
    }
}
