//! The quantized kernels' checks against their f64 references, for every format: the products
//! (one row, several, gated, split into row blocks), the embedding gather and the routed
//! experts, on weights made of random blocks of each format as llama.cpp lays them out (so the
//! repacking of a file's blocks is checked with the kernels), and the host quantizers' error.

use super::kernel_checks::{expert_ids, experts_reference, upload};
use super::numeric::{assert_close_by, bits, Rng, U};
use latentgpu::ops::{self, BinaryOp, QuantHost, QuantScheme, QuantWeight};
use latentgpu::{Batch, GpuContext, GpuTensor};

/// Byte offsets of the f16 scales and minimums in one of `scheme`'s file blocks
/// (`ggml-common.h`).
fn f16_fields(scheme: QuantScheme) -> &'static [usize] {
    match scheme {
        QuantScheme::Q8_0 | QuantScheme::Q4_0 | QuantScheme::Q5_0 => &[0],
        QuantScheme::Q4_1 | QuantScheme::Q5_1 | QuantScheme::Q4K | QuantScheme::Q5K => &[0, 2],
        QuantScheme::Q2K => &[80, 82],
        QuantScheme::Q3K => &[108],
        QuantScheme::Q6K => &[208],
    }
}

/// `[rows, k]` of random blocks of `scheme` as a file holds them (random codes and sub-block
/// scales; the f16 scales in [2^-6, 2^-1], one in 8 a subnormal f16 instead (the K-quants'
/// kernels decode the f16 bits themselves), minimums of either sign for q4_1 and q5_1), and
/// the same blocks repacked as the loader repacks them.
pub fn random_blocks(rng: &mut Rng, scheme: QuantScheme, rows: usize, k: usize) -> QuantHost {
    let (per, size) = scheme.file_block();
    let blocks = rows * k / per;
    let mut bytes = Vec::with_capacity(blocks * size);
    for _ in 0..blocks {
        let mut block: Vec<u8> = (0..size).map(|_| rng.next_u64() as u8).collect();
        for (i, &at) in f16_fields(scheme).iter().enumerate() {
            let magnitude = 2f32.powf(rng.uniform(-10.0, -5.0));
            // q4_1's and q5_1's minimum (the second field) is a value, not a scale.
            let flat = matches!(scheme, QuantScheme::Q4_1 | QuantScheme::Q5_1);
            let sign = if i == 1 && flat && rng.uniform(0.0, 1.0) < 0.5 {
                -1.0
            } else {
                1.0
            };
            let v = match rng.next_u64() % 8 {
                0 => half::f16::from_bits(1 + (rng.next_u64() % 1023) as u16),
                _ => half::f16::from_f32(magnitude * 16.0),
            };
            let v = if sign < 0.0 { -v } else { v };
            block[at..at + 2].copy_from_slice(&v.to_le_bytes());
        }
        bytes.extend(block);
    }
    ops::quant::from_ggml_blocks(scheme, &bytes).expect("whole blocks")
}

/// The shapes `(rows of x, n, k)` a format's products are checked on: one row, one block, primes,
/// rows just past a tile, several row blocks, and from 16 rows of x on the dequantized path.
fn shapes(scheme: QuantScheme) -> &'static [(usize, usize, usize)] {
    match scheme.row_multiple() {
        32 => &[
            (1, 1, 32),
            (1, 67, 96),
            (3, 7, 256),
            (5, 130, 64),
            (9, 65, 96),
            (2, 257, 2048),
        ],
        _ => &[
            (1, 1, 256),
            (1, 67, 512),
            (3, 7, 256),
            (5, 33, 768),
            (2, 257, 2048),
        ],
    }
}

