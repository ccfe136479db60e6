"""A base file of llama.cpp's own `llama-perplexity --kl-divergence-base`, for `eval
--kl-divergence-base`: a tiny seeded Qwen2 with a real byte-level BPE vocabulary (the 400-token
qwen2 tokenizer fixture's), written as an f32 GGUF by the `gguf` package, then scored by
`llama-perplexity` on the start of the evaluation text. f32, because llama.cpp's CPU products
with quantized weights quantize the activations too (q8_0 against q8_0), which the base would
carry; with f32 weights and an f32 cache (`-ctk f32 -ctv f32`; llama.cpp's default cache is
f16) both engines compute in f32.

    LLAMA_BIN=/path/to/llama.cpp/build/bin python reference/export_kl_base.py

Writes tests/fixtures/gguf/kl-base/model-f32.gguf and base.bin (4 chunks of 32 tokens),
llama.cpp's printed figures in llama-perplexity.txt, and in transformers.json the figures of
transformers in float64 (loading the same file) against the base, scored as llama-perplexity
scores: perplexity, mean and largest KL divergence. The test scores the same file with our
engine against the base and expects transformers' figures.
"""
import json
import os
import struct
import subprocess
import sys

import numpy as np
import torch
from gguf import GGMLQuantizationType, GGUFReader, GGUFValueType
from transformers import AutoModelForCausalLM, Qwen2Config

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export_gguf_fixtures import finish, open_writer  # noqa: E402
from export_gguf_kquants import gguf_name  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..")
OUT = os.path.join(ROOT, "tests", "fixtures", "gguf", "kl-base")
BIN = os.environ.get("LLAMA_BIN", "")
VOCAB_FILE = os.path.join(ROOT, "tests", "fixtures", "gguf", "tokenizer", "qwen2.gguf")
TEXT = os.path.join(ROOT, "tests", "fixtures", "eval", "test-slice.txt")


def tokenizer_fields(path=VOCAB_FILE):
    """The tokenizer keys of the GGUF file at `path`, as (key, value, type, inner type)."""
    reader = GGUFReader(path)
    out = []
    for key, field in reader.fields.items():
        if not key.startswith("tokenizer."):
            continue
        kind = field.types[0]
        if kind == GGUFValueType.ARRAY:
            inner = field.types[1]
            if inner == GGUFValueType.STRING:
                value = [bytes(field.parts[i]).decode("utf-8") for i in field.data]
            else:
                value = [int(field.parts[i][0]) for i in field.data]
            out.append((key, value, kind, inner))
        elif kind == GGUFValueType.STRING:
            out.append((key, bytes(field.parts[field.data[0]]).decode("utf-8"), kind, None))
        else:
            out.append((key, field.parts[field.data[0]][0].item(), kind, None))
    return out


def transformers_against_base(base):
    """transformers in float64 on the base's chunks (the file's own tokens: its vocabulary adds
    no BOS), against the base's log-probabilities as llama-perplexity reads them (tokens below
    e^-16 left out of the KL divergence)."""
    raw = open(base, "rb").read()
    n_ctx, n_vocab, n_chunk = struct.unpack("<Iii", raw[8:20])
    tokens = np.frombuffer(raw[20:20 + 4 * n_ctx * n_chunk], dtype=np.int32).reshape(n_chunk, n_ctx)
    nv = 2 * ((n_vocab + 1) // 2) + 4
    rows = np.frombuffer(raw[20 + 4 * n_ctx * n_chunk:], dtype=np.uint16).reshape(-1, nv)
    scale = rows[:, 0:2].copy().view(np.float32)[:, 0]
    low = rows[:, 2:4].copy().view(np.float32)[:, 0]
    base_lp = (scale[:, None] * rows[:, 4:4 + n_vocab] + low[:, None]).astype(np.float64)
    model = AutoModelForCausalLM.from_pretrained(OUT, gguf_file="model-f32.gguf",
                                                 dtype=torch.float64).eval()
    first, per_chunk = n_ctx // 2, n_ctx - 1 - n_ctx // 2
    kld, nll = [], []
    for c in range(n_chunk):
        with torch.no_grad():
            logits = model(torch.tensor([tokens[c].tolist()])).logits[0]
        ours = torch.log_softmax(logits, -1).numpy()
        for r in range(per_chunk):
            at, b = first + r, base_lp[c * per_chunk + r]
            keep = b > -16
            kld.append(float((np.exp(b[keep]) * (b[keep] - ours[at][keep])).sum()))
            nll.append(-float(ours[at][tokens[c][at + 1]]))
    return dict(perplexity=float(np.exp(np.mean(nll))), kld_mean=float(np.mean(kld)),
                kld_max=float(np.max(kld)))


def main():
    os.makedirs(OUT, exist_ok=True)
    fields = tokenizer_fields()
    vocab = len(next(v for k, v, *_ in fields if k == "tokenizer.ggml.tokens"))
    cfg = Qwen2Config(vocab_size=vocab, hidden_size=64, intermediate_size=128, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=256,
                      rms_norm_eps=1e-6, tie_word_embeddings=True,
                      rope_parameters=dict(rope_type="default", rope_theta=1000000.0))
    torch.manual_seed(99)
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.3)
    f32 = os.path.join(OUT, "model-f32.gguf")
    writer = open_writer(f32, "qwen2", cfg, cfg.num_key_value_heads)
    writer.add_rope_dimension_count(cfg.hidden_size // cfg.num_attention_heads)
    writer.add_file_type(0)
    for key, value, kind, inner in fields:
        writer.add_key_value(key, value, kind, sub_type=inner)
    for name, tensor in model.state_dict().items():
        if name == "lm_head.weight":
            continue
        data = np.ascontiguousarray(tensor.detach().float().numpy())
        writer.add_tensor(gguf_name(name), data, raw_dtype=GGMLQuantizationType.F32)
    finish(writer)
    base = os.path.join(OUT, "base.bin")
    run = subprocess.run([os.path.join(BIN, "llama-perplexity"), "-m", f32, "-f", TEXT, "-c", "32",
                          "-b", "32", "--chunks", "4", "-t", "2", "-ctk", "f32", "-ctv", "f32",
                          "--kl-divergence-base", base],
                         check=True, capture_output=True, text=True)
    with open(os.path.join(OUT, "llama-perplexity.txt"), "w") as f:
        f.write(run.stdout + run.stderr)
    with open(os.path.join(OUT, "transformers.json"), "w") as f:
        json.dump(transformers_against_base(base), f, indent=1)
    print(f32, os.path.getsize(f32), "bytes;", base, os.path.getsize(base), "bytes")


if __name__ == "__main__":
    main()
