// Attention's keys and values as f32, four at a time: values j4·4..j4·4 + 4 of the (row, head)
// whose first word is `base` (a multiple of 4) are the vec4 base / 4 + j4.
@group(0) @binding(2) var<storage, read> ka4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> kb4: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> v4: array<vec4<f32>>;

fn ka4_at(base: u32, j4: u32) -> vec4<f32> {
    return ka4[base / 4u + j4];
}

fn kb4_at(base: u32, j4: u32) -> vec4<f32> {
    return kb4[base / 4u + j4];
}

fn v4_at(base: u32, j4: u32) -> vec4<f32> {
    return v4[base / 4u + j4];
}
