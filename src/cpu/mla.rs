//! Reference MLA, naive form (up-projected keys and values), f64 from the f32 weights.

use super::attention::attention;
use super::linear;
use crate::model::config::mla::MlaShape;

/// One MLA layer's weights by their Hugging Face names (row-major `[out, in]`).
pub struct MlaWeights<'a> {
    /// `q_a_proj` `[q_lora, d]` and `q_a_layernorm` `[q_lora]`, with `q_lora_rank`.
    pub q_a: Option<(&'a [f32], &'a [f32])>,
    /// `q_proj` or `q_b_proj` `[h·(nope+rope), d or q_lora]`.
    pub q: &'a [f32],
    /// `kv_a_proj_with_mqa` `[kv_lora + rope, d]`.
    pub kv_a: &'a [f32],
    /// `kv_a_layernorm` `[kv_lora]`.
    pub kv_norm: &'a [f32],
    /// `kv_b_proj` `[h·(nope+v), kv_lora]`.
    pub kv_b: &'a [f32],
    /// `o_proj` `[d, h·v]`.
    pub o: &'a [f32],
}

fn rmsnorm(x: &[f64], w: &[f32], eps: f32) -> Vec<f64> {
    let d = w.len();
    x.chunks(d)
        .flat_map(|row| {
            let inv = 1.0 / (row.iter().map(|v| v * v).sum::<f64>() / d as f64 + eps as f64).sqrt();
            row.iter().zip(w).map(move |(v, &g)| v * inv * g as f64)
        })
        .collect()
}

/// Rotates interleaved pairs of `x[start..start + 2·cos.row]` in every `width`-long group of row
/// `t` (position `t`) with the f32 tables `cos`, `sin` `[positions, rope/2]`.
fn rope(
    x: &mut [f64],
    width: usize,
    start: usize,
    rope: usize,
    groups_per_row: usize,
    cos: &[f64],
    sin: &[f64],
) {
    for (g, vals) in x.chunks_mut(width).enumerate() {
        let pos = g / groups_per_row;
        for i in 0..rope / 2 {
            let (c, s) = (cos[pos * rope / 2 + i], sin[pos * rope / 2 + i]);
            let (a, b) = (vals[start + 2 * i], vals[start + 2 * i + 1]);
            vals[start + 2 * i] = a * c - b * s;
            vals[start + 2 * i + 1] = a * s + b * c;
        }
    }
}

/// Causal MLA over `x` `[n, d]` at positions `0..n`, naive form: `[q_nope; q_pe]·[k_nope; k_pe]`
/// with `k_nope`, `v` up-projected from the normalised `c_kv`, `k_pe` shared by all heads.
pub fn mla_naive(s: &MlaShape, w: &MlaWeights, x: &[f32], n: usize) -> Vec<f64> {
    let (d, h) = (s.d, s.heads);
    let (nope, rp, v, r) = (
        s.qk_nope_head_dim,
        s.qk_rope_head_dim,
        s.v_head_dim,
        s.kv_lora_rank,
    );
    let qk = nope + rp;
    let x: Vec<f64> = x.iter().map(|&v| v as f64).collect();
    // The reference's own frequencies from the shape's settings, as a `rope_parameters` object.
    let params = match &s.yarn {
        Some(y) => serde_json::json!({
            "rope_type": "yarn", "rope_theta": s.rope_base, "factor": y.factor,
            "original_max_position_embeddings": y.original_max_position_embeddings,
            "beta_fast": y.beta_fast, "beta_slow": y.beta_slow, "mscale": y.mscale,
            "mscale_all_dim": y.mscale_all_dim,
        }),
        None => serde_json::json!({"rope_type": "default", "rope_theta": s.rope_base}),
    };
    let (inv_freq, mscale) = super::rope::inv_freq(&params, &serde_json::Value::Null, rp);
    let (cos, sin) = super::rope::tables(&inv_freq, n, mscale);
    let q_in = match w.q_a {
        Some((a, norm)) => rmsnorm(&linear(&x, a, d), norm, s.norm_eps),
        None => x.clone(),
    };
    let q_in_width = q_in.len() / n;
    let mut q = linear(&q_in, w.q, q_in_width); // [n, h, qk]
    rope(&mut q, qk, nope, rp, h, &cos, &sin);
    let kv_a = linear(&x, w.kv_a, d); // [n, r + rope]
    let c: Vec<f64> = kv_a
        .chunks(r + rp)
        .flat_map(|row| row[..r].to_vec())
        .collect();
    let mut kpe: Vec<f64> = kv_a
        .chunks(r + rp)
        .flat_map(|row| row[r..].to_vec())
        .collect();
    rope(&mut kpe, rp, 0, rp, 1, &cos, &sin);
    let c = rmsnorm(&c, w.kv_norm, s.norm_eps);
    let kv = linear(&c, w.kv_b, r); // [n, h, nope + v]
    let mut keys = Vec::with_capacity(n * h * qk);
    let mut values = Vec::with_capacity(n * h * v);
    for t in 0..n {
        for hd in 0..h {
            let base = (t * h + hd) * (nope + v);
            keys.extend_from_slice(&kv[base..base + nope]);
            keys.extend_from_slice(&kpe[t * rp..(t + 1) * rp]);
            values.extend_from_slice(&kv[base + nope..base + nope + v]);
        }
    }
    let o = attention(
        &q,
        &keys,
        &values,
        n,
        n,
        h,
        h,
        qk,
        v,
        s.softmax_scale(),
        true,
    );
    linear(&o, w.o, h * v)
}
