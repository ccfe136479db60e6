// The stacked expert matrices of moe_ffn.wgsl's vec4 kernels as 16-bit values in u32 words,
// f16 or bf16 (prelude/half_words.wgsl), on any adapter: two words a quad.

@group(0) @binding(3) var<storage, read> gate4: array<vec2<u32>>;
@group(0) @binding(4) var<storage, read> up4: array<vec2<u32>>;
@group(0) @binding(3) var<storage, read> down4: array<vec2<u32>>;

fn gate_quad(i: u32) -> vec4<f32> {
    return half_quad(gate4[i]);
}

fn up_quad(i: u32) -> vec4<f32> {
    return half_quad(up4[i]);
}

fn down_quad(i: u32) -> vec4<f32> {
    return half_quad(down4[i]);
}
