// The routed experts of a mixture-of-experts feed-forward, read by index on the GPU (what ggml
// calls mul_mat_id), with the tokens grouped by expert so each expert's rows are read once per
// pass of up to TB tokens, not once per token:
//   moe_sort      ids [slots] -> plan: the experts in use and each one's slots, in slot order
//   moe_gate_up   h  [slots, inter] = act(x[t]·gate_eᵀ) · (x[t]·up_eᵀ) for slot (t, j) of expert e
//   moe_down      yk [slots, d]     = h[slot]·down_eᵀ
//   moe_combine   y  [tokens, d]    = Σ_j weights[t, j] · yk[(t, j)], summed in j order
// A slot is (token t, choice j) = t·top_k + j; ids and weights are the router's [tokens, top_k].
// The stacked expert matrices gate, up [experts, inter, d] and down [experts, d, inter] may be
// split into blocks of whole experts (past the binding limit): one dispatch per block, for the
// experts first_expert..first_expert + block_experts, each slot written by its expert's block.
// Every dot product sums in order over its whole length, whoever computes it, so the values do
// not depend on the grouping, the pass size or the split. An id past the experts reads the last
// expert (the router never gives one). The per-pass arrays are zeroed by an explicit constructor:
// Chromium's compiler kept the last pass's values in a bare `var` declared inside the loop.
//
// plan (u32): [0] the number of experts in use, n; [1, 1 + E) those experts, ascending;
// [1 + E, 1 + 2E) each expert's first entry in the order; [1 + 2E, 1 + 3E) its slot count;
// [1 + 3E, 1 + 3E + slots) the slots grouped by expert, each group in slot order.

struct MoeParams {
    tokens: u32,
    top_k: u32,
    d: u32,
    inter: u32,
    experts: u32,
    first_expert: u32,
    block_experts: u32,
    _pad: u32,
}

const WG: u32 = 64u;
// Tokens an invocation carries through one pass over its weight row.
const TB: u32 = 4u;
// Used up to TB; 1 where each expert has one token (decode), so no work is wasted on padding.
override TOKENS_PER_PASS: u32 = 4u;

@group(0) @binding(0) var<uniform> p: MoeParams;

// The plan's sections.
fn active_at(i: u32) -> u32 { return 1u + i; }
fn start_at(e: u32) -> u32 { return 1u + p.experts + e; }
fn count_at(e: u32) -> u32 { return 1u + 2u * p.experts + e; }
fn order_at(i: u32) -> u32 { return 1u + 3u * p.experts + i; }

@group(0) @binding(1) var<storage, read> sort_ids: array<u32>;
@group(0) @binding(2) var<storage, read_write> sort_plan: array<u32>;

const MAX_EXPERTS: u32 = 256u;
var<workgroup> counts: array<u32, MAX_EXPERTS>;

// One workgroup; invocation e counts and lists expert e's slots.
@compute @workgroup_size(MAX_EXPERTS)
fn moe_sort(@builtin(local_invocation_index) e: u32) {
    let slots = p.tokens * p.top_k;
    var n = 0u;
    if (e < p.experts) {
        for (var s = 0u; s < slots; s++) {
            n += u32(min(sort_ids[s], p.experts - 1u) == e);
        }
    }
    counts[e] = n;
    workgroupBarrier();
    if (e >= p.experts) {
        return;
    }
    var start = 0u;
    var rank = 0u;
    for (var i = 0u; i < e; i++) {
        start += counts[i];
        rank += u32(counts[i] > 0u);
    }
    sort_plan[start_at(e)] = start;
    sort_plan[count_at(e)] = n;
    if (n > 0u) {
        sort_plan[active_at(rank)] = e;
    }
    if (e == p.experts - 1u) {
        sort_plan[0] = rank + u32(n > 0u);
    }
    var at = start;
    for (var s = 0u; s < slots; s++) {
        if (min(sort_ids[s], p.experts - 1u) == e) {
            sort_plan[order_at(at)] = s;
            at++;
        }
    }
}

@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> plan: array<u32>;
@group(0) @binding(3) var<storage, read> gate: array<f32>;
@group(0) @binding(4) var<storage, read> up: array<f32>;
@group(0) @binding(5) var<storage, read_write> h: array<f32>;

