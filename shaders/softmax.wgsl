// Numerically stable softmax along rows of scale·x [rows, cols] -> y [rows, cols], one workgroup
// per row (scale is applied to each value first, as attention scales its scores).
// Causal mask (causal = 1): rows are grouped in blocks of q_len query rows; query row i of a block
// sees columns j <= i + offset. Masked columns are skipped by loop bounds and written as 0
// (no infinities: WGSL may assume none exist).

struct SoftmaxParams {
    rows: u32,
    cols: u32,
    causal: u32,
    q_len: u32,
    offset: u32,
    scale: f32,
    _pad1: u32,
    _pad2: u32,
}

override WG: u32 = 128u;

@group(0) @binding(0) var<uniform> p: SoftmaxParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;        // [rows, cols]
@group(0) @binding(2) var<storage, read_write> y: array<f32>;  // [rows, cols]

@compute @workgroup_size(WG)
fn softmax_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let row = workgroup_index(wid, nwg);
    if (row >= p.rows) {
        return;
    }
    let base = row * p.cols;
    var valid = p.cols;
    if (p.causal != 0u) {
        valid = min(p.cols, row % p.q_len + p.offset + 1u);
    }
    // Every row has at least column 0 valid, so the max is over a non-empty set;
    // invocations with no column contribute the row's first value, which is in the set.
    var m = x[base] * p.scale;
    for (var j = lid; j < valid; j += WG) {
        m = max(m, x[base + j] * p.scale);
    }
    m = workgroup_max(m, lid);
    var s = 0.0;
    for (var j = lid; j < valid; j += WG) {
        s += exp(x[base + j] * p.scale - m);
    }
    let inv = 1.0 / workgroup_sum(s, lid);
    for (var j = lid; j < p.cols; j += WG) {
        var v = 0.0;
        if (j < valid) {
            v = exp(x[base + j] * p.scale - m) * inv;
        }
        y[base + j] = v;
    }
}
