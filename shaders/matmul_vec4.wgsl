// Matrix products for aligned shapes, reading A and B as vec4s (K % 4 == 0; for matmul_nn_v4 also
// N % 4 == 0). Same contracts as matmul.wgsl. Wide loads matter: on software rasterisers such as
// llvmpipe every storage load is a per-invocation loop, so four values per load cost about one.
// B (and U) are read through b_quad (up_quad), spliced in front by src/shaders.rs: f32
// (prelude/weights_f32.wgsl), f16 (weights_f16.wgsl) or 16-bit words on any adapter
// (weights_packed.wgsl); the same sums in every case, only B's storage differs.
//   matmul_nt_v4: C = A·Bᵀ   A [batch, M, K], B [batch, N, K], C [batch, M, N]
//   matmul_nn_v4: C = A·B    A [batch, M, K], B [batch, K, N], C [batch, M, N]
//   matvec_nt_v4: C = A·Bᵀ with M = 1 (decode), one output per invocation.

override WG_X: u32 = 8u;
override WG_Y: u32 = 8u;
const TM: u32 = 8u;
const TN: u32 = 8u;

@group(0) @binding(0) var<uniform> p: MatmulParams;
@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;

@compute @workgroup_size(WG_X, WG_Y, 1)
fn matmul_nt_v4(@builtin(global_invocation_id) gid: vec3<u32>) {
    let n0 = gid.x * TN;
    let m0 = gid.y * TM;
    if (m0 >= p.m || n0 >= p.n) {
        return;
    }
    let k4 = p.k / 4u;
    let a_base = gid.z * p.a_stride / 4u;
    let b_base = gid.z * p.b_stride / 4u;
    var a_row: array<u32, TM>;
    var b_row: array<u32, TN>;
    for (var r = 0u; r < TM; r++) {
        a_row[r] = a_base + min(m0 + r, p.m - 1u) * k4;
    }
    for (var j = 0u; j < TN; j++) {
        b_row[j] = b_base + min(n0 + j, p.n - 1u) * k4;
    }
    var acc: array<f32, TM * TN>;
    for (var k = 0u; k < k4; k++) {
        var av: array<vec4<f32>, TM>;
        for (var r = 0u; r < TM; r++) {
            av[r] = a[a_row[r] + k];
        }
        for (var j = 0u; j < TN; j++) {
            let bv = b_quad(b_row[j] + k);
            for (var r = 0u; r < TM; r++) {
                let i = r * TN + j;
                acc[i] = fma(av[r].x, bv.x, acc[i]);
                acc[i] = fma(av[r].y, bv.y, acc[i]);
                acc[i] = fma(av[r].z, bv.z, acc[i]);
                acc[i] = fma(av[r].w, bv.w, acc[i]);
            }
        }
    }
    let c_base = p.c_offset + gid.z * p.c_stride;
    for (var r = 0u; r < TM; r++) {
        if (m0 + r < p.m) {
            for (var j = 0u; j < TN; j++) {
                if (n0 + j < p.n) {
                    c[c_base + (m0 + r) * p.ldc + n0 + j] = acc[r * TN + j];
                }
            }
        }
    }
}

const NN_TV: u32 = 4u; // vec4 columns per invocation in matmul_nn_v4

