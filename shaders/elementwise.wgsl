// Elementwise ops over n f32 values.
//   binary: out[i] = f(a[i], b[i])   op 0 add, 1 mul, 2 swiglu = silu(a) * b,
//                                    4 geglu = gelu(a) * b (erf form), 5 the same in tanh form
//           out[i] = a[i] + b[i % cols]   op 3: a bias row broadcast over the rows of a
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

fn silu(x: f32) -> f32 {
    return x / (1.0 + exp(-x));
}

// erfc(x) for x >= 0, fractional error < 1.2e-7 (Numerical Recipes' Chebyshev fit).
fn erfc_pos(x: f32) -> f32 {
    let t = 1.0 / (1.0 + 0.5 * x);
    let poly = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806
        + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
    return t * exp(-x * x + poly);
}

// gelu(x) = x/2 * erfc(-x/sqrt(2)), written so the small tail is never a difference.
fn gelu_erf(x: f32) -> f32 {
    let u = x * 0.70710678118654752;
    if (u >= 0.0) {
        return 0.5 * x * (2.0 - erfc_pos(u));
    }
    return 0.5 * x * erfc_pos(-u);
}

// gelu_tanh(x) = x/2 * (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) = x * sigmoid(2 z).
fn gelu_tanh(x: f32) -> f32 {
    let z = 0.7978845608028654 * (x + 0.044715 * x * x * x);
    return x / (1.0 + exp(-2.0 * z));
}

fn linear_index(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wid.x + wid.y * nwg.x) * WG + lid;
}

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
