//! RoPE settings: the frequency base, the pair convention, and the scalings for contexts past
//! the trained one (linear, Llama 3, YaRN, LongRoPE), each computed as transformers computes it
//! in fp32.

use crate::error::{Error, Result};
use crate::ops::RopeMode;
use serde::{Deserialize, Serialize};

fn invalid(field: &str, expected: impl Into<String>, found: impl std::fmt::Display) -> Error {
    Error::Invalid {
        what: format!("config field '{field}'"),
        expected: expected.into(),
        found: found.to_string(),
    }
}

/// RoPE settings of the token-side attention.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RopeConfig {
    /// Frequency base (10000 in most models).
    #[serde(default = "default_rope_base")]
    pub base: f32,
    /// Pair convention.
    #[serde(default = "default_rope_mode")]
    pub mode: RopeMode,
    /// Frequency scaling for contexts past the trained one, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scaling: Option<RopeScaling>,
}

/// RoPE frequency scaling (Hugging Face `rope_type`), applied to the inverse frequencies exactly
/// as transformers computes them in fp32.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum RopeScaling {
    /// Position interpolation: every frequency divided by `factor`.
    Linear {
        /// Divisor of every frequency.
        factor: f32,
    },
    /// Llama 3.1: low frequencies divided by `factor`, high ones kept, a smooth blend between.
    Llama3 {
        /// Divisor of the low frequencies.
        factor: f32,
        /// Wavelengths above `original_max_position_embeddings / low_freq_factor` are scaled.
        low_freq_factor: f32,
        /// Wavelengths below `original_max_position_embeddings / high_freq_factor` are kept.
        high_freq_factor: f32,
        /// The context the model was pretrained with.
        original_max_position_embeddings: usize,
    },
    /// YaRN (`rope_type: yarn`): low frequencies interpolated, high ones kept, a ramp between;
    /// cos and sin scaled by its attention factor.
    Yarn(Yarn),
    /// LongRoPE (Phi-3, Phi-4-mini): each frequency divided by its own factor, the short ones
    /// while a forward pass ends within `original_max_position_embeddings`, the long ones past
    /// it (as transformers picks them, by the last position of each call); cos and sin scaled
    /// by `attention_factor`.
    LongRope {
        /// Divisors of the frequencies within the original context.
        short_factor: Vec<f32>,
        /// Divisors past it.
        long_factor: Vec<f32>,
        /// The context the model was pretrained with.
        original_max_position_embeddings: usize,
        /// The factor on cos and sin.
        attention_factor: f32,
    },
}

impl RopeConfig {
    /// The inverse frequencies of `rot_dim` rotated values, scaled as configured (fp32, in
    /// transformers' order of operations).
    pub fn inv_freq(&self, rot_dim: usize) -> Vec<f32> {
        let plain = crate::ops::rope::inv_freq(rot_dim, self.base);
        match &self.scaling {
            None => plain,
            Some(RopeScaling::Linear { factor }) => plain.iter().map(|f| f / factor).collect(),
            Some(RopeScaling::Yarn(yarn)) => yarn_inv_freq(rot_dim, self.base as f64, Some(yarn)).0,
            Some(RopeScaling::LongRope { short_factor, .. }) => {
                longrope_inv_freq(rot_dim, self.base, short_factor)
            }
            Some(RopeScaling::Llama3 {
                factor,
                low_freq_factor,
                high_freq_factor,
                original_max_position_embeddings,
            }) => {
                let (factor, low_freq_factor, high_freq_factor) =
                    (*factor, *low_freq_factor, *high_freq_factor);
                let old = *original_max_position_embeddings as f32;
                let (low_wavelen, high_wavelen) = (old / low_freq_factor, old / high_freq_factor);
                plain
                    .iter()
                    .map(|&f| {
                        // PyTorch's `scalar / tensor` is `tensor.reciprocal() * scalar`.
                        let wavelen = (1.0 / f) * (2.0 * std::f64::consts::PI) as f32;
                        if wavelen < high_wavelen {
                            f
                        } else if wavelen > low_wavelen {
                            f / factor
                        } else {
                            let smooth = ((1.0 / wavelen) * old - low_freq_factor)
                                / (high_freq_factor - low_freq_factor);
                            (1.0 - smooth) * f / factor + smooth * f
                        }
                    })
                    .collect()
            }
        }
    }
}

