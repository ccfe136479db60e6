// The weights B and U of matmul_vec4.wgsl as 16-bit values in u32 words, f16 or bf16
// (prelude/half_words.wgsl), on any adapter: two words a quad.

@group(0) @binding(2) var<storage, read> b: array<vec2<u32>>;
@group(0) @binding(3) var<storage, read> b_up: array<vec2<u32>>;

fn b_quad(i: u32) -> vec4<f32> {
    return half_quad(b[i]);
}

fn up_quad(i: u32) -> vec4<f32> {
    return half_quad(b_up[i]);
}
