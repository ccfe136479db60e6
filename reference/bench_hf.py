"""Side by side, in one run on this machine: prefill and decode tokens/s of a Hugging Face
checkpoint in transformers on the CPU (eager, with its KV cache) and in `latentgpu bench model`
on the chosen adapter, with the same token ids and lengths.

    python reference/bench_hf.py --model /tmp/real/smollm2-shaped --prompt 256 --decode 64 [--backend vulkan]

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


def latentgpu_figures(model_dir, prompt, decode, backend):
    out = os.path.join(ROOT, "bench-results", "hf-latentgpu.json")
    cmd = [os.path.join(ROOT, "scripts", "run.sh")] + (["--backend", backend] if backend else []) + [
        "bench", "model", "--models", model_dir, "--prompt", str(prompt), "--decode", str(decode), "--out", out]
    print(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    fig = json.load(open(out))
    return fig["figures"][0] | {"adapter": fig.get("adapter")}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--prompt", type=int, default=256)
    ap.add_argument("--decode", type=int, default=64)
    ap.add_argument("--backend", default=None)
    ap.add_argument("--out", default=os.path.join(ROOT, "bench-results", "hf-side-by-side.json"))
    args = ap.parse_args()
    vocab = json.load(open(os.path.join(args.model, "config.json")))["vocab_size"]
    # The ids latentgpu's bench uses.
    ids = [(32 + i % 90) % vocab for i in range(args.prompt + args.decode)]
    ours = latentgpu_figures(os.path.abspath(args.model), args.prompt, args.decode, args.backend)
    theirs = transformers_figures(args.model, ids, args.prompt, args.decode)
    result = {"model": args.model, "prompt": args.prompt, "decode": args.decode, "latentgpu": ours,
              "transformers_cpu": theirs,
              "prefill_ratio": ours["prefill_tokens_per_s"] / theirs["prefill_tokens_per_s"],
              "decode_ratio": ours["decode_tokens_per_s"] / theirs["decode_tokens_per_s"]}
    print(f"{'':24} {'prefill tok/s':>14} {'decode tok/s':>14}")
    print(f"{'latentgpu':24} {ours['prefill_tokens_per_s']:>14.1f} {ours['decode_tokens_per_s']:>14.2f}")
    print(f"{'transformers CPU':24} {theirs['prefill_tokens_per_s']:>14.1f} {theirs['decode_tokens_per_s']:>14.2f}")
    print(f"{'ratio':24} {result['prefill_ratio']:>14.2f} {result['decode_ratio']:>14.2f}")
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    json.dump(result, open(args.out, "w"), indent=2)
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
