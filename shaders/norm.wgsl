// Row norms over x [rows, d] -> y [rows, d], one workgroup per row.
//   rmsnorm:   y = x / sqrt(mean(x^2) + eps) * w
//   layernorm: y = (x - mean) / sqrt(var + eps) * w + b   (two passes: mean, then centred variance)

struct NormParams {
    rows: u32,
    d: u32,
    eps: f32,
    _pad: u32,
}

override WG: u32 = 128u;

@group(0) @binding(0) var<uniform> p: NormParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;   // [rows, d]
@group(0) @binding(2) var<storage, read> w: array<f32>;   // [d]
@group(0) @binding(3) var<storage, read> bias: array<f32>; // [d] (layernorm only)
@group(0) @binding(4) var<storage, read_write> y: array<f32>; // [rows, d]

@compute @workgroup_size(WG)
fn rmsnorm(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
    let row = workgroup_index(wid, nwg);
    if (row >= p.rows) {
        return;
    }
    let base = row * p.d;
    var ss = 0.0;
    for (var j = lid; j < p.d; j += WG) {
        let v = x[base + j];
        ss += v * v;
    }
    let total = workgroup_sum(ss, lid);
    let inv = inverseSqrt(total / f32(p.d) + p.eps);
    for (var j = lid; j < p.d; j += WG) {
        y[base + j] = x[base + j] * inv * w[j];
    }
}

@compute @workgroup_size(WG)
fn layernorm(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
    let row = workgroup_index(wid, nwg);
    if (row >= p.rows) {
        return;
    }
    let base = row * p.d;
    var s = 0.0;
    for (var j = lid; j < p.d; j += WG) {
        s += x[base + j];
    }
    let mean = workgroup_sum(s, lid) / f32(p.d);
    var ss = 0.0;
    for (var j = lid; j < p.d; j += WG) {
        let c = x[base + j] - mean;
        ss += c * c;
    }
    let inv = inverseSqrt(workgroup_sum(ss, lid) / f32(p.d) + p.eps);
    for (var j = lid; j < p.d; j += WG) {
        y[base + j] = (x[base + j] - mean) * inv * w[j] + bias[j];
    }
}

// The residual add fused with the next norm: s = x + r is written to x_out and normalised
// into y (the same float operations as an add followed by the norm, one dispatch fewer).
@group(0) @binding(5) var<storage, read> r: array<f32>;           // [rows, d]
@group(0) @binding(6) var<storage, read_write> x_out: array<f32>; // [rows, d]

@compute @workgroup_size(WG)
fn add_rmsnorm(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
    let row = workgroup_index(wid, nwg);
    if (row >= p.rows) {
        return;
    }
    let base = row * p.d;
    var ss = 0.0;
    for (var j = lid; j < p.d; j += WG) {
        let v = x[base + j] + r[base + j];
        x_out[base + j] = v;
        ss += v * v;
    }
    let total = workgroup_sum(ss, lid);
    let inv = inverseSqrt(total / f32(p.d) + p.eps);
    for (var j = lid; j < p.d; j += WG) {
        y[base + j] = (x[base + j] + r[base + j]) * inv * w[j];
    }
}

@compute @workgroup_size(WG)
fn add_layernorm(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
    let row = workgroup_index(wid, nwg);
    if (row >= p.rows) {
        return;
    }
    let base = row * p.d;
    var s = 0.0;
    for (var j = lid; j < p.d; j += WG) {
        let v = x[base + j] + r[base + j];
        x_out[base + j] = v;
        s += v;
    }
    let mean = workgroup_sum(s, lid) / f32(p.d);
    var ss = 0.0;
    for (var j = lid; j < p.d; j += WG) {
        let c = x[base + j] + r[base + j] - mean;
        ss += c * c;
    }
    let inv = inverseSqrt(workgroup_sum(ss, lid) / f32(p.d) + p.eps);
    for (var j = lid; j < p.d; j += WG) {
        y[base + j] = (x[base + j] + r[base + j] - mean) * inv * w[j] + bias[j];
    }
}
