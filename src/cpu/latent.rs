//! Reference three-phase latent attention, bidirectional and causal (docs/latent-attention.md),
//! in f64 from the f32 weights.

use super::attention::attention;
use super::linear;
use crate::ops::RopeMode;

/// The weights of one latent layer as the GPU sees them (each projection `[d, d]`, `[out, in]`).
pub struct LatentWeights<'a> {
    /// Latents `[M, d]`.
    pub latents: &'a [f32],
    /// Phase 1: q (applied to latents), k, v (applied to tokens), o.
    pub gather: [&'a [f32]; 4],
    /// Phase 2: q, k, v, o (applied to latents); `None` when synthesis is off.
    pub synth: Option<[&'a [f32]; 4]>,
    /// Phase 3: q (applied to tokens), k, v (applied to latents), o.
    pub broadcast: [&'a [f32]; 4],
    /// Latents M.
    pub m: usize,
    /// Width d.
    pub d: usize,
    /// Heads h.
    pub heads: usize,
}

fn add(a: &[f64], b: &[f64]) -> Vec<f64> {
    a.iter().zip(b).map(|(x, y)| x + y).collect()
}

impl LatentWeights<'_> {
    fn dh(&self) -> usize {
        self.d / self.heads
    }

    fn scale(&self) -> f32 {
        1.0 / (self.dh() as f32).sqrt()
    }

    /// Non-causal multi-head attention of `nq` queries over `nk` keys/values (all `[_, d]`).
    fn attend(
        &self,
        q: &[f64],
        k: &[f64],
        v: &[f64],
        nq: usize,
        nk: usize,
        causal: bool,
    ) -> Vec<f64> {
        let (h, dh) = (self.heads, self.dh());
        attention(q, k, v, nq, nk, h, h, dh, dh, self.scale(), causal)
    }

    /// `L2` from the gathered summary `g` `[M, d]`: `L1 = L + g·Wo1ᵀ`, then phase 2.
    fn latents_after(&self, g: &[f64]) -> Vec<f64> {
        let d = self.d;
        let l: Vec<f64> = self.latents.iter().map(|&v| v as f64).collect();
        let l1 = add(&l, &linear(g, self.gather[3], d));
        match self.synth {
            None => l1,
            Some([wq, wk, wv, wo]) => {
                let a = self.attend(
                    &linear(&l1, wq, d),
                    &linear(&l1, wk, d),
                    &linear(&l1, wv, d),
                    self.m,
                    self.m,
                    false,
                );
                add(&l1, &linear(&a, wo, d))
            }
        }
    }

    /// The seeds' three equations on `x` `[n, d]`.
    pub fn bidirectional(&self, x: &[f32], n: usize) -> Vec<f64> {
        let d = self.d;
        let x: Vec<f64> = x.iter().map(|&v| v as f64).collect();
        let l: Vec<f64> = self.latents.iter().map(|&v| v as f64).collect();
        let q1 = linear(&l, self.gather[0], d);
        let g = self.attend(
            &q1,
            &linear(&x, self.gather[1], d),
            &linear(&x, self.gather[2], d),
            self.m,
            n,
            false,
        );
        let l2 = self.latents_after(&g);
        let [wq, wk, wv, wo] = self.broadcast;
        let y = self.attend(
            &linear(&x, wq, d),
            &linear(&l2, wk, d),
            &linear(&l2, wv, d),
            n,
            self.m,
            false,
        );
        linear(&y, wo, d)
    }

    /// The causal chunked form on `x` `[n, d]` at positions `0..n`: chunk length `chunk`, RoPE on
    /// the first `rot` values of each head of token queries and local keys, from the f32 tables
    /// `cos`, `sin` `[positions, rot/2]`.
    #[allow(clippy::too_many_arguments)]
    pub fn causal(
        &self,
        x: &[f32],
        n: usize,
        chunk: usize,
        rot: usize,
        cos: &[f32],
        sin: &[f32],
        mode: RopeMode,
    ) -> Vec<f64> {
        let (d, h, dh, m) = (self.d, self.heads, self.dh(), self.m);
        let x: Vec<f64> = x.iter().map(|&v| v as f64).collect();
        let l: Vec<f64> = self.latents.iter().map(|&v| v as f64).collect();
        let q1 = linear(&l, self.gather[0], d);
        let k1 = linear(&x, self.gather[1], d);
        let v1 = linear(&x, self.gather[2], d);
        let rotate = |y: &mut [f64]| {
            for (row, vals) in y.chunks_mut(dh).enumerate() {
                let pos = row / h;
                for i in 0..rot / 2 {
                    let (a, b) = match mode {
                        RopeMode::Interleaved => (2 * i, 2 * i + 1),
                        RopeMode::HalfSplit => (i, i + rot / 2),
                    };
                    let (c, s) = (cos[pos * rot / 2 + i] as f64, sin[pos * rot / 2 + i] as f64);
                    let (x0, x1) = (vals[a], vals[b]);
                    vals[a] = x0 * c - x1 * s;
                    vals[b] = x0 * s + x1 * c;
                }
            }
        };
        let mut q3 = linear(&x, self.broadcast[0], d);
        rotate(&mut q3);
        let mut k1r = k1.clone();
        rotate(&mut k1r);
        let mut g = vec![0.0; m * d];
        let mut out = Vec::with_capacity(n * d);
        for c0 in (0..n).step_by(chunk) {
            let c1 = (c0 + chunk).min(n);
            let l2 = self.latents_after(&g);
            let mut k3 = linear(&l2, self.broadcast[1], d);
            for (i, v) in k3.iter_mut().enumerate() {
                if i % dh < rot {
                    *v = 0.0;
                }
            }
            let v3 = linear(&l2, self.broadcast[2], d);
            let keys = [&k3[..], &k1r[c0 * d..c1 * d]].concat();
            let values = [&v3[..], &v1[c0 * d..c1 * d]].concat();
            out.extend(self.attend(
                &q3[c0 * d..c1 * d],
                &keys,
                &values,
                c1 - c0,
                m + c1 - c0,
                true,
            ));
            if c1 - c0 == chunk {
                g = self.attend(&q1, &k1[..c1 * d], &v1[..c1 * d], m, c1, false);
            }
        }
        linear(&out, self.broadcast[3], d)
    }
}
