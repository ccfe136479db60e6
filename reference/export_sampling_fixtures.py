"""Writes tests/fixtures/sampling/processors.json: fixed logits and what transformers' own logits
processors make of them, in the order `generate` applies them (repetition penalty, temperature,
top-k, top-p). The GPU sampler's processed scores are tested against these.

Each case plants what a wrong sampler would get wrong: ties at the k-th value (transformers keeps
them all), seen tokens with positive and negative logits and repeated ids (the penalty divides the
positive ones, multiplies the negative ones, once per token), and no token whose top-p decision
sits within 1e-4 of the threshold (so a correct float32 implementation cannot decide otherwise).

    .venv/bin/python reference/export_sampling_fixtures.py
"""

import json
from pathlib import Path

import numpy as np
import torch
from transformers.generation.logits_process import (
    LogitsProcessorList,
    RepetitionPenaltyLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "sampling" / "processors.json"
VOCAB = 997  # a prime, not a multiple of the workgroup size
MARGIN = 1e-4

CASES = [
    # name, temperature, top_k, top_p, repetition_penalty
    ("top_k_ties", 1.0, 7, 1.0, 1.0),
    ("top_k", 1.0, 40, 1.0, 1.0),
    ("top_p", 0.7, 0, 0.9, 1.0),
    ("repetition_penalty", 1.0, 0, 1.0, 1.3),
    ("temperature", 1.5, 0, 1.0, 1.0),
    ("all", 0.8, 50, 0.95, 1.2),
    ("top_p_small", 1.0, 0, 0.3, 1.1),
]


def short(v):
    """A float32 as the shortest decimal that reads back to it (keeps the file small)."""
    return float(str(np.float32(v)))


def top_p_margin(scores, top_p):
    """Smallest |mass strictly above a token - top_p| over tokens (float64 softmax)."""
    s = scores.double()
    finite = torch.isfinite(s)
    probs = torch.softmax(s, dim=-1)
    order = torch.argsort(s, descending=True)
    above = torch.cumsum(probs[order], 0) - probs[order]
    return float((above[finite[order]] - top_p).abs().min())


def make_case(rng, name, temperature, top_k, top_p, penalty):
    for attempt in range(1000):
        logits = (rng.standard_normal(VOCAB) * 3.0).astype(np.float32)
        order = np.argsort(-logits)
        if name == "top_k_ties":
            # The 7th and 8th largest get the 7th's value, and so does one more lower down.
            logits[order[7]] = logits[order[6]]
            logits[order[20]] = logits[order[6]]
        history = rng.integers(0, VOCAB, size=24)
        # Seen tokens among the largest (positive) and the most negative, one of them repeated.
        history[:3] = order[[0, 2, 2]]
        history[3:5] = order[[-1, -3]]
        input_ids = torch.tensor(history[None, :], dtype=torch.long)
        processors = LogitsProcessorList()
        if penalty != 1.0:
            processors.append(RepetitionPenaltyLogitsProcessor(penalty))
        if temperature != 1.0:
            processors.append(TemperatureLogitsWarper(temperature))
        if top_k > 0:
            processors.append(TopKLogitsWarper(top_k))
        scores = processors(input_ids, torch.tensor(logits[None, :]))[0]
        if top_p < 1.0:
            if top_p_margin(scores, top_p) < MARGIN:
                continue
            scores = TopPLogitsWarper(top_p)(input_ids, scores[None, :])[0]
        return {
            "name": name,
            "temperature": temperature,
            "top_k": top_k,
            "top_p": top_p,
            "repetition_penalty": penalty,
            "input_ids": [int(t) for t in history],
            "logits": [short(v) for v in logits],
            "scores": [short(v) if np.isfinite(v) else None for v in scores.numpy()],
            "kept": int(torch.isfinite(scores).sum()),
        }
    raise RuntimeError(f"no logits for {name} clear of the top-p threshold")


def main():
    rng = np.random.default_rng(20261124)
    import transformers

    cases = [make_case(rng, *c) for c in CASES]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(
        json.dumps(
            {
                "made_by": f"reference/export_sampling_fixtures.py, transformers {transformers.__version__}, torch {torch.__version__}",
                "vocab": VOCAB,
                "cases": cases,
            }
        )
    )
    for c in cases:
        print(f"{c['name']}: {c['kept']} kept")


if __name__ == "__main__":
    main()
