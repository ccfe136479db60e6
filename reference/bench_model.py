"""Prefill and decode tokens/s of the PyTorch twin on this machine's CPU, for a side-by-side with
`latentgpu bench model` (same prompt and decode lengths). The twin has no cache: each decode step
re-runs the whole prefix, as a plain eager implementation does.

    python reference/bench_model.py --models models/shakespeare-mha --prompt 256 --decode 64
"""
import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import load  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", nargs="+", required=True)
    ap.add_argument("--prompt", type=int, default=256)
    ap.add_argument("--decode", type=int, default=64)
    ap.add_argument("--out", default="bench-results/model-pytorch.json")
    args = ap.parse_args()
    figures = []
    for path in args.models:
        model = load(path)
        ids = torch.tensor([32 + i % 90 for i in range(args.prompt + args.decode)])
        best_p = best_d = float("inf")
        with torch.no_grad():
            for rep in range(3):
                t = time.perf_counter()
                model(ids[: args.prompt])
                p = time.perf_counter() - t
                t = time.perf_counter()
                for i in range(args.decode):
                    model(ids[: args.prompt + i + 1])[-1]
                d = time.perf_counter() - t
                if rep:
                    best_p, best_d = min(best_p, p), min(best_d, d)
        fig = {"model": path, "prefill_tokens_per_s": args.prompt / best_p, "decode_tokens_per_s": args.decode / best_d,
               "threads": torch.get_num_threads(), "torch": torch.__version__}
        print(json.dumps(fig))
        figures.append(fig)
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    json.dump({"figures": figures}, open(args.out, "w"), indent=2)


if __name__ == "__main__":
    main()
