"""A tiny seeded DeepSeek-V2 (MLA without a query LoRA, as V2-Lite; one dense layer, then a
mixture of experts with a shared expert) saved by transformers' `save_pretrained`, and the same
model written as GGUF files by the `gguf` package (0.19) in f16 and q8_0, as llama.cpp's
`convert_hf_to_gguf.py` writes DeepSeek-V2: its tensor names and metadata keys (MLA as MQA:
one key/value head, key_length = kv_lora_rank + rope dims, the per-head sizes in
key_length_mla and value_length_mla), kv_b_proj split per head into attn_k_b (transposed) and
attn_v_b, the routed experts stacked into 3-D ffn_{gate,up,down}_exps, the router and 1-D
tensors kept f32.

    python reference/export_gguf_deepseek.py          # tests/fixtures/gguf/deepseek-v2/

Every weight is rounded to an f16 value first (the f16 file holds the twin's values exactly;
the Llama fixture covers f32 files) and every quantized row is whole blocks of 32.
`tests/gguf.rs` expects the f16 file to give the twin's logits bit for bit; q8_0 quantizes attn_k_b along other rows than kv_b_proj, so
its file is another model, checked against the twin within q8_0's agreement bound.
"""
import os

import numpy as np
from export_gguf_fixtures import export, finish, open_writer
from gguf import GGMLQuantizationType
from gguf.constants import ExpertGatingFuncType
from gguf.quants import quantize
from transformers import DeepseekV2Config

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "fixtures", "gguf", "deepseek-v2")

CONFIG = dict(vocab_size=64, hidden_size=32, intermediate_size=32, num_hidden_layers=2,
              num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=256,
              rms_norm_eps=1e-6, tie_word_embeddings=False, q_lora_rank=None, kv_lora_rank=64,
              qk_nope_head_dim=32, qk_rope_head_dim=16, v_head_dim=32, n_routed_experts=4,
              num_experts_per_tok=2, moe_intermediate_size=32, n_shared_experts=1,
              first_k_dense_replace=1, topk_method="greedy", norm_topk_prob=False,
              routed_scaling_factor=1.0,
              rope_parameters=dict(rope_type="default", rope_theta=10000.0))

TYPES = {"f16": GGMLQuantizationType.F16, "q8_0": GGMLQuantizationType.Q8_0}
FILE_TYPES = {"f16": 1, "q8_0": 7}
# The f32 file llama-quantize starts from (reference/export_gguf_kquants.py).
F32 = {"f32": GGMLQuantizationType.F32}

TOP = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
       "lm_head.weight": "output.weight"}
LAYER = {
    "input_layernorm.weight": "attn_norm.weight",
    "post_attention_layernorm.weight": "ffn_norm.weight",
    "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.q_a_proj.weight": "attn_q_a.weight",
    "self_attn.q_a_layernorm.weight": "attn_q_a_norm.weight",
    "self_attn.q_b_proj.weight": "attn_q_b.weight",
    "self_attn.kv_a_proj_with_mqa.weight": "attn_kv_a_mqa.weight",
    "self_attn.kv_a_layernorm.weight": "attn_kv_a_norm.weight",
    "self_attn.o_proj.weight": "attn_output.weight",
    "mlp.gate_proj.weight": "ffn_gate.weight",
    "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
    "mlp.gate.weight": "ffn_gate_inp.weight",
    "mlp.shared_experts.gate_proj.weight": "ffn_gate_shexp.weight",
    "mlp.shared_experts.up_proj.weight": "ffn_up_shexp.weight",
    "mlp.shared_experts.down_proj.weight": "ffn_down_shexp.weight",
}


