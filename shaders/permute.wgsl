// Swaps the first two dimensions: x [A, B, C] -> y [B, A, C] (e.g. token-major heads to
// head-major ones and back).

struct PermuteParams {
    a: u32,
    b: u32,
    c: u32,
    _pad: u32,
}

override WG: u32 = 256u;

@group(0) @binding(0) var<uniform> p: PermuteParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;       // [a, b, c]
@group(0) @binding(2) var<storage, read_write> y: array<f32>; // [b, a, c]

@compute @workgroup_size(WG)
fn permute(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
    let i = linear_index(wid, nwg, lid);
    if (i >= p.a * p.b * p.c) {
        return;
    }
    let cc = i % p.c;
    let aa = (i / p.c) % p.a;
    let bb = i / (p.c * p.a);
    y[i] = x[(aa * p.b + bb) * p.c + cc];
}
