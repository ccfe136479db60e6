// As matvec_coop.wgsl with the partial sums added by subgroup operations (adapters with
// subgroups): each subgroup's sum goes to workgroup memory, and the first invocation adds
// those (at most WG / 4 of them, for subgroups of 4 or more).

override WG: u32 = 64u;

@group(0) @binding(0) var<uniform> p: MatmulParams;
@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;

var<workgroup> partial: array<f32, WG>;

@compute @workgroup_size(WG)
fn matvec_subgroup(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(local_invocation_index) lid: u32,
                   @builtin(subgroup_size) sg_size: u32,
                   @builtin(subgroup_invocation_id) sg_lane: u32) {
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
    let sum = subgroupAdd(dot(acc, vec4<f32>(1.0)));
    if (sg_lane == 0u) {
        partial[lid / sg_size] = sum;
    }
    workgroupBarrier();
    if (lid == 0u) {
        var total = 0.0;
        for (var i = 0u; i < WG / sg_size; i++) {
            total += partial[i];
        }
        c[p.c_offset + n] = total;
    }
}
