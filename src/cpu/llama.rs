//! Reference forward pass of a Llama-family decoder (RMSNorm, GQA attention with half-split
//! RoPE, SwiGLU, tied or untied head), in plain loops. Every arithmetic result goes through
//! `round`: the identity gives a float64 reference, `|x| x as f32 as f64` an f32 implementation
//! that sums sequentially without FMA (another correct f32 run, as a second device would be).

/// Shape of a Llama-family model.
#[derive(Clone, Copy, Debug)]
pub struct LlamaShape {
    /// Model width.
    pub d: usize,
    /// Query heads.
    pub heads: usize,
    /// Key/value heads.
    pub kv_heads: usize,
    /// Width of one head.
    pub head_dim: usize,
    /// MLP hidden width.
    pub hidden: usize,
    /// Vocabulary.
    pub vocab: usize,
    /// RMSNorm epsilon.
    pub eps: f64,
    /// RoPE base.
    pub rope_base: f32,
}

/// One decoder layer's weights (`[out, in]` matrices, `[d]` norms).
pub struct LlamaLayer<'a> {
    /// `input_layernorm` `[d]`.
    pub attn_norm: &'a [f32],
    /// `[heads·head_dim, d]`.
    pub q: &'a [f32],
    /// `[kv_heads·head_dim, d]`.
    pub k: &'a [f32],
    /// `[kv_heads·head_dim, d]`.
    pub v: &'a [f32],
    /// `[d, heads·head_dim]`.
    pub o: &'a [f32],
    /// `post_attention_layernorm` `[d]`.
    pub ffn_norm: &'a [f32],
    /// `[hidden, d]`.
    pub gate: &'a [f32],
    /// `[hidden, d]`.
    pub up: &'a [f32],
    /// `[d, hidden]`.
    pub down: &'a [f32],
}

/// A whole model's weights.
pub struct LlamaWeights<'a> {
    /// `[vocab, d]`.
    pub embed: &'a [f32],
    /// The decoder layers.
    pub layers: Vec<LlamaLayer<'a>>,
    /// Final norm `[d]`.
    pub norm: &'a [f32],
    /// `[vocab, d]` (the embedding when tied).
    pub lm_head: &'a [f32],
}

/// `y = x·wᵀ`, `x` `[n, din]`, `w` `[dout, din]` -> `[n, dout]`.
fn linear<R: Fn(f64) -> f64>(x: &[f64], w: &[f32], din: usize, round: &R) -> Vec<f64> {
    let dout = w.len() / din;
    let mut y = Vec::with_capacity(x.len() / din * dout);
    for row in x.chunks(din) {
        for o in 0..dout {
            let wr = &w[o * din..(o + 1) * din];
            let mut acc = 0.0;
            for (&a, &b) in row.iter().zip(wr) {
                acc = round(acc + round(a * b as f64));
            }
            y.push(acc);
        }
    }
    y
}

fn rmsnorm<R: Fn(f64) -> f64>(x: &[f64], w: &[f32], eps: f64, round: &R) -> Vec<f64> {
    let d = w.len();
    let mut y = Vec::with_capacity(x.len());
    for row in x.chunks(d) {
        let mut ss = 0.0;
        for &v in row {
            ss = round(ss + round(v * v));
        }
        let inv = round(1.0 / round(round(round(ss / d as f64) + eps).sqrt()));
        y.extend(
            row.iter()
                .zip(w)
                .map(|(&v, &g)| round(round(v * inv) * g as f64)),
        );
    }
    y
}

/// Half-split RoPE of `x` `[n, heads, head_dim]` at positions `0..n`, angles in fp32 as PyTorch.
fn rope<R: Fn(f64) -> f64>(x: &mut [f64], heads: usize, dh: usize, base: f32, round: &R) {
    let inv = super::rope::plain_inv_freq(base as f64, dh);
    let half = dh / 2;
    for (r, row) in x.chunks_mut(dh).enumerate() {
        let pos = (r / heads) as f32;
        for i in 0..half {
            let angle = (pos * inv[i]) as f64;
            let (c, s) = (round(angle.cos()), round(angle.sin()));
            let (a, b) = (row[i], row[i + half]);
            row[i] = round(round(a * c) - round(b * s));
            row[i + half] = round(round(b * c) + round(a * s));
        }
    }
}

