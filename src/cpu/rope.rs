//! RoPE frequencies and tables, written apart from the runtime's (`model::config::rope`,
//! `ops::rope`) so that tests check those against this, and this against transformers
//! (`tests/rope_frequencies.rs`). It reads a Hugging Face `rope_parameters` object itself, and
//! follows transformers' `ROPE_INIT_FUNCTIONS` step by step: each tensor operation of theirs
//! is one f64 operation here rounded to f32 (`r32`); `scalar / tensor` is PyTorch's
//! `tensor.reciprocal() * scalar`.

use serde_json::Value;

/// `x` rounded to f32, as a float32 tensor operation leaves it.
fn r32(x: f64) -> f64 {
    x as f32 as f64
}

fn num(p: &Value, key: &str) -> Option<f64> {
    p.get(key).and_then(Value::as_f64)
}

/// `base^(2i/dim)` for `i < dim/2`, each exponent and power rounded to f32.
fn powers(base: f64, dim: usize) -> Vec<f64> {
    (0..dim / 2)
        .map(|i| r32(base.powf(r32((2 * i) as f64 / dim as f64))))
        .collect()
}

/// Plain RoPE's inverse frequencies `1 / base^(2i/dim)`.
pub fn plain_inv_freq(base: f64, dim: usize) -> Vec<f32> {
    powers(base, dim)
        .iter()
        .map(|&q| r32(1.0 / q) as f32)
        .collect()
}

/// The inverse frequencies of `dim` rotated values and the attention factor that
/// `rope_parameters` `p` of the config `config` give (LongRoPE: its short factors).
pub fn inv_freq(p: &Value, config: &Value, dim: usize) -> (Vec<f32>, f64) {
    let base = num(p, "rope_theta").unwrap_or(10000.0);
    let kind = p
        .get("rope_type")
        .and_then(Value::as_str)
        .unwrap_or("default");
    let pows = powers(base, dim);
    let plain: Vec<f64> = pows.iter().map(|&q| r32(1.0 / q)).collect();
    let max_pos = num(config, "max_position_embeddings").unwrap_or(0.0);
    let original = num(p, "original_max_position_embeddings")
        .or_else(|| num(config, "original_max_position_embeddings"))
        .unwrap_or(1.0);
    let (inv, factor): (Vec<f64>, f64) = match kind {
        "linear" => {
            let f = num(p, "factor").unwrap();
            (plain.iter().map(|&v| r32(v / f)).collect(), 1.0)
        }
        "llama3" => {
            let f = num(p, "factor").unwrap();
            let (low, high) = (
                num(p, "low_freq_factor").unwrap(),
                num(p, "high_freq_factor").unwrap(),
            );
            let (low_wavelen, high_wavelen) = (original / low, original / high);
            let inv = plain
                .iter()
                .map(|&v| {
                    // `scalar / tensor` is PyTorch's `tensor.reciprocal() * scalar`, the
                    // scalar in f32.
                    let wavelen = r32(r32(1.0 / v) * r32(2.0 * std::f64::consts::PI));
                    let scaled = if wavelen > low_wavelen { r32(v / f) } else { v };
                    let smooth = r32(r32(r32(r32(1.0 / wavelen) * original) - low) / (high - low));
                    let smoothed =
                        r32(r32(r32(r32(1.0 - smooth) * scaled) / f) + r32(smooth * scaled));
                    let medium = wavelen >= high_wavelen && wavelen <= low_wavelen;
                    if medium {
                        smoothed
                    } else {
                        scaled
                    }
                })
                .collect();
            (inv, 1.0)
        }
        "yarn" => yarn(p, base, dim, &pows, max_pos, original),
        // Dynamic NTK at a sequence of at most max_position_embeddings: the base unchanged.
        "dynamic" => (plain, 1.0),
        "longrope" => {
            let short = factors(p, "short_factor");
            let f = num(p, "factor").unwrap_or(max_pos / original);
            let attention = num(p, "attention_factor").unwrap_or(if f <= 1.0 {
                1.0
            } else {
                (1.0 + f.ln() / original.ln()).sqrt()
            });
            (longrope(&pows, &short), attention)
        }
        _ => (plain, 1.0),
    };
    (inv.iter().map(|&v| v as f32).collect(), factor)
}

