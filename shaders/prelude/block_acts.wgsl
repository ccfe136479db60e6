// A quantized block's 32 activations as 8 vec4s, from vec4 x of `a` (the matrix-vector kernels
// of matmul_quant.wgsl). Every invocation loads all 8 (adapters without
// subgroups; `lane` is unused).
fn block_acts(x: u32, lane: u32) -> array<vec4<f32>, 8> {
    return array<vec4<f32>, 8>(a[x], a[x + 1u], a[x + 2u], a[x + 3u], a[x + 4u], a[x + 5u],
                               a[x + 6u], a[x + 7u]);
}
