// Roofline probes for the benchmark: the adapter's FMA throughput and its copy bandwidth.
//   fma_roof: register-only FMA chains (8 independent vec4 chains x ITERS iterations), no memory
//             traffic except one store per invocation so the work is not optimised away.
//   copy_roof: out[i] = in[i] over vec4s, the memory roof.

struct BenchParams {
    n: u32,
    iters: u32,
    _pad0: u32,
    _pad1: u32,
}

override WG: u32 = 64u;

@group(0) @binding(0) var<uniform> p: BenchParams;
@group(0) @binding(1) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> dst: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn fma_roof(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
    let i = linear_index(wid, nwg, lid);
    let seed = f32(i & 7u) * 1.0e-3;
    var x0 = vec4<f32>(seed);
    var x1 = x0 + 0.1;
    var x2 = x0 + 0.2;
    var x3 = x0 + 0.3;
    var x4 = x0 + 0.4;
    var x5 = x0 + 0.5;
    var x6 = x0 + 0.6;
    var x7 = x0 + 0.7;
    let mul = vec4<f32>(0.999999);
    let add = vec4<f32>(1.0e-7);
    for (var it = 0u; it < p.iters; it++) {
        x0 = fma(x0, mul, add);
        x1 = fma(x1, mul, add);
        x2 = fma(x2, mul, add);
        x3 = fma(x3, mul, add);
        x4 = fma(x4, mul, add);
        x5 = fma(x5, mul, add);
        x6 = fma(x6, mul, add);
        x7 = fma(x7, mul, add);
    }
    if (i < p.n) {
        dst[i] = x0 + x1 + x2 + x3 + x4 + x5 + x6 + x7;
    }
}

@compute @workgroup_size(WG)
fn copy_roof(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
    let i = linear_index(wid, nwg, lid);
    if (i < p.n) {
        dst[i] = src[i];
    }
}