def gguf_tensors(state, cfg):
    """(GGUF name, float32 array) as convert_hf_to_gguf.py's DeepseekV2Model writes them."""
    out = []
    experts = {}
    for name, tensor in state.items():
        data = tensor.detach().float().numpy()
        if name in TOP:
            out.append((TOP[name], data))
            continue
        _, _, layer, rest = name.split(".", 3)
        if rest.startswith("mlp.experts."):
            # transformers 5 keeps the routed experts stacked: gate_up_proj [E, 2·I, D] and
            # down_proj [E, D, I]; llama.cpp's are ffn_gate_exps, ffn_up_exps [E, I, D] and
            # ffn_down_exps [E, D, I].
            experts.setdefault(layer, {})[rest] = data
            continue
        if rest == "self_attn.kv_b_proj.weight":
            h, nope, v = cfg.num_attention_heads, cfg.qk_nope_head_dim, cfg.v_head_dim
            kv_b = data.reshape(h, nope + v, data.shape[-1])
            k_b, v_b = kv_b[:, :nope, :], kv_b[:, nope:, :]
            out.append((f"blk.{layer}.attn_k_b.weight", np.ascontiguousarray(k_b.transpose(0, 2, 1))))
            out.append((f"blk.{layer}.attn_v_b.weight", np.ascontiguousarray(v_b)))
            continue
        out.append((f"blk.{layer}.{LAYER[rest]}", data))
    for layer, parts in experts.items():
        if "mlp.experts.gate_up_proj" in parts:
            gate_up = parts["mlp.experts.gate_up_proj"]
            i = gate_up.shape[1] // 2
            gate, up = gate_up[:, :i, :], gate_up[:, i:, :]
            down = parts["mlp.experts.down_proj"]
        else:
            n = cfg.n_routed_experts
            gate = np.stack([parts[f"mlp.experts.{j}.gate_proj.weight"] for j in range(n)])
            up = np.stack([parts[f"mlp.experts.{j}.up_proj.weight"] for j in range(n)])
            down = np.stack([parts[f"mlp.experts.{j}.down_proj.weight"] for j in range(n)])
        out.append((f"blk.{layer}.ffn_gate_exps.weight", np.ascontiguousarray(gate)))
        out.append((f"blk.{layer}.ffn_up_exps.weight", np.ascontiguousarray(up)))
        out.append((f"blk.{layer}.ffn_down_exps.weight", np.ascontiguousarray(down)))
    return out


def write_gguf(path, model, cfg, kind, eos=None):
    """`model` as `kind` (f16, q8_0, or f32), with BOS 1 and EOS `eos` where given."""
    writer = open_writer(path, "deepseek2", cfg, 1)  # MLA written as MQA
    if eos is not None:
        writer.add_bos_token_id(1)
        writer.add_eos_token_id(eos)
    writer.add_expert_count(cfg.n_routed_experts)
    writer.add_expert_used_count(cfg.num_experts_per_tok)
    writer.add_file_type(FILE_TYPES.get(kind, 0))
    if cfg.q_lora_rank is not None:
        writer.add_q_lora_rank(cfg.q_lora_rank)
    writer.add_leading_dense_block_count(cfg.first_k_dense_replace)
    writer.add_vocab_size(cfg.vocab_size)
    writer.add_kv_lora_rank(cfg.kv_lora_rank)
    writer.add_key_length(cfg.kv_lora_rank + cfg.qk_rope_head_dim)
    writer.add_value_length(cfg.kv_lora_rank)
    writer.add_key_length_mla(cfg.qk_nope_head_dim + cfg.qk_rope_head_dim)
    writer.add_value_length_mla(cfg.v_head_dim)
    writer.add_expert_feed_forward_length(cfg.moe_intermediate_size)
    writer.add_expert_shared_count(cfg.n_shared_experts or 0)
    writer.add_expert_weights_scale(cfg.routed_scaling_factor)
    writer.add_expert_weights_norm(cfg.norm_topk_prob)
    writer.add_expert_gating_func(ExpertGatingFuncType.SOFTMAX)
    writer.add_rope_dimension_count(cfg.qk_rope_head_dim)
    for name, data in gguf_tensors(model.state_dict(), cfg):
        keep_f32 = data.ndim == 1 or name.endswith("ffn_gate_inp.weight")
        qtype = GGMLQuantizationType.F32 if keep_f32 else {**TYPES, **F32}[kind]
        writer.add_tensor(name, quantize(data, qtype), raw_dtype=qtype)
    finish(writer)


def main():
    export(DeepseekV2Config(**CONFIG), 4321, OUT, write_gguf, TYPES)


if __name__ == "__main__":
    main()
