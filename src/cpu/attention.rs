//! Reference multi-head attention: explicit scores, f64 softmax, f64 weighted sum.

/// q `[n_q, heads, d_qk]`, k `[≥n_kv, kv_heads, d_qk]`, v `[≥n_kv, kv_heads, d_v]` -> o
/// `[n_q, heads, d_v]`. Causal: query `i` sees keys `j <= n_kv − n_q + i`.
#[allow(clippy::too_many_arguments)]
pub fn attention<T: Copy + Into<f64>>(
    q: &[T],
    k: &[T],
    v: &[T],
    n_q: usize,
    n_kv: usize,
    heads: usize,
    kv_heads: usize,
    d_qk: usize,
    d_v: usize,
    scale: f32,
    causal: bool,
) -> Vec<f64> {
    let window = 0;
    attention_windowed(
        q, k, v, n_q, n_kv, heads, kv_heads, d_qk, d_v, scale, causal, window,
    )
}

/// As [`attention`], with a causal sliding window: query `i` (at key position
/// `p = n_kv − n_q + i`) sees only keys `p − window < j <= p`; 0 means no window.
#[allow(clippy::too_many_arguments)]
pub fn attention_windowed<T: Copy + Into<f64>>(
    q: &[T],
    k: &[T],
    v: &[T],
    n_q: usize,
    n_kv: usize,
    heads: usize,
    kv_heads: usize,
    d_qk: usize,
    d_v: usize,
    scale: f32,
    causal: bool,
    window: usize,
) -> Vec<f64> {
    let group = heads / kv_heads;
    let mut o = vec![0.0; n_q * heads * d_v];
    for i in 0..n_q {
        let visible = if causal { n_kv - n_q + i + 1 } else { n_kv };
        let first = if causal && window > 0 {
            visible.saturating_sub(window)
        } else {
            0
        };
        for h in 0..heads {
            let g = h / group;
            let qrow = &q[(i * heads + h) * d_qk..][..d_qk];
            let scores: Vec<f64> = (first..visible)
                .map(|j| {
                    let krow = &k[(j * kv_heads + g) * d_qk..][..d_qk];
                    let dot: f64 = qrow
                        .iter()
                        .zip(krow)
                        .map(|(&a, &b)| a.into() * b.into())
                        .sum();
                    dot * scale as f64
                })
                .collect();
            let m = scores.iter().cloned().fold(f64::MIN, f64::max);
            let e: Vec<f64> = scores.iter().map(|s| (s - m).exp()).collect();
            let sum: f64 = e.iter().sum();
            let out = &mut o[(i * heads + h) * d_v..][..d_v];
            for (j, p) in (first..visible).zip(&e) {
                let vrow = &v[(j * kv_heads + g) * d_v..][..d_v];
                for (acc, &vv) in out.iter_mut().zip(vrow) {
                    *acc += p / sum * vv.into();
                }
            }
        }
    }
    o
}
