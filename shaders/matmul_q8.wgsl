// C = A·Wᵀ with W in 8-bit blocks (q8_0: 32 weights share one scale), dequantized in the kernel
// with f32 accumulation. A is [M, K] f32 (K % 32 == 0), C [M, N] f32.
//   q       [N, K/4] u32   the weights as signed bytes, four per word, little-endian (weight
//                          4i + j is byte j of word i)
//   scales  [N, K/32] f32  block b of a row is its weights 32b..32b + 31
// weight = scale · byte. Rows are independent, so row blocks of q and scales are a W of their
// own. One invocation per output (the decode layout for CPU rasterisers: each reads its whole
// row), z over the rows of A; each step loads a block's 32 bytes as two vec4<u32>, as many
// loads per step as the f32 kernel makes for 4 weights (on lavapipe the loads, not the bytes,
// set the pace). C's row stride and first column come from the params (a row block of W
// writes its columns of a wider C).

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

@compute @workgroup_size(MV_WG, 1, 1)
fn matvec_q8(@builtin(global_invocation_id) gid: vec3<u32>) {
    let n = gid.x;
    let m = gid.z;
    if (n >= p.n || m >= p.m) {
        return;
    }
    let blocks = p.k / 32u;
    let a_row = m * p.k / 4u;
    var acc = vec4<f32>(0.0);
    for (var b = 0u; b < blocks; b++) {
        let q0 = q[(n * blocks + b) * 2u];
        let q1 = q[(n * blocks + b) * 2u + 1u];
        let x = a_row + 8u * b;
        var part = a[x] * bytes_of(q0.x);
        part = fma(a[x + 1u], bytes_of(q0.y), part);
        part = fma(a[x + 2u], bytes_of(q0.z), part);
        part = fma(a[x + 3u], bytes_of(q0.w), part);
        part = fma(a[x + 4u], bytes_of(q1.x), part);
        part = fma(a[x + 5u], bytes_of(q1.y), part);
        part = fma(a[x + 6u], bytes_of(q1.z), part);
        part = fma(a[x + 7u], bytes_of(q1.w), part);
        acc = fma(vec4<f32>(scales[n * blocks + b]), part, acc);
    }
    c[p.c_offset + m * p.ldc + n] = dot(acc, vec4<f32>(1.0));
}
