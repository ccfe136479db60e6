// Picks the next token from one row of logits in one workgroup, in the order transformers
// applies its logits processors: repetition penalty, temperature, top-k, top-p; then a draw.
//   logits [vocab]        the model's last row
//   seen   [vocab / 32]   bit per token already in the sequence; the chosen token's bit is set
//   scores [vocab]        out: the processed scores (penalty and temperature applied; when
//                         sampling, REMOVED where top-k or top-p removed the token:
//                         transformers' -inf, which WGSL may not produce)
//   token  [1]            out: the chosen token id (what the next forward pass embeds), or
//                         NON_FINITE when a score is NaN or infinite (nothing is marked seen)
//   chosen_ids [slots]    out: the chosen token id again, at `slot` (the ids of a batch that
//                         decodes several tokens, read back together)
// Greedy (inv_temperature == 0) takes the argmax of the penalised logits, lowest id on ties.
// Sampling keeps the tokens whose score is at least the k-th largest (ties at the k-th value are
// all kept, as transformers' `scores < topk[-1]` does), then those whose mass of strictly larger
// kept scores is below top_p (transformers' ascending cumsum `> 1 - top_p`, ties kept), and
// draws u·Z along the kept tokens in id order. Thresholds are found exactly by bisection on the
// scores' order-preserving u32 keys, one counting pass per bit.

struct SampleParams {
    vocab: u32,
    top_k: u32,
    top_p: f32,
    inv_temperature: f32,
    penalty: f32,
    inv_penalty: f32,
    u: f32,
    slot: u32,
}

@group(0) @binding(0) var<uniform> p: SampleParams;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read_write> seen: array<u32>;
@group(0) @binding(3) var<storage, read_write> scores: array<f32>;
@group(0) @binding(4) var<storage, read_write> token: array<u32>;
@group(0) @binding(5) var<storage, read_write> chosen_ids: array<u32>;

const WG: u32 = 256u;
// The score of a removed token: the lowest f32 (`sampling::REMOVED`).
const REMOVED: f32 = -0x1.fffffep+127f;
var<workgroup> red_f: array<f32, WG>;
var<workgroup> red_u: array<u32, WG>;
var<workgroup> red_i: array<u32, WG>;
var<workgroup> chosen: u32;
var<workgroup> bad_total: u32;
// The id reported when a processed score is NaN or infinite (`ops::NON_FINITE_TOKEN`).
const NON_FINITE: u32 = 0xffffffffu;

// NaN or ±infinity (all exponent bits set), tested on the bits: WGSL may assume finite floats.
fn not_finite(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7f800000u) == 0x7f800000u;
}

// Maps a float to a u32 whose unsigned order is the float's order.
fn key_of(s: f32) -> u32 {
    let b = bitcast<u32>(s);
    if ((b & 0x80000000u) != 0u) {
        return ~b;
    }
    return b | 0x80000000u;
}

fn sum_u(v: u32, lid: u32) -> u32 {
    red_u[lid] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (lid < s) {
            red_u[lid] += red_u[lid + s];
        }
        workgroupBarrier();
    }
    let r = red_u[0];
    workgroupBarrier();
    return r;
}

// The (key, id) of the largest key, lowest id on ties, over the workgroup.
fn argmax(key: u32, id: u32, lid: u32) -> vec2<u32> {
    red_u[lid] = key;
    red_i[lid] = id;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (lid < s) {
            let ok = red_u[lid + s];
            let oi = red_i[lid + s];
            if (ok > red_u[lid] || (ok == red_u[lid] && oi < red_i[lid])) {
                red_u[lid] = ok;
                red_i[lid] = oi;
            }
        }
        workgroupBarrier();
    }
    let r = vec2<u32>(red_u[0], red_i[0]);
    workgroupBarrier();
    return r;
}

fn is_seen(i: u32) -> bool {
    return (seen[i / 32u] & (1u << (i % 32u))) != 0u;
}

// Tokens with key >= t.
fn count_at_least(t: u32, lid: u32) -> u32 {
    var c = 0u;
    for (var i = lid; i < p.vocab; i += WG) {
        c += u32(key_of(scores[i]) >= t);
    }
    return sum_u(c, lid);
}

// exp(score - m) summed over tokens with key > above and key >= floor.
fn mass_above(above: u32, floor: u32, m: f32, lid: u32) -> f32 {
    var acc = 0.0;
    for (var i = lid; i < p.vocab; i += WG) {
        let k = key_of(scores[i]);
        if (k > above && k >= floor) {
            acc += exp(scores[i] - m);
        }
    }
    return workgroup_sum(acc, lid);
}

