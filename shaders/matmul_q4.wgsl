// C = A·Wᵀ with W in 4-bit blocks (32 weights share a scale, and for q4_1 a minimum),
// dequantized in the kernel with f32 accumulation. A is [M, K] f32 (K % 32 == 0), C [M, N] f32.
// W's blocks lie in tiles of 32 rows (prelude/quant_rows.wgsl), one slot per block:
//   q       [slots, 4] u32  a block's 16 bytes as llama.cpp stores them: byte i (byte i % 4 of
//                          word i / 4) holds weight i in its low nibble and weight i + 16 in
//                          its high one
//   scales  [slots] f32    d, one per block
//   mins    [slots] f32    m (q4_1; q4_0 binds the scales here and never reads them)
// weight = d · (nibble - 8) for q4_0 (exact in f32: d is an f16 value), d · nibble + m for q4_1
// (HAS_MIN). Rows are independent, so row blocks of q, scales and mins are a W of their own.
// C's row stride and first column come from the params.
//   matvec_rows    MV_ROWS outputs per invocation, z over the rows of A (entry point
//                  `matvec_quant`, matvec_quant_entry*.wgsl); a step loads each row's 16 bytes
//                  as one vec4<u32> and the block's activations once for its rows (shared by
//                  the subgroup where the adapter has one, prelude/block_acts*.wgsl);
//                  acc += d · Σ a·nibble + m · Σ a, with m = -8d for q4_0. The nibbles are
//                  masked in place, not shifted down (nibble · 2^8j, from bits 8j or 8j + 4 after
//                  one shift of the word), and the activations scaled by 2^-8j to match: the
//                  same products, exactly, with a quarter fewer instructions
//   matmul_nt_q4   8×8 outputs per invocation, each weight dequantized once per 8 rows of A
//   matvec_glu_rows  act(x·Gᵀ) · (x·Uᵀ) for one row x, as matvec_rows for both (entry point
//                  `matvec_glu_quant`)
// The matrix-vector kernels run every invocation to the end (rows past N recompute the last
// one, unstored), as subgroup operations want uniform control flow.

override HAS_MIN: bool = false;

@group(0) @binding(0) var<uniform> p: MatmulParams;
@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> q: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read> scales: array<f32>;
@group(0) @binding(4) var<storage, read> mins: array<f32>;
@group(0) @binding(5) var<storage, read_write> c: array<f32>;

override MV_WG: u32 = 64u;

// The low (shift 0) or high (shift 4) nibbles of a word's four bytes, as f32. Converted from
// i32 (the same values): a CPU rasteriser's SIMD converts signed integers in one instruction and
// emulates the unsigned conversion.
fn codes(word: u32, shift: u32) -> vec4<f32> {
    let v = (vec4<u32>(word) >> vec4<u32>(shift, shift + 8u, shift + 16u, shift + 24u)) & vec4<u32>(15u);
    return vec4<f32>(bitcast<vec4<i32>>(v));
}

// The same less 8 for q4_0: the weights before the scale (and q4_1's minimum).
fn nibbles(word: u32, shift: u32) -> vec4<f32> {
    return codes(word, shift) - select(vec4<f32>(8.0), vec4<f32>(0.0), HAS_MIN);
}

// The low nibbles of a word's bytes where they lie: nibble j times 2^8j (below 2^28, so exact
// through i32 and f32).
fn nibbles_in_place(word: u32) -> vec4<f32> {
    let v = vec4<u32>(word) & vec4<u32>(0xfu, 0xf00u, 0xf0000u, 0xf000000u);
    return vec4<f32>(bitcast<vec4<i32>>(v));
}

// A block's 8 vec4s of activations times 2^-8j in lane j, to multiply nibbles_in_place
// (exact: powers of two).
fn to_nibble_places(av: array<vec4<f32>, 8>) -> array<vec4<f32>, 8> {
    let places = vec4<f32>(1.0, 1.0 / 256.0, 1.0 / 65536.0, 1.0 / 16777216.0);
    var out = av;
    for (var i = 0u; i < 8u; i++) {
        out[i] = av[i] * places;
    }
    return out;
}

// The part of a block's sum that d multiplies: Σ a·nibble over the block's 16 bytes w, with
// the block's activations in nibble places (to_nibble_places). The matrix-vector kernels add
// q4_0's -8 as a minimum of -8d times Σ a (once per block for all their rows, not once per
// weight).
fn block_dot(placed: array<vec4<f32>, 8>, w: vec4<u32>) -> f32 {
    var part = placed[0] * nibbles_in_place(w.x);
    part = fma(placed[1], nibbles_in_place(w.y), part);
    part = fma(placed[2], nibbles_in_place(w.z), part);
    part = fma(placed[3], nibbles_in_place(w.w), part);
    part = fma(placed[4], nibbles_in_place(w.x >> 4u), part);
    part = fma(placed[5], nibbles_in_place(w.y >> 4u), part);
    part = fma(placed[6], nibbles_in_place(w.z >> 4u), part);
    part = fma(placed[7], nibbles_in_place(w.w >> 4u), part);
    return (part.x + part.y) + (part.z + part.w);
}

