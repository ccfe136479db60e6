// C = A·Wᵀ with W in 8-bit blocks (q8_0: 32 weights share one scale), dequantized in the kernel
// with f32 accumulation. A is [M, K] f32 (K % 32 == 0), C [M, N] f32.
// W, per row of N (rows are independent, so a row block of W is a W of its own):
//   K/4 words    the weights as signed bytes, four per word, little-endian (weight 4i + j is
//                byte j of word i)
//   K/32 words   the scales, f32 bits (block b is weights 32b..32b + 31)
// weight = scale · byte. One invocation per output (the decode layout for CPU rasterisers:
// each reads its whole row), z over the rows of A. C's row stride and first column come from
// the params (a row block of W writes its columns of a wider C).

@group(0) @binding(0) var<uniform> p: MatmulParams;
@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> w: array<u32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;

override MV_WG: u32 = 64u;

// The four signed bytes of a word, as f32.
fn bytes_of(q: u32) -> vec4<f32> {
    let v = bitcast<vec4<i32>>(vec4<u32>(q << 24u, q << 16u, q << 8u, q)) >> vec4<u32>(24u);
    return vec4<f32>(v);
}

@compute @workgroup_size(MV_WG, 1, 1)
fn matvec_q8(@builtin(global_invocation_id) gid: vec3<u32>) {
    let n = gid.x;
    let m = gid.z;
    if (n >= p.n || m >= p.m) {
        return;
    }
    let k4 = p.k / 4u;
    let blocks = p.k / 32u;
    let row = n * (k4 + blocks);
    let a_row = m * k4;
    var acc = vec4<f32>(0.0);
    for (var b = 0u; b < blocks; b++) {
        var part = vec4<f32>(0.0);
        for (var j = 0u; j < 8u; j++) {
            part = fma(a[a_row + 8u * b + j], bytes_of(w[row + 8u * b + j]), part);
        }
        acc = fma(vec4<f32>(bitcast<f32>(w[row + k4 + b])), part, acc);
    }
    c[p.c_offset + m * p.ldc + n] = dot(acc, vec4<f32>(1.0));
}
