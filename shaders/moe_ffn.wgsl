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
// in the same order whatever the grouping.
@group(0) @binding(1) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> gate4: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> up4: array<vec4<f32>>;

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
            let wg = gate4[row + c];
            let wu = up4[row + c];
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
@group(0) @binding(3) var<storage, read> down4: array<vec4<f32>>;

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
            let w = down4[row + c];
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

// The same two products with quantized expert matrices (q8_0, q4_0 where Q4, q4_1 where Q4 and
// HAS_MIN), dequantized in the kernel: codes [experts, rows, k/32 blocks] of two (q8) or one
// (q4) vec4<u32> per block, scales [experts, rows, k/32] (q4_1: [experts, rows, 2·k/32], a
// block's scale d and minimum m side by side, so no binding more). For q8_0 and q4_0 a block's
// sum is Σ activation·code in order, then scaled by d and accumulated, as the matrix-vector
// kernels do; q4_1's weights are dequantized first (fma(d, code, m), rounded once as
// ops::dequantize does) and their sum is not scaled.
override Q4: bool = false;
override HAS_MIN: bool = false;

// The four signed bytes of a word, as f32.
fn q8_bytes(word: u32) -> vec4<f32> {
    let v = bitcast<vec4<i32>>(vec4<u32>(word << 24u, word << 16u, word << 8u, word)) >> vec4<u32>(24u);
    return vec4<f32>(v);
}

// The low (shift 0) or high (shift 4) nibbles of a word's four bytes, less 8 for q4_0.
fn q4_nibbles(word: u32, shift: u32) -> vec4<f32> {
    let v = (vec4<u32>(word) >> vec4<u32>(shift, shift + 8u, shift + 16u, shift + 24u)) & vec4<u32>(15u);
    return vec4<f32>(bitcast<vec4<i32>>(v)) - select(vec4<f32>(8.0), vec4<f32>(0.0), HAS_MIN);
}

// q4_1's quads of codes dequantized with the block's scale d and minimum m.
fn with_min(q: array<vec4<f32>, 8>, d: f32, m: f32) -> array<vec4<f32>, 8> {
    var w = q;
    for (var t = 0u; t < 8u; t++) {
        w[t] = fma(vec4<f32>(d), q[t], vec4<f32>(m));
    }
    return w;
}

// A block's 32 codes as 8 quads of weights before the scale: weights 4t..4t+3 in quad t.
fn block_quads(c0: vec4<u32>, c1: vec4<u32>) -> array<vec4<f32>, 8> {
    if (Q4) {
        return array<vec4<f32>, 8>(
            q4_nibbles(c0.x, 0u), q4_nibbles(c0.y, 0u), q4_nibbles(c0.z, 0u), q4_nibbles(c0.w, 0u),
            q4_nibbles(c0.x, 4u), q4_nibbles(c0.y, 4u), q4_nibbles(c0.z, 4u), q4_nibbles(c0.w, 4u));
    }
    return array<vec4<f32>, 8>(q8_bytes(c0.x), q8_bytes(c0.y), q8_bytes(c0.z), q8_bytes(c0.w),
                               q8_bytes(c1.x), q8_bytes(c1.y), q8_bytes(c1.z), q8_bytes(c1.w));
}

@group(0) @binding(3) var<storage, read> gate_codes: array<vec4<u32>>;
@group(0) @binding(4) var<storage, read> gate_scales: array<f32>;
@group(0) @binding(5) var<storage, read> up_codes: array<vec4<u32>>;
@group(0) @binding(6) var<storage, read> up_scales: array<f32>;
@group(0) @binding(7) var<storage, read_write> hq: array<f32>;

// Block s of each codes array, as quads (q4_1: the weights themselves).
fn gate_block(s: u32) -> array<vec4<f32>, 8> {
    if (HAS_MIN) {
        let q = block_quads(gate_codes[s], vec4<u32>(0u));
        return with_min(q, gate_scales[2u * s], gate_scales[2u * s + 1u]);
    }
    if (Q4) {
        return block_quads(gate_codes[s], vec4<u32>(0u));
    }
    return block_quads(gate_codes[2u * s], gate_codes[2u * s + 1u]);
}

fn up_block(s: u32) -> array<vec4<f32>, 8> {
    if (HAS_MIN) {
        let q = block_quads(up_codes[s], vec4<u32>(0u));
        return with_min(q, up_scales[2u * s], up_scales[2u * s + 1u]);
    }
    if (Q4) {
        return block_quads(up_codes[s], vec4<u32>(0u));
    }
    return block_quads(up_codes[2u * s], up_codes[2u * s + 1u]);
}

// What block s's sum is scaled by: d, or 1 for q4_1 (its weights are dequantized already).
fn gate_scale(s: u32) -> vec4<f32> {
    return vec4<f32>(select(gate_scales[s], 1.0, HAS_MIN));
}

fn up_scale(s: u32) -> vec4<f32> {
    return vec4<f32>(select(up_scales[s], 1.0, HAS_MIN));
}

// The 8 vec4s of activations of block b from vec4 x0 of an input (x4 or h4 per entry point).
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

// Σ a·w over a block's quads, in order.
fn quad_dot(a: array<vec4<f32>, 8>, w: array<vec4<f32>, 8>) -> vec4<f32> {
    var part = a[0] * w[0];
    for (var t = 1u; t < 8u; t++) {
        part = fma(a[t], w[t], part);
    }
    return part;
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
            let gw = gate_block(row + b);
            let uw = up_block(row + b);
            let gs = gate_scale(row + b);
            let us = up_scale(row + b);
            for (var i = 0u; i < TB; i++) {
                if (i < TOKENS_PER_PASS) {
                    let xs = x_block(xrow[i], b);
                    g[i] = fma(gs, quad_dot(xs, gw), g[i]);
                    u[i] = fma(us, quad_dot(xs, uw), u[i]);
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

@group(0) @binding(3) var<storage, read> down_codes: array<vec4<u32>>;
@group(0) @binding(4) var<storage, read> down_scales: array<f32>;
@group(0) @binding(5) var<storage, read_write> ykq: array<f32>;

fn down_block(s: u32) -> array<vec4<f32>, 8> {
    if (HAS_MIN) {
        let q = block_quads(down_codes[s], vec4<u32>(0u));
        return with_min(q, down_scales[2u * s], down_scales[2u * s + 1u]);
    }
    if (Q4) {
        return block_quads(down_codes[s], vec4<u32>(0u));
    }
    return block_quads(down_codes[2u * s], down_codes[2u * s + 1u]);
}

fn down_scale(s: u32) -> vec4<f32> {
    return vec4<f32>(select(down_scales[s], 1.0, HAS_MIN));
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
            let w = down_block(row + b);
            let s = down_scale(row + b);
            for (var i = 0u; i < TB; i++) {
                if (i < TOKENS_PER_PASS) {
                    acc[i] = fma(s, quad_dot(h_block(hrow[i], b), w), acc[i]);
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
// block's activations loaded once for them all (as the matrix-vector kernels do); each block's
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
            g[r] = fma(gate_scale(s), quad_dot(xs, gate_block(s)), g[r]);
            u[r] = fma(up_scale(s), quad_dot(xs, up_block(s)), u[r]);
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
            acc[r] = fma(down_scale(s), quad_dot(hs, down_block(s)), acc[r]);
        }
    }
    for (var r = 0u; r < EXPERT_ROWS; r++) {
        if (o0 + r < p.d) {
            ykq[slot * p.d + o0 + r] = dot(acc[r], vec4<f32>(1.0));
        }
    }
}