/// Per weight, what the rounding errors of a product scale with: `|d·q| + |m - offset·d|` (the
/// matrix-vector kernels sum the two apart), at least `|w|`.
fn magnitudes(q: &QuantHost) -> Vec<f64> {
    let h = q.scheme.halves();
    let offset = q.scheme.offset() as f64;
    let mut out = Vec::with_capacity(q.chunks() * 32);
    for c in 0..q.chunks() {
        for (i, code) in q.centered_codes(c).iter().enumerate() {
            let half = c * h + i * h / 32;
            let d = q.scales[half] as f64;
            let m = q.mins.get(half).copied().unwrap_or(0.0) as f64;
            let raw = *code as f64 + offset;
            out.push((d * raw).abs() + (m - offset * d).abs());
        }
    }
    out
}

/// Every format: the products with in-kernel dequantization match the f64 product with the
/// dequantized weights, one row (the matrix-vector kernel) and several (the tiled one); row
/// blocks give the same values bit for bit; the fused gated product of one row equals the two
/// products and the elementwise op bit for bit; the embedding gather gives the dequantized rows
/// exactly.
pub async fn quant_products(ctx: &GpuContext) {
    let mut rng = Rng::new(41);
    for scheme in QuantScheme::ALL {
        let name = scheme.name();
        for &(m, n, k) in shapes(scheme) {
            let x = rng.vec(m * k, -1.0, 1.0);
            let q = random_blocks(&mut rng, scheme, n, k);
            let deq = ops::dequantize(&q);
            let magnitude = magnitudes(&q);
            assert_eq!(deq.len(), n * k);
            let record_row = scheme.gpu_bytes(k);
            let upload_q = |rows_per_block: u64| {
                QuantWeight::upload(ctx, "w", [n, k], &q, rows_per_block * record_row).unwrap()
            };
            let gx = upload(ctx, "x", &[m, k], &x);
            let whole = upload_q(u64::MAX / record_row);
            let mut b = Batch::new(ctx);
            let y = ops::matmul_quant(&mut b, &gx, &whole).unwrap();
            let out = b.read_async(&[&y]).await.unwrap().remove(0);
            let mut reference = Vec::with_capacity(m * n);
            let mut bound: Vec<f64> = Vec::with_capacity(m * n);
            for xr in x.chunks(k) {
                for (dr, mr) in deq.chunks(k).zip(magnitude.chunks(k)) {
                    let terms = xr.iter().zip(dr).map(|(a, d)| *a as f64 * *d as f64);
                    reference.push(terms.sum::<f64>());
                    bound.push(xr.iter().zip(mr).map(|(a, w)| (*a as f64).abs() * w).sum());
                }
            }
            // One row (matvec): per chunk half, 4 quads of code·x accumulate by fma in 4
            // lanes, the lanes add, the half's scale multiplies once and its Σx times the low
            // is added; k/32 chunks accumulate: (k/32 + 12)·u of Σ|x|·(|d·q| + |m - o·d|).
            // Several rows (tiled, or from 16 rows the f32 kernels on the dequantized rows): each
            // dequantized weight is exact (rounded once with a minimum, as the reference's) and
            // k products accumulate serially: (k + 1)·u of Σ|x·w|.
            let c = match m {
                1 => (k / 32) as f64 + 12.0,
                _ => k as f64 + 1.0,
            };
            assert_close_by(
                &format!("{name} product m{m} n{n} k{k}"),
                &out,
                &reference,
                |i| c * U * bound[i] + 1e-30,
            );
            // Split into blocks of one tile (32 rows): the same kernel per row, the same values.
            let split = upload_q(32);
            assert_eq!(split.bindings() > 1, n > 32);
            let mut b = Batch::new(ctx);
            let y = ops::matmul_quant(&mut b, &gx, &split).unwrap();
            let out_split = b.read_async(&[&y]).await.unwrap().remove(0);
            assert_eq!(
                bits(&out),
                bits(&out_split),
                "{name} m{m} n{n} k{k}: split differs"
            );
            if m == 1 {
                let uq = random_blocks(&mut rng, scheme, n, k);
                let up = QuantWeight::upload(ctx, "up", [n, k], &uq, u64::MAX).unwrap();
                let up_split = QuantWeight::upload(ctx, "up", [n, k], &uq, 32 * record_row);
                for weights in [(&whole, &up), (&split, &up_split.unwrap())] {
                    let mut b = Batch::new(ctx);
                    let act = ops::GateAct::Silu;
                    let fused = ops::matvec_glu_quant(&mut b, &gx, weights.0, weights.1, act)
                        .unwrap()
                        .expect("gate and up of one scheme, split alike");
                    let g = ops::matmul_quant(&mut b, &gx, weights.0).unwrap();
                    let uu = ops::matmul_quant(&mut b, &gx, weights.1).unwrap();
                    let unfused = ops::binary(&mut b, BinaryOp::SwiGlu, &g, &uu).unwrap();
                    let out = b.read_async(&[&fused, &unfused]).await.unwrap();
                    assert_eq!(
                        bits(&out[0]),
                        bits(&out[1]),
                        "{name} n{n} k{k}: fused gated product differs"
                    );
                }
            }
            // The gather of a quantized table (a tied embedding): the dequantized rows.
            let ids = [0u32, (n - 1) as u32, (n / 2) as u32];
            for table in [&whole, &split] {
                let mut b = Batch::new(ctx);
                let gids = b.upload_u32("ids", &ids).unwrap();
                let rows = ops::embedding_quant(&mut b, table, &gids).unwrap();
                let got = b.read_async(&[&rows]).await.unwrap().remove(0);
                let want: Vec<f32> = ids
                    .iter()
                    .flat_map(|&i| deq[i as usize * k..(i as usize + 1) * k].to_vec())
                    .collect();
                assert_eq!(bits(&got), bits(&want), "{name} n{n} k{k}: gathered rows");
            }
        }
    }
}