@compute @workgroup_size(WG_X, WG_Y, 1)
fn matmul_nn_v4(@builtin(global_invocation_id) gid: vec3<u32>) {
    let n4 = p.n / 4u;
    let v0 = gid.x * NN_TV;
    let m0 = gid.y * TM;
    if (m0 >= p.m || v0 >= n4) {
        return;
    }
    let k4 = p.k / 4u;
    let a_base = gid.z * p.a_stride / 4u;
    let b_base = gid.z * p.b_stride / 4u;
    var a_row: array<u32, TM>;
    for (var r = 0u; r < TM; r++) {
        a_row[r] = a_base + min(m0 + r, p.m - 1u) * k4;
    }
    var cols: array<u32, NN_TV>;
    for (var j = 0u; j < NN_TV; j++) {
        cols[j] = min(v0 + j, n4 - 1u);
    }
    var acc: array<vec4<f32>, TM * NN_TV>;
    for (var k = 0u; k < k4; k++) {
        var bv: array<vec4<f32>, 4 * NN_TV>;
        for (var kk = 0u; kk < 4u; kk++) {
            let row = b_base + (4u * k + kk) * n4;
            for (var j = 0u; j < NN_TV; j++) {
                bv[kk * NN_TV + j] = b_quad(row + cols[j]);
            }
        }
        for (var r = 0u; r < TM; r++) {
            let av = a[a_row[r] + k];
            for (var j = 0u; j < NN_TV; j++) {
                let i = r * NN_TV + j;
                acc[i] = fma(vec4<f32>(av.x), bv[j], acc[i]);
                acc[i] = fma(vec4<f32>(av.y), bv[NN_TV + j], acc[i]);
                acc[i] = fma(vec4<f32>(av.z), bv[2u * NN_TV + j], acc[i]);
                acc[i] = fma(vec4<f32>(av.w), bv[3u * NN_TV + j], acc[i]);
            }
        }
    }
    let c_base = p.c_offset + gid.z * p.c_stride;
    for (var r = 0u; r < TM; r++) {
        if (m0 + r < p.m) {
            for (var j = 0u; j < NN_TV; j++) {
                if (v0 + j < n4) {
                    let o = c_base + (m0 + r) * p.ldc + 4u * (v0 + j);
                    let v = acc[r * NN_TV + j];
                    c[o] = v.x;
                    c[o + 1u] = v.y;
                    c[o + 2u] = v.z;
                    c[o + 3u] = v.w;
                }
            }
        }
    }
}

override MV_WG: u32 = 64u;

@compute @workgroup_size(MV_WG, 1, 1)
fn matvec_nt_v4(@builtin(global_invocation_id) gid: vec3<u32>) {
    let n = gid.x;
    if (n >= p.n) {
        return;
    }
    let k4 = p.k / 4u;
    let a_base = gid.z * p.a_stride / 4u;
    let b_base = gid.z * p.b_stride / 4u + n * k4;
    // Two vec4s a step, added in order: on lavapipe a step's loads, not its bytes, set the
    // pace (49152×576: 16.5 against 18.2 ms one vec4 a step), and the sums are unchanged.
    var acc = vec4<f32>(0.0);
    let k8 = k4 & ~1u;
    for (var k = 0u; k < k8; k += 2u) {
        let b0 = b_quad(b_base + k);
        let b1 = b_quad(b_base + k + 1u);
        acc = fma(a[a_base + k], b0, acc);
        acc = fma(a[a_base + k + 1u], b1, acc);
    }
    if (k8 < k4) {
        acc = fma(a[a_base + k8], b_quad(b_base + k8), acc);
    }
    c[p.c_offset + gid.z * p.c_stride + n] = dot(acc, vec4<f32>(1.0));
}

// The gated feed-forward product of one row (decode): c = act(a·Gᵀ) · (a·Uᵀ), G and U
// [N, K], K % 4 == 0, in one pass over a. Each product sums exactly as matvec_nt_v4 does, and
// ACT is the elementwise op's activation (0 silu, 1 gelu erf, 2 gelu tanh), so the result is
// the unfused one's.

@group(0) @binding(4) var<storage, read_write> c_glu: array<f32>;

@compute @workgroup_size(MV_WG, 1, 1)
fn matvec_glu_v4(@builtin(global_invocation_id) gid: vec3<u32>) {
    let n = gid.x;
    if (n >= p.n) {
        return;
    }
    let k4 = p.k / 4u;
    let b_base = n * k4;
    var g = vec4<f32>(0.0);
    var u = vec4<f32>(0.0);
    // Two vec4s a step, as matvec_nt_v4.
    let k8 = k4 & ~1u;
    for (var k = 0u; k < k8; k += 2u) {
        let g0 = b_quad(b_base + k);
        let g1 = b_quad(b_base + k + 1u);
        let u0 = up_quad(b_base + k);
        let u1 = up_quad(b_base + k + 1u);
        g = fma(a[k], g0, g);
        u = fma(a[k], u0, u);
        g = fma(a[k + 1u], g1, g);
        u = fma(a[k + 1u], u1, u);
    }
    if (k8 < k4) {
        g = fma(a[k8], b_quad(b_base + k8), g);
        u = fma(a[k8], up_quad(b_base + k8), u);
    }
    c_glu[p.c_offset + n] = gate_act(dot(g, vec4<f32>(1.0))) * dot(u, vec4<f32>(1.0));
}
