// C = A·Wᵀ with W in 8-bit blocks (q8_0: 32 weights share one scale), dequantized in the kernel
// with f32 accumulation. A is [M, K] f32 (K % 32 == 0), C [M, N] f32.
//   q       [N, K/4] u32   the weights as signed bytes, four per word, little-endian (weight
//                          4i + j is byte j of word i)
//   scales  [N, K/32] f32  block b of a row is its weights 32b..32b + 31
// weight = scale · byte (exact in f32: the scales are f16 values). Rows are independent, so row
// blocks of q and scales are a W of their own. C's row stride and first column come from the
// params (a row block of W writes its columns of a wider C).
//   matvec_q8      MV_ROWS outputs per invocation (the decode layout for CPU rasterisers: each
//                  reads whole rows), z over the rows of A; a step loads a block's 8 vec4s of
//                  activations once for its rows and each row's 32 bytes as two vec4<u32> (on
//                  lavapipe the loads, not the bytes, set the pace); acc += scale · Σ a·byte
//   matmul_nt_q8   8×8 outputs per invocation (matmul_nt_v4's tiling), each weight dequantized
//                  once per 8 rows of A: acc += a · (scale · byte)
//   matvec_glu_q8  act(x·Gᵀ) · (x·Uᵀ) for one row x, as matvec_q8 for both

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

// Σ a·byte over a block's 32 bytes (q0, q1), with the block's activations av (by lanes: the
// caller adds the four).
fn block_dot(av: array<vec4<f32>, 8>, q0: vec4<u32>, q1: vec4<u32>) -> vec4<f32> {
    var part = av[0] * bytes_of(q0.x);
    part = fma(av[1], bytes_of(q0.y), part);
    part = fma(av[2], bytes_of(q0.z), part);
    part = fma(av[3], bytes_of(q0.w), part);
    part = fma(av[4], bytes_of(q1.x), part);
    part = fma(av[5], bytes_of(q1.y), part);
    part = fma(av[6], bytes_of(q1.z), part);
    return fma(av[7], bytes_of(q1.w), part);
}

// A block's 8 vec4s of activations from vec4 x.
fn block_acts(x: u32) -> array<vec4<f32>, 8> {
    return array<vec4<f32>, 8>(a[x], a[x + 1u], a[x + 2u], a[x + 3u], a[x + 4u], a[x + 5u],
                               a[x + 6u], a[x + 7u]);
}

// Rows per invocation of the matrix-vector kernels: each block's activations are loaded once
// for all of them (on a CPU rasteriser, activation loads set the pace once weights are bytes).
const MV_ROWS: u32 = 4u;

@compute @workgroup_size(MV_WG, 1, 1)
fn matvec_q8(@builtin(global_invocation_id) gid: vec3<u32>) {
    let n0 = gid.x * MV_ROWS;
    let m = gid.z;
    if (n0 >= p.n || m >= p.m) {
        return;
    }
    let blocks = p.k / 32u;
    let a_row = m * p.k / 4u;
    var acc = array<vec4<f32>, MV_ROWS>();
    for (var b = 0u; b < blocks; b++) {
        let av = block_acts(a_row + 8u * b);
        for (var r = 0u; r < MV_ROWS; r++) {
            let s = min(n0 + r, p.n - 1u) * blocks + b;
            let part = block_dot(av, q[2u * s], q[2u * s + 1u]);
            acc[r] = fma(vec4<f32>(scales[s]), part, acc[r]);
        }
    }
    for (var r = 0u; r < MV_ROWS; r++) {
        if (n0 + r < p.n) {
            c[p.c_offset + m * p.ldc + n0 + r] = dot(acc[r], vec4<f32>(1.0));
        }
    }
}

override WG_X: u32 = 8u;
override WG_Y: u32 = 8u;
const TM: u32 = 8u;
const TN: u32 = 8u;

@group(0) @binding(2) var<storage, read> qw: array<u32>;

@compute @workgroup_size(WG_X, WG_Y, 1)
fn matmul_nt_q8(@builtin(global_invocation_id) gid: vec3<u32>) {
    let n0 = gid.x * TN;
    let m0 = gid.y * TM;
    if (m0 >= p.m || n0 >= p.n) {
        return;
    }
    let k4 = p.k / 4u;
    let blocks = p.k / 32u;
    var a_row: array<u32, TM>;
    var w_row: array<u32, TN>;
    for (var r = 0u; r < TM; r++) {
        a_row[r] = min(m0 + r, p.m - 1u) * k4;
    }
    for (var j = 0u; j < TN; j++) {
        w_row[j] = min(n0 + j, p.n - 1u) * blocks;
    }
    var acc: array<f32, TM * TN>;
    for (var b = 0u; b < blocks; b++) {
        var scale = array<f32, TN>();
        for (var j = 0u; j < TN; j++) {
            scale[j] = scales[w_row[j] + b];
        }
        for (var t = 0u; t < 8u; t++) {
            let k = 8u * b + t;
            var av = array<vec4<f32>, TM>();
            for (var r = 0u; r < TM; r++) {
                av[r] = a[a_row[r] + k];
            }
            for (var j = 0u; j < TN; j++) {
                let wv = scale[j] * bytes_of(qw[(w_row[j] + b) * 8u + t]);
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
    for (var r = 0u; r < TM; r++) {
        if (m0 + r < p.m) {
            for (var j = 0u; j < TN; j++) {
                if (n0 + j < p.n) {
                    c[p.c_offset + (m0 + r) * p.ldc + n0 + j] = acc[r * TN + j];
                }
            }
        }
    }
}

@group(0) @binding(4) var<storage, read> q_up: array<vec4<u32>>;
@group(0) @binding(5) var<storage, read> scales_up: array<f32>;
@group(0) @binding(6) var<storage, read_write> c_glu: array<f32>;

@compute @workgroup_size(MV_WG, 1, 1)
fn matvec_glu_q8(@builtin(global_invocation_id) gid: vec3<u32>) {
    let n0 = gid.x * MV_ROWS;
    if (n0 >= p.n) {
        return;
    }
    let blocks = p.k / 32u;
    var g = array<vec4<f32>, MV_ROWS>();
    var u = array<vec4<f32>, MV_ROWS>();
    for (var b = 0u; b < blocks; b++) {
        let av = block_acts(8u * b);
        for (var r = 0u; r < MV_ROWS; r++) {
            let s = min(n0 + r, p.n - 1u) * blocks + b;
            g[r] = fma(vec4<f32>(scales[s]), block_dot(av, q[2u * s], q[2u * s + 1u]), g[r]);
            u[r] = fma(vec4<f32>(scales_up[s]), block_dot(av, q_up[2u * s], q_up[2u * s + 1u]), u[r]);
        }
    }
    for (var r = 0u; r < MV_ROWS; r++) {
        if (n0 + r < p.n) {
            c_glu[p.c_offset + n0 + r] =
                gate_act(dot(g[r], vec4<f32>(1.0))) * dot(u[r], vec4<f32>(1.0));
        }
    }
}
