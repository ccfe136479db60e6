//! Mixture-of-experts routing in f64, as transformers' DeepSeek routers compute it.

use crate::ops::{RouteMethod, Routing};

/// The indices of the `k` largest of `values` among `allowed`, largest first, the lower index
/// first on ties (as `torch.topk`).
fn top_k(values: &[f64], allowed: impl Fn(usize) -> bool, k: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..values.len()).filter(|&i| allowed(i)).collect();
    // Stable: equal values keep their index order.
    order.sort_by(|&a, &b| values[b].total_cmp(&values[a]));
    order.truncate(k);
    order
}

/// Each token's experts, best first, and their weights for `logits` `[tokens, experts]`.
pub fn moe_route(
    logits: &[f32],
    bias: &[f32],
    experts: usize,
    how: &Routing,
) -> (Vec<u32>, Vec<f64>) {
    let (mut ids, mut weights) = (Vec::new(), Vec::new());
    for row in logits.chunks(experts) {
        let x: Vec<f64> = row.iter().map(|&v| v as f64).collect();
        let scores: Vec<f64> = match how.method {
            RouteMethod::NoauxTc => x.iter().map(|v| 1.0 / (1.0 + (-v).exp())).collect(),
            _ => {
                let m = x.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let e: Vec<f64> = x.iter().map(|v| (v - m).exp()).collect();
                let sum: f64 = e.iter().sum();
                e.iter().map(|v| v / sum).collect()
            }
        };
        let mut choice: Vec<f64> = match how.method {
            RouteMethod::NoauxTc => scores
                .iter()
                .zip(bias)
                .map(|(s, &b)| s + b as f64)
                .collect(),
            _ => scores.clone(),
        };
        if how.method != RouteMethod::Greedy && how.groups > 1 {
            let size = experts / how.groups;
            let group_scores: Vec<f64> = choice
                .chunks(size)
                .map(|g| {
                    let best = top_k(g, |_| true, 2);
                    match how.method {
                        RouteMethod::NoauxTc => best.iter().map(|&i| g[i]).sum(),
                        _ => g[best[0]],
                    }
                })
                .collect();
            let kept = top_k(&group_scores, |_| true, how.topk_group);
            for (e, c) in choice.iter_mut().enumerate() {
                if !kept.contains(&(e / size)) {
                    *c = match how.method {
                        RouteMethod::NoauxTc => f64::NEG_INFINITY,
                        _ => 0.0,
                    };
                }
            }
        }
        let chosen = top_k(&choice, |_| true, how.top_k);
        let mut w: Vec<f64> = chosen
            .iter()
            .map(|&e| match how.method {
                RouteMethod::NoauxTc => scores[e],
                _ => choice[e],
            })
            .collect();
        if how.norm_topk_prob {
            let sum: f64 = w.iter().sum::<f64>() + 1e-20;
            w.iter_mut().for_each(|v| *v /= sum);
        }
        ids.extend(chosen.iter().map(|&e| e as u32));
        weights.extend(w.iter().map(|v| v * how.scaling as f64));
    }
    (ids, weights)
}

/// The routed experts in f64: `y[t] = Σ_j weights[t, j] · down_e(act(gate_e·x[t]) ⊙ up_e·x[t])`
/// with `e = ids[t, j]`, for `x` `[tokens, d]`, `gate`, `up` `[experts, inter, d]`, `down`
/// `[experts, d, inter]`; `act` takes the gate's value (rounded to f32, as the GPU holds it).
#[allow(clippy::too_many_arguments)]
pub fn moe_ffn(
    x: &[f32],
    (ids, weights): (&[u32], &[f32]),
    (gate, up, down): (&[f32], &[f32], &[f32]),
    d: usize,
    inter: usize,
    act: impl Fn(f32) -> f64,
) -> Vec<f64> {
    let top_k = ids.len() / (x.len() / d).max(1);
    let mut y = Vec::with_capacity(x.len());
    for (t, row) in x.chunks(d).enumerate() {
        let mut out = vec![0.0f64; d];
        for j in 0..top_k {
            let (e, w) = (ids[t * top_k + j] as usize, weights[t * top_k + j] as f64);
            let h: Vec<f64> = (0..inter)
                .map(|r| {
                    let at = (e * inter + r) * d;
                    let dot = |m: &[f32]| -> f64 {
                        row.iter()
                            .zip(&m[at..at + d])
                            .map(|(&a, &b)| a as f64 * b as f64)
                            .sum()
                    };
                    act(dot(gate) as f32) * dot(up)
                })
                .collect();
            for (o, v) in out.iter_mut().enumerate() {
                let at = (e * d + o) * inter;
                let dot: f64 = h
                    .iter()
                    .zip(&down[at..at + inter])
                    .map(|(a, &b)| a * b as f64)
                    .sum();
                *v += w * dot;
            }
        }
        y.extend(out);
    }
    y
}