// A block's minimum: q4_1's, or -8d for q4_0.
fn block_min(s: u32) -> f32 {
    if (HAS_MIN) {
        return mins[s];
    }
    return -8.0 * scales[s];
}

// Σ a over a block's activations (what q4_1's minimum multiplies).
fn block_sum(av: array<vec4<f32>, 8>) -> f32 {
    let by_lanes = ((av[0] + av[1]) + (av[2] + av[3])) + ((av[4] + av[5]) + (av[6] + av[7]));
    return dot(by_lanes, vec4<f32>(1.0));
}

fn matvec_rows(gid: vec3<u32>, lane: u32) {
    let m = gid.z;
    let blocks = p.k / 32u;
    let a_row = m * p.k / 4u;
    let rows = invocation_rows(gid.x);
    let slot = first_slots(rows, blocks);
    var acc = array<f32, MV_ROWS>();
    for (var b = 0u; b < blocks; b++) {
        var w = array<vec4<u32>, MV_ROWS>();
        for (var r = 0u; r < MV_ROWS; r++) {
            w[r] = q[slot[r] + 32u * b];
        }
        let av = block_acts(a_row + 8u * b, lane);
        let sum = block_sum(av);
        let placed = to_nibble_places(av);
        for (var r = 0u; r < MV_ROWS; r++) {
            let s = slot[r] + 32u * b;
            acc[r] = fma(scales[s], block_dot(placed, w[r]), acc[r]);
            acc[r] = fma(block_min(s), sum, acc[r]);
        }
    }
    store_rows(m, rows, acc);
}

@group(0) @binding(2) var<storage, read> qw: array<u32>;

@compute @workgroup_size(WG_X, WG_Y, 1)
fn matmul_nt_q4(@builtin(global_invocation_id) gid: vec3<u32>) {
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
        var low = array<f32, TN>();
        for (var j = 0u; j < TN; j++) {
            scale[j] = scales[w_slot[j] + 32u * b];
            low[j] = select(0.0, mins[w_slot[j] + 32u * b], HAS_MIN);
        }
        // Quad t of the block: weights 4t..4t+3, the low nibbles of word t for t < 4, else the
        // high nibbles of word t - 4.
        for (var t = 0u; t < 8u; t++) {
            let k = 8u * b + t;
            var av = array<vec4<f32>, TM>();
            for (var r = 0u; r < TM; r++) {
                av[r] = a[a_row[r] + k];
            }
            for (var j = 0u; j < TN; j++) {
                let word = qw[(w_slot[j] + 32u * b) * 4u + (t & 3u)];
                let wv = fma(vec4<f32>(scale[j]), nibbles(word, (t >> 2u) * 4u), vec4<f32>(low[j]));
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

@group(0) @binding(5) var<storage, read> q_up: array<vec4<u32>>;
@group(0) @binding(6) var<storage, read> scales_up: array<f32>;
@group(0) @binding(7) var<storage, read> mins_up: array<f32>;
@group(0) @binding(8) var<storage, read_write> c_glu: array<f32>;

fn matvec_glu_rows(x: u32, lane: u32) {
    let blocks = p.k / 32u;
    let rows = invocation_rows(x);
    let slot = first_slots(rows, blocks);
    var g = array<f32, MV_ROWS>();
    var u = array<f32, MV_ROWS>();
    for (var b = 0u; b < blocks; b++) {
        var wg = array<vec4<u32>, MV_ROWS>();
        var wu = array<vec4<u32>, MV_ROWS>();
        for (var r = 0u; r < MV_ROWS; r++) {
            wg[r] = q[slot[r] + 32u * b];
            wu[r] = q_up[slot[r] + 32u * b];
        }
        let av = block_acts(8u * b, lane);
        let sum = block_sum(av);
        let placed = to_nibble_places(av);
        for (var r = 0u; r < MV_ROWS; r++) {
            let s = slot[r] + 32u * b;
            let up_min = select(-8.0 * scales_up[s], mins_up[s], HAS_MIN);
            g[r] = fma(scales[s], block_dot(placed, wg[r]), g[r]);
            u[r] = fma(scales_up[s], block_dot(placed, wu[r]), u[r]);
            g[r] = fma(block_min(s), sum, g[r]);
            u[r] = fma(up_min, sum, u[r]);
        }
    }
    store_glu_rows(rows, g, u);
}
