"""SmolLM2-135M-shaped GGUF files for the benchmarks and the quality table (random weights,
transformers' own initialisation, real widths; never committed): the f32 file written by the
`gguf` package with the 49,152-token StarCoder vocabulary llama.cpp ships for its tokenizer
tests (SmolLM2's vocabulary has that size), then llama-quantize's Q8_0, Q6_K, Q5_K_M, Q4_K_M,
Q3_K_M, Q4_0 and Q4_1 of it.

    LLAMA_CPP=/path/to/llama.cpp python reference/export_real_gguf.py OUT_DIR

llama.cpp's source gives `models/ggml-vocab-starcoder.gguf`; its `build/bin` the quantizer.
SmolLM2's width of 576 is not a multiple of 256, so the K-quant mixes hold Q5_0, Q5_1 and Q8_0
where their K-quants cannot go, as the published SmolLM2 files do.
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


def main():
    out = sys.argv[1]
    llama = os.environ["LLAMA_CPP"]
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    cfg = REAL_SHAPES["smollm2"]()
    model = AutoModelForCausalLM.from_config(cfg).eval()
    f32 = os.path.join(out, "smollm2-shaped-f32.gguf")
    writer = open_writer(f32, "llama", cfg, cfg.num_key_value_heads)
    writer.add_rope_dimension_count(cfg.hidden_size // cfg.num_attention_heads)
    writer.add_file_type(0)
    vocab = os.path.join(llama, "models", "ggml-vocab-starcoder.gguf")
    for key, value, kind, inner in tokenizer_fields(vocab):
        writer.add_key_value(key, value, kind, sub_type=inner)
    for name, tensor in model.state_dict().items():
        if name == "lm_head.weight":
            continue
        data = tensor.detach().float().numpy()
        if name.endswith("q_proj.weight"):
            data = permute(data, cfg.num_attention_heads)
        elif name.endswith("k_proj.weight"):
            data = permute(data, cfg.num_key_value_heads)
        writer.add_tensor(gguf_name(name), np.ascontiguousarray(data),
                          raw_dtype=GGMLQuantizationType.F32)
    finish(writer)
    print(f32, os.path.getsize(f32), "bytes")
    for kind in TYPES:
        path = os.path.join(out, f"smollm2-shaped-{kind.lower()}.gguf")
        subprocess.run([os.path.join(llama, "build", "bin", "llama-quantize"), f32, path, kind],
                       check=True, capture_output=True)
        print(path, os.path.getsize(path), "bytes")


if __name__ == "__main__":
    main()