impl RopeConfig {
    /// LongRoPE's frequencies past the original context, and that context (`None` for the
    /// other scalings).
    pub fn long_inv_freq(&self, rot_dim: usize) -> Option<(Vec<f32>, usize)> {
        match &self.scaling {
            Some(RopeScaling::LongRope {
                long_factor,
                original_max_position_embeddings,
                ..
            }) => Some((
                longrope_inv_freq(rot_dim, self.base, long_factor),
                *original_max_position_embeddings,
            )),
            _ => None,
        }
    }

    /// The factor on cos and sin: YaRN's and LongRoPE's attention factor, else 1.
    pub fn attention_factor(&self) -> f32 {
        match &self.scaling {
            Some(RopeScaling::Yarn(y)) => yarn_inv_freq(2, self.base as f64, Some(y)).1,
            Some(RopeScaling::LongRope {
                attention_factor, ..
            }) => *attention_factor,
            _ => 1.0,
        }
    }
}

/// LongRoPE's inverse frequencies `1 / (factor_i · base^(2i/dim))`, in f32 as transformers
/// computes them.
fn longrope_inv_freq(dim: usize, base: f32, factors: &[f32]) -> Vec<f32> {
    (0..dim / 2)
        .map(|i| {
            let p = ((base as f64).powf(((2 * i) as f32 / dim as f32) as f64)) as f32;
            1.0 / (factors.get(i).copied().unwrap_or(1.0) * p)
        })
        .collect()
}

/// YaRN's inverse frequencies of `dim` rotated values from `base`, and its attention factor
/// (plain frequencies and 1 without YaRN), in transformers' order of operations.
pub fn yarn_inv_freq(dim: usize, base: f64, yarn: Option<&Yarn>) -> (Vec<f32>, f32) {
    let pos_freqs: Vec<f32> = (0..dim / 2)
        .map(|i| (base.powf(((2 * i) as f32 / dim as f32) as f64)) as f32)
        .collect();
    let Some(y) = yarn else {
        return (pos_freqs.iter().map(|p| 1.0 / p).collect(), 1.0);
    };
    let correction = |rot: f64| {
        dim as f64
            * (y.original_max_position_embeddings as f64 / (rot * 2.0 * std::f64::consts::PI)).ln()
            / (2.0 * base.ln())
    };
    let low = correction(y.beta_fast).floor().max(0.0);
    let high = correction(y.beta_slow).ceil().min(dim as f64 - 1.0);
    let high = if low == high { high + 0.001 } else { high };
    let factor = y.factor as f32;
    let inv: Vec<f32> = pos_freqs
        .iter()
        .enumerate()
        .map(|(i, &p)| {
            let ramp = (((i as f32) - low as f32) / (high - low) as f32).clamp(0.0, 1.0);
            let extrapolation = 1.0 - ramp;
            let (inter, extra) = (1.0 / (factor * p), 1.0 / p);
            inter * (1.0 - extrapolation) + extra * extrapolation
        })
        .collect();
    let attention_factor = match y.attention_factor {
        Some(a) => a,
        None if y.mscale != 0.0 && y.mscale_all_dim != 0.0 => {
            yarn_mscale(y.factor, y.mscale) / yarn_mscale(y.factor, y.mscale_all_dim)
        }
        None => yarn_mscale(y.factor, 1.0),
    };
    (inv, attention_factor as f32)
}

fn default_rope_base() -> f32 {
    10000.0
}
fn default_rope_mode() -> RopeMode {
    RopeMode::HalfSplit
}

impl Default for RopeConfig {
    fn default() -> Self {
        RopeConfig {
            base: default_rope_base(),
            mode: default_rope_mode(),
            scaling: None,
        }
    }
}