// The expert workgroup row y works on, when it is in use and in the bound block.
fn expert_of_group(y: u32) -> u32 {
    if (y >= plan[0]) {
        return p.experts;
    }
    let e = plan[active_at(y)];
    if (e < p.first_expert || e - p.first_expert >= p.block_experts) {
        return p.experts;
    }
    return e;
}

// Workgroups: x over the expert's rows, y over the experts in use.
@compute @workgroup_size(WG)
fn moe_gate_up(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let e = expert_of_group(wid.y);
    let r = wid.x * WG + lid;
    if (e >= p.experts || r >= p.inter) {
        return;
    }
    let first = plan[start_at(e)];
    let count = plan[count_at(e)];
    let row = ((e - p.first_expert) * p.inter + r) * p.d;
    for (var done = 0u; done < count; done += TOKENS_PER_PASS) {
        let n = min(TOKENS_PER_PASS, count - done);
        var xrow = array<u32, TB>();
        var g = array<f32, TB>();
        var u = array<f32, TB>();
        for (var i = 0u; i < TB; i++) {
            if (i < TOKENS_PER_PASS) {
                let slot = plan[order_at(first + done + min(i, n - 1u))];
                xrow[i] = slot / p.top_k * p.d;
            }
        }
        for (var c = 0u; c < p.d; c++) {
            let wg = gate[row + c];
            let wu = up[row + c];
            for (var i = 0u; i < TB; i++) {
                if (i < TOKENS_PER_PASS) {
                    let xv = x[xrow[i] + c];
                    g[i] = fma(xv, wg, g[i]);
                    u[i] = fma(xv, wu, u[i]);
                }
            }
        }
        for (var i = 0u; i < TB; i++) {
            if (i < TOKENS_PER_PASS && i < n) {
                let slot = plan[order_at(first + done + i)];
                h[slot * p.inter + r] = gate_act(g[i]) * u[i];
            }
        }
    }
}

@group(0) @binding(1) var<storage, read> h_in: array<f32>;
@group(0) @binding(3) var<storage, read> down: array<f32>;
@group(0) @binding(4) var<storage, read_write> yk: array<f32>;

// Workgroups: x over the model width, y over the experts in use.
@compute @workgroup_size(WG)
fn moe_down(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let e = expert_of_group(wid.y);
    let o = wid.x * WG + lid;
    if (e >= p.experts || o >= p.d) {
        return;
    }
    let first = plan[start_at(e)];
    let count = plan[count_at(e)];
    let row = ((e - p.first_expert) * p.d + o) * p.inter;
    for (var done = 0u; done < count; done += TOKENS_PER_PASS) {
        let n = min(TOKENS_PER_PASS, count - done);
        var hrow = array<u32, TB>();
        var acc = array<f32, TB>();
        for (var i = 0u; i < TB; i++) {
            if (i < TOKENS_PER_PASS) {
                hrow[i] = plan[order_at(first + done + min(i, n - 1u))] * p.inter;
            }
        }
        for (var c = 0u; c < p.inter; c++) {
            let w = down[row + c];
            for (var i = 0u; i < TB; i++) {
                if (i < TOKENS_PER_PASS) {
                    acc[i] = fma(h_in[hrow[i] + c], w, acc[i]);
                }
            }
        }
        for (var i = 0u; i < TB; i++) {
            if (i < TOKENS_PER_PASS && i < n) {
                let slot = plan[order_at(first + done + i)];
                yk[slot * p.d + o] = acc[i];
            }
        }
    }
}

