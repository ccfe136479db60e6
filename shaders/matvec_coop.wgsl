// c = a·Bᵀ for one row a [K] (decode), K % 4 == 0, a workgroup per output: its invocations
// stride over K in vec4s (neighbours read neighbouring words of the row, as GPUs coalesce) and
// add their partial sums in a workgroup tree. The path for GPUs whose invocations each reading
// a whole row of B would not coalesce.

override WG: u32 = 64u;

@group(0) @binding(0) var<uniform> p: MatmulParams;
@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;

@compute @workgroup_size(WG)
fn matvec_coop(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
    let n = workgroup_index(wid, nwg);
    if (n >= p.n) {
        return;
    }
    let k4 = p.k / 4u;
    let b_base = n * k4;
    var acc = vec4<f32>(0.0);
    for (var k = lid; k < k4; k += WG) {
        acc = fma(a[k], b[b_base + k], acc);
    }
    let total = workgroup_sum(dot(acc, vec4<f32>(1.0)), lid);
    if (lid == 0u) {
        c[p.c_offset + n] = total;
    }
}
