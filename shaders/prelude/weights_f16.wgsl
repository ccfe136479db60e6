// The weights B and U of matmul_vec4.wgsl as f16 vec4s (adapters with shader-f16; the module
// starts with `enable f16;`), widened to f32 as they are read.

@group(0) @binding(2) var<storage, read> b: array<vec4<f16>>;
@group(0) @binding(3) var<storage, read> b_up: array<vec4<f16>>;

fn b_quad(i: u32) -> vec4<f32> {
    return vec4<f32>(b[i]);
}

fn up_quad(i: u32) -> vec4<f32> {
    return vec4<f32>(b_up[i]);
}