// The same two products with vec4 loads, where d (gate and up) or inter (down) is a multiple of
// 4: each dot product sums four interleaved partial sums, then adds them (as matvec_nt_v4 does),
// in the same order whatever the grouping. The matrices are read through gate_quad, up_quad
// and down_quad, spliced in front by src/shaders.rs: f32 (prelude/experts_f32.wgsl) or 16-bit
// values in u32 words (prelude/experts_packed.wgsl), the same sums either way.
@group(0) @binding(1) var<storage, read> x4: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn moe_gate_up_v4(@builtin(workgroup_id) wid: vec3<u32>,
                  @builtin(local_invocation_index) lid: u32) {
    let e = expert_of_group(wid.y);
    let r = wid.x * WG + lid;
    if (e >= p.experts || r >= p.inter) {
        return;
    }
    let first = plan[start_at(e)];
    let count = plan[count_at(e)];
    let d4 = p.d / 4u;
    let row = ((e - p.first_expert) * p.inter + r) * d4;
    for (var done = 0u; done < count; done += TOKENS_PER_PASS) {
        let n = min(TOKENS_PER_PASS, count - done);
        var xrow = array<u32, TB>();
        var g = array<vec4<f32>, TB>();
        var u = array<vec4<f32>, TB>();
        for (var i = 0u; i < TB; i++) {
            if (i < TOKENS_PER_PASS) {
                let slot = plan[order_at(first + done + min(i, n - 1u))];
                xrow[i] = slot / p.top_k * d4;
            }
        }
        for (var c = 0u; c < d4; c++) {
            let wg = gate_quad(row + c);
            let wu = up_quad(row + c);
            for (var i = 0u; i < TB; i++) {
                if (i < TOKENS_PER_PASS) {
                    let xv = x4[xrow[i] + c];
                    g[i] = fma(xv, wg, g[i]);
                    u[i] = fma(xv, wu, u[i]);
                }
            }
        }
        for (var i = 0u; i < TB; i++) {
            if (i < TOKENS_PER_PASS && i < n) {
                let slot = plan[order_at(first + done + i)];
                h[slot * p.inter + r] = gate_act(dot(g[i], vec4<f32>(1.0))) * dot(u[i], vec4<f32>(1.0));
            }
        }
    }
}

@group(0) @binding(1) var<storage, read> h4: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn moe_down_v4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let e = expert_of_group(wid.y);
    let o = wid.x * WG + lid;
    if (e >= p.experts || o >= p.d) {
        return;
    }
    let first = plan[start_at(e)];
    let count = plan[count_at(e)];
    let i4 = p.inter / 4u;
    let row = ((e - p.first_expert) * p.d + o) * i4;
    for (var done = 0u; done < count; done += TOKENS_PER_PASS) {
        let n = min(TOKENS_PER_PASS, count - done);
        var hrow = array<u32, TB>();
        var acc = array<vec4<f32>, TB>();
        for (var i = 0u; i < TB; i++) {
            if (i < TOKENS_PER_PASS) {
                hrow[i] = plan[order_at(first + done + min(i, n - 1u))] * i4;
            }
        }
        for (var c = 0u; c < i4; c++) {
            let w = down_quad(row + c);
            for (var i = 0u; i < TB; i++) {
                if (i < TOKENS_PER_PASS) {
                    acc[i] = fma(h4[hrow[i] + c], w, acc[i]);
                }
            }
        }
        for (var i = 0u; i < TB; i++) {
            if (i < TOKENS_PER_PASS && i < n) {
                let slot = plan[order_at(first + done + i)];
                yk[slot * p.d + o] = dot(acc[i], vec4<f32>(1.0));
            }
        }
    }
}

@group(0) @binding(1) var<storage, read> yk_in: array<f32>;
@group(0) @binding(2) var<storage, read> weights: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(WG)
fn moe_combine(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
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
        acc = fma(weights[slot], yk_in[slot * p.d + o], acc);
    }
    y[i] = acc;
}

// The same two products with quantized expert matrices in any format, one record per chunk of
// 32 weights (prelude/quant_formats.wgsl): groups [experts, rows, k/32/group_chunks() ·
// group_words()] u32, rows in order (linear_place). Each chunk's weights are dequantized as ops::dequantize does and summed
// against the activations in order, the same in every kernel below, so the values do not depend
// on the kernel.

// The 8 vec4s of activations of chunk b from vec4 x0 of an input (x4 or h4 per entry point).
fn x_block(x0: u32, b: u32) -> array<vec4<f32>, 8> {
    let i = x0 + 8u * b;
    return array<vec4<f32>, 8>(x4[i], x4[i + 1u], x4[i + 2u], x4[i + 3u], x4[i + 4u], x4[i + 5u],
                               x4[i + 6u], x4[i + 7u]);
}

fn h_block(h0: u32, b: u32) -> array<vec4<f32>, 8> {
    let i = h0 + 8u * b;
    return array<vec4<f32>, 8>(h4[i], h4[i + 1u], h4[i + 2u], h4[i + 3u], h4[i + 4u], h4[i + 5u],
                               h4[i + 6u], h4[i + 7u]);
}

