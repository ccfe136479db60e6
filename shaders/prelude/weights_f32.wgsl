// The weights B (and the gated product's U) of matmul_vec4.wgsl as f32 vec4s.

@group(0) @binding(2) var<storage, read> b: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> b_up: array<vec4<f32>>;

// Values 4i..4i + 3 of B, of U.
fn b_quad(i: u32) -> vec4<f32> {
    return b[i];
}

fn up_quad(i: u32) -> vec4<f32> {
    return b_up[i];
}