impl RopeConfig {
    /// Checks the base and the scaling; the error names the first bad field.
    pub fn validate(&self) -> Result<()> {
        if !(self.base > 1.0 && self.base.is_finite()) {
            return Err(invalid("rope.base", "a finite number > 1", self.base));
        }
        match &self.scaling {
            Some(RopeScaling::Linear { factor }) if !(*factor >= 1.0 && factor.is_finite()) => {
                return Err(invalid(
                    "rope.scaling.factor",
                    "a finite number >= 1",
                    factor,
                ));
            }
            Some(RopeScaling::Llama3 {
                factor,
                low_freq_factor,
                high_freq_factor,
                original_max_position_embeddings,
            }) => {
                let (factor, low_freq_factor, high_freq_factor) =
                    (*factor, *low_freq_factor, *high_freq_factor);
                if !(factor >= 1.0 && factor.is_finite()) {
                    return Err(invalid(
                        "rope.scaling.factor",
                        "a finite number >= 1",
                        factor,
                    ));
                }
                if !(low_freq_factor > 0.0 && high_freq_factor > low_freq_factor) {
                    return Err(invalid(
                        "rope.scaling.high_freq_factor",
                        format!("> low_freq_factor ({low_freq_factor}) > 0"),
                        high_freq_factor,
                    ));
                }
                if *original_max_position_embeddings == 0 {
                    return Err(invalid(
                        "rope.scaling.original_max_position_embeddings",
                        "a positive integer",
                        0,
                    ));
                }
            }
            Some(RopeScaling::Yarn(y)) => {
                if !(y.factor >= 1.0 && y.factor.is_finite()) {
                    return Err(invalid(
                        "rope.scaling.factor",
                        "a finite number >= 1",
                        y.factor,
                    ));
                }
                if y.original_max_position_embeddings == 0 {
                    return Err(invalid(
                        "rope.scaling.original_max_position_embeddings",
                        "a positive integer",
                        0,
                    ));
                }
                let (inv, factor) = yarn_inv_freq(64, self.base as f64, Some(y));
                if !(factor.is_finite()
                    && factor > 0.0
                    && inv.iter().all(|f| f.is_finite() && *f > 0.0))
                {
                    return Err(invalid(
                        "rope.scaling",
                        "YaRN settings that give finite positive frequencies and attention factor",
                        format!("{y:?}"),
                    ));
                }
            }
            Some(RopeScaling::LongRope {
                short_factor,
                long_factor,
                original_max_position_embeddings,
                attention_factor,
            }) => {
                for (field, factors) in
                    [("short_factor", short_factor), ("long_factor", long_factor)]
                {
                    if let Some(f) = factors.iter().find(|f| !(f.is_finite() && **f > 0.0)) {
                        return Err(invalid(
                            &format!("rope.scaling.{field}"),
                            "finite numbers > 0",
                            f,
                        ));
                    }
                }
                if *original_max_position_embeddings == 0 {
                    return Err(invalid(
                        "rope.scaling.original_max_position_embeddings",
                        "a positive integer",
                        0,
                    ));
                }
                if !(attention_factor.is_finite() && *attention_factor > 0.0) {
                    return Err(invalid(
                        "rope.scaling.attention_factor",
                        "a finite number > 0",
                        attention_factor,
                    ));
                }
            }
            Some(RopeScaling::Linear { .. }) | None => {}
        }
        Ok(())
    }
}

/// YaRN RoPE scaling (`rope_type: yarn`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Yarn {
    /// Context extension factor.
    pub factor: f64,
    /// Context length of pre-training.
    pub original_max_position_embeddings: usize,
    /// Rotations at which extrapolation stops.
    #[serde(default = "default_beta_fast")]
    pub beta_fast: f64,
    /// Rotations at which interpolation starts.
    #[serde(default = "default_beta_slow")]
    pub beta_slow: f64,
    /// Magnitude scale numerator (0 = none).
    #[serde(default)]
    pub mscale: f64,
    /// Magnitude scale denominator, and the softmax-scale correction (0 = none).
    #[serde(default)]
    pub mscale_all_dim: f64,
    /// The factor on cos and sin, where a config gives it (else from `mscale`s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attention_factor: Option<f64>,
}

fn default_beta_fast() -> f64 {
    32.0
}
fn default_beta_slow() -> f64 {
    1.0
}

/// YaRN's magnitude factor `0.1·m·ln(s) + 1` (1 when `s <= 1`).
pub fn yarn_mscale(scale: f64, m: f64) -> f64 {
    if scale <= 1.0 {
        1.0
    } else {
        0.1 * m * scale.ln() + 1.0
    }
}
