// Elementwise ops over n f32 values.
//   binary: out[i] = f(a[i], b[i])   op 0 add, 1 mul, 2 swiglu = silu(a) * b,
//                                    4 geglu = gelu(a) * b (erf form), 5 the same in tanh form
//           out[i] = a[i] + b[i % cols]   op 3: a bias row broadcast over the rows of a
//           out[i] = a[i] * b[i % cols]   op 6: a row of factors broadcast over the rows of a
//   unary:  out[i] = f(a[i])         op 0 silu, 1 gelu (erf form), 2 gelu (tanh form)
// The unary entry binds `a` twice (bindings 1 and 2), so both entries share one layout.

struct EwParams {
    n: u32,
    op: u32,
    cols: u32,
    _pad1: u32,
}

override WG: u32 = 256u;

@group(0) @binding(0) var<uniform> p: EwParams;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn binary(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
    let i = linear_index(wid, nwg, lid);
    if (i >= p.n) {
        return;
    }
    let x = a[i];
    var r: f32;
    switch p.op {
        case 0u: { r = x + b[i]; }
        case 1u: { r = x * b[i]; }
        case 3u: { r = x + b[i % p.cols]; }
        case 4u: { r = gelu_erf(x) * b[i]; }
        case 5u: { r = gelu_tanh(x) * b[i]; }
        case 6u: { r = x * b[i % p.cols]; }
        default: { r = silu(x) * b[i]; }
    }
    out[i] = r;
}

@compute @workgroup_size(WG)
fn unary(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
    let i = linear_index(wid, nwg, lid);
    if (i >= p.n) {
        return;
    }
    let x = a[i];
    var r: f32;
    switch p.op {
        case 0u: { r = silu(x); }
        case 1u: { r = gelu_erf(x); }
        default: { r = gelu_tanh(x); }
    }
    out[i] = r;
}
