// The stacked expert matrices of moe_ffn.wgsl's vec4 kernels as f32 vec4s.

@group(0) @binding(3) var<storage, read> gate4: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> up4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> down4: array<vec4<f32>>;

// Values 4i..4i + 3 of the gate, up and down stacks.
fn gate_quad(i: u32) -> vec4<f32> {
    return gate4[i];
}

fn up_quad(i: u32) -> vec4<f32> {
    return up4[i];
}

fn down_quad(i: u32) -> vec4<f32> {
    return down4[i];
}
