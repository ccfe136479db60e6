"""A tiny seeded Llama saved by transformers' `save_pretrained`, and the same model written as
GGUF files by the `gguf` package (0.19) in f32, f16, q8_0, q4_0 and q4_1, as llama.cpp's
`convert_hf_to_gguf.py` writes a Llama: its tensor names and metadata keys, q_proj and k_proj
rows permuted for llama.cpp's RoPE, 1-D tensors kept f32.

    python reference/export_gguf_fixtures.py          # tests/fixtures/gguf/

Writes tests/fixtures/gguf/llama/model/ (the safetensors twin, as save_pretrained wrote it) and
tests/fixtures/gguf/llama/model-<type>.gguf. Widths are multiples of 32 (quantized rows are
whole blocks); the embedding is tied to the LM head (so every matrix of the GGUF is quantized,
as the twin's are with --weights); every weight is rounded to an f16 value first, so the f16
file holds the twin's values exactly. `tests/gguf.rs` loads each file and the twin at the same
precision and expects the same logits bit for bit.
"""
import os

import numpy as np
import torch
from gguf import GGMLQuantizationType, GGUFWriter
from gguf.quants import quantize
from transformers import AutoModelForCausalLM, LlamaConfig

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "fixtures", "gguf", "llama")

CONFIG = dict(vocab_size=64, hidden_size=64, intermediate_size=64, num_hidden_layers=2,
              num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
              rms_norm_eps=1e-5, tie_word_embeddings=True,
              rope_parameters=dict(rope_type="default", rope_theta=10000.0))

TYPES = {
    "f32": GGMLQuantizationType.F32,
    "f16": GGMLQuantizationType.F16,
    "q8_0": GGMLQuantizationType.Q8_0,
    "q4_0": GGMLQuantizationType.Q4_0,
    "q4_1": GGMLQuantizationType.Q4_1,
}
# llama.cpp's LLAMA_FTYPE for each (general.file_type).
FILE_TYPES = {"f32": 0, "f16": 1, "q8_0": 7, "q4_0": 2, "q4_1": 3}

NAMES = {
    "model.embed_tokens.weight": "token_embd.weight",
    "model.norm.weight": "output_norm.weight",
    "input_layernorm.weight": "attn_norm.weight",
    "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.k_proj.weight": "attn_k.weight",
    "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.o_proj.weight": "attn_output.weight",
    "post_attention_layernorm.weight": "ffn_norm.weight",
    "mlp.gate_proj.weight": "ffn_gate.weight",
    "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
}


def gguf_name(name, names=NAMES):
    """The GGUF name of transformers' tensor `name`, by the map `names` (whole names and the
    layers' own parts)."""
    if name in names:
        return names[name]
    prefix, layer, rest = name.split(".", 2)[0], name.split(".")[2], name.split(".", 3)[3]
    assert prefix == "model"
    return f"blk.{layer}.{names[rest]}"


def permute(w, n_head):
    """convert_hf_to_gguf.py's LlamaModel.permute: each head's rows from halves to pairs."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def open_writer(path, arch, cfg, head_count_kv):
    """A GGUF writer for `arch` with the metadata every family has, from the transformers
    config `cfg`."""
    writer = GGUFWriter(path, arch)
    writer.add_name("latentgpu gguf fixture")
    writer.add_context_length(cfg.max_position_embeddings)
    writer.add_embedding_length(cfg.hidden_size)
    writer.add_block_count(cfg.num_hidden_layers)
    writer.add_feed_forward_length(cfg.intermediate_size)
    writer.add_head_count(cfg.num_attention_heads)
    writer.add_head_count_kv(head_count_kv)
    writer.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    writer.add_rope_freq_base(cfg.rope_parameters["rope_theta"])
    return writer


def write_gguf(path, model, cfg, kind):
    writer = open_writer(path, "llama", cfg, cfg.num_key_value_heads)
    writer.add_rope_dimension_count(cfg.hidden_size // cfg.num_attention_heads)
    writer.add_vocab_size(cfg.vocab_size)
    writer.add_file_type(FILE_TYPES[kind])
    for name, tensor in model.state_dict().items():
        if name == "lm_head.weight":
            continue  # tied: token_embd is the head
        data = tensor.detach().float().numpy()
        if name.endswith("q_proj.weight"):
            data = permute(data, cfg.num_attention_heads)
        elif name.endswith("k_proj.weight"):
            data = permute(data, cfg.num_key_value_heads)
        qtype = TYPES[kind] if data.ndim == 2 else GGMLQuantizationType.F32
        stored = quantize(np.ascontiguousarray(data), qtype)
        writer.add_tensor(gguf_name(name), stored, raw_dtype=qtype)
    finish(writer)


def finish(writer):
    """Writes the header, the metadata and the tensors, and closes the file."""
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def export(cfg, seed, out, write_gguf, kinds):
    """A model of `cfg` with seeded N(0, 0.5) weights rounded to f16 values, saved by
    save_pretrained into out/model and written by `write_gguf` as out/model-<kind>.gguf."""
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.5)
            p.copy_(p.half().float())
    os.makedirs(out, exist_ok=True)
    model.save_pretrained(os.path.join(out, "model"))
    for kind in kinds:
        path = os.path.join(out, f"model-{kind}.gguf")
        write_gguf(path, model, cfg, kind)
        print(path, os.path.getsize(path), "bytes")


def main():
    export(LlamaConfig(**CONFIG), 1234, OUT, write_gguf, TYPES)


if __name__ == "__main__":
    main()
