// Attention of one query row (decode) where heads share their keys and values (GQA, MQA, and
// MLA's absorbed path, whose one latent "head" serves every head): one workgroup per key/value
// head and block of up to `heads_per_group` of its query heads, so each cached key and value row
// is read once for the whole block, not once per head. The views and the online softmax are
// attention.wgsl's (read its header); the block's heads are scored together: an invocation
// scores one key of a tile for every head of the block, one invocation per head then takes
// that head's tile max and sum, and each invocation accumulates its output dimensions for
// every head. Over a paged cache the pool row of each key of a tile is found once and shared.

const WG: u32 = 64u;
const MAX_BLOCK: u32 = 8u;          // heads per workgroup at most
const MAX_Q: u32 = 2048u;           // heads_per_group * d_qk at most (8 KiB of workgroup memory)
const OUT_PER_INVOCATION: u32 = 16u; // d_v <= OUT_PER_INVOCATION * WG
const EMPTY: f32 = -1.0e30;

// Keys and values (bindings 2 to 4) are read through ka_at, kb_at and v_at (kv_read_*.wgsl).
@group(0) @binding(0) var<uniform> p: AttentionParams;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(5) var<storage, read_write> o: array<f32>;
@group(0) @binding(6) var<storage, read> pages: array<u32>;

var<workgroup> q_sh: array<f32, MAX_Q>;
var<workgroup> score_sh: array<f32, 512>;  // MAX_BLOCK * WG
var<workgroup> m_sh: array<f32, MAX_BLOCK>;
var<workgroup> l_sh: array<f32, MAX_BLOCK>;
var<workgroup> alpha_sh: array<f32, MAX_BLOCK>;
var<workgroup> row_sh: array<u32, WG>;

@compute @workgroup_size(WG)
fn attention_decode(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(local_invocation_index) lid: u32) {
    let group = p.heads / p.kv_heads;
    let blocks = (group + p.heads_per_group - 1u) / p.heads_per_group;
    let row = workgroup_index(wid, nwg);
    if (row >= p.kv_heads * blocks) {
        return;
    }
    let g = row / blocks;
    let h0 = g * group + (row % blocks) * p.heads_per_group;
    let nh = min(p.heads_per_group, (g + 1u) * group - h0);
    var first = 0u;
    if (p.window != 0u && p.n_kv > p.window) {
        first = p.n_kv - p.window;
    }
    for (var i = 0u; i < nh; i++) {
        for (var j = lid; j < p.d_qk; j += WG) {
            q_sh[i * p.d_qk + j] = q[p.q_off + (h0 + i) * p.q_head + j];
        }
    }
    if (lid < MAX_BLOCK) {
        m_sh[lid] = EMPTY;
        l_sh[lid] = 0.0;
    }
    workgroupBarrier();

    var acc: array<f32, 128>; // [MAX_BLOCK, OUT_PER_INVOCATION]
    for (var k = 0u; k < 128u; k++) {
        acc[k] = 0.0;
    }
    for (var s0 = first; s0 < p.n_kv; s0 += WG) {
        let count = min(WG, p.n_kv - s0);
        let s = s0 + lid;
        // Zeroed explicitly, as acc is: in Chromium's WebGPU the implicit zero of these
        // function-scope vars (this one declared in the loop) gave wrong sums.
        var dots = array<f32, MAX_BLOCK>(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
        if (lid < count) {
            let r = cache_row(s, p.page_tokens);
            row_sh[lid] = r;
            let a_base = p.ka_off + r * p.ka_row + g * p.ka_head;
            for (var j = 0u; j < p.d_a; j++) {
                let k = ka_at(a_base, j);
                for (var i = 0u; i < nh; i++) {
                    dots[i] = fma(q_sh[i * p.d_qk + j], k, dots[i]);
                }
            }
            let b_base = p.kb_off + r * p.kb_row + g * p.kb_head;
            for (var j = p.d_a; j < p.d_qk; j++) {
                let k = kb_at(b_base, j - p.d_a);
                for (var i = 0u; i < nh; i++) {
                    dots[i] = fma(q_sh[i * p.d_qk + j], k, dots[i]);
                }
            }
        }
        for (var i = 0u; i < nh; i++) {
            score_sh[i * WG + lid] = select(EMPTY, dots[i] * p.scale, lid < count);
        }
        workgroupBarrier();
        // One invocation per head: the tile's max, the rescale of what came before.
        if (lid < nh) {
            var tile_max = EMPTY;
            for (var j = 0u; j < count; j++) {
                tile_max = max(tile_max, score_sh[lid * WG + j]);
            }
            let m_new = max(m_sh[lid], tile_max);
            alpha_sh[lid] = exp(m_sh[lid] - m_new);
            m_sh[lid] = m_new;
        }
        workgroupBarrier();
        for (var i = 0u; i < nh; i++) {
            let e = score_sh[i * WG + lid];
            score_sh[i * WG + lid] = select(0.0, exp(e - m_sh[i]), lid < count);
        }
        workgroupBarrier();
        if (lid < nh) {
            var tile_sum = 0.0;
            for (var j = 0u; j < count; j++) {
                tile_sum += score_sh[lid * WG + j];
            }
            l_sh[lid] = l_sh[lid] * alpha_sh[lid] + tile_sum;
        }
        // Each invocation's output dimensions, for every head of the block: a value row is
        // read once for all of them.
        for (var c = 0u; c < OUT_PER_INVOCATION; c++) {
            let dim = lid + c * WG;
            if (dim < p.d_v) {
                for (var i = 0u; i < nh; i++) {
                    acc[i * OUT_PER_INVOCATION + c] *= alpha_sh[i];
                }
                let v_base = p.v_off + g * p.v_head;
                for (var j = 0u; j < count; j++) {
                    let vv = v_at(v_base + row_sh[j] * p.v_row, dim);
                    for (var i = 0u; i < nh; i++) {
                        let k = i * OUT_PER_INVOCATION + c;
                        acc[k] = fma(score_sh[i * WG + j], vv, acc[k]);
                    }
                }
            }
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < nh; i++) {
        let inv = 1.0 / l_sh[i];
        let o_base = p.o_off + (h0 + i) * p.o_head;
        for (var c = 0u; c < OUT_PER_INVOCATION; c++) {
            let dim = lid + c * WG;
            if (dim < p.d_v) {
                o[o_base + dim] = acc[i * OUT_PER_INVOCATION + c] * inv;
            }
        }
    }
}
