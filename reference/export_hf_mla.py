"""Exports Hugging Face DeepseekV2/V3 attention layers (tiny, seeded, random weights) and their
fp32 CPU outputs as fixtures for the Rust MLA layer: tests/fixtures/hf/<name>/ holds
config.json (the Hugging Face config), weights.safetensors (the layer's own keys: q_proj or
q_a_proj/q_a_layernorm/q_b_proj, kv_a_proj_with_mqa, kv_a_layernorm, kv_b_proj, o_proj) and
golden.safetensors (x [n, d], position_ids [n] (I64), out_f32 and out_f64 [n, d]).

    python reference/export_hf_mla.py
"""
import json
import os

import torch
from safetensors.torch import save_file
from transformers import DeepseekV2Config, DeepseekV3Config
from transformers.masking_utils import create_causal_mask  # noqa: F401  (documents the mask used)
from transformers.models.deepseek_v2 import modeling_deepseek_v2 as v2
from transformers.models.deepseek_v3 import modeling_deepseek_v3 as v3

ROOT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "hf")

COMMON = dict(hidden_size=48, num_attention_heads=3, num_key_value_heads=3, kv_lora_rank=20,
              qk_nope_head_dim=10, qk_rope_head_dim=6, v_head_dim=7, max_position_embeddings=256,
              rms_norm_eps=1e-6, attention_bias=False, num_hidden_layers=1, vocab_size=32,
              intermediate_size=64, moe_intermediate_size=16, n_routed_experts=2, num_experts_per_tok=1)

YARN = {"rope_type": "yarn", "rope_theta": 10000.0, "factor": 4.0, "original_max_position_embeddings": 64,
        "beta_fast": 32, "beta_slow": 1, "mscale": 0.707, "mscale_all_dim": 0.707}

CASES = {
    "v2-no-qlora": (DeepseekV2Config, v2, dict(q_lora_rank=None)),
    "v2-qlora-yarn": (DeepseekV2Config, v2, dict(q_lora_rank=12, rope_parameters=YARN)),
    "v3-qlora": (DeepseekV3Config, v3, dict(q_lora_rank=12)),
    "v3-no-qlora-yarn": (DeepseekV3Config, v3, dict(q_lora_rank=None, rope_parameters=YARN)),
}


def run(attn, rotary, x, pos, dtype):
    attn = attn.to(dtype)
    x = x.to(dtype)
    n = x.shape[1]
    mask = torch.full((n, n), float("-inf"), dtype=dtype).triu(1)[None, None]
    if isinstance(rotary, v2.DeepseekV2RotaryEmbedding):
        pe = rotary.to(dtype)(x, pos)
        out, _ = attn(x, attention_mask=mask, position_embeddings=pe)
    else:
        cos, sin = rotary.to(dtype)(x, pos)
        out, _ = attn(x, position_embeddings=(cos, sin), attention_mask=mask)
    return out[0]


def export(name, config_cls, mod, extra, seed):
    torch.manual_seed(seed)
    cfg = config_cls(**COMMON, **extra)
    cfg._attn_implementation = "eager"
    attn_cls = mod.DeepseekV2Attention if mod is v2 else mod.DeepseekV3Attention
    rot_cls = mod.DeepseekV2RotaryEmbedding if mod is v2 else mod.DeepseekV3RotaryEmbedding
    attn = attn_cls(cfg, layer_idx=0).eval()
    with torch.no_grad():
        for n_, p in attn.named_parameters():
            p.copy_(torch.randn_like(p) * (0.4 / p.shape[-1] ** 0.5) if p.dim() > 1 else 1 + 0.1 * torch.randn_like(p))
    rotary = rot_cls(cfg)
    n = 19
    x = torch.randn(1, n, cfg.hidden_size)
    pos = torch.arange(n)[None]
    torch.set_float32_matmul_precision("highest")
    with torch.no_grad():
        out32 = run(attn, rotary, x, pos, torch.float32)
        out64 = run(attn, rot_cls(cfg), x, pos, torch.float64)
        attn.float()
    out = os.path.join(ROOT, name)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump({k: v for k, v in cfg.to_dict().items() if not k.startswith("_")}, f, indent=2, default=str)
    save_file({k: v.float().contiguous() for k, v in attn.state_dict().items()}, os.path.join(out, "weights.safetensors"))
    save_file({"x": x[0].contiguous(), "position_ids": pos[0].long(), "out_f32": out32.double().contiguous(),
               "out_f64": out64.contiguous()}, os.path.join(out, "golden.safetensors"))
    err = (out32.double() - out64).abs().max().item()
    print(f"{name}: transformers fp32 max error vs float64 {err:.3e}; keys {sorted(attn.state_dict())}")


if __name__ == "__main__":
    for i, (name, (cls, mod, extra)) in enumerate(CASES.items()):
        export(name, cls, mod, extra, seed=200 + i)