// Σ a·w over a chunk's quads, in order.
fn quad_dot(a: array<vec4<f32>, 8>, w: array<vec4<f32>, 8>) -> vec4<f32> {
    var part = a[0] * w[0];
    for (var t = 1u; t < 8u; t++) {
        part = fma(a[t], w[t], part);
    }
    return part;
}

@group(0) @binding(3) var<storage, read> gate_q: array<u32>;
@group(0) @binding(4) var<storage, read> up_q: array<u32>;
@group(0) @binding(5) var<storage, read_write> hq: array<f32>;

// The weights of chunk s of the gate and up stacks.
fn gate_chunk(s: u32) -> array<vec4<f32>, 8> {
    let place = linear_place(s);
    let at = codes_word(place);
    let hat = header_word(place);
    var r: Record;
    for (var i = 0u; i < stored_words(); i++) {
        r[i] = gate_q[at + i];
    }
    var h = array<u32, 5>();
    for (var i = 0u; i < min(HEADER, 5u); i++) {
        h[i] = gate_q[hat + i];
    }
    return record_weights(with_header(r, head_of_words(h), place.y));
}

fn up_chunk(s: u32) -> array<vec4<f32>, 8> {
    let place = linear_place(s);
    let at = codes_word(place);
    let hat = header_word(place);
    var r: Record;
    for (var i = 0u; i < stored_words(); i++) {
        r[i] = up_q[at + i];
    }
    var h = array<u32, 5>();
    for (var i = 0u; i < min(HEADER, 5u); i++) {
        h[i] = up_q[hat + i];
    }
    return record_weights(with_header(r, head_of_words(h), place.y));
}

@compute @workgroup_size(WG)
fn moe_gate_up_q(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let e = expert_of_group(wid.y);
    let r = wid.x * WG + lid;
    if (e >= p.experts || r >= p.inter) {
        return;
    }
    let first = plan[start_at(e)];
    let count = plan[count_at(e)];
    let blocks = p.d / 32u;
    let row = ((e - p.first_expert) * p.inter + r) * blocks;
    for (var done = 0u; done < count; done += TOKENS_PER_PASS) {
        let n = min(TOKENS_PER_PASS, count - done);
        var xrow = array<u32, TB>();
        var g = array<vec4<f32>, TB>();
        var u = array<vec4<f32>, TB>();
        for (var i = 0u; i < TB; i++) {
            if (i < TOKENS_PER_PASS) {
                let slot = plan[order_at(first + done + min(i, n - 1u))];
                xrow[i] = slot / p.top_k * (p.d / 4u);
            }
        }
        for (var b = 0u; b < blocks; b++) {
            let gw = gate_chunk(row + b);
            let uw = up_chunk(row + b);
            for (var i = 0u; i < TB; i++) {
                if (i < TOKENS_PER_PASS) {
                    let xs = x_block(xrow[i], b);
                    g[i] += quad_dot(xs, gw);
                    u[i] += quad_dot(xs, uw);
                }
            }
        }
        for (var i = 0u; i < TB; i++) {
            if (i < TOKENS_PER_PASS && i < n) {
                let slot = plan[order_at(first + done + i)];
                hq[slot * p.inter + r] = gate_act(dot(g[i], vec4<f32>(1.0))) * dot(u[i], vec4<f32>(1.0));
            }
        }
    }
}

@group(0) @binding(3) var<storage, read> down_q: array<u32>;
@group(0) @binding(4) var<storage, read_write> ykq: array<f32>;

fn down_chunk(s: u32) -> array<vec4<f32>, 8> {
    let place = linear_place(s);
    let at = codes_word(place);
    let hat = header_word(place);
    var r: Record;
    for (var i = 0u; i < stored_words(); i++) {
        r[i] = down_q[at + i];
    }
    var h = array<u32, 5>();
    for (var i = 0u; i < min(HEADER, 5u); i++) {
        h[i] = down_q[hat + i];
    }
    return record_weights(with_header(r, head_of_words(h), place.y));
}

