//! The GPU router against transformers' own DeepSeek routers on their own logits
//! (`reference/export_router_fixtures.py`).

mod common;

use common::numeric::U;
use common::on_every_adapter;
use latentgpu::gpu::{Batch, GpuTensor};
use latentgpu::ops::{self, RouteMethod, Routing};
use serde_json::Value;

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

/// Same experts and weights as transformers for every token. In the two planted rows of ties
/// (every logit equal; two experts equal and best), which of the tied experts or groups is
/// chosen is `torch.topk`'s own business: on the CPU it is a quickselect's
/// (`topk([1, 3, 2, 3, 0, 3], 2)` gives indices 3 and 5), while ours takes the lower index, as
/// the reference does. There the weights must agree, and the experts be the reference's.
#[test]
fn routing_matches_transformers_routers() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/moe/routers.json"
    );
    let fixture: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    on_every_adapter(|ctx| {
        for case in fixture["cases"].as_array().unwrap() {
            let name = case["name"].as_str().unwrap();
            let experts = case["experts"].as_u64().unwrap() as usize;
            let how = Routing {
                method: match case["method"].as_str().unwrap() {
                    "greedy" => RouteMethod::Greedy,
                    "group_limited_greedy" => RouteMethod::GroupLimitedGreedy,
                    _ => RouteMethod::NoauxTc,
                },
                top_k: case["top_k"].as_u64().unwrap() as usize,
                groups: case["n_group"].as_u64().unwrap() as usize,
                topk_group: case["topk_group"].as_u64().unwrap() as usize,
                // transformers 5's V2 router does not normalise.
                norm_topk_prob: case["norm_topk_prob"].as_bool().unwrap()
                    && case["method"] == "noaux_tc",
                scaling: case["routed_scaling_factor"].as_f64().unwrap() as f32,
            };
            let rows = case["logits"].as_array().unwrap();
            let logits: Vec<f32> = rows.iter().flat_map(floats).collect();
            let g_logits = GpuTensor::from_f32(ctx, "logits", &[rows.len(), experts], &logits);
            let g_bias = GpuTensor::from_f32(ctx, "bias", &[experts], &floats(&case["bias"]));
            let mut b = Batch::new(ctx);
            let (ids, weights) =
                ops::moe_route(&mut b, &g_logits.unwrap(), &g_bias.unwrap(), &how).unwrap();
            let ids = pollster::block_on(b.read_u32_async(&[&ids]))
                .unwrap()
                .remove(0);
            let weights = weights.read(ctx).unwrap();
            let (want_ids, _) =
                latentgpu::cpu::moe_route(&logits, &floats(&case["bias"]), experts, &how);
            // Both are float32 scores: each within (26 + experts + 2·top_k)·u of the exact
            // value (see the kernel test), so twice that apart.
            let rel = 2.0 * (26.0 + experts as f64 + 2.0 * how.top_k as f64) * U;
            let k = how.top_k;
            for (t, chosen) in case["chosen"].as_array().unwrap().iter().enumerate() {
                let theirs_ids: Vec<u32> = chosen["ids"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|i| i.as_u64().unwrap() as u32)
                    .collect();
                let theirs_w = floats(&chosen["weights"]);
                assert_eq!(
                    (theirs_ids.len(), theirs_w.len()),
                    (k, k),
                    "{name} token {t}: fixture"
                );
                // Ours are best first by the choice (V3: score plus bias), the fixture's by
                // weight: both sorted as the fixture is.
                let mut ours: Vec<(f32, u32)> =
                    (t * k..(t + 1) * k).map(|i| (weights[i], ids[i])).collect();
                ours.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
                let ours_w: Vec<f32> = ours.iter().map(|p| p.0).collect();
                let ours_ids: Vec<u32> = ours.iter().map(|p| p.1).collect();
                for (j, (&a, &b)) in ours_w.iter().zip(&theirs_w).enumerate() {
                    let tol = rel * (b as f64).abs() + 1e-30;
                    assert!(
                        ((a - b) as f64).abs() <= tol,
                        "{name} token {t}: weight {j} {a} vs transformers' {b}"
                    );
                }
                if t >= 2 {
                    // Experts whose weight no other chosen one shares must be the same; those
                    // tied (at weight 0 when top_k passes the experts of the kept groups) are
                    // topk's choice, and weigh nothing.
                    for j in 0..k {
                        let w = theirs_w[j];
                        if w > 0.0 && theirs_w.iter().filter(|&&x| x == w).count() == 1 {
                            assert_eq!(ours_ids[j], theirs_ids[j], "{name} token {t}: expert {j}");
                        }
                    }
                } else {
                    // Planted ties: transformers' choice among them is its quickselect's; ours
                    // is the reference's, the lower index first.
                    let mut want = want_ids[t * k..(t + 1) * k].to_vec();
                    let mut got = ours_ids.clone();
                    want.sort();
                    got.sort();
                    assert_eq!(got, want, "{name} token {t}");
                }
            }
        }
    });
}
