// The routed experts of a mixture-of-experts feed-forward, read by index on the GPU (what ggml
// calls mul_mat_id): each token's chosen experts come from the router's output buffer, and
// only their rows of the stacked expert matrices are read.
//   x       [tokens, d]              the normed hidden states
//   ids     [tokens, top_k]          the chosen experts (the router's output)
//   gate,up [experts, inter, d]      every expert's gate and up projections, stacked
//   h       [tokens, top_k, inter]   out of moe_gate_up: act(x·gateᵀ) · (x·upᵀ) per chosen expert
//   weights [tokens, top_k]          the router's weights
//   down    [experts, d, inter]      every expert's down projection, stacked
//   y       [tokens, d]              out of moe_down: Σ_j weights[t, j] · (h[t, j]·downᵀ)
// One invocation per output; each sums its dot product in order. An id past the experts reads
// the last expert (the router never gives one).

struct MoeParams {
    tokens: u32,
    top_k: u32,
    d: u32,
    inter: u32,
    experts: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

const WG: u32 = 64u;

@group(0) @binding(0) var<uniform> p: MoeParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> ids: array<u32>;
@group(0) @binding(3) var<storage, read> gate: array<f32>;
@group(0) @binding(4) var<storage, read> up: array<f32>;
@group(0) @binding(5) var<storage, read_write> h: array<f32>;

fn expert_of(slot: u32) -> u32 {
    return min(ids[slot], p.experts - 1u);
}

@compute @workgroup_size(WG)
fn moe_gate_up(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
    let i = linear_index(wid, nwg, lid);
    if (i >= p.tokens * p.top_k * p.inter) {
        return;
    }
    let slot = i / p.inter;
    let r = i % p.inter;
    let t = slot / p.top_k;
    let row = (expert_of(slot) * p.inter + r) * p.d;
    var g = 0.0;
    var u = 0.0;
    for (var c = 0u; c < p.d; c++) {
        let xv = x[t * p.d + c];
        g = fma(xv, gate[row + c], g);
        u = fma(xv, up[row + c], u);
    }
    h[i] = gate_act(g) * u;
}

@group(0) @binding(1) var<storage, read> h_in: array<f32>;
@group(0) @binding(2) var<storage, read> ids_in: array<u32>;
@group(0) @binding(3) var<storage, read> weights: array<f32>;
@group(0) @binding(4) var<storage, read> down: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(WG)
fn moe_down(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
    let i = linear_index(wid, nwg, lid);
    if (i >= p.tokens * p.d) {
        return;
    }
    let t = i / p.d;
    let o = i % p.d;
    var acc = 0.0;
    for (var j = 0u; j < p.top_k; j++) {
        let slot = t * p.top_k + j;
        let e = min(ids_in[slot], p.experts - 1u);
        let row = (e * p.d + o) * p.inter;
        var dot = 0.0;
        for (var c = 0u; c < p.inter; c++) {
            dot = fma(h_in[slot * p.inter + c], down[row + c], dot);
        }
        acc = fma(weights[slot], dot, acc);
    }
    y[i] = acc;
}
