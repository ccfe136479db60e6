//! MLA against Hugging Face transformers' DeepseekV2/V3 attention (committed fixtures from
//! reference/export_hf_mla.py): naive and absorbed paths, prefill and token-by-token decode,
//! and the compressed cache's exact size.

mod common;

use common::{fixture, max_diff, max_diff64, on_every_adapter, Golden};
use latentgpu::model::mla::{MlaLayer, MlaPath, MlaShape};
use latentgpu::model::WeightFile;
use latentgpu::{Batch, GpuContext, GpuTensor};

const CASES: &[&str] = &[
    "v2-no-qlora",
    "v2-qlora-yarn",
    "v3-qlora",
    "v3-no-qlora-yarn",
];

struct Case {
    shape: MlaShape,
    x: Vec<f32>,
    n: usize,
    ref64: Vec<f64>,
    hf32_err: f64,
}

fn case(name: &str) -> Case {
    let dir = fixture("hf").join(name);
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    let shape = MlaShape::from_hf_config(&cfg).unwrap();
    let golden = Golden::open(&dir.join("golden.safetensors"));
    let mut file = WeightFile::open(&dir.join("golden.safetensors")).unwrap();
    let x = file.take("x", &[19, shape.d]).unwrap();
    let (ref64, _) = golden.f64("out_f64");
    let (hf32, _) = golden.f64("out_f32");
    let positions = golden.tokens("position_ids");
    assert_eq!(positions, (0..19).collect::<Vec<u32>>());
    Case {
        hf32_err: max_diff64(&hf32, &ref64),
        shape,
        x,
        n: 19,
        ref64,
    }
}

fn layer(ctx: &GpuContext, name: &str, shape: &MlaShape) -> MlaLayer {
    let mut file = WeightFile::open(&fixture("hf").join(name).join("weights.safetensors")).unwrap();
    let layer = MlaLayer::load(ctx, &mut file, shape.clone(), "", 64).unwrap();
    file.finish().unwrap();
    layer
}

/// Runs the layer over the tokens: `prefill` tokens in one call, then one call per token.
fn run(
    ctx: &GpuContext,
    layer: &MlaLayer,
    c: &Case,
    prefill: usize,
    prefill_path: MlaPath,
    decode_path: MlaPath,
) -> Vec<f32> {
    let cache = layer.new_cache(ctx, 32).unwrap();
    let d = c.shape.d;
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < c.n {
        let n = if pos == 0 { prefill } else { 1 };
        let path = if pos == 0 { prefill_path } else { decode_path };
        let x = GpuTensor::from_f32(ctx, "x", &[n, d], &c.x[pos * d..(pos + n) * d]).unwrap();
        let mut b = Batch::new(ctx);
        let y = layer.forward(&mut b, &x, pos, &cache, path).unwrap();
        out.extend(b.read(&[&y]).unwrap().remove(0));
        pos += n;
    }
    out
}

/// math.md §6: our error against float64 within twice transformers' own fp32 error, the same
/// layer in the same run. The fixtures are tiny (K <= 60), so the fp32 errors are a few ULP of
/// outputs of size ~1; the floor of 4 ULP of the largest output keeps the rule meaningful when
/// transformers happens to round well.
fn tol(c: &Case) -> f64 {
    let scale = c.ref64.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    2.0 * c.hf32_err.max(4.0 * common::U * scale)
}

#[test]
fn naive_and_absorbed_match_hugging_face() {
    on_every_adapter(|ctx| {
        for name in CASES {
            let c = case(name);
            let l = layer(ctx, name, &c.shape);
            let naive = run(ctx, &l, &c, c.n, MlaPath::Naive, MlaPath::Naive);
            let absorbed = run(ctx, &l, &c, c.n, MlaPath::Absorbed, MlaPath::Absorbed);
            let (e_naive, e_abs) = (max_diff(&naive, &c.ref64), max_diff(&absorbed, &c.ref64));
            eprintln!(
                "{name} on {}: naive {e_naive:.3e}, absorbed {e_abs:.3e}, transformers fp32 {:.3e}",
                ctx.name(),
                c.hf32_err
            );
            assert!(
                e_naive <= tol(&c),
                "{name}: naive error {e_naive:.3e} > {:.3e}",
                tol(&c)
            );
            assert!(
                e_abs <= tol(&c),
                "{name}: absorbed error {e_abs:.3e} > {:.3e}",
                tol(&c)
            );
            let between = naive
                .iter()
                .zip(&absorbed)
                .fold(0.0f64, |m, (a, b)| m.max((a - b).abs() as f64));
            assert!(
                between <= 2.0 * tol(&c),
                "{name}: naive vs absorbed differ by {between:.3e}"
            );
        }
    });
}

