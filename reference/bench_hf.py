"""Side by side, in one run on this machine: prefill and decode tokens/s of a Hugging Face
checkpoint in transformers on the CPU (eager, with its KV cache) and in `latentgpu bench model
--profile` on the chosen adapter (f32 matrices, then f16 with --f16), with the same token ids
and lengths. The profile (GPU time per kernel kind, the products alone on the model's shapes,
the FMA and copy roofs) is measured in the same run.

    python reference/bench_hf.py --model /tmp/real/smollm2-shaped --prompt 256 --decode 64 [--backend vulkan] [--f16]

Writes bench-results/hf-side-by-side.json. Nothing else should run meanwhile (check `uptime`).
"""
import argparse
import json
import os
import subprocess
import time

import torch
from transformers import AutoModelForCausalLM

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def transformers_figures(model_dir, ids, prompt, decode, reps=2):
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="eager").eval()
    best_p = best_d = float("inf")
    with torch.no_grad():
        for rep in range(reps + 1):
            t = time.perf_counter()
            out = model(torch.tensor([ids[:prompt]]), use_cache=True)
            p = time.perf_counter() - t
            past = out.past_key_values
            t = time.perf_counter()
            for tok in ids[prompt:prompt + decode]:
                out = model(torch.tensor([[tok]]), past_key_values=past, use_cache=True)
                past = out.past_key_values
            d = time.perf_counter() - t
            if rep:  # the first run warms up
                best_p, best_d = min(best_p, p), min(best_d, d)
    return {"prefill_tokens_per_s": prompt / best_p, "decode_tokens_per_s": decode / best_d,
            "threads": torch.get_num_threads(), "torch": torch.__version__}


def latentgpu_figures(model_dir, prompt, decode, backend, f16=False, moe=False):
    name = "hf-latentgpu-f16.json" if f16 else "hf-latentgpu.json"
    out = os.path.join(ROOT, "bench-results", name)
    cmd = [os.path.join(ROOT, "scripts", "run.sh")] + (["--backend", backend] if backend else []) + (
        ["--f16-weights"] if f16 else []) + [
        "bench", "model", "--profile", "--models", model_dir, "--prompt", str(prompt), "--decode", str(decode),
        "--out", out] + (["--expert-readback"] if moe else [])
    print(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    fig = json.load(open(out))
    return fig["figures"][0] | {"adapter": fig.get("adapter"), "roofs": fig.get("roofs"),
                                "profile": (fig.get("profiles") or [None])[0],
                                "experts": (fig.get("experts") or [None])[0]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--prompt", type=int, default=256)
    ap.add_argument("--decode", type=int, default=64)
    ap.add_argument("--backend", default=None)
    ap.add_argument("--f16", action="store_true", help="also run latentgpu with f16 matrices")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench-results", "hf-side-by-side.json"))
    args = ap.parse_args()
    config = json.load(open(os.path.join(args.model, "config.json")))
    vocab = config["vocab_size"]
    # A mixture of experts is also decoded with its experts' ids read back per layer.
    moe = bool(config.get("n_routed_experts"))
    # The ids latentgpu's bench uses.
    ids = [(32 + i % 90) % vocab for i in range(args.prompt + args.decode)]
    ours = latentgpu_figures(os.path.abspath(args.model), args.prompt, args.decode, args.backend, moe=moe)
    ours16 = (latentgpu_figures(os.path.abspath(args.model), args.prompt, args.decode, args.backend, f16=True)
              if args.f16 else None)
    theirs = transformers_figures(args.model, ids, args.prompt, args.decode)
    result = {"model": args.model, "prompt": args.prompt, "decode": args.decode, "latentgpu": ours,
              "latentgpu_f16": ours16, "transformers_cpu": theirs,
              "prefill_ratio": ours["prefill_tokens_per_s"] / theirs["prefill_tokens_per_s"],
              "decode_ratio": ours["decode_tokens_per_s"] / theirs["decode_tokens_per_s"]}
    print(f"{'':24} {'prefill tok/s':>14} {'decode tok/s':>14}")
    print(f"{'latentgpu':24} {ours['prefill_tokens_per_s']:>14.1f} {ours['decode_tokens_per_s']:>14.2f}")
    if ours16:
        print(f"{'latentgpu f16':24} {ours16['prefill_tokens_per_s']:>14.1f} {ours16['decode_tokens_per_s']:>14.2f}")
    print(f"{'transformers CPU':24} {theirs['prefill_tokens_per_s']:>14.1f} {theirs['decode_tokens_per_s']:>14.2f}")
    print(f"{'ratio':24} {result['prefill_ratio']:>14.2f} {result['decode_ratio']:>14.2f}")
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    json.dump(result, open(args.out, "w"), indent=2)
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
