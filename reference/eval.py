"""Perplexity of a model on a text file, windowed exactly as `latentgpu eval` (the same function
reference/train.py reports): non-overlapping windows of --window bytes, each from an empty context.

    python reference/eval.py --model models/shakespeare-mha --text tests/fixtures/eval/test-slice.txt
"""
import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import load  # noqa: E402
from train import perplexity  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--text", required=True)
    ap.add_argument("--window", type=int, default=256)
    ap.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    args = ap.parse_args()
    torch.set_float32_matmul_precision("highest")
    data = torch.tensor(list(open(args.text, "rb").read()), dtype=torch.long)
    model = load(args.model, dtype=getattr(torch, args.dtype))
    ppl = perplexity(model, data, args.window, "cpu")
    print(json.dumps({"model": args.model, "text": args.text, "window": args.window, "dtype": args.dtype,
                      "perplexity": ppl, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
