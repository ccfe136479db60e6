// Attention's keys and values as packed 16-bit floats (any adapter, shader-f16 or not): values
// 2i and 2i + 1 of the (row, head) whose first word is `base` are word base + i, low half first.
@group(0) @binding(2) var<storage, read> ka: array<u32>;
@group(0) @binding(3) var<storage, read> kb: array<u32>;
@group(0) @binding(4) var<storage, read> v: array<u32>;

fn ka_at(base: u32, j: u32) -> f32 {
    return unpack2x16float(ka[base + j / 2u])[j & 1u];
}

// Values j..j + 4 (j a multiple of 4): two words.
fn ka_at4(base: u32, j: u32) -> vec4<f32> {
    let w = base + j / 2u;
    return vec4<f32>(unpack2x16float(ka[w]), unpack2x16float(ka[w + 1u]));
}

fn kb_at(base: u32, j: u32) -> f32 {
    return unpack2x16float(kb[base + j / 2u])[j & 1u];
}

fn v_at(base: u32, j: u32) -> f32 {
    return unpack2x16float(v[base + j / 2u])[j & 1u];
}
