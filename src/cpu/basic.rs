//! References of the matmul, norm, softmax, RoPE, activation and embedding kernels.

use crate::ops::RopeMode;

/// `C[b] = A[b]·B[b]` (or `·B[b]ᵀ`). A `[batch, m, k]`; B `[k, n]`/`[n, k]`, per batch when
/// `b_batched`, else shared -> C `[batch, m, n]`.
#[allow(clippy::too_many_arguments)]
pub fn matmul(
    a: &[f32],
    b: &[f32],
    batch: usize,
    m: usize,
    n: usize,
    k: usize,
    transpose_b: bool,
    b_batched: bool,
) -> Vec<f64> {
    let mut c = vec![0.0; batch * m * n];
    for bt in 0..batch {
        let a0 = bt * m * k;
        let b0 = if b_batched { bt * n * k } else { 0 };
        for i in 0..m {
            for j in 0..n {
                let mut s = 0.0f64;
                for p in 0..k {
                    let bv = if transpose_b {
                        b[b0 + j * k + p]
                    } else {
                        b[b0 + p * n + j]
                    };
                    s += a[a0 + i * k + p] as f64 * bv as f64;
                }
                c[bt * m * n + i * n + j] = s;
            }
        }
    }
    c
}

/// Softmax of each row of `x` `[rows, cols]`; with `causal = Some(offset)` row `r` keeps
/// columns `j <= r % q_len + offset` and the rest are 0.
pub fn softmax(x: &[f32], cols: usize, q_len: usize, causal: Option<usize>) -> Vec<f64> {
    let mut y = vec![0.0; x.len()];
    for (r, (row, out)) in x.chunks(cols).zip(y.chunks_mut(cols)).enumerate() {
        let valid = match causal {
            Some(off) => (r % q_len + off + 1).min(cols),
            None => cols,
        };
        let m = row[..valid].iter().fold(f64::MIN, |m, &v| m.max(v as f64));
        let s: f64 = row[..valid].iter().map(|&v| (v as f64 - m).exp()).sum();
        for j in 0..valid {
            out[j] = (row[j] as f64 - m).exp() / s;
        }
    }
    y
}

/// RMSNorm of rows of width `w.len()`.
pub fn rmsnorm(x: &[f32], w: &[f32], eps: f32) -> Vec<f64> {
    let d = w.len();
    let mut y = Vec::with_capacity(x.len());
    for row in x.chunks(d) {
        let ms: f64 = row.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / d as f64;
        let inv = 1.0 / (ms + eps as f64).sqrt();
        y.extend(row.iter().zip(w).map(|(&v, &g)| v as f64 * inv * g as f64));
    }
    y
}

/// LayerNorm of rows of width `w.len()` (biased variance, as PyTorch).
pub fn layernorm(x: &[f32], w: &[f32], b: &[f32], eps: f32) -> Vec<f64> {
    let d = w.len();
    let mut y = Vec::with_capacity(x.len());
    for row in x.chunks(d) {
        let mean: f64 = row.iter().map(|&v| v as f64).sum::<f64>() / d as f64;
        let var: f64 = row.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / d as f64;
        let inv = 1.0 / (var + eps as f64).sqrt();
        y.extend(
            row.iter()
                .zip(w.iter().zip(b))
                .map(|(&v, (&g, &bb))| (v as f64 - mean) * inv * g as f64 + bb as f64),
        );
    }
    y
}

/// `x · sigmoid(x)`.
pub fn silu(x: f32) -> f64 {
    let x = x as f64;
    x / (1.0 + (-x).exp())
}

/// `x/2 · (1 + erf(x/√2))`, with erf from its Taylor/continued-fraction-free series in f64.
pub fn gelu(x: f32) -> f64 {
    let x = x as f64;
    0.5 * x * (1.0 + erf(x / std::f64::consts::SQRT_2))
}

/// The tanh form of GELU.
pub fn gelu_tanh(x: f32) -> f64 {
    let x = x as f64;
    let z = (2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x * x * x);
    // x/2·(1 + tanh z) = x·sigmoid(2z), the form without cancellation for z << 0.
    x / (1.0 + (-2.0 * z).exp())
}

/// erf to f64 precision: the Maclaurin series for |x| < 3, the asymptotic continued fraction beyond.
fn erf(x: f64) -> f64 {
    let ax = x.abs();
    let r = if ax < 3.0 {
        // erf(x) = 2/√π Σ (−1)^n x^(2n+1) / (n! (2n+1))
        let mut term = ax;
        let mut sum = ax;
        let mut n = 0.0;
        while term.abs() > 1e-17 * sum.abs() {
            n += 1.0;
            term *= -ax * ax / n;
            sum += term / (2.0 * n + 1.0);
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    } else {
        // erfc(x) = exp(−x²)/√π · 1/(x + 1/2/(x + 1/(x + 3/2/(x + ...))))
        let mut f = ax;
        for k in (1..60).rev() {
            f = ax + (k as f64 / 2.0) / f;
        }
        1.0 - (-ax * ax).exp() / (std::f64::consts::PI.sqrt() * f)
    };
    r.copysign(x)
}

/// RoPE of `x` `[tokens, heads, head_dim]`, first `cos.len()/positions*2` values of each head,
/// from the same cos/sin tables the GPU reads (`[positions, rot/2]`).
#[allow(clippy::too_many_arguments)]
pub fn rope(
    x: &[f32],
    heads: usize,
    head_dim: usize,
    cos: &[f32],
    sin: &[f32],
    rot_dim: usize,
    offset: usize,
    mode: RopeMode,
) -> Vec<f64> {
    let half = rot_dim / 2;
    let mut y: Vec<f64> = x.iter().map(|&v| v as f64).collect();
    for (r, (row, out)) in x.chunks(head_dim).zip(y.chunks_mut(head_dim)).enumerate() {
        let pos = offset + r / heads;
        for i in 0..half {
            let (i0, i1) = match mode {
                RopeMode::Interleaved => (2 * i, 2 * i + 1),
                RopeMode::HalfSplit => (i, i + half),
            };
            let (c, s) = (cos[pos * half + i] as f64, sin[pos * half + i] as f64);
            let (x0, x1) = (row[i0] as f64, row[i1] as f64);
            out[i0] = x0 * c - x1 * s;
            out[i1] = x0 * s + x1 * c;
        }
    }
    y
}

/// `table[ids[t]]` rows.
pub fn embedding(table: &[f32], d: usize, ids: &[u32]) -> Vec<f64> {
    ids.iter()
        .flat_map(|&id| {
            table[id as usize * d..(id as usize + 1) * d]
                .iter()
                .map(|&v| v as f64)
        })
        .collect()
}
