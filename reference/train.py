"""Trains a byte-level model of the config it is given on the Shakespeare split (reference/corpus.py).

    python reference/train.py --config CONFIG.json --data data/shakespeare --out models/NAME

Logs train and validation loss and perplexity, and saves model.safetensors (f16 when --save-f16),
config.json and metrics.json (the run's settings, the loss curve, the final validation and test
perplexity, and the unigram/bigram baselines' perplexity on the same validation text).
Runs on CUDA or MPS when present, else CPU.
"""
import argparse
import json
import math
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import Config, Model  # noqa: E402


def load_bytes(path):
    with open(path, "rb") as f:
        return torch.tensor(list(f.read()), dtype=torch.long)


def ngram_baselines(train, val):
    """Validation perplexity of add-one-smoothed unigram and bigram byte models."""
    uni = torch.bincount(train, minlength=256).double() + 1
    uni_nll = -(uni / uni.sum()).log()[val].mean().item()
    pairs = train[:-1] * 256 + train[1:]
    bi = torch.bincount(pairs, minlength=256 * 256).double().view(256, 256) + 1
    bi = bi / bi.sum(1, keepdim=True)
    bi_nll = -bi[val[:-1], val[1:]].log().mean().item()
    return math.exp(uni_nll), math.exp(bi_nll)


@torch.no_grad()
def perplexity(model, data, seq, device, max_windows=None):
    """exp(mean NLL) of every byte after the first, in non-overlapping windows of `seq` bytes."""
    model.eval()
    total, count = 0.0, 0
    starts = list(range(0, len(data) - 1, seq))
    if max_windows:
        starts = starts[:max_windows]
    for s in starts:
        chunk = data[s:s + seq + 1].to(device)
        if len(chunk) < 2:
            continue
        logits = model(chunk[:-1])
        total += F.cross_entropy(logits.double(), chunk[1:], reduction="sum").item()
        count += len(chunk) - 1
    model.train()
    return math.exp(total / count)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--time-limit", type=float, default=1e9, help="seconds")
    ap.add_argument("--device", default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--save-f16", action="store_true")
    args = ap.parse_args()

    device = args.device or ("cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu")
    torch.manual_seed(args.seed)
    cfg = Config.load(args.config)
    train = load_bytes(os.path.join(args.data, "train.txt"))
    val = load_bytes(os.path.join(args.data, "val.txt"))
    test = load_bytes(os.path.join(args.data, "test.txt"))
    uni_ppl, bi_ppl = ngram_baselines(train, val)
    print(f"device {device}; baselines on val: unigram ppl {uni_ppl:.3f}, bigram ppl {bi_ppl:.3f}")

    model = Model(cfg).init_weights().to(device)
    params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.95), weight_decay=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / 100) * 0.5 * (1 + math.cos(math.pi * min(s, args.steps) / args.steps)))
    curve = []
    start = time.time()
    step = 0
    for step in range(1, args.steps + 1):
        ix = torch.randint(len(train) - args.seq - 1, (args.batch,))
        x = torch.stack([train[i:i + args.seq] for i in ix]).to(device)
        y = torch.stack([train[i + 1:i + args.seq + 1] for i in ix]).to(device)
        logits = model(x)
        loss = F.cross_entropy(logits.view(-1, logits.shape[-1]), y.view(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % args.eval_every == 0 or step == args.steps:
            vppl = perplexity(model, val, args.seq, device, max_windows=200)
            curve.append({"step": step, "train_loss": loss.item(), "train_ppl": math.exp(loss.item()),
                          "val_ppl": vppl, "seconds": time.time() - start})
            print(f"step {step}: train loss {loss.item():.4f} ppl {math.exp(loss.item()):.3f}, val ppl {vppl:.3f}", flush=True)
        if time.time() - start > args.time_limit:
            break

    model.eval()
    val_ppl = perplexity(model, val, args.seq, device)
    test_ppl = perplexity(model, test, args.seq, device)
    model = model.cpu()
    print(f"final: val ppl {val_ppl:.4f}, test ppl {test_ppl:.4f} ({params} parameters)")
    os.makedirs(args.out, exist_ok=True)
    from safetensors.torch import save_file
    weights = model.weights()
    if args.save_f16:
        weights = {k: v.half() for k, v in weights.items()}
    save_file(weights, os.path.join(args.out, "model.safetensors"))
    with open(os.path.join(args.out, "config.json"), "w") as f:
        f.write(cfg.to_json() + "\n")
    metrics = {
        "parameters": params, "device": device, "torch": torch.__version__, "steps": step,
        "batch": args.batch, "seq": args.seq, "lr": args.lr, "seconds": time.time() - start,
        "val_ppl": val_ppl, "test_ppl": test_ppl, "unigram_val_ppl": uni_ppl, "bigram_val_ppl": bi_ppl,
        "saved_dtype": "f16" if args.save_f16 else "f32", "curve": curve,
    }
    with open(os.path.join(args.out, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=2)


if __name__ == "__main__":
    main()