/// The host quantizers (q8_0, q4_0, q4_1): each weight within half a step of its value (one
/// step where q4_0 clamps its code at 15), plus the f16 rounding of the scale and minimum.
pub fn quantizer_error() {
    let mut rng = Rng::new(47);
    for scheme in [QuantScheme::Q8_0, QuantScheme::Q4_0, QuantScheme::Q4_1] {
        let name = scheme.name();
        for &(n, k) in &[(1, 32), (67, 96), (130, 64), (7, 256)] {
            let mut w = rng.vec(n * k, -1.0, 1.0);
            w[..32].fill(0.0); // an all-zero block
            let q = ops::quantize(scheme, &w, k).unwrap();
            assert!(q.holds(n * k / 32), "{name}: chunk arrays");
            let deq = ops::dequantize(&q);
            for (b, (wb, db)) in w.chunks(32).zip(deq.chunks(32)).enumerate() {
                let d = q.scales[b].abs() as f64;
                let min = q.mins.get(b).map_or(0.0, |m| m.abs() as f64);
                // The scale and minimum are rounded to f16 (2^-11 relative) after the codes are
                // chosen, and a code multiplies the scale by at most 127 (q8), 8 or 15 (q4).
                let amax = wb.iter().fold(0.0f32, |a, v| a.max(v.abs())) as f64;
                let (step, codes_max) = match scheme {
                    QuantScheme::Q8_0 => (amax / 127.0, 127.0),
                    QuantScheme::Q4_0 => (amax / 8.0, 8.0),
                    _ => (d, 15.0),
                };
                let f16_err = (codes_max * step + min) * 2f64.powi(-11);
                for (i, (a, v)) in wb.iter().zip(db).enumerate() {
                    // q4_0 clamps w / d in (7.5, 8] (weights of sign opposite to the largest)
                    // to code 15: up to a whole step.
                    let clamped = scheme == QuantScheme::Q4_0 && *v == 7.0 * q.scales[b];
                    let half = if clamped { step } else { step / 2.0 };
                    let tol = half + f16_err + 8.0 * U * (codes_max * step + min) + 1e-30;
                    assert!(
                        (*a as f64 - *v as f64).abs() <= tol,
                        "{name} n{n} k{k}: block {b} weight {i}: {a} -> {v} (tolerance {tol})"
                    );
                }
            }
        }
    }
}