#[test]
fn prefill_then_absorbed_decode_matches_hugging_face() {
    on_every_adapter(|ctx| {
        for name in CASES {
            let c = case(name);
            let l = layer(ctx, name, &c.shape);
            let out = run(ctx, &l, &c, 4, MlaPath::Naive, MlaPath::Absorbed);
            let e = max_diff(&out, &c.ref64);
            assert!(
                e <= tol(&c),
                "{name}: prefill + decode error {e:.3e} > {:.3e}",
                tol(&c)
            );
        }
    });
}

#[test]
fn cache_holds_exactly_the_compressed_numbers() {
    let ctx = &common::contexts()[0];
    for name in CASES {
        let c = case(name);
        let l = layer(ctx, name, &c.shape);
        let cap = 32;
        let cache = l.new_cache(ctx, cap).unwrap();
        let per_token = (c.shape.kv_lora_rank + c.shape.qk_rope_head_dim) as u64 * 4;
        assert_eq!(cache.bytes(), cap as u64 * per_token, "{name}");
    }
}

#[test]
fn cpu_reference_matches_hugging_face_and_the_gpu_naive_path() {
    on_every_adapter(|ctx| {
        for name in CASES {
            let c = case(name);
            let mut file =
                WeightFile::open(&fixture("hf").join(name).join("weights.safetensors")).unwrap();
            let s = &c.shape;
            let (h, qk, r, d) = (s.heads, s.qk_head_dim(), s.kv_lora_rank, s.d);
            let q_a = s.q_lora_rank.map(|ql| {
                (
                    file.take("q_a_proj.weight", &[ql, d]).unwrap(),
                    file.take("q_a_layernorm.weight", &[ql]).unwrap(),
                )
            });
            let q = match s.q_lora_rank {
                Some(ql) => file.take("q_b_proj.weight", &[h * qk, ql]).unwrap(),
                None => file.take("q_proj.weight", &[h * qk, d]).unwrap(),
            };
            let kv_a = file
                .take("kv_a_proj_with_mqa.weight", &[r + s.qk_rope_head_dim, d])
                .unwrap();
            let kv_norm = file.take("kv_a_layernorm.weight", &[r]).unwrap();
            let kv_b = file
                .take(
                    "kv_b_proj.weight",
                    &[h * (s.qk_nope_head_dim + s.v_head_dim), r],
                )
                .unwrap();
            let o = file.take("o_proj.weight", &[d, h * s.v_head_dim]).unwrap();
            let w = latentgpu::cpu::MlaWeights {
                q_a: q_a.as_ref().map(|(a, n)| (&a[..], &n[..])),
                q: &q,
                kv_a: &kv_a,
                kv_norm: &kv_norm,
                kv_b: &kv_b,
                o: &o,
            };
            let cpu = latentgpu::cpu::mla_naive(s, &w, &c.x, c.n);
            // The f64 reference differs from transformers' float64 only by the f32 rounding of
            // the RoPE tables (both build them in fp32): far below the fp32 errors.
            let cpu_vs_hf = common::max_diff64(&cpu, &c.ref64);
            assert!(
                cpu_vs_hf <= c.hf32_err,
                "{name}: CPU reference vs transformers float64 {cpu_vs_hf:.3e}"
            );
            let l = layer(ctx, name, s);
            let gpu = run(ctx, &l, &c, c.n, MlaPath::Naive, MlaPath::Naive);
            let e = max_diff(&gpu, &cpu);
            assert!(
                e <= tol(&c),
                "{name}: GPU naive vs CPU reference {e:.3e} > {:.3e}",
                tol(&c)
            );
        }
    });
}
