"""Real-shaped GGUF files for the benchmarks and the quality table (random weights,
transformers' own initialisation, real widths; never committed): the f32 file written by the
`gguf` package with a vocabulary llama.cpp ships for its tokenizer tests, then llama-quantize's
Q8_0, Q6_K, Q5_K_M, Q4_K_M, Q3_K_M, Q4_0 and Q4_1 of it.

    LLAMA_CPP=/path/to/llama.cpp python reference/export_real_gguf.py OUT_DIR [SHAPE]

SHAPE is one of:
- smollm2 (the default): SmolLM2-135M's widths and its 49,152-token StarCoder vocabulary. Its
  width of 576 is not a multiple of 256, so the K-quant mixes hold Q5_0, Q5_1 and Q8_0 where
  their K-quants cannot go, as the published SmolLM2 files do;
- qwen3-0.6b: Qwen3-0.6B's widths (multiples of 256: its K-quant mixes are K-quants) and the
  151,936-token Qwen2 vocabulary.
Files are named <shape>-shaped-<type>.gguf. llama.cpp's source gives `models/ggml-vocab-*.gguf`;
its `build/bin` the quantizer.
"""
import os
import subprocess
import sys

import numpy as np
import torch
from gguf import GGMLQuantizationType
from transformers import AutoModelForCausalLM

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export_gguf_fixtures import finish, open_writer, permute  # noqa: E402
from export_gguf_kquants import gguf_name  # noqa: E402
from export_hf_fixtures import REAL_SHAPES  # noqa: E402
from export_kl_base import tokenizer_fields  # noqa: E402

TYPES = ["Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q3_K_M", "Q4_0", "Q4_1"]


# shape: (GGUF architecture, llama.cpp's vocabulary file).
SHAPES = {
    "smollm2": ("llama", "ggml-vocab-starcoder.gguf"),
    "qwen3-0.6b": ("qwen3", "ggml-vocab-qwen2.gguf"),
}

# Qwen3's per-head norms, beside the Llama names.
QK_NORMS = {
    "self_attn.q_norm.weight": "attn_q_norm.weight",
    "self_attn.k_norm.weight": "attn_k_norm.weight",
}


def tensor_name(name):
    """The GGUF name of transformers' tensor `name`."""
    for part, renamed in QK_NORMS.items():
        if name.endswith(part):
            return f"blk.{name.split('.')[2]}.{renamed}"
    return gguf_name(name)


def main():
    out = sys.argv[1]
    shape = sys.argv[2] if len(sys.argv) > 2 else "smollm2"
    arch, vocab_file = SHAPES[shape]
    llama = os.environ["LLAMA_CPP"]
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    cfg = REAL_SHAPES[shape]()
    model = AutoModelForCausalLM.from_config(cfg).eval()
    f32 = os.path.join(out, f"{shape}-shaped-f32.gguf")
    writer = open_writer(f32, arch, cfg, cfg.num_key_value_heads)
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    writer.add_rope_dimension_count(head_dim)
    if arch == "qwen3":
        writer.add_key_length(head_dim)
        writer.add_value_length(head_dim)
    writer.add_file_type(0)
    vocab = os.path.join(llama, "models", vocab_file)
    for key, value, kind, inner in tokenizer_fields(vocab):
        writer.add_key_value(key, value, kind, sub_type=inner)
    for name, tensor in model.state_dict().items():
        if name == "lm_head.weight":
            continue
        data = tensor.detach().float().numpy()
        # convert_hf_to_gguf.py permutes a Llama's q and k rows for llama.cpp's RoPE, not Qwen's.
        if arch == "llama" and name.endswith("q_proj.weight"):
            data = permute(data, cfg.num_attention_heads)
        elif arch == "llama" and name.endswith("k_proj.weight"):
            data = permute(data, cfg.num_key_value_heads)
        writer.add_tensor(tensor_name(name), np.ascontiguousarray(data),
                          raw_dtype=GGMLQuantizationType.F32)
    finish(writer)
    print(f32, os.path.getsize(f32), "bytes")
    for kind in TYPES:
        path = os.path.join(out, f"{shape}-shaped-{kind.lower()}.gguf")
        subprocess.run([os.path.join(llama, "build", "bin", "llama-quantize"), f32, path, kind],
                       check=True, capture_output=True)
        print(path, os.path.getsize(path), "bytes")


if __name__ == "__main__":
    main()
