// C = A·Wᵀ with W in 8-bit blocks (q8_0: 32 weights share one scale), dequantized in the kernel
// with f32 accumulation. A is [M, K] f32 (K % 32 == 0), C [M, N] f32. W's blocks (weights
// 32b..32b + 31 of a row) lie in tiles of 32 rows (prelude/quant_rows.wgsl), one slot per block:
//   q       [slots, 8] u32  the weights as signed bytes, four per word, little-endian (weight
//                          4i + j of the block is byte j of word i)
//   scales  [slots] f32    one per block
// weight = scale · byte (exact in f32: the scales are f16 values). Rows are independent, so row
// blocks of q and scales are a W of their own. C's row stride and first column come from the
// params (a row block of W writes its columns of a wider C).
//   matvec_rows    MV_ROWS outputs per invocation (the decode layout for CPU rasterisers: each
//                  reads whole rows), z over the rows of A (entry point `matvec_quant`,
//                  matvec_quant_entry*.wgsl); a step loads each row's 32 bytes as two
//                  vec4<u32> and the block's 8 vec4s of activations once for its rows (shared by
//                  the subgroup where the adapter has one, prelude/block_acts*.wgsl; on lavapipe
//                  the loads, not the bytes, set the pace); acc += scale · Σ a·byte
//   matmul_nt_q8   8×8 outputs per invocation (matmul_nt_v4's tiling), each weight dequantized
//                  once per 8 rows of A: acc += a · (scale · byte)
//   matvec_glu_rows  act(x·Gᵀ) · (x·Uᵀ) for one row x, as matvec_rows for both (entry point
//                  `matvec_glu_quant`)
// The matrix-vector kernels run every invocation to the end (rows past N recompute the last
// one, unstored), as subgroup operations want uniform control flow.

@group(0) @binding(0) var<uniform> p: MatmulParams;
@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> q: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read> scales: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;

override MV_WG: u32 = 64u;

// The four signed bytes of a word, as f32.
fn bytes_of(word: u32) -> vec4<f32> {
    let v = bitcast<vec4<i32>>(vec4<u32>(word << 24u, word << 16u, word << 8u, word)) >> vec4<u32>(24u);
    return vec4<f32>(v);
}

// Σ a·byte over a block's 32 bytes (q0, q1), with the block's activations av.
fn block_dot(av: array<vec4<f32>, 8>, q0: vec4<u32>, q1: vec4<u32>) -> f32 {
    var part = dot(av[0], bytes_of(q0.x));
    part += dot(av[1], bytes_of(q0.y));
    part += dot(av[2], bytes_of(q0.z));
    part += dot(av[3], bytes_of(q0.w));
    part += dot(av[4], bytes_of(q1.x));
    part += dot(av[5], bytes_of(q1.y));
    part += dot(av[6], bytes_of(q1.z));
    return part + dot(av[7], bytes_of(q1.w));
}

fn matvec_rows(gid: vec3<u32>, lane: u32) {
    let m = gid.z;
    let blocks = p.k / 32u;
    let a_row = m * p.k / 4u;
    let rows = invocation_rows(gid.x);
    let slot = first_slots(rows, blocks);
    var acc = array<f32, MV_ROWS>();
    for (var b = 0u; b < blocks; b++) {
        var w0 = array<vec4<u32>, MV_ROWS>();
        var w1 = array<vec4<u32>, MV_ROWS>();
        for (var r = 0u; r < MV_ROWS; r++) {
            let s = slot[r] + 32u * b;
            w0[r] = q[2u * s];
            w1[r] = q[2u * s + 1u];
        }
        let av = block_acts(a_row + 8u * b, lane);
        for (var r = 0u; r < MV_ROWS; r++) {
            acc[r] = fma(scales[slot[r] + 32u * b], block_dot(av, w0[r], w1[r]), acc[r]);
        }
    }
    store_rows(m, rows, acc);
}

@group(0) @binding(2) var<storage, read> qw: array<u32>;

@compute @workgroup_size(WG_X, WG_Y, 1)
fn matmul_nt_q8(@builtin(global_invocation_id) gid: vec3<u32>) {
    let n0 = gid.x * TN;
    let m0 = gid.y * TM;
    if (m0 >= p.m || n0 >= p.n) {
        return;
    }
    let blocks = p.k / 32u;
    let a_row = tile_a_rows(m0);
    let w_slot = tile_w_slots(n0);
    var acc: array<f32, TM * TN>;
    for (var b = 0u; b < blocks; b++) {
        var scale = array<f32, TN>();
        for (var j = 0u; j < TN; j++) {
            scale[j] = scales[w_slot[j] + 32u * b];
        }
        for (var t = 0u; t < 8u; t++) {
            let k = 8u * b + t;
            var av = array<vec4<f32>, TM>();
            for (var r = 0u; r < TM; r++) {
                av[r] = a[a_row[r] + k];
            }
            for (var j = 0u; j < TN; j++) {
                let wv = scale[j] * bytes_of(qw[(w_slot[j] + 32u * b) * 8u + t]);
                for (var r = 0u; r < TM; r++) {
                    let i = r * TN + j;
                    acc[i] = fma(av[r].x, wv.x, acc[i]);
                    acc[i] = fma(av[r].y, wv.y, acc[i]);
                    acc[i] = fma(av[r].z, wv.z, acc[i]);
                    acc[i] = fma(av[r].w, wv.w, acc[i]);
                }
            }
        }
    }
    store_tile(m0, n0, acc);
}

@group(0) @binding(4) var<storage, read> q_up: array<vec4<u32>>;
@group(0) @binding(5) var<storage, read> scales_up: array<f32>;
@group(0) @binding(6) var<storage, read_write> c_glu: array<f32>;

fn matvec_glu_rows(x: u32, lane: u32) {
    let blocks = p.k / 32u;
    let rows = invocation_rows(x);
    let slot = first_slots(rows, blocks);
    var g = array<f32, MV_ROWS>();
    var u = array<f32, MV_ROWS>();
    for (var b = 0u; b < blocks; b++) {
        let av = block_acts(8u * b, lane);
        for (var r = 0u; r < MV_ROWS; r++) {
            let s = slot[r] + 32u * b;
            g[r] = fma(scales[s], block_dot(av, q[2u * s], q[2u * s + 1u]), g[r]);
            u[r] = fma(scales_up[s], block_dot(av, q_up[2u * s], q_up[2u * s + 1u]), u[r]);
        }
    }
    store_glu_rows(rows, g, u);
}
