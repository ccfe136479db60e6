// Fused multi-head attention with online softmax (FlashAttention-2 recurrence), for prefill and
// for decode over a KV cache. One workgroup per (query row, head); its invocations score one key
// each per tile, then each accumulates its own slice of the output's dimensions.
// Every operand is a strided view (offset, row stride, head stride), and a key may come in two
// parts from two buffers (its first d_a values from ka, the rest from kb), which is how MLA reads
// [k_nope; k_pe] and its compressed cache [c_kv; k_pe] without copies:
//   q[t, h, j]            at q[q_off + t * q_row + h * q_head + j]          j < d_qk
//   k[s, g, j], j < d_a   ka_at(ka_off + s * ka_row + g * ka_head, j)      (g = h / (heads / kv_heads))
//   k[s, g, j], j >= d_a  kb_at(kb_off + s * kb_row + g * kb_head, j - d_a)
//   v[s, g, j]            v_at(v_off + s * v_row + g * v_head, j)          j < d_v
//   o[t, h, j]            at o[o_off + t * o_row + h * o_head + j]
// Keys' and values' offsets and strides count the cache format's words (kv_read_*.wgsl: f32
// values, or pairs of 16-bit ones).
// A head stride of 0 shares one key/value head among all heads (MQA). Over a paged cache, key
// and value row s is read at row cache_row(s) of its view (cache_pages.wgsl), found once per
// key per tile and shared in workgroup memory.
// Causal: query t sees keys s <= t + offset (offset = keys already cached before this block);
// with a sliding window W > 0 also only keys s > t + offset - W (the last W positions).
// Masked keys are skipped by loop bounds; -1e30 is a finite "empty" sentinel, never an infinity.

override WG: u32 = 64u;
const MAX_D_QK: u32 = 1024u;
const OUT_PER_INVOCATION: u32 = 16u; // d_v <= OUT_PER_INVOCATION * WG
const EMPTY: f32 = -1.0e30;

// Keys and values (bindings 2 to 4) are read through ka_at, kb_at and v_at, which the
// cache format's prelude (kv_read_*.wgsl) defines: views count their words.
@group(0) @binding(0) var<uniform> p: AttentionParams;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(5) var<storage, read_write> o: array<f32>;
@group(0) @binding(6) var<storage, read> pages: array<u32>;

var<workgroup> q_sh: array<f32, MAX_D_QK>;
var<workgroup> prob_sh: array<f32, WG>;
// The pool row of each key of the tile.
var<workgroup> row_sh: array<u32, WG>;

// One tile of the online softmax (FlashAttention-2's recurrence): the invocation's key scored
// `score` (EMPTY past the tile's `count` keys), its probability under the new running max
// stored in prob_sh. Returns (the new running max, the factor that rescales what the tiles
// before contributed, the tile's sum of probabilities); max and sum by tree reductions.
fn softmax_tile(score: f32, m: f32, lid: u32, count: u32) -> vec3<f32> {
    let m_new = max(m, workgroup_max(score, lid));
    var prob = 0.0;
    if (lid < count) {
        prob = exp(score - m_new);
    }
    prob_sh[lid] = prob;
    let tile_sum = workgroup_sum(prob, lid);
    return vec3<f32>(m_new, exp(m - m_new), tile_sum);
}

// The keys query t sees: [first, end) (causal, and within the sliding window).
fn visible_keys(t: u32) -> vec2<u32> {
    var end = p.n_kv;
    var first = 0u;
    if (p.causal != 0u) {
        end = min(p.n_kv, t + p.offset + 1u);
        if (p.window != 0u && end > p.window) {
            first = end - p.window;
        }
    }
    return vec2<u32>(first, end);
}

// Query t of head h into workgroup memory, for every invocation to read.
fn load_query(t: u32, h: u32, lid: u32) {
    let q_base = p.q_off + t * p.q_row + h * p.q_head;
    for (var j = lid; j < p.d_qk; j += WG) {
        q_sh[j] = q[q_base + j];
    }
    workgroupBarrier();
}