/// Causal GQA attention: q `[n, heads, dh]`, k and v `[n, kv_heads, dh]` -> `[n, heads·dh]`.
fn attention<R: Fn(f64) -> f64>(
    q: &[f64],
    k: &[f64],
    v: &[f64],
    s: &LlamaShape,
    round: &R,
) -> Vec<f64> {
    let (h, kv, dh) = (s.heads, s.kv_heads, s.head_dim);
    let n = q.len() / (h * dh);
    let scale = round(1.0 / (dh as f64).sqrt());
    let mut out = vec![0.0; n * h * dh];
    for t in 0..n {
        for head in 0..h {
            let g = head / (h / kv);
            let qr = &q[(t * h + head) * dh..][..dh];
            let scores: Vec<f64> = (0..=t)
                .map(|j| {
                    let kr = &k[(j * kv + g) * dh..][..dh];
                    let mut acc = 0.0;
                    for (&a, &b) in qr.iter().zip(kr) {
                        acc = round(acc + round(a * b));
                    }
                    round(acc * scale)
                })
                .collect();
            let m = scores.iter().cloned().fold(f64::MIN, f64::max);
            let e: Vec<f64> = scores.iter().map(|&x| round((x - m).exp())).collect();
            let mut sum = 0.0;
            for &x in &e {
                sum = round(sum + x);
            }
            let o = &mut out[(t * h + head) * dh..][..dh];
            for (j, &p) in e.iter().enumerate() {
                let p = round(p / sum);
                let vr = &v[(j * kv + g) * dh..][..dh];
                for (acc, &x) in o.iter_mut().zip(vr) {
                    *acc = round(*acc + round(p * x));
                }
            }
        }
    }
    out
}

/// Runs `tokens` through the model; returns every layer's output `[n, d]` and the logits
/// `[n, vocab]`.
pub fn llama_forward<R: Fn(f64) -> f64>(
    w: &LlamaWeights,
    s: &LlamaShape,
    tokens: &[u32],
    round: R,
) -> (Vec<Vec<f64>>, Vec<f64>) {
    let (d, dh) = (s.d, s.head_dim);
    let mut x: Vec<f64> = tokens
        .iter()
        .flat_map(|&t| w.embed[t as usize * d..][..d].iter().map(|&v| v as f64))
        .collect();
    let mut hidden = Vec::with_capacity(w.layers.len());
    for l in &w.layers {
        let h = rmsnorm(&x, l.attn_norm, s.eps, &round);
        let mut q = linear(&h, l.q, d, &round);
        let mut k = linear(&h, l.k, d, &round);
        let v = linear(&h, l.v, d, &round);
        rope(&mut q, s.heads, dh, s.rope_base, &round);
        rope(&mut k, s.kv_heads, dh, s.rope_base, &round);
        let a = attention(&q, &k, &v, s, &round);
        let a = linear(&a, l.o, s.heads * dh, &round);
        x.iter_mut().zip(&a).for_each(|(x, a)| *x = round(*x + a));
        let h = rmsnorm(&x, l.ffn_norm, s.eps, &round);
        let g = linear(&h, l.gate, d, &round);
        let u = linear(&h, l.up, d, &round);
        let act: Vec<f64> = g
            .iter()
            .zip(&u)
            .map(|(&g, &u)| round(round(g / round(1.0 + round((-g).exp()))) * u))
            .collect();
        let f = linear(&act, l.down, s.hidden, &round);
        x.iter_mut().zip(&f).for_each(|(x, f)| *x = round(*x + f));
        hidden.push(x.clone());
    }
    let h = rmsnorm(&x, w.norm, s.eps, &round);
    let logits = linear(&h, w.lm_head, d, &round);
    (hidden, logits)
}
