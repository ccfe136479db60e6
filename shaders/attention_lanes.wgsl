// Attention of one query row (decode) on adapters with subgroups: a workgroup is one subgroup
// and takes one head, its lanes splitting the head's dimensions (vec4 j of q, k and v to lane
// j % WG). For each visible key the lanes' partial dot products are summed across the subgroup,
// and every lane updates the online softmax (FlashAttention's recurrence, one key at a time)
// and its own slice of the output: no workgroup memory and no barriers, which on a CPU
// rasteriser cost more than the arithmetic of a small head. The views are attention.wgsl's
// (read its header); here every offset and stride is a multiple of 4 values, d_a, d_qk and d_v too,
// and d_qk, d_v <= 4 · LANE_VEC4S · WG. Key and value row s of a paged cache is at row
// cache_row(s) (cache_pages.wgsl).

// The adapter's subgroup size (set at dispatch): a workgroup is one subgroup.
override WG: u32 = 32u;
const LANE_VEC4S: u32 = 4u;
const EMPTY: f32 = -1.0e30;

@group(0) @binding(0) var<uniform> p: AttentionParams;
@group(0) @binding(1) var<storage, read> q4: array<vec4<f32>>;
// Keys and values (bindings 2 to 4) four at a time through ka4_at, kb4_at and v4_at, which the
// cache format's prelude (kv_read4_*.wgsl) defines: views count its words.
@group(0) @binding(5) var<storage, read_write> o: array<f32>;
@group(0) @binding(6) var<storage, read> pages: array<u32>;

@compute @workgroup_size(WG)
fn attention_lanes(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(subgroup_invocation_id) lane: u32) {
    let h = workgroup_index(wid, nwg);
    if (h >= p.heads) {
        return;
    }
    let g = h / (p.heads / p.kv_heads);
    // The query's keys: all cached ones, or the last `window` of them.
    let end = p.n_kv;
    var first = 0u;
    if (p.causal != 0u && p.window != 0u && end > p.window) {
        first = end - p.window;
    }
    let d_a4 = p.d_a / 4u;
    let d_qk4 = p.d_qk / 4u;
    let d_v4 = p.d_v / 4u;
    let q_base4 = (p.q_off + h * p.q_head) / 4u;
    var qv = array<vec4<f32>, LANE_VEC4S>();
    for (var i = 0u; i < LANE_VEC4S; i++) {
        let j = lane + i * WG;
        if (j < d_qk4) {
            qv[i] = q4[q_base4 + j];
        }
    }
    var acc = array<vec4<f32>, LANE_VEC4S>();
    var m = EMPTY;
    var l = 0.0;
    for (var s = first; s < end; s++) {
        let r = cache_row(s, p.page_tokens);
        let a_base = p.ka_off + r * p.ka_row + g * p.ka_head;
        let b_base = p.kb_off + r * p.kb_row + g * p.kb_head;
        var part = vec4<f32>(0.0);
        for (var i = 0u; i < LANE_VEC4S; i++) {
            let j = lane + i * WG;
            if (j < d_a4) {
                part = fma(qv[i], ka4_at(a_base, j), part);
            } else if (j < d_qk4) {
                part = fma(qv[i], kb4_at(b_base, j - d_a4), part);
            }
        }
        let score = subgroupAdd(dot(part, vec4<f32>(1.0))) * p.scale;
        let m_new = max(m, score);
        let alpha = exp(m - m_new);
        let prob = exp(score - m_new);
        l = fma(l, alpha, prob);
        let v_base = p.v_off + r * p.v_row + g * p.v_head;
        for (var i = 0u; i < LANE_VEC4S; i++) {
            let j = lane + i * WG;
            if (j < d_v4) {
                acc[i] = fma(acc[i], vec4<f32>(alpha), prob * v4_at(v_base, j));
            }
        }
        m = m_new;
    }
    let inv = 1.0 / l;
    let o_base = p.o_off + h * p.o_head;
    for (var i = 0u; i < LANE_VEC4S; i++) {
        let j = lane + i * WG;
        if (j < d_v4) {
            let r = acc[i] * inv;
            o[o_base + 4u * j] = r.x;
            o[o_base + 4u * j + 1u] = r.y;
            o[o_base + 4u * j + 2u] = r.z;
            o[o_base + 4u * j + 3u] = r.w;
        }
    }
}
