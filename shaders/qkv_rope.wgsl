// The step between a multi-head layer's fused q|k|v product and its attention, one workgroup
// per (token, head) of the product's output:
//   qkv   [tokens, heads + 2·kv_heads, dh]   the fused product (q heads, then k, then v)
//   aux   [(heads + 2·kv_heads)·dh + 2·dh]   the q|k|v bias (added when has_bias), then the
//                                            q and k norm weights (per-head RMSNorm when has_norm)
//   table [2, positions, rot_dim / 2]        cos, then sin (RopeTable)
//   q     [tokens, heads, dh]                out: the rotated queries
//   k_cache, v_cache [capacity, kv_heads, kv_words(dh)] out: the rotated keys and the values,
//                                            in the cache format's words (kv_write_*.wgsl), at
//                                            rows row..; of a paged cache, at the pool rows its
//                                            page table `pages` gives (cache_pages.wgsl)
// Token t is rotated for position pos + t.
// The norm and the rotation are rmsnorm.wgsl's and rope.wgsl's formulas (modes: 0 interleaved
// pairs, 1 half-split pairs; values rot_dim.. of a head are not rotated).

struct QkvParams {
    tokens: u32,
    heads: u32,
    kv_heads: u32,
    dh: u32,
    rot_dim: u32,
    mode: u32,
    pos: u32,
    positions: u32,
    has_bias: u32,
    has_norm: u32,
    eps: f32,
    row: u32,
    page_tokens: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

const WG: u32 = 64u;
const MAX_DH: u32 = 1024u;

@group(0) @binding(0) var<uniform> p: QkvParams;
@group(0) @binding(1) var<storage, read> qkv: array<f32>;
@group(0) @binding(2) var<storage, read> aux: array<f32>;
@group(0) @binding(3) var<storage, read> table: array<f32>;
@group(0) @binding(4) var<storage, read_write> q: array<f32>;
@group(0) @binding(5) var<storage, read_write> k_cache: array<KvWord>;
@group(0) @binding(6) var<storage, read_write> v_cache: array<KvWord>;
@group(0) @binding(7) var<storage, read> pages: array<u32>;

var<workgroup> head: array<f32, MAX_DH>;
// The row a workgroup writes to the cache (the rotated key, or the value), for kv_word.
var<workgroup> out_sh: array<f32, MAX_DH>;

@compute @workgroup_size(WG)
fn qkv_rope(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
    let slots = p.heads + 2u * p.kv_heads;
    let row = workgroup_index(wid, nwg);
    if (row >= p.tokens * slots) {
        return;
    }
    let t = row / slots;
    let s = row % slots;
    let dh = p.dh;
    for (var j = lid; j < dh; j += WG) {
        var x = qkv[row * dh + j];
        if (p.has_bias != 0u) {
            x += aux[s * dh + j];
        }
        head[j] = x;
    }
    workgroupBarrier();
    let words = kv_words(dh);
    let kv_base = cache_row(p.row + t, p.page_tokens) * p.kv_heads;
    if (s >= p.heads + p.kv_heads) {
        let base = (kv_base + s - p.heads - p.kv_heads) * words;
        for (var j = lid; j < dh; j += WG) {
            out_sh[j] = head[j];
        }
        workgroupBarrier();
        for (var w = lid; w < words; w += WG) {
            v_cache[base + w] = kv_word(w);
        }
        return;
    }
    if (p.has_norm != 0u) {
        var ss = 0.0;
        for (var j = lid; j < dh; j += WG) {
            ss += head[j] * head[j];
        }
        let inv = inverseSqrt(workgroup_sum(ss, lid) / f32(dh) + p.eps);
        var w_base = slots * dh;
        if (s >= p.heads) {
            w_base += dh;
        }
        var normed: array<f32, 16>;
        for (var j = lid; j < dh; j += WG) {
            normed[j / WG] = head[j] * inv * aux[w_base + j];
        }
        workgroupBarrier();
        for (var j = lid; j < dh; j += WG) {
            head[j] = normed[j / WG];
        }
        workgroupBarrier();
    }
    let half = p.rot_dim / 2u;
    let pos = p.pos + t;
    let out_base = (t * p.heads + s) * dh;
    for (var j = lid; j < dh; j += WG) {
        var v = head[j];
        if (j < p.rot_dim) {
            var i = j / 2u;
            var first = (j % 2u) == 0u;
            var j0 = j & ~1u;
            var j1 = j0 + 1u;
            if (p.mode == 1u) {
                first = j < half;
                i = select(j - half, j, first);
                j0 = i;
                j1 = i + half;
            }
            let c = table[pos * half + i];
            let sn = table[(p.positions + pos) * half + i];
            let x0 = head[j0];
            let x1 = head[j1];
            v = select(x0 * sn + x1 * c, x0 * c - x1 * sn, first);
        }
        if (s < p.heads) {
            q[out_base + j] = v;
        } else {
            out_sh[j] = v;
        }
    }
    if (s >= p.heads) {
        workgroupBarrier();
        let base = (kv_base + s - p.heads) * words;
        for (var w = lid; w < words; w += WG) {
            k_cache[base + w] = kv_word(w);
        }
    }
}
