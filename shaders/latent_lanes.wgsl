// Phase 1's gather update (latent.wgsl's gather_update) on adapters with subgroups: a
// workgroup is one subgroup and takes one latent query of one head, its lanes splitting the
// head's dimensions (vec4 j to lane j % WG). Each token's key is scored by a sum across the
// subgroup, and every lane carries the online softmax one token at a time and its own slice of
// the state: no workgroup memory and no barriers. dh % 4 == 0 and dh <= 4 · LANE_VEC4S · WG.
//   q1 [M, h, dh], k and v [>= n, h, dh], m_state and l_state [M, h], o_state and g [M, h, dh]

// The adapter's subgroup size (set at dispatch): a workgroup is one subgroup.
override WG: u32 = 32u;
const LANE_VEC4S: u32 = 4u;

@group(0) @binding(0) var<uniform> p: GatherParams;
@group(0) @binding(1) var<storage, read> q14: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> k4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> v4: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> m_state: array<f32>;
@group(0) @binding(5) var<storage, read_write> l_state: array<f32>;
@group(0) @binding(6) var<storage, read_write> o_state4: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read_write> g4: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn gather_lanes(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(subgroup_invocation_id) lane: u32) {
    let row = workgroup_index(wid, nwg); // latent * heads + head
    if (row >= p.latents * p.heads) {
        return;
    }
    let h = row % p.heads;
    let dh4 = p.dh / 4u;
    let q_base4 = row * dh4;
    var qv = array<vec4<f32>, LANE_VEC4S>();
    var acc = array<vec4<f32>, LANE_VEC4S>();
    for (var i = 0u; i < LANE_VEC4S; i++) {
        let j = lane + i * WG;
        if (j < dh4) {
            qv[i] = q14[q_base4 + j];
            acc[i] = o_state4[q_base4 + j];
        }
    }
    var m = m_state[row];
    var l = l_state[row];
    let row4 = p.heads * dh4;
    for (var s = 0u; s < p.n; s++) {
        let base4 = s * row4 + h * dh4;
        var part = vec4<f32>(0.0);
        for (var i = 0u; i < LANE_VEC4S; i++) {
            let j = lane + i * WG;
            if (j < dh4) {
                part = fma(qv[i], k4[base4 + j], part);
            }
        }
        let score = subgroupAdd(dot(part, vec4<f32>(1.0))) * p.scale;
        let m_new = max(m, score);
        let alpha = exp(m - m_new);
        let prob = exp(score - m_new);
        l = fma(l, alpha, prob);
        for (var i = 0u; i < LANE_VEC4S; i++) {
            let j = lane + i * WG;
            if (j < dh4) {
                acc[i] = fma(acc[i], vec4<f32>(alpha), prob * v4[base4 + j]);
            }
        }
        m = m_new;
    }
    for (var i = 0u; i < LANE_VEC4S; i++) {
        let j = lane + i * WG;
        if (j < dh4) {
            o_state4[q_base4 + j] = acc[i];
            g4[q_base4 + j] = acc[i] / l;
        }
    }
    if (lane == 0u) {
        m_state[row] = m;
        l_state[row] = l;
    }
}