@compute @workgroup_size(WG, 1, 1)
fn sample(@builtin(local_invocation_index) lid: u32) {
    // Penalty and temperature; the best token of each invocation's ids.
    var best_key = 0u;
    var best_id = 0xffffffffu;
    var bad = 0u;
    for (var i = lid; i < p.vocab; i += WG) {
        var s = logits[i];
        if (is_seen(i)) {
            s = select(s * p.inv_penalty, s * p.penalty, s < 0.0);
        }
        if (p.inv_temperature > 0.0) {
            s = s * p.inv_temperature;
        }
        scores[i] = s;
        bad += u32(not_finite(s));
        let k = key_of(s);
        if (best_id == 0xffffffffu || k > best_key) {
            best_key = k;
            best_id = i;
        }
    }
    storageBarrier();
    let top = argmax(best_key, best_id, lid);
    let bad_sum = sum_u(bad, lid);
    if (lid == 0u) {
        bad_total = bad_sum;
    }
    // A uniform copy: the sampling below has barriers in it.
    let n_bad = workgroupUniformLoad(&bad_total);
    if (lid == 0u) {
        chosen = select(top.y, NON_FINITE, n_bad > 0u);
    }
    if (p.inv_temperature > 0.0 && n_bad == 0u) {
        let m = scores[top.y];
        // Top-k: the largest threshold that at least k keys reach is the k-th largest key.
        var floor = 0u;
        if (p.top_k > 0u && p.top_k < p.vocab) {
            for (var bit = 31i; bit >= 0i; bit--) {
                let cand = floor | (1u << u32(bit));
                if (count_at_least(cand, lid) >= p.top_k) {
                    floor = cand;
                }
            }
        }
        // Top-p: keep a token when the kept mass strictly above it is below top_p of the
        // kept total; the smallest such key is one past the largest key that fails.
        if (p.top_p < 1.0) {
            let goal = p.top_p * mass_above(0u, floor, m, lid);
            var fails = 0u;
            for (var bit = 31i; bit >= 0i; bit--) {
                let cand = fails | (1u << u32(bit));
                if (mass_above(cand, floor, m, lid) >= goal) {
                    fails = cand;
                }
            }
            if (mass_above(0u, floor, m, lid) >= goal) {
                floor = max(floor, fails + 1u);
            }
        }
        // Draw: the first kept id whose running mass (in id order) passes u·Z. Each
        // invocation sums a contiguous chunk; the one whose chunk holds the goal walks it.
        let chunk = (p.vocab + WG - 1u) / WG;
        let start = min(lid * chunk, p.vocab);
        let end = min(start + chunk, p.vocab);
        var part = 0.0;
        var last_kept = 0u;
        var has_kept = 0u;
        for (var i = start; i < end; i++) {
            if (key_of(scores[i]) >= floor) {
                part += exp(scores[i] - m);
                last_kept = i;
                has_kept = 1u;
            }
        }
        red_f[lid] = part;
        workgroupBarrier();
        if (lid == 0u) {
            var acc = 0.0;
            for (var t = 0u; t < WG; t++) {
                let v = red_f[t];
                red_f[t] = acc;
                acc += v;
            }
            red_f[0] = 0.0;
            // Past the total (rounding): the last kept id; filled below.
            chosen = 0xffffffffu;
            red_u[0] = bitcast<u32>(acc);
        }
        workgroupBarrier();
        let total = bitcast<f32>(red_u[0]);
        let goal = p.u * total;
        let lo = red_f[lid];
        var hi = total;
        if (lid + 1u < WG) {
            hi = red_f[lid + 1u];
        }
        workgroupBarrier();
        if (has_kept == 1u && lo <= goal && goal < hi) {
            var acc = lo;
            var pick = last_kept;
            for (var i = start; i < end; i++) {
                if (key_of(scores[i]) >= floor) {
                    acc += exp(scores[i] - m);
                    if (goal < acc) {
                        pick = i;
                        break;
                    }
                }
            }
            chosen = pick;
        }
        // What transformers' processors return, with REMOVED for their -inf.
        for (var i = start; i < end; i++) {
            if (key_of(scores[i]) < floor) {
                scores[i] = REMOVED;
            }
        }
        let last = argmax(select(0u, last_kept + 1u, has_kept == 1u), 0u, lid);
        if (lid == 0u && chosen == 0xffffffffu) {
            chosen = last.x - 1u;
        }
    }
    workgroupBarrier();
    if (lid == 0u) {
        let t = chosen;
        token[0] = t;
        chosen_ids[p.slot] = t;
        if (t != NON_FINITE) {
            seen[t / 32u] |= 1u << (t % 32u);
        }
    }
}
