// The step between MLA's products and its attention, one workgroup per (token, slot):
//   q        [tokens, heads, q_width]   rotated in place on values q_rot..q_rot + rope (the
//                                       query's q_pe part), slots 0..heads
//   kv       [tokens, r + rope]         kv_a_proj_with_mqa's output: c_kv, then k_pe (slot heads)
//   norm     [r]                        kv_a_layernorm: c_kv is RMS-normalised into the cache
//   table    [2, positions, rope / 2]   cos, then sin (RopeTable)
//   c_cache  [capacity, kv_words(r)]    out: the normalised c_kv at row pos + token, in the
//                                       cache format's words (kv_write_*.wgsl); of a paged
//                                       cache, at the pool row its page table `pages` gives
//                                       (cache_pages.wgsl)
//   pe_cache [capacity, kv_words(rope)] out: the rotated k_pe there
// Interleaved pairs, rmsnorm.wgsl's and rope.wgsl's formulas.

struct MlaRopeParams {
    tokens: u32,
    heads: u32,
    q_width: u32,
    q_rot: u32,
    r: u32,
    rope: u32,
    pos: u32,
    positions: u32,
    eps: f32,
    page_tokens: u32,
    _pad1: u32,
    _pad2: u32,
}

const WG: u32 = 64u;
// kv_lora_rank and qk_rope_head_dim at most.
const MAX_WIDTH: u32 = 2048u;

// The row a workgroup writes to the cache (c_kv, then k_pe), for kv_word.
var<workgroup> out_sh: array<f32, MAX_WIDTH>;

@group(0) @binding(0) var<uniform> p: MlaRopeParams;
@group(0) @binding(1) var<storage, read> kv: array<f32>;
@group(0) @binding(2) var<storage, read> norm: array<f32>;
@group(0) @binding(3) var<storage, read> table: array<f32>;
@group(0) @binding(4) var<storage, read_write> q: array<f32>;
@group(0) @binding(5) var<storage, read_write> c_cache: array<KvWord>;
@group(0) @binding(6) var<storage, read_write> pe_cache: array<KvWord>;
@group(0) @binding(7) var<storage, read> pages: array<u32>;

// The rotation of pair i of (x0, x1) at position pos.
fn rotate(x0: f32, x1: f32, pos: u32, i: u32) -> vec2<f32> {
    let half = p.rope / 2u;
    let c = table[pos * half + i];
    let s = table[(p.positions + pos) * half + i];
    return vec2<f32>(x0 * c - x1 * s, x0 * s + x1 * c);
}

@compute @workgroup_size(WG)
fn mla_rope(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
    let slots = p.heads + 1u;
    let row = workgroup_index(wid, nwg);
    if (row >= p.tokens * slots) {
        return;
    }
    let t = row / slots;
    let s = row % slots;
    let pos = p.pos + t;
    let half = p.rope / 2u;
    if (s < p.heads) {
        let base = (t * p.heads + s) * p.q_width + p.q_rot;
        for (var i = lid; i < half; i += WG) {
            let r = rotate(q[base + 2u * i], q[base + 2u * i + 1u], pos, i);
            q[base + 2u * i] = r.x;
            q[base + 2u * i + 1u] = r.y;
        }
        return;
    }
    let src = t * (p.r + p.rope);
    let at = cache_row(pos, p.page_tokens);
    var ss = 0.0;
    for (var j = lid; j < p.r; j += WG) {
        let v = kv[src + j];
        ss += v * v;
    }
    let inv = inverseSqrt(workgroup_sum(ss, lid) / f32(p.r) + p.eps);
    for (var j = lid; j < p.r; j += WG) {
        out_sh[j] = kv[src + j] * inv * norm[j];
    }
    workgroupBarrier();
    let c_words = kv_words(p.r);
    for (var w = lid; w < c_words; w += WG) {
        c_cache[at * c_words + w] = kv_word(w);
    }
    workgroupBarrier();
    for (var i = lid; i < half; i += WG) {
        let r = rotate(kv[src + p.r + 2u * i], kv[src + p.r + 2u * i + 1u], pos, i);
        out_sh[2u * i] = r.x;
        out_sh[2u * i + 1u] = r.y;
    }
    workgroupBarrier();
    let pe_words = kv_words(p.rope);
    for (var w = lid; w < pe_words; w += WG) {
        pe_cache[at * pe_words + w] = kv_word(w);
    }
}
