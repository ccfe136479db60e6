"""Exports tiny random-weight models and their PyTorch logits as test fixtures.

For each attention kind: tests/fixtures/<name>/config.json, model.safetensors (f32) and
golden.safetensors with `tokens` (I64 [n]), `logits_f64` (the float64 forward: the reference),
`logits_f32` (PyTorch's own fp32 forward, whose error against float64 sets the tolerance), and
`hidden_f64.<i>` for each block. Run: python reference/export_fixtures.py
"""
import os
import sys

import torch
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(__file__))
from model import Config, Model  # noqa: E402

ROOT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures")

BASE = dict(
    vocab_size=256, d_model=64, n_layers=2, n_heads=4, ffn_kind="swiglu", ffn_hidden=160,
    norm_kind="rmsnorm", norm_eps=1e-5, max_context=64,
    rope={"base": 10000.0, "mode": "half_split"}, tie_embeddings=False,
)

MODELS = {
    "mha-tiny": dict(attention={"kind": "mha"}),
    "gqa-tiny-gelu-layernorm": dict(
        attention={"kind": "mha", "n_kv_heads": 2}, ffn_kind="gelu", norm_kind="layernorm",
        rope={"base": 10000.0, "mode": "interleaved"}, tie_embeddings=True,
    ),
    # 57 tokens: three full chunks of 16 and a partial one; M = 5 latents, odd on purpose.
    "latent-tiny": dict(attention={"kind": "latent", "latents": 5, "chunk": 16, "synthesis": True}),
    "latent-tiny-nosynth": dict(
        attention={"kind": "latent", "latents": 3, "chunk": 7, "synthesis": False, "rope_dim": 4},
        rope={"base": 10000.0, "mode": "interleaved"},
    ),
    "mla-tiny": dict(attention={"kind": "mla", "kv_lora_rank": 24, "qk_nope_head_dim": 12,
                                "qk_rope_head_dim": 8, "v_head_dim": 10}),
    "mla-tiny-qlora-yarn": dict(attention={
        "kind": "mla", "q_lora_rank": 20, "kv_lora_rank": 16, "qk_nope_head_dim": 8, "qk_rope_head_dim": 6,
        "v_head_dim": 9, "yarn": {"factor": 4.0, "original_max_position_embeddings": 16, "beta_fast": 32,
                                  "beta_slow": 1, "mscale": 0.707, "mscale_all_dim": 0.707}}),
}


def export(name, overrides, seed):
    torch.manual_seed(seed)
    cfg = Config(**{**BASE, **overrides})
    model = Model(cfg).eval()
    with torch.no_grad():
        for p in model.parameters():  # larger than default init so every layer matters
            p.copy_(torch.randn_like(p) * (0.5 / p.shape[-1] ** 0.5 if p.dim() > 1 else 0.2) + (1.0 if p.dim() == 1 else 0.0))
    tokens = torch.tensor(list(b"ROMEO: But soft, what light through yonder window breaks?"[:cfg.max_context]))
    torch.set_float32_matmul_precision("highest")
    with torch.no_grad():
        logits32 = model(tokens)
        m64 = Model(cfg).double()
        m64.load_state_dict(model.state_dict())
        logits64, hidden64 = m64(tokens, return_hidden=True)
    out = os.path.join(ROOT, name)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "config.json"), "w") as f:
        f.write(cfg.to_json() + "\n")
    save_file(model.weights(), os.path.join(out, "model.safetensors"))
    golden = {"tokens": tokens.long(), "logits_f64": logits64, "logits_f32": logits32.double()}
    golden.update({f"hidden_f64.{i}": h for i, h in enumerate(hidden64)})
    save_file({k: v.contiguous() for k, v in golden.items()}, os.path.join(out, "golden.safetensors"))
    err = (logits32.double() - logits64).abs().max().item()
    print(f"{name}: {len(tokens)} tokens, torch fp32 max error vs float64 {err:.3e}")


if __name__ == "__main__":
    for i, (name, overrides) in enumerate(MODELS.items()):
        export(name, overrides, seed=100 + i)
