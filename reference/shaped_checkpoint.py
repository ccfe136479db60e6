"""Writes a Hugging Face checkpoint with a real model's shapes and seeded random weights (f16),
for the benchmarks; never committed. Needs numpy and safetensors only (no torch).

    python reference/shaped_checkpoint.py --shape smollm2-135m /tmp/shaped/smollm2-135m
    python reference/shaped_checkpoint.py --shape gemma3-270m /tmp/shaped/gemma3-270m

smollm2-135m: Llama, 30 layers, d 576, 9/3 heads of 64, MLP 1536, vocab 49152, tied, context
8192. gemma3-270m: Gemma 3 text, 18 layers, d 640, 4/1 heads of 256, MLP 2048, vocab 262144,
tied, context 32768, five sliding-window layers (window 512) to each full one.
Matrices are uniform with transformers' std 0.02; norms 1 +- 0.1 (Gemma's stored as offsets
around 0, as its checkpoints hold them).
"""

import argparse
import json
import os

import numpy as np
from safetensors.numpy import save_file

SHAPES = {
    "smollm2-135m": {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 49152,
        "hidden_size": 576, "intermediate_size": 1536, "num_hidden_layers": 30,
        "num_attention_heads": 9, "num_key_value_heads": 3, "head_dim": 64,
        "hidden_act": "silu", "max_position_embeddings": 8192, "rms_norm_eps": 1e-5,
        "tie_word_embeddings": True, "attention_bias": False, "mlp_bias": False,
        "rope_parameters": {"rope_type": "default", "rope_theta": 100000.0}, "dtype": "float16",
    },
    "gemma3-270m": {
        "architectures": ["Gemma3ForCausalLM"], "model_type": "gemma3_text", "vocab_size": 262144,
        "hidden_size": 640, "intermediate_size": 2048, "num_hidden_layers": 18,
        "num_attention_heads": 4, "num_key_value_heads": 1, "head_dim": 256,
        "hidden_activation": "gelu_pytorch_tanh", "max_position_embeddings": 32768,
        "rms_norm_eps": 1e-6, "tie_word_embeddings": True, "attention_bias": False,
        "query_pre_attn_scalar": 256, "sliding_window": 512,
        "layer_types": [("full_attention" if (i + 1) % 6 == 0 else "sliding_attention")
                        for i in range(18)],
        "rope_parameters": {
            "full_attention": {"rope_type": "default", "rope_theta": 1000000.0},
            "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
        },
        "dtype": "float16",
    },
}


def tensors(cfg, rng):
    """Every tensor the family's checkpoint holds, by its Hugging Face name."""
    d, hidden = cfg["hidden_size"], cfg["intermediate_size"]
    heads, kv, dh = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]
    gemma = cfg["model_type"] == "gemma3_text"
    a = 0.02 * np.sqrt(3.0)
    out = {}

    def matrix(name, rows, cols):
        out[name] = rng.uniform(-a, a, size=(rows, cols)).astype(np.float16)

    def norm(name, width):
        centre = 0.0 if gemma else 1.0
        out[name] = rng.uniform(centre - 0.1, centre + 0.1, size=(width,)).astype(np.float16)

    matrix("model.embed_tokens.weight", cfg["vocab_size"], d)
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}"
        matrix(f"{p}.self_attn.q_proj.weight", heads * dh, d)
        matrix(f"{p}.self_attn.k_proj.weight", kv * dh, d)
        matrix(f"{p}.self_attn.v_proj.weight", kv * dh, d)
        matrix(f"{p}.self_attn.o_proj.weight", d, heads * dh)
        matrix(f"{p}.mlp.gate_proj.weight", hidden, d)
        matrix(f"{p}.mlp.up_proj.weight", hidden, d)
        matrix(f"{p}.mlp.down_proj.weight", d, hidden)
        norm(f"{p}.input_layernorm.weight", d)
        norm(f"{p}.post_attention_layernorm.weight", d)
        if gemma:
            norm(f"{p}.pre_feedforward_layernorm.weight", d)
            norm(f"{p}.post_feedforward_layernorm.weight", d)
            norm(f"{p}.self_attn.q_norm.weight", dh)
            norm(f"{p}.self_attn.k_norm.weight", dh)
    norm("model.norm.weight", d)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", help="the checkpoint directory to write")
    ap.add_argument("--shape", choices=sorted(SHAPES), required=True)
    args = ap.parse_args()
    cfg = SHAPES[args.shape]
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    save_file(tensors(cfg, np.random.default_rng(0)), os.path.join(args.out, "model.safetensors"),
              metadata={"format": "pt"})


if __name__ == "__main__":
    main()
