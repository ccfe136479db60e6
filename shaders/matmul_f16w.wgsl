// C = A·Bᵀ with the weights B stored as f16 (adapters with shader-f16), A and C f32; f32
// accumulation, so only B's storage is half precision. Same contracts as matmul.wgsl:
//   matmul_nt_f16w: A [batch, M, K], B [batch, N, K], C [batch, M, N], any shape
//   matvec_nt_f16w: the M = 1 decode path, one output per invocation

override WG_X: u32 = 16u;
override WG_Y: u32 = 16u;
const TM: u32 = 4u;
const TN: u32 = 4u;

@group(0) @binding(0) var<uniform> p: MatmulParams;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f16>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;

@compute @workgroup_size(WG_X, WG_Y, 1)
fn matmul_nt_f16w(@builtin(global_invocation_id) gid: vec3<u32>) {
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
    var acc: array<f32, TM * TN>;
    for (var k = 0u; k < p.k; k++) {
        var bv: array<f32, TN>;
        for (var j = 0u; j < TN; j++) {
            bv[j] = f32(b[b_row[j] + k]);
        }
        for (var r = 0u; r < TM; r++) {
            let av = a[a_row[r] + k];
            for (var j = 0u; j < TN; j++) {
                acc[r * TN + j] = fma(av, bv[j], acc[r * TN + j]);
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

override MV_WG: u32 = 64u;

@compute @workgroup_size(MV_WG, 1, 1)
fn matvec_nt_f16w(@builtin(global_invocation_id) gid: vec3<u32>) {
    let n = gid.x;
    if (n >= p.n) {
        return;
    }
    let a_base = gid.z * p.a_stride;
    let b_base = gid.z * p.b_stride + n * p.k;
    var s = 0.0;
    for (var k = 0u; k < p.k; k++) {
        s = fma(a[a_base + k], f32(b[b_base + k]), s);
    }
    c[p.c_offset + gid.z * p.c_stride + n] = s;
}

// K % 4 == 0: A and B read four values at a time (B as vec4<f16>, 8 bytes per load).
@group(0) @binding(1) var<storage, read> a4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b4: array<vec4<f16>>;

const V_TM: u32 = 8u;
const V_TN: u32 = 8u;

//   matmul_nt_f16w_v4: as matmul_nt_f16w, 8x8 outputs per invocation (matmul_nt_v4's tiling)
@compute @workgroup_size(WG_X, WG_Y, 1)
fn matmul_nt_f16w_v4(@builtin(global_invocation_id) gid: vec3<u32>) {
    let n0 = gid.x * V_TN;
    let m0 = gid.y * V_TM;
    if (m0 >= p.m || n0 >= p.n) {
        return;
    }
    let k4 = p.k / 4u;
    let a_base = gid.z * p.a_stride / 4u;
    let b_base = gid.z * p.b_stride / 4u;
    var a_row: array<u32, V_TM>;
    var b_row: array<u32, V_TN>;
    for (var r = 0u; r < V_TM; r++) {
        a_row[r] = a_base + min(m0 + r, p.m - 1u) * k4;
    }
    for (var j = 0u; j < V_TN; j++) {
        b_row[j] = b_base + min(n0 + j, p.n - 1u) * k4;
    }
    var acc: array<f32, V_TM * V_TN>;
    for (var k = 0u; k < k4; k++) {
        var av: array<vec4<f32>, V_TM>;
        for (var r = 0u; r < V_TM; r++) {
            av[r] = a4[a_row[r] + k];
        }
        for (var j = 0u; j < V_TN; j++) {
            let bv = vec4<f32>(b4[b_row[j] + k]);
            for (var r = 0u; r < V_TM; r++) {
                let i = r * V_TN + j;
                acc[i] = fma(av[r].x, bv.x, acc[i]);
                acc[i] = fma(av[r].y, bv.y, acc[i]);
                acc[i] = fma(av[r].z, bv.z, acc[i]);
                acc[i] = fma(av[r].w, bv.w, acc[i]);
            }
        }
    }
    let c_base = p.c_offset + gid.z * p.c_stride;
    for (var r = 0u; r < V_TM; r++) {
        if (m0 + r < p.m) {
            for (var j = 0u; j < V_TN; j++) {
                if (n0 + j < p.n) {
                    c[c_base + (m0 + r) * p.ldc + n0 + j] = acc[r * V_TN + j];
                }
            }
        }
    }
}

//   matvec_nt_f16w_v4: the M = 1 decode path, one output per invocation
@compute @workgroup_size(64, 1, 1)
fn matvec_nt_f16w_v4(@builtin(global_invocation_id) gid: vec3<u32>) {
    let n = gid.x;
    if (n >= p.n) {
        return;
    }
    let k4 = p.k / 4u;
    let a_base = gid.z * p.a_stride / 4u;
    let b_base = gid.z * p.b_stride / 4u + n * k4;
    var acc = vec4<f32>(0.0);
    for (var k = 0u; k < k4; k++) {
        acc = fma(a4[a_base + k], vec4<f32>(b4[b_base + k]), acc);
    }
    c[p.c_offset + gid.z * p.c_stride + n] = dot(acc, vec4<f32>(1.0));
}

// As matmul_vec4.wgsl's matvec_glu_v4 with f16 G and U.

@group(0) @binding(3) var<storage, read> b4_up: array<vec4<f16>>;
@group(0) @binding(4) var<storage, read_write> c_glu: array<f32>;

@compute @workgroup_size(64, 1, 1)
fn matvec_glu_f16w_v4(@builtin(global_invocation_id) gid: vec3<u32>) {
    let n = gid.x;
    if (n >= p.n) {
        return;
    }
    let k4 = p.k / 4u;
    let b_base = n * k4;
    var g = vec4<f32>(0.0);
    var u = vec4<f32>(0.0);
    for (var k = 0u; k < k4; k++) {
        let av = a4[k];
        g = fma(av, vec4<f32>(b4[b_base + k]), g);
        u = fma(av, vec4<f32>(b4_up[b_base + k]), u);
    }
    c_glu[p.c_offset + n] = gate_act(dot(g, vec4<f32>(1.0))) * dot(u, vec4<f32>(1.0));
}