@compute @workgroup_size(WG)
fn moe_down_q(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let e = expert_of_group(wid.y);
    let o = wid.x * WG + lid;
    if (e >= p.experts || o >= p.d) {
        return;
    }
    let first = plan[start_at(e)];
    let count = plan[count_at(e)];
    let blocks = p.inter / 32u;
    let row = ((e - p.first_expert) * p.d + o) * blocks;
    for (var done = 0u; done < count; done += TOKENS_PER_PASS) {
        let n = min(TOKENS_PER_PASS, count - done);
        var hrow = array<u32, TB>();
        var acc = array<vec4<f32>, TB>();
        for (var i = 0u; i < TB; i++) {
            if (i < TOKENS_PER_PASS) {
                hrow[i] = plan[order_at(first + done + min(i, n - 1u))] * (p.inter / 4u);
            }
        }
        for (var b = 0u; b < blocks; b++) {
            let w = down_chunk(row + b);
            for (var i = 0u; i < TB; i++) {
                if (i < TOKENS_PER_PASS) {
                    acc[i] += quad_dot(h_block(hrow[i], b), w);
                }
            }
        }
        for (var i = 0u; i < TB; i++) {
            if (i < TOKENS_PER_PASS && i < n) {
                let slot = plan[order_at(first + done + i)];
                ykq[slot * p.d + o] = dot(acc[i], vec4<f32>(1.0));
            }
        }
    }
}

// One token (decode: each expert in use has its one slot): EXPERT_ROWS rows per invocation, a
// chunk's activations loaded once for them all (as the matrix-vector kernels do); each chunk's
// sum in the order of moe_gate_up_q and moe_down_q, so the values are theirs.
const EXPERT_ROWS: u32 = 4u;

@compute @workgroup_size(WG)
fn moe_gate_up_q_one(@builtin(workgroup_id) wid: vec3<u32>,
                     @builtin(local_invocation_index) lid: u32) {
    let e = expert_of_group(wid.y);
    let r0 = (wid.x * WG + lid) * EXPERT_ROWS;
    if (e >= p.experts || r0 >= p.inter || plan[count_at(e)] == 0u) {
        return;
    }
    let slot = plan[order_at(plan[start_at(e)])];
    let x0 = slot / p.top_k * (p.d / 4u);
    let blocks = p.d / 32u;
    var g = array<vec4<f32>, EXPERT_ROWS>();
    var u = array<vec4<f32>, EXPERT_ROWS>();
    for (var b = 0u; b < blocks; b++) {
        let xs = x_block(x0, b);
        for (var r = 0u; r < EXPERT_ROWS; r++) {
            let s = ((e - p.first_expert) * p.inter + min(r0 + r, p.inter - 1u)) * blocks + b;
            g[r] += quad_dot(xs, gate_chunk(s));
            u[r] += quad_dot(xs, up_chunk(s));
        }
    }
    for (var r = 0u; r < EXPERT_ROWS; r++) {
        if (r0 + r < p.inter) {
            hq[slot * p.inter + r0 + r] = gate_act(dot(g[r], vec4<f32>(1.0))) * dot(u[r], vec4<f32>(1.0));
        }
    }
}

@compute @workgroup_size(WG)
fn moe_down_q_one(@builtin(workgroup_id) wid: vec3<u32>,
                  @builtin(local_invocation_index) lid: u32) {
    let e = expert_of_group(wid.y);
    let o0 = (wid.x * WG + lid) * EXPERT_ROWS;
    if (e >= p.experts || o0 >= p.d || plan[count_at(e)] == 0u) {
        return;
    }
    let slot = plan[order_at(plan[start_at(e)])];
    let h0 = slot * (p.inter / 4u);
    let blocks = p.inter / 32u;
    var acc = array<vec4<f32>, EXPERT_ROWS>();
    for (var b = 0u; b < blocks; b++) {
        let hs = h_block(h0, b);
        for (var r = 0u; r < EXPERT_ROWS; r++) {
            let s = ((e - p.first_expert) * p.d + min(o0 + r, p.d - 1u)) * blocks + b;
            acc[r] += quad_dot(hs, down_chunk(s));
        }
    }
    for (var r = 0u; r < EXPERT_ROWS; r++) {
        if (o0 + r < p.d) {
            ykq[slot * p.d + o0 + r] = dot(acc[r], vec4<f32>(1.0));
        }
    }
}
