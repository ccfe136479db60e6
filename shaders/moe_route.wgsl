// Mixture-of-experts routing as transformers' DeepSeek routers compute it, one invocation per
// token (decode routes one token; the work per token is a few passes over at most 256 experts):
//   logits  [tokens, experts]   the router's logits (x·Wᵀ in f32)
//   bias    [experts]           DeepSeek-V3's e_score_correction_bias (selection only)
//   ids     [tokens, top_k]     out: the chosen experts, best first
//   weights [tokens, top_k]     out: their weights
// Methods (`p.method`):
//   0 DeepSeek-V2 `greedy`: softmax scores, the top_k of them.
//   1 DeepSeek-V2 `group_limited_greedy`: softmax scores; the topk_group groups of the highest
//     single score are kept, the others' scores set to 0; the top_k of those.
//   2 DeepSeek-V3 `noaux_tc`: sigmoid scores s; choice c = s + bias; the topk_group groups of the
//     highest sum of their two best c are kept, the others' c set to -inf; the top_k of c;
//     weights are s (not c), divided by their sum (+1e-20) when `norm` is set.
// Weights are then multiplied by `scaling`. Every top-k takes the largest value first and, on
// ties, the lower index first (as torch.topk); groups likewise.

struct RouteParams {
    tokens: u32,
    experts: u32,
    top_k: u32,
    groups: u32,
    topk_group: u32,
    method: u32,
    norm: u32,
    scaling: f32,
}

@group(0) @binding(0) var<uniform> p: RouteParams;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> ids: array<u32>;
@group(0) @binding(4) var<storage, read_write> weights: array<f32>;

const MAX_EXPERTS: u32 = 256u;
// transformers' -inf for masked experts, which WGSL may not produce: the lowest f32.
const LOWEST: f32 = -0x1.fffffep+127f;

@compute @workgroup_size(64)
fn route(@builtin(global_invocation_id) gid: vec3<u32>) {
    let t = gid.x;
    if (t >= p.tokens) {
        return;
    }
    let e_count = p.experts;
    let base = t * e_count;
    var score: array<f32, MAX_EXPERTS>;
    var choice: array<f32, MAX_EXPERTS>;
    var taken: array<bool, MAX_EXPERTS>;
    if (p.method == 2u) {
        for (var e = 0u; e < e_count; e++) {
            let s = 1.0 / (1.0 + exp(-logits[base + e]));
            score[e] = s;
            choice[e] = s + bias[e];
            taken[e] = false;
        }
    } else {
        var m = logits[base];
        for (var e = 1u; e < e_count; e++) {
            m = max(m, logits[base + e]);
        }
        var sum = 0.0;
        for (var e = 0u; e < e_count; e++) {
            let x = exp(logits[base + e] - m);
            score[e] = x;
            sum += x;
        }
        for (var e = 0u; e < e_count; e++) {
            score[e] = score[e] / sum;
            choice[e] = score[e];
            taken[e] = false;
        }
    }
    // Group limit: keep the topk_group best groups, mask the rest.
    if (p.method != 0u && p.groups > 1u) {
        let size = e_count / p.groups;
        var group_score: array<f32, MAX_EXPERTS>;
        var group_kept: array<bool, MAX_EXPERTS>;
        for (var g = 0u; g < p.groups; g++) {
            var best = LOWEST;
            var second = LOWEST;
            var best_at = 0u;
            for (var j = 0u; j < size; j++) {
                let c = choice[g * size + j];
                if (j == 0u || c > best) {
                    best = c;
                    best_at = j;
                }
            }
            for (var j = 0u; j < size; j++) {
                let c = choice[g * size + j];
                if (j != best_at && (second == LOWEST || c > second)) {
                    second = c;
                }
            }
            // V2: the best score; V3: the sum of the best two.
            group_score[g] = select(best, best + second, p.method == 2u);
            group_kept[g] = false;
        }
        for (var k = 0u; k < p.topk_group; k++) {
            var pick = 0xffffffffu;
            for (var g = 0u; g < p.groups; g++) {
                if (!group_kept[g] && (pick == 0xffffffffu || group_score[g] > group_score[pick])) {
                    pick = g;
                }
            }
            group_kept[pick] = true;
        }
        for (var e = 0u; e < e_count; e++) {
            if (!group_kept[e / size]) {
                choice[e] = select(0.0, LOWEST, p.method == 2u);
            }
        }
    }
    // Top-k: the largest choice first, the lower index on ties.
    var total = 0.0;
    for (var k = 0u; k < p.top_k; k++) {
        var pick = 0xffffffffu;
        for (var e = 0u; e < e_count; e++) {
            if (!taken[e] && (pick == 0xffffffffu || choice[e] > choice[pick])) {
                pick = e;
            }
        }
        taken[pick] = true;
        ids[t * p.top_k + k] = pick;
        // V2 weighs by the (masked) scores it chose from; V3 by the unbiased scores.
        let w = select(choice[pick], score[pick], p.method == 2u);
        weights[t * p.top_k + k] = w;
        total += w;
    }
    for (var k = 0u; k < p.top_k; k++) {
        var w = weights[t * p.top_k + k];
        if (p.norm != 0u) {
            w = w / (total + 1e-20);
        }
        weights[t * p.top_k + k] = w * p.scaling;
    }
}
