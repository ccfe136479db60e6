// The gather phase of causal latent attention as a running online-softmax state.
//   gather_update: every latent query q1[i, h] absorbs n more tokens (keys k[t, h], values v[t, h])
//                  into its state (m, l, o): m the running max score, l the running sum of
//                  exp(score - m), o the running sum of exp(score - m) * v (unnormalised).
//                  One workgroup per (latent, head); the same recurrence as attention.wgsl.
//                  It also writes the normalised summary g[i, h, :] = o / l.
// Layouts: q1 [latents, heads, dh]; k, v [n, heads, dh]; m, l [latents, heads];
// o, g [latents, heads, dh]. Call with n >= 1. -1e30 is a finite "empty" sentinel, never an infinity.

override WG: u32 = 64u;
const MAX_DH: u32 = 1024u;
const OUT_PER_INVOCATION: u32 = 16u; // dh <= OUT_PER_INVOCATION * WG
const EMPTY: f32 = -1.0e30;

@group(0) @binding(0) var<uniform> p: GatherParams;
@group(0) @binding(1) var<storage, read> q1: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read_write> m_state: array<f32>;
@group(0) @binding(5) var<storage, read_write> l_state: array<f32>;
@group(0) @binding(6) var<storage, read_write> o_state: array<f32>;
@group(0) @binding(7) var<storage, read_write> g: array<f32>;

var<workgroup> q_sh: array<f32, MAX_DH>;
var<workgroup> score_sh: array<f32, WG>;
var<workgroup> prob_sh: array<f32, WG>;

@compute @workgroup_size(WG)
fn gather_update(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
    let row = workgroup_index(wid, nwg); // latent * heads + head
    if (row >= p.latents * p.heads) {
        return;
    }
    let h = row % p.heads;
    let q_base = row * p.dh;
    for (var j = lid; j < p.dh; j += WG) {
        q_sh[j] = q1[q_base + j];
    }
    workgroupBarrier();
    var m = m_state[row];
    var l = l_state[row];
    var acc: array<f32, OUT_PER_INVOCATION>;
    for (var i = 0u; i < OUT_PER_INVOCATION; i++) {
        let dim = lid + i * WG;
        if (dim < p.dh) {
            acc[i] = o_state[q_base + dim];
        }
    }
    let row_len = p.heads * p.dh;
    for (var s0 = 0u; s0 < p.n; s0 += WG) {
        let count = min(WG, p.n - s0);
        var score = EMPTY;
        if (lid < count) {
            let k_base = (s0 + lid) * row_len + h * p.dh;
            var d = 0.0;
            for (var j = 0u; j < p.dh; j++) {
                d = fma(q_sh[j], k[k_base + j], d);
            }
            score = d * p.scale;
        }
        score_sh[lid] = score;
        workgroupBarrier();
        var tile_max = score_sh[0];
        for (var j = 1u; j < count; j++) {
            tile_max = max(tile_max, score_sh[j]);
        }
        let m_new = max(m, tile_max);
        var prob = 0.0;
        if (lid < count) {
            prob = exp(score - m_new);
        }
        prob_sh[lid] = prob;
        workgroupBarrier();
        let alpha = exp(m - m_new);
        var tile_sum = 0.0;
        for (var j = 0u; j < count; j++) {
            tile_sum += prob_sh[j];
        }
        l = l * alpha + tile_sum;
        for (var i = 0u; i < OUT_PER_INVOCATION; i++) {
            let dim = lid + i * WG;
            if (dim < p.dh) {
                var sum = acc[i] * alpha;
                let v_base = s0 * row_len + h * p.dh + dim;
                for (var j = 0u; j < count; j++) {
                    sum = fma(prob_sh[j], v[v_base + j * row_len], sum);
                }
                acc[i] = sum;
            }
        }
        m = m_new;
        workgroupBarrier();
    }
    for (var i = 0u; i < OUT_PER_INVOCATION; i++) {
        let dim = lid + i * WG;
        if (dim < p.dh) {
            o_state[q_base + dim] = acc[i];
            g[q_base + dim] = acc[i] / l;
        }
    }
    if (lid == 0u) {
        m_state[row] = m;
        l_state[row] = l;
    }
}
