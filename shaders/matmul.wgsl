// Batched matrix products on f32, any M, N, K (edges handled by clamped loads and guarded stores).
//   matmul_nn: C[b] = A[b] · B[b]    A [batch, M, K], B [batch, K, N], C [batch, M, N]
//   matmul_nt: C[b] = A[b] · B[b]ᵀ   A [batch, M, K], B [batch, N, K] (weights stored [out, in])
//   matvec_nt: the M = 1 decode path of matmul_nt, one output per invocation.
// A batch stride of 0 broadcasts that operand (one weight matrix for the whole batch).
// Each invocation computes a TM x TN block of C in registers; no workgroup memory, no barriers.

override WG_X: u32 = 16u;
override WG_Y: u32 = 16u;
const TM: u32 = 4u;
const TN: u32 = 4u;

@group(0) @binding(0) var<uniform> p: MatmulParams;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;

fn store_block(acc: array<vec4<f32>, TM>, m0: u32, n0: u32, c_base: u32) {
    for (var r = 0u; r < TM; r++) {
        let m = m0 + r;
        if (m < p.m) {
            for (var j = 0u; j < TN; j++) {
                if (n0 + j < p.n) {
                    c[c_base + m * p.ldc + n0 + j] = acc[r][j];
                }
            }
        }
    }
}

@compute @workgroup_size(WG_X, WG_Y, 1)
fn matmul_nn(@builtin(global_invocation_id) gid: vec3<u32>) {
    let n0 = gid.x * TN;
    let m0 = gid.y * TM;
    if (m0 >= p.m || n0 >= p.n) {
        return;
    }
    let a_base = gid.z * p.a_stride;
    let b_base = gid.z * p.b_stride;
    var a_row: array<u32, TM>;
    for (var r = 0u; r < TM; r++) {
        a_row[r] = a_base + min(m0 + r, p.m - 1u) * p.k;
    }
    let cols = min(vec4<u32>(n0, n0 + 1u, n0 + 2u, n0 + 3u), vec4<u32>(p.n - 1u));
    var acc: array<vec4<f32>, TM>;
    for (var k = 0u; k < p.k; k++) {
        let row = b_base + k * p.n;
        let bv = vec4<f32>(b[row + cols.x], b[row + cols.y], b[row + cols.z], b[row + cols.w]);
        for (var r = 0u; r < TM; r++) {
            acc[r] = fma(vec4<f32>(a[a_row[r] + k]), bv, acc[r]);
        }
    }
    store_block(acc, m0, n0, p.c_offset + gid.z * p.c_stride);
}

@compute @workgroup_size(WG_X, WG_Y, 1)
fn matmul_nt(@builtin(global_invocation_id) gid: vec3<u32>) {
    let n0 = gid.x * TN;
    let m0 = gid.y * TM;
    if (m0 >= p.m || n0 >= p.n) {
        return;
    }
    let a_base = gid.z * p.a_stride;
    let b_base = gid.z * p.b_stride;
    var a_row: array<u32, TM>;
    var b_row: array<u32, TN>;
    for (var r = 0u; r < TM; r++) {
        a_row[r] = a_base + min(m0 + r, p.m - 1u) * p.k;
    }
    for (var j = 0u; j < TN; j++) {
        b_row[j] = b_base + min(n0 + j, p.n - 1u) * p.k;
    }
    // Partial sums per (r, j) kept as vec4 over k mod 4: independent FMA chains.
    var part: array<vec4<f32>, TM * TN>;
    let k4 = p.k & ~3u;
    for (var k = 0u; k < k4; k += 4u) {
        var av: array<vec4<f32>, TM>;
        for (var r = 0u; r < TM; r++) {
            let i = a_row[r] + k;
            av[r] = vec4<f32>(a[i], a[i + 1u], a[i + 2u], a[i + 3u]);
        }
        for (var j = 0u; j < TN; j++) {
            let i = b_row[j] + k;
            let bv = vec4<f32>(b[i], b[i + 1u], b[i + 2u], b[i + 3u]);
            for (var r = 0u; r < TM; r++) {
                part[r * TN + j] = fma(av[r], bv, part[r * TN + j]);
            }
        }
    }
    var acc: array<vec4<f32>, TM>;
    for (var r = 0u; r < TM; r++) {
        for (var j = 0u; j < TN; j++) {
            var s = dot(part[r * TN + j], vec4<f32>(1.0));
            for (var k = k4; k < p.k; k++) {
                s = fma(a[a_row[r] + k], b[b_row[j] + k], s);
            }
            acc[r][j] = s;
        }
    }
    store_block(acc, m0, n0, p.c_offset + gid.z * p.c_stride);
}

override MV_WG: u32 = 64u;

@compute @workgroup_size(MV_WG, 1, 1)
fn matvec_nt(@builtin(global_invocation_id) gid: vec3<u32>) {
    let n = gid.x;
    if (n >= p.n) {
        return;
    }
    let a_base = gid.z * p.a_stride;
    let b_base = gid.z * p.b_stride + n * p.k;
    var part = vec4<f32>(0.0);
    let k4 = p.k & ~3u;
    for (var k = 0u; k < k4; k += 4u) {
        let av = vec4<f32>(a[a_base + k], a[a_base + k + 1u], a[a_base + k + 2u], a[a_base + k + 3u]);
        let bv = vec4<f32>(b[b_base + k], b[b_base + k + 1u], b[b_base + k + 2u], b[b_base + k + 3u]);
        part = fma(av, bv, part);
    }
    var s = dot(part, vec4<f32>(1.0));
    for (var k = k4; k < p.k; k++) {
        s = fma(a[a_base + k], b[b_base + k], s);
    }
    c[p.c_offset + gid.z * p.c_stride + n] = s;
}
