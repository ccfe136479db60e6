"""Runs a model on given tokens with PyTorch and writes every layer's output and the logits to one
safetensors file, for `latentgpu compare`.

    python reference/export_golden.py --model models/shakespeare-mha --text "ROMEO:" --device cuda --out golden.safetensors

Contents: `tokens` (I64 [n]); `hidden.<i>` [n, d] and `logits` [n, V] computed on --device in fp32
with TF32 off; `hidden_f64.<i>` and `logits_f64` computed on the CPU in float64 (the reference both
sides are measured against); metadata `device` (the GPU's name), `torch`, `dtype`, `model`.
"""
import argparse
import os
import sys

import torch
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import load  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--text")
    src.add_argument("--text-file")
    ap.add_argument("--max-tokens", type=int, default=256)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    torch.set_float32_matmul_precision("highest")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    text = args.text.encode() if args.text is not None else open(args.text_file, "rb").read()
    tokens = torch.tensor(list(text[: args.max_tokens]), dtype=torch.long)

    model = load(args.model, device=args.device, dtype=torch.float32)
    with torch.no_grad():
        logits, hidden = model(tokens.to(args.device), return_hidden=True)
        ref = load(args.model, device="cpu", dtype=torch.float64)
        logits64, hidden64 = ref(tokens, return_hidden=True)
    out = {"tokens": tokens, "logits": logits.float().cpu(), "logits_f64": logits64}
    for i, (h, h64) in enumerate(zip(hidden, hidden64)):
        out[f"hidden.{i}"] = h.float().cpu()
        out[f"hidden_f64.{i}"] = h64
    if args.device.startswith("cuda"):
        device = torch.cuda.get_device_name()
    else:
        device = args.device
    meta = {"device": device, "torch": torch.__version__, "dtype": "float32", "model": args.model}
    save_file({k: v.contiguous() for k, v in out.items()}, args.out, metadata=meta)
    err = (logits.double().cpu() - logits64).abs().max().item()
    print(f"{len(tokens)} tokens on {device}: logits fp32 max error vs float64 {err:.3e} -> {args.out}")


if __name__ == "__main__":
    main()