/// LongRoPE's frequencies past the original context (its long factors), and its attention
/// factor as [`inv_freq`] gives it.
pub fn long_inv_freq(p: &Value, dim: usize) -> (Vec<f32>, f64) {
    let base = num(p, "rope_theta").unwrap_or(10000.0);
    let inv = longrope(&powers(base, dim), &factors(p, "long_factor"));
    (inv.iter().map(|&v| v as f32).collect(), 1.0)
}

fn factors(p: &Value, key: &str) -> Vec<f64> {
    p[key]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_f64).map(r32).collect())
        .unwrap_or_default()
}

/// `1 / (factor_i · base^(2i/dim))`.
fn longrope(pows: &[f64], factors: &[f64]) -> Vec<f64> {
    pows.iter()
        .zip(factors)
        .map(|(&q, &f)| r32(1.0 / r32(f * q)))
        .collect()
}

/// YaRN's ramp between interpolated and kept frequencies, and its attention factor.
fn yarn(
    p: &Value,
    base: f64,
    dim: usize,
    pows: &[f64],
    max_pos: f64,
    original: f64,
) -> (Vec<f64>, f64) {
    let f = num(p, "factor").unwrap_or(max_pos / original);
    let mscale = |scale: f64, m: f64| {
        if scale <= 1.0 {
            1.0
        } else {
            0.1 * m * scale.ln() + 1.0
        }
    };
    let attention = match (
        num(p, "attention_factor"),
        num(p, "mscale"),
        num(p, "mscale_all_dim"),
    ) {
        (Some(a), ..) => a,
        (None, Some(m), Some(all)) if m != 0.0 && all != 0.0 => mscale(f, m) / mscale(f, all),
        _ => mscale(f, 1.0),
    };
    let beta_fast = num(p, "beta_fast").filter(|&b| b != 0.0).unwrap_or(32.0);
    let beta_slow = num(p, "beta_slow").filter(|&b| b != 0.0).unwrap_or(1.0);
    let correction = |rotations: f64| {
        dim as f64 * (original / (rotations * 2.0 * std::f64::consts::PI)).ln() / (2.0 * base.ln())
    };
    let low = correction(beta_fast).floor().max(0.0);
    let mut high = correction(beta_slow).ceil().min(dim as f64 - 1.0);
    if low == high {
        high += 0.001;
    }
    let inv = pows
        .iter()
        .enumerate()
        .map(|(i, &q)| {
            let ramp = r32(r32(i as f64 - r32(low)) / r32(high - low)).clamp(0.0, 1.0);
            let extrapolation = r32(1.0 - ramp);
            let (interpolated, kept) = (r32(1.0 / r32(f * q)), r32(1.0 / q));
            r32(r32(interpolated * r32(1.0 - extrapolation)) + r32(kept * extrapolation))
        })
        .collect();
    (inv, attention)
}

/// cos and sin of `pos · θ_i` for `positions` positions, the angle in f32 as PyTorch forms it,
/// each times `scale` (YaRN's or LongRoPE's attention factor), `[positions, θ.len()]`.
pub fn tables(inv_freq: &[f32], positions: usize, scale: f64) -> (Vec<f64>, Vec<f64>) {
    let mut cos = Vec::with_capacity(positions * inv_freq.len());
    let mut sin = Vec::with_capacity(positions * inv_freq.len());
    for pos in 0..positions {
        for &f in inv_freq {
            let angle = (pos as f32 * f) as f64;
            cos.push(angle.cos() * scale);
            sin.push(angle.sin() * scale);
        }
    }
    (cos, sin)
}
