// f32 -> f16, two values per invocation packed into one u32 word (no shader-f16 needed, and no
// two invocations write one word): y[i] = pack2x16float(x[2i], x[2i + 1]). An odd count packs
// a zero into the padding half of the last word. And back: to_f32 unpacks n values.

struct CastParams {
    n: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

override WG: u32 = 256u;

@group(0) @binding(0) var<uniform> p: CastParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;       // [n]
@group(0) @binding(2) var<storage, read_write> y: array<u32>; // [ceil(n / 2)] f16 pairs

@compute @workgroup_size(WG)
fn to_f16(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
    let i = linear_index(wid, nwg, lid);
    if (2u * i >= p.n) {
        return;
    }
    var hi = 0.0;
    if (2u * i + 1u < p.n) {
        hi = x[2u * i + 1u];
    }
    y[i] = pack2x16float(vec2<f32>(x[2u * i], hi));
}

@group(0) @binding(1) var<storage, read> words: array<u32>;     // [ceil(n / 2)] f16 pairs
@group(0) @binding(2) var<storage, read_write> values: array<f32>; // [n]

@compute @workgroup_size(WG)
fn to_f32(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
    let i = linear_index(wid, nwg, lid);
    if (i >= p.n) {
        return;
    }
    values[i] = unpack2x16float(words[i / 2u])[i & 1u];
}
