//! MLA against Hugging Face transformers' DeepseekV2/V3 attention (committed fixtures from
//! reference/export_hf_mla.py): naive and absorbed paths, prefill and token-by-token decode,
//! and the compressed cache's exact size.

mod common;

use common::{fixture, max_diff, max_diff64, on_every_adapter, Golden};
use latentgpu::model::config::mla::MlaShape;
use latentgpu::model::layers::mla::{MlaLayer, MlaPath};
use latentgpu::model::WeightFile;
use latentgpu::ops::KvFormat;
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
    let rope = MlaLayer::rope_table(ctx, shape, 64).unwrap();
    let layer = MlaLayer::load(ctx, &mut file, shape.clone(), "", &rope).unwrap();
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
    let cache = layer.new_cache(ctx, 32, KvFormat::F32).unwrap();
    let d = c.shape.d;
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < c.n {
        let n = if pos == 0 { prefill } else { 1 };
        let path = if pos == 0 { prefill_path } else { decode_path };
        let x = GpuTensor::from_f32(ctx, "x", &[n, d], &c.x[pos * d..(pos + n) * d]).unwrap();
        let mut b = Batch::new(ctx);
        let y = layer
            .forward(&mut b, &x, pos, (&cache, None), path)
            .unwrap();
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
        let cache = l.new_cache(ctx, cap, KvFormat::F32).unwrap();
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

/// `a [r, k] · b [k, c]` in f64 with `Σ|a||b|` per entry (for the bound), `a`, `b` row-major.
fn matmul_f64(a: &[f32], b: &[f32], r: usize, k: usize, c: usize) -> (Vec<f64>, Vec<f64>) {
    let (mut out, mut mag) = (vec![0.0; r * c], vec![0.0; r * c]);
    for i in 0..r {
        for j in 0..c {
            for t in 0..k {
                let p = a[i * k + t] as f64 * b[t * c + j] as f64;
                out[i * c + j] += p;
                mag[i * c + j] += p.abs();
            }
        }
    }
    (out, mag)
}

#[test]
fn absorbed_matrices_built_on_the_gpu_match_an_f64_reference() {
    use latentgpu::model::layers::mla_absorb::absorbed_matrices;
    let mut rng = common::Rng::new(17);
    // (d, heads, kv_lora, nope, rope, v, q_in): awkward sizes, q_in ≠ d as with q_lora.
    for &(d, h, r, nope, rope, v, q_in) in &[
        (8, 1, 4, 2, 2, 3, 8),
        (33, 3, 17, 5, 4, 7, 21),
        (64, 2, 65, 16, 8, 24, 64),
    ] {
        let shape = MlaShape {
            d,
            heads: h,
            q_lora_rank: None,
            kv_lora_rank: r,
            qk_nope_head_dim: nope,
            qk_rope_head_dim: rope,
            v_head_dim: v,
            norm_eps: 1e-6,
            rope_base: 10000.0,
            yarn: None,
        };
        let qk = nope + rope;
        let kv_b = rng.vec(h * (nope + v) * r, -1.0, 1.0);
        let q = rng.vec(h * qk * q_in, -1.0, 1.0);
        let o = rng.vec(d * h * v, -1.0, 1.0);
        // The reference, head by head, as the CPU built it before.
        let (mut q_ref, mut q_mag) = (Vec::new(), Vec::new());
        let mut o_ref = vec![(0.0, 0.0); d * h * r];
        for hd in 0..h {
            let uk = &kv_b[hd * (nope + v) * r..(hd * (nope + v) + nope) * r];
            let uk_t: Vec<f32> = (0..r * nope)
                .map(|i| uk[(i % nope) * r + i / nope])
                .collect();
            let (block, mag) = matmul_f64(
                &uk_t,
                &q[hd * qk * q_in..(hd * qk + nope) * q_in],
                r,
                nope,
                q_in,
            );
            q_ref.extend(block);
            q_mag.extend(mag);
            for &w in &q[(hd * qk + nope) * q_in..(hd + 1) * qk * q_in] {
                q_ref.push(w as f64);
                q_mag.push(0.0);
            }
            let wo_h: Vec<f32> = (0..d * v)
                .map(|i| o[(i / v) * h * v + hd * v + i % v])
                .collect();
            let uv = &kv_b[(hd * (nope + v) + nope) * r..(hd + 1) * (nope + v) * r];
            let (block, mag) = matmul_f64(&wo_h, uv, d, v, r);
            for row in 0..d {
                for j in 0..r {
                    o_ref[row * h * r + hd * r + j] = (block[row * r + j], mag[row * r + j]);
                }
            }
        }
        on_every_adapter(|ctx| {
            let up = |label: &str, dims: &[usize], data: &[f32]| {
                GpuTensor::from_f32(ctx, label, dims, data).unwrap()
            };
            let (g_kv_b, g_q, g_o) = (
                up("kv_b", &[h * (nope + v), r], &kv_b),
                up("q", &[h * qk, q_in], &q),
                up("o", &[d, h * v], &o),
            );
            let mut b = Batch::new(ctx);
            let (qa, oa) = absorbed_matrices(&mut b, &shape, &g_kv_b, &g_q, &g_o).unwrap();
            assert_eq!(qa.shape(), &[h * (r + rope), q_in]);
            assert_eq!(oa.shape(), &[d, h * r]);
            let out = b.read(&[&qa, &oa]).unwrap();
            // An f32 dot of k terms: at most k·u·Σ|a||b| off (Higham's γ_k), plus the final
            // rounding of the value itself; copied weights (mag 0) are exact.
            let check = |what: &str, got: &[f32], want: &[(f64, f64)], k: usize| {
                assert_eq!(got.len(), want.len(), "{what}: length");
                for (i, (&g, &(w, mag))) in got.iter().zip(want).enumerate() {
                    let tol = (k as f64 + 1.0) * common::U * mag.max(w.abs());
                    assert!(
                        (g as f64 - w).abs() <= tol,
                        "{what} {d}/{h}/{r}: entry {i}: {g} vs {w} (tol {tol:e}) on {}",
                        ctx.name()
                    );
                }
            };
            let q_want: Vec<(f64, f64)> =
                q_ref.iter().copied().zip(q_mag.iter().copied()).collect();
            check("absorbed q", &out[0], &q_want, nope);
            check("absorbed o", &out[1], &o_ref, v);
        });
    }
}
