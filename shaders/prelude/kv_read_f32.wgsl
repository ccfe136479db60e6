// Attention's keys and values as f32 words: value j of the (row, head) whose first word is
// `base` is word base + j.
@group(0) @binding(2) var<storage, read> ka: array<f32>;
@group(0) @binding(3) var<storage, read> kb: array<f32>;
@group(0) @binding(4) var<storage, read> v: array<f32>;

fn ka_at(base: u32, j: u32) -> f32 {
    return ka[base + j];
}

// Values j..j + 4 (j a multiple of 4).
fn ka_at4(base: u32, j: u32) -> vec4<f32> {
    return vec4<f32>(ka[base + j], ka[base + j + 1u], ka[base + j + 2u], ka[base + j + 3u]);
}

fn kb_at(base: u32, j: u32) -> f32 {
    return kb[base + j];
}

fn v_at(base: u32, j: u32) -> f32 {
    return v[base + j];
}
