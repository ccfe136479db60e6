"""Runs a model on given tokens with PyTorch and writes every layer's output and the logits to one
safetensors file, for `latentgpu compare`.

    # a Hugging Face directory (config.json names a model_type), run by transformers:
    python reference/export_golden.py --model ./llama-dir --text "Hello" --device cuda --dtype float32 --out golden.safetensors
    python reference/export_golden.py --model ./llama-dir --token-ids 1,15043,29892 --device cuda --dtype bfloat16 --out g.safetensors
    # this project's own format, run by the PyTorch twin (reference/model.py):
    python reference/export_golden.py --model models/shakespeare-mha --text "ROMEO:" --device cuda --out golden.safetensors

Contents: `tokens` (I64 [n]); `hidden.<i>` [n, d] (the output of decoder layer i) and `logits`
[n, V] computed on --device in --dtype with TF32 off; `hidden_f64.<i>` and `logits_f64`
computed on the CPU in float64 (the reference both sides are measured against); metadata
`device` (the GPU's name), `torch`, `dtype`, `model`.
"""
import argparse
import json
import os
import sys

import torch
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def is_hf(model_dir):
    with open(os.path.join(model_dir, "config.json")) as f:
        return "model_type" in json.load(f)


def hf_tokens(model_dir, args):
    if args.token_ids:
        return [int(t) for t in args.token_ids.split(",")]
    from transformers import AutoTokenizer
    text = args.text if args.text is not None else open(args.text_file).read()
    ids = AutoTokenizer.from_pretrained(model_dir)(text).input_ids  # BOS as the tokenizer adds it
    return ids[: args.max_tokens]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--text")
    src.add_argument("--text-file")
    src.add_argument("--token-ids", help="comma-separated token ids (Hugging Face models)")
    ap.add_argument("--max-tokens", type=int, default=256)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu")
    ap.add_argument("--dtype", default="float32", choices=sorted(DTYPES))
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    torch.set_float32_matmul_precision("highest")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    dtype = DTYPES[args.dtype]

    if is_hf(args.model):
        from export_hf_fixtures import golden
        tokens = hf_tokens(args.model, args)
        err = golden(args.model, tokens, args.out, device=args.device, dtype=dtype)
        print(f"{len(tokens)} tokens on {args.device} in {args.dtype}: logits max error vs float64 {err:.3e} -> {args.out}")
        return

    from model import load  # noqa: E402
    text = args.text.encode() if args.text is not None else open(args.text_file, "rb").read()
    tokens = torch.tensor(list(text[: args.max_tokens]), dtype=torch.long)
    model = load(args.model, device=args.device, dtype=dtype)
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
    meta = {"device": device, "torch": torch.__version__, "dtype": args.dtype, "model": args.model}
    save_file({k: v.contiguous() for k, v in out.items()}, args.out, metadata=meta)
    err = (logits.double().cpu() - logits64).abs().max().item()
    print(f"{len(tokens)} tokens on {device} in {args.dtype}: logits max error vs float64 {err:.3e} -> {args.out}")


if __name__ == "__main__":
    main()
