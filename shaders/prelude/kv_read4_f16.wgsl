// Attention's keys and values as packed 16-bit floats, four at a time: values j4·4..j4·4 + 4 of
// the (row, head) whose first word is `base` (a multiple of 2) are the two words of the vec2
// base / 2 + j4, low half first.
@group(0) @binding(2) var<storage, read> ka4: array<vec2<u32>>;
@group(0) @binding(3) var<storage, read> kb4: array<vec2<u32>>;
@group(0) @binding(4) var<storage, read> v4: array<vec2<u32>>;

fn unpack4(w: vec2<u32>) -> vec4<f32> {
    return vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y));
}

fn ka4_at(base: u32, j4: u32) -> vec4<f32> {
    return unpack4(ka4[base / 2u + j4]);
}

fn kb4_at(base: u32, j4: u32) -> vec4<f32> {
    return unpack4(kb4[base / 2u + j4]);
}

fn v4_at(base: u32, j4: u32) -> vec4<f32> {
    return unpack4(v4[base / 2u + j4]);
}
