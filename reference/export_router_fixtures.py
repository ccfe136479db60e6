"""Writes tests/fixtures/moe/routers.json: router logits and what transformers' own DeepSeek
routers (`DeepseekV2TopkRouter`, `DeepseekV3TopkRouter`) choose from them. The GPU router is
tested against these.

Each case is a router of its own config, given seeded hidden states whose logits it computes
itself (float32, as transformers does). Rows 0 and 1 plant ties: a zero hidden state makes every
logit equal, and a hidden state along one router row's direction, with that row copied to a
second expert, makes two experts tie for the best. `torch.topk` gives tied values to the lower
index; the fixture records the chosen experts sorted by (weight descending, index ascending), as
ours returns them.

    .venv/bin/python reference/export_router_fixtures.py
"""

import json
from pathlib import Path

import torch
from transformers import DeepseekV2Config, DeepseekV3Config
from transformers.models.deepseek_v2.modeling_deepseek_v2 import DeepseekV2TopkRouter
from transformers.models.deepseek_v3.modeling_deepseek_v3 import DeepseekV3TopkRouter

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "moe" / "routers.json"
HIDDEN = 32
TOKENS = 9

CASES = [
    # name, version, experts, top_k, method, n_group, topk_group, norm_topk_prob, scaling
    ("v2_greedy", 2, 64, 6, "greedy", 1, 1, False, 1.0),
    ("v2_group_limited", 2, 160, 6, "group_limited_greedy", 8, 3, False, 16.0),
    ("v2_group_limited_small", 2, 12, 5, "group_limited_greedy", 4, 1, False, 1.0),
    ("v3_noaux_tc", 3, 256, 8, "noaux_tc", 8, 4, True, 2.5),
    ("v3_noaux_tc_unnormed", 3, 24, 4, "noaux_tc", 6, 2, False, 1.5),
    ("v3_one_group", 3, 13, 3, "noaux_tc", 1, 1, True, 1.0),
]


def router(version, experts, top_k, method, n_group, topk_group, norm, scaling):
    common = dict(
        hidden_size=HIDDEN,
        num_experts_per_tok=top_k,
        n_group=n_group,
        topk_group=topk_group,
        norm_topk_prob=norm,
        routed_scaling_factor=scaling,
    )
    if version == 2:
        config = DeepseekV2Config(n_routed_experts=experts, topk_method=method, **common)
        return DeepseekV2TopkRouter(config)
    config = DeepseekV3Config(n_routed_experts=experts, **common)
    r = DeepseekV3TopkRouter(config)
    # A correction bias that is not zero, so choosing by it differs from weighing by scores.
    r.e_score_correction_bias.copy_(torch.rand(experts) - 0.5)
    return r


def main():
    torch.manual_seed(0)
    cases = []
    for name, version, experts, top_k, method, n_group, topk_group, norm, scaling in CASES:
        r = router(version, experts, top_k, method, n_group, topk_group, norm, scaling)
        with torch.no_grad():
            r.weight.normal_(0.0, 0.5)
            # Experts 3 and 5 share a router row, so a hidden state along it makes them tie.
            r.weight[5] = r.weight[3]
            x = torch.randn(TOKENS, HIDDEN)
            x[0] = 0.0
            x[1] = r.weight[3] * 2.0
            logits, weights, ids = r(x)
        chosen = []
        for t in range(TOKENS):
            pairs = sorted(zip(weights[t].tolist(), ids[t].tolist()), key=lambda p: (-p[0], p[1]))
            chosen.append({"ids": [i for _, i in pairs], "weights": [w for w, _ in pairs]})
        bias = r.e_score_correction_bias.tolist() if version == 3 else [0.0] * experts
        cases.append(
            {
                "name": name,
                "experts": experts,
                "top_k": top_k,
                "method": method,
                "n_group": n_group,
                "topk_group": topk_group,
                "norm_topk_prob": norm,
                "routed_scaling_factor": scaling,
                "bias": bias,
                "logits": logits.tolist(),
                "chosen": chosen,
            }
        )
    OUT.parent.mkdir(parents=True, exist_ok=True)
    meta = {"generator": f"transformers DeepseekV2TopkRouter/DeepseekV3TopkRouter, torch {torch.__version__}"}
    OUT.write_text(json.dumps({"meta": meta, "cases": cases}))
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
