"""transformers' own RoPE initialisation for each RoPE type the families run: the inverse
frequencies and attention factor its `ROPE_INIT_FUNCTIONS` compute (in float32, on the CPU) for a
config.json, and for LongRoPE the long frequencies too (`seq_len` past the original context).

    python reference/export_rope_fixtures.py      # tests/fixtures/rope/frequencies.json

`tests/rope_frequencies.rs` reads each config as the loader does and expects these values.
"""
import json
import os

import torch
from transformers import Gemma3TextConfig, LlamaConfig, Phi3Config, Qwen3Config
from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "fixtures", "rope", "frequencies.json")

CASES = {
    "default": (LlamaConfig, dict(hidden_size=64, num_attention_heads=4, rope_parameters=dict(
        rope_type="default", rope_theta=500000.0))),
    "linear": (LlamaConfig, dict(hidden_size=96, num_attention_heads=4, rope_parameters=dict(
        rope_type="linear", rope_theta=10000.0, factor=3.0))),
    # Dynamic NTK: plain RoPE up to max_position_embeddings, all the context ever holds.
    "dynamic": (LlamaConfig, dict(hidden_size=64, num_attention_heads=2, max_position_embeddings=2048,
                                  rope_parameters=dict(rope_type="dynamic", rope_theta=10000.0, factor=4.0))),
    "llama3": (LlamaConfig, dict(hidden_size=128, num_attention_heads=2, max_position_embeddings=131072,
                                 rope_parameters=dict(rope_type="llama3", rope_theta=500000.0, factor=8.0,
                                                      low_freq_factor=1.0, high_freq_factor=4.0,
                                                      original_max_position_embeddings=8192))),
    # Qwen3 past its native 32k, as its model card sets it.
    "yarn": (Qwen3Config, dict(hidden_size=64, num_attention_heads=4, num_key_value_heads=4, head_dim=128, max_position_embeddings=131072,
                               rope_parameters=dict(rope_type="yarn", rope_theta=1000000.0, factor=4.0,
                                                    original_max_position_embeddings=32768))),
    "yarn-mscale": (Qwen3Config, dict(hidden_size=64, num_attention_heads=4, num_key_value_heads=4, head_dim=64,
                                      max_position_embeddings=65536,
                                      rope_parameters=dict(rope_type="yarn", rope_theta=10000.0, factor=16.0,
                                                           original_max_position_embeddings=4096, beta_fast=24.0,
                                                           beta_slow=2.0, mscale=0.9, mscale_all_dim=0.8))),
    "yarn-attention-factor": (Qwen3Config, dict(hidden_size=64, num_attention_heads=4, num_key_value_heads=4,
                                                head_dim=32,
                                                max_position_embeddings=8192,
                                                rope_parameters=dict(rope_type="yarn", rope_theta=10000.0,
                                                                     factor=2.0, attention_factor=1.25,
                                                                     original_max_position_embeddings=4096))),
    # Phi-4-mini's shape: three quarters of a 128 head rotated, LongRoPE from 4k to 128k.
    "longrope-partial": (Phi3Config, dict(hidden_size=3072, num_attention_heads=24, max_position_embeddings=131072,
                                          original_max_position_embeddings=4096,
                                          rope_parameters=dict(rope_type="longrope", rope_theta=10000.0,
                                                               partial_rotary_factor=0.75,
                                                               short_factor=[1.0 + 0.05 * i for i in range(48)],
                                                               long_factor=[1.0 + 0.9 * i for i in range(48)]))),
    "gemma3": (Gemma3TextConfig, dict(hidden_size=64, num_attention_heads=4, num_key_value_heads=4, head_dim=32,
                                      num_hidden_layers=6,
                                      rope_parameters={
                                          "sliding_attention": dict(rope_type="default", rope_theta=10000.0),
                                          "full_attention": dict(rope_type="linear", factor=8.0,
                                                                 rope_theta=1000000.0)})),
}


def frequencies(config, layer_type=None, seq_len=None):
    params = config.rope_parameters[layer_type] if layer_type else config.rope_parameters
    fn = ROPE_INIT_FUNCTIONS[params["rope_type"]] if params["rope_type"] != "default" else None
    if fn is None:
        base = params["rope_theta"]
        dim = int(getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads)
        dim = int(dim * params.get("partial_rotary_factor", 1.0))
        inv = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).to(dtype=torch.float) / dim))
        return inv, 1.0
    kwargs = dict(layer_type=layer_type) if layer_type else {}
    return fn(config, "cpu", seq_len=seq_len, **kwargs)


def main():
    out = {}
    for name, (cls, kwargs) in CASES.items():
        config = cls(**kwargs)
        entry = {"config": config.to_dict()}
        if name == "gemma3":
            for kind in ["full_attention", "sliding_attention"]:
                inv, factor = frequencies(config, kind)
                entry[kind] = {"inv_freq": inv.float().tolist(), "attention_factor": float(factor)}
        elif name == "dynamic":
            # The frequencies of the longest sequence the context can hold.
            inv, factor = frequencies(config, seq_len=config.max_position_embeddings)
            entry["inv_freq"] = inv.float().tolist()
            entry["attention_factor"] = float(factor)
        else:
            inv, factor = frequencies(config)
            entry["inv_freq"] = inv.float().tolist()
            entry["attention_factor"] = float(factor)
            if name.startswith("longrope"):
                original = config.rope_parameters["original_max_position_embeddings"]
                long, _ = frequencies(config, seq_len=original + 1)
                entry["long_inv_freq"] = long.float().tolist()
        out[name] = entry
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(out, f, indent=1)
    print(f"{OUT}: {os.path.getsize(OUT) / 1024:.0f} KB")


if __name__ == "__main__":
    main()