/// Quantized routed experts in every format against the f64 reference with the dequantized
/// weights, one token and several (passes of 4 tokens per expert), and the same values bit for
/// bit with the stacks split into blocks of whole experts.
pub async fn moe_quantized_experts(ctx: &GpuContext) {
    use ops::{ExpertStack, Experts, GateAct};
    let mut rng = Rng::new(43);
    // (tokens, top_k, experts, d, inter, act, every token the same experts)
    let cases = [
        (1, 6, 8, 64, 64, GateAct::Silu, false),
        (5, 2, 13, 32, 96, GateAct::Gelu, false),
        (19, 2, 5, 64, 32, GateAct::Silu, true),
    ];
    let wide = [
        (1, 3, 5, 256, 256, GateAct::Silu, false),
        (6, 2, 7, 256, 512, GateAct::Gelu, false),
    ];
    for scheme in QuantScheme::ALL {
        let cases: &[_] = if scheme.row_multiple() == 32 {
            &cases
        } else {
            &wide
        };
        for &(tokens, top_k, n_experts, d, inter, act, same) in cases {
            let x = rng.vec(tokens * d, -1.0, 1.0);
            let weights = rng.vec(tokens * top_k, 0.0, 1.0);
            let ids = expert_ids(tokens, top_k, n_experts, same);
            let g_ids = GpuTensor::from_u32(ctx, "ids", &[tokens, top_k], &ids).unwrap();
            let g_w = upload(ctx, "weights", &[tokens, top_k], &weights);
            // Each stack as random blocks of rows of k, and its dequantized values.
            let mut stack = |rows: usize, k: usize, experts_per_block: usize| {
                let q = random_blocks(&mut rng, scheme, n_experts * rows, k);
                let words = k / (32 * scheme.group_chunks()) * scheme.group_words();
                let records = ExpertStack::records_of(&q);
                let upload_blocks = |per: usize| {
                    let mut parts = Vec::new();
                    for first in (0..n_experts).step_by(per) {
                        let n = per.min(n_experts - first);
                        let at = first * rows * words;
                        parts.push(
                            GpuTensor::from_u32(
                                ctx,
                                &format!("records[{first}]"),
                                &[n, rows, words],
                                &records[at..at + n * rows * words],
                            )
                            .unwrap(),
                        );
                    }
                    ExpertStack::Quant {
                        scheme,
                        records: GpuTensor::from_row_blocks("records", parts).unwrap(),
                    }
                };
                (
                    ops::dequantize(&q),
                    upload_blocks(n_experts),
                    upload_blocks(experts_per_block),
                )
            };
            let (gate, g_whole, g_split) = stack(inter, d, 2);
            let (up, u_whole, u_split) = stack(inter, d, 2);
            let (down, d_whole, d_split) = stack(d, inter, 2);
            let mut outs = Vec::new();
            for (g, u, dn) in [
                (&g_whole, &u_whole, &d_whole),
                (&g_split, &u_split, &d_split),
            ] {
                let experts = Experts {
                    gate: g,
                    up: u,
                    down: dn,
                    act,
                };
                let mut b = Batch::new(ctx);
                let x_t = upload(ctx, "x", &[tokens, d], &x);
                let y = ops::moe_ffn(&mut b, &x_t, (&g_ids, &g_w), &experts).unwrap();
                outs.push(b.read_async(&[&y]).await.unwrap().remove(0));
            }
            let what = format!(
                "{} experts t{tokens} e{n_experts} d{d} i{inter}",
                scheme.name()
            );
            assert_eq!(bits(&outs[0]), bits(&outs[1]), "{what}: split differs");
            let (reference, bound) =
                experts_reference(&x, (&ids, &weights), (&gate, &up, &down), (d, inter), act);
            // As for f32 experts (the dequantized weights are exact in f32, or rounded once as
            // the reference's): c·(sqrt(d) + sqrt(inter) + 8)·u of the magnitudes, c = 4.
            let c = 4.0 * ((d as f64).sqrt() + (inter as f64).sqrt() + 8.0) * U;
            assert_close_by(&what, &outs[0], &reference, |i| c * bound[i] + 1e-30);
        }
    }
}