@compute @workgroup_size(WG)
fn attention(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
    let row = workgroup_index(wid, nwg);
    if (row >= p.n_q * p.heads) {
        return;
    }
    let t = row / p.heads;
    let h = row % p.heads;
    let g = h / (p.heads / p.kv_heads);
    let keys = visible_keys(t);
    let first = keys.x;
    let n_valid = keys.y;
    load_query(t, h, lid);

    var m = EMPTY;
    var l = 0.0;
    var acc: array<f32, OUT_PER_INVOCATION>;
    for (var s0 = first; s0 < n_valid; s0 += WG) {
        let count = min(WG, n_valid - s0);
        let s = s0 + lid;
        var score = EMPTY;
        if (lid < count) {
            let r = cache_row(s, p.page_tokens);
            row_sh[lid] = r;
            let a_base = p.ka_off + r * p.ka_row + g * p.ka_head;
            var dot4 = vec4<f32>(0.0);
            let d4 = p.d_a & ~3u;
            for (var j = 0u; j < d4; j += 4u) {
                let kv = ka_at4(a_base, j);
                let qv = vec4<f32>(q_sh[j], q_sh[j + 1u], q_sh[j + 2u], q_sh[j + 3u]);
                dot4 = fma(qv, kv, dot4);
            }
            var d = dot(dot4, vec4<f32>(1.0));
            for (var j = d4; j < p.d_a; j++) {
                d = fma(q_sh[j], ka_at(a_base, j), d);
            }
            let b_base = p.kb_off + r * p.kb_row + g * p.kb_head;
            for (var j = p.d_a; j < p.d_qk; j++) {
                d = fma(q_sh[j], kb_at(b_base, j - p.d_a), d);
            }
            score = d * p.scale;
        }
        let tile = softmax_tile(score, m, lid, count);
        let m_new = tile.x;
        let alpha = tile.y;
        l = l * alpha + tile.z;
        for (var i = 0u; i < OUT_PER_INVOCATION; i++) {
            let dim = lid + i * WG;
            if (dim < p.d_v) {
                var sum = acc[i] * alpha;
                let v_base = p.v_off + g * p.v_head;
                for (var j = 0u; j < count; j++) {
                    sum = fma(prob_sh[j], v_at(v_base + row_sh[j] * p.v_row, dim), sum);
                }
                acc[i] = sum;
            }
        }
        m = m_new;
        workgroupBarrier();
    }
    let inv = 1.0 / l;
    let o_base = p.o_off + t * p.o_row + h * p.o_head;
    for (var i = 0u; i < OUT_PER_INVOCATION; i++) {
        let dim = lid + i * WG;
        if (dim < p.d_v) {
            o[o_base + dim] = acc[i] * inv;
        }
    }
}

// The same with f32 keys (both parts) and values read as vec4s, for views whose offsets and
// strides, d_a, d_qk and d_v are multiples of 4: on a CPU rasteriser each key's or value's load is
// then one wide load per four values rather than four, and an invocation accumulates four
// neighbouring output dimensions.
@group(0) @binding(2) var<storage, read> ka4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> kb4: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> v4: array<vec4<f32>>;

const OUT4_PER_INVOCATION: u32 = 4u; // d_v <= 4 * OUT4_PER_INVOCATION * WG

@compute @workgroup_size(WG)
fn attention_v4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let row = workgroup_index(wid, nwg);
    if (row >= p.n_q * p.heads) {
        return;
    }
    let t = row / p.heads;
    let h = row % p.heads;
    let g = h / (p.heads / p.kv_heads);
    let keys = visible_keys(t);
    let first = keys.x;
    let n_valid = keys.y;
    load_query(t, h, lid);

    var m = EMPTY;
    var l = 0.0;
    var acc = array<vec4<f32>, OUT4_PER_INVOCATION>(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    let d_v4 = p.d_v / 4u;
    for (var s0 = first; s0 < n_valid; s0 += WG) {
        let count = min(WG, n_valid - s0);
        let s = s0 + lid;
        var score = EMPTY;
        if (lid < count) {
            let r = cache_row(s, p.page_tokens);
            row_sh[lid] = r;
            let a_base4 = (p.ka_off + r * p.ka_row + g * p.ka_head) / 4u;
            var dot4 = vec4<f32>(0.0);
            for (var j = 0u; j < p.d_a / 4u; j++) {
                let qv = vec4<f32>(q_sh[4u * j], q_sh[4u * j + 1u], q_sh[4u * j + 2u], q_sh[4u * j + 3u]);
                dot4 = fma(qv, ka4[a_base4 + j], dot4);
            }
            let b_base4 = (p.kb_off + r * p.kb_row + g * p.kb_head) / 4u;
            for (var j = 0u; j < (p.d_qk - p.d_a) / 4u; j++) {
                let o = p.d_a + 4u * j;
                let qv = vec4<f32>(q_sh[o], q_sh[o + 1u], q_sh[o + 2u], q_sh[o + 3u]);
                dot4 = fma(qv, kb4[b_base4 + j], dot4);
            }
            score = dot(dot4, vec4<f32>(1.0)) * p.scale;
        }
        let tile = softmax_tile(score, m, lid, count);
        let m_new = tile.x;
        let alpha = tile.y;
        l = l * alpha + tile.z;
        for (var i = 0u; i < OUT4_PER_INVOCATION; i++) {
            let dim4 = lid + i * WG;
            if (dim4 < d_v4) {
                var sum = acc[i] * alpha;
                let v_base4 = (p.v_off + g * p.v_head) / 4u + dim4;
                let v_row4 = p.v_row / 4u;
                for (var j = 0u; j < count; j++) {
                    sum = fma(vec4<f32>(prob_sh[j]), v4[v_base4 + row_sh[j] * v_row4], sum);
                }
                acc[i] = sum;
            }
        }
        m = m_new;
        workgroupBarrier();
    }
    let inv = 1.0 / l;
    let o_base = p.o_off + t * p.o_row + h * p.o_head;
    for (var i = 0u; i < OUT4_PER_INVOCATION; i++) {
        let dim4 = lid + i * WG;
        if (dim4 < d_v4) {
            let r = acc[i] * inv;
            o[o_base + 4u * dim4] = r.x;
            o[o_base + 4u * dim4 + 1u] = r.y;
            o[o_base + 4u * dim4 + 2u] = r.z;
            o[o_base + 4u * dim4 + 3u] = r.w;
        }
    }
}
