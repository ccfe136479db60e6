"""GGUF files as people download them: a tiny seeded Llama, a tiny Qwen2 (q/k/v biases) and a
tiny DeepSeek-V2 (MLA with a query LoRA, as V2 and V3; routed experts) written as f32 GGUF by
the `gguf` package (as convert_hf_to_gguf.py names and lays out their tensors), then quantized
by llama.cpp's own `llama-quantize` into the K-quant mixes (Q4_K_M, Q5_K_M, Q6_K, Q3_K_M, Q2_K),
and transformers' greedy tokens on each file.

    LLAMA_QUANTIZE=/path/to/llama-quantize python reference/export_gguf_kquants.py [FAMILY]

With FAMILY (llama, qwen2 or deepseek2), only that family's files and entries are written.

Writes tests/fixtures/gguf/kquants/<family>-<type>.gguf and expected.json:
- llama: widths that are multiples of 256 (every matrix a K-quant; the tied embedding Q6_K
  in the _M mixes, as llama-quantize treats it as the output);
- qwen2: widths of 96 and 192, not multiples of 256, so llama-quantize falls back to Q5_0
  (for Q4_K), Q5_1 (for Q5_K) and Q8_0 (for Q6_K), as it does for real models of such widths;
- deepseek2: a width of 256, so its routed experts' gate and up are q4_K in the Q4_K_M file
  (their down, 64 wide, and the MLA ranks of 32 fall back). transformers reads no DeepSeek GGUF, so its
  tokens come as its GGUF loader's would: every tensor dequantized by gguf-py, mapped back to
  the checkpoint's names (attn_k_b and attn_v_b joined into kv_b_proj, the experts unstacked)
  and loaded into DeepseekV2ForCausalLM.
Each file's <file>-golden.safetensors is compare's golden of the second prompt (transformers in
f32 and in float64, every layer's output and the logits, as reference/export_golden.py writes
them). For each file, expected.json holds the tensor types llama-quantize chose, the FNV-1a hash of
each quantized tensor's values as gguf-py dequantizes them, and transformers' greedy tokens
(loading the same file, `from_pretrained(..., gguf_file=...)`, dequantized by gguf-py) after
two prompts, with the margin between the top two logits at each step. The first prompt of
each file is one after which the file's end-of-sequence token (id 2) comes within the first
tokens, for the stop test. The f32 files are not kept.
"""
import json
import os
import subprocess
import sys

import numpy as np
import torch
from gguf import GGMLQuantizationType, GGUFReader
from gguf.quants import dequantize
from transformers import AutoModelForCausalLM, DeepseekV2Config, LlamaConfig, Qwen2Config

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export_gguf_fixtures import NAMES as FIXTURE_NAMES  # noqa: E402
from export_gguf_fixtures import gguf_name as fixture_gguf_name  # noqa: E402
from export_gguf_fixtures import finish, open_writer, permute  # noqa: E402
from export_hf_fixtures import layer_outputs, save_golden  # noqa: E402
import export_gguf_deepseek as deepseek  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "fixtures", "gguf", "kquants")
QUANTIZE = os.environ.get("LLAMA_QUANTIZE", "llama-quantize")
EOS = 2

FAMILIES = {
    "llama": (LlamaConfig, dict(vocab_size=128, hidden_size=256, intermediate_size=256,
                                num_hidden_layers=1, num_attention_heads=4, num_key_value_heads=2,
                                max_position_embeddings=256, rms_norm_eps=1e-5,
                                tie_word_embeddings=True,
                                rope_parameters=dict(rope_type="default", rope_theta=10000.0)),
              ["Q4_K_M", "Q5_K_M", "Q6_K", "Q3_K_M", "Q2_K"]),
    "qwen2": (Qwen2Config, dict(vocab_size=128, hidden_size=96, intermediate_size=192,
                                num_hidden_layers=2, num_attention_heads=3, num_key_value_heads=1,
                                max_position_embeddings=256, rms_norm_eps=1e-6,
                                tie_word_embeddings=True,
                                rope_parameters=dict(rope_type="default", rope_theta=1000000.0)),
              ["Q4_K_M", "Q5_K_M", "Q6_K"]),
    "deepseek2": (DeepseekV2Config, dict(vocab_size=128, hidden_size=256, intermediate_size=256,
                                         num_hidden_layers=1, num_attention_heads=2,
                                         num_key_value_heads=2, max_position_embeddings=256,
                                         rms_norm_eps=1e-6, tie_word_embeddings=False,
                                         q_lora_rank=32, kv_lora_rank=32, qk_nope_head_dim=32,
                                         qk_rope_head_dim=16, v_head_dim=32, n_routed_experts=3,
                                         num_experts_per_tok=2, moe_intermediate_size=64,
                                         n_shared_experts=1, first_k_dense_replace=0,
                                         topk_method="greedy", norm_topk_prob=False,
                                         routed_scaling_factor=1.0,
                                         rope_parameters=dict(rope_type="default",
                                                              rope_theta=10000.0)),
                  ["Q4_K_M"]),
}

NAMES = dict(FIXTURE_NAMES, **{
    "self_attn.q_proj.bias": "attn_q.bias",
    "self_attn.k_proj.bias": "attn_k.bias",
    "self_attn.v_proj.bias": "attn_v.bias",
})


def gguf_name(name):
    """The GGUF name of transformers' tensor `name`, biases included."""
    return fixture_gguf_name(name, NAMES)


def write_f32(path, model, cfg, family):
    if family == "deepseek2":
        deepseek.write_gguf(path, model, cfg, "f32", eos=EOS)
        return
    writer = open_writer(path, family, cfg, cfg.num_key_value_heads)
    writer.add_rope_dimension_count(cfg.hidden_size // cfg.num_attention_heads)
    writer.add_vocab_size(cfg.vocab_size)
    writer.add_file_type(0)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(EOS)
    for name, tensor in model.state_dict().items():
        if name == "lm_head.weight":
            continue  # tied: token_embd is the head
        data = tensor.detach().float().numpy()
        if family == "llama" and name.endswith("q_proj.weight"):
            data = permute(data, cfg.num_attention_heads)
        elif family == "llama" and name.endswith("k_proj.weight"):
            data = permute(data, cfg.num_key_value_heads)
        writer.add_tensor(gguf_name(name), np.ascontiguousarray(data),
                          raw_dtype=GGMLQuantizationType.F32)
    finish(writer)


def fnv1a(data):
    """FNV-1a, 64 bits, of `data`'s bytes (the test hashes its dequantized values alike)."""
    h = 0xCBF29CE484222325
    for b in data.tobytes():
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def dequantized_hashes(reader):
    """Per quantized tensor, the FNV-1a hash of gguf-py's dequantized f32 values, row order."""
    out = {}
    for t in reader.tensors:
        if t.tensor_type.name in ("F32", "F16", "BF16"):
            continue
        values = dequantize(t.data, t.tensor_type).astype(np.float32)
        out[t.name] = fnv1a(np.ascontiguousarray(values))
    return out


def deepseek_twin(path, cfg):
    """The DeepSeek-V2 checkpoint of the GGUF file at `path` as transformers' GGUF loader
    would make it: gguf-py's dequantized values under the checkpoint's names."""
    top = {v: k for k, v in deepseek.TOP.items()}
    layer = {v: k for k, v in deepseek.LAYER.items()}
    state, experts = {}, {}
    for t in GGUFReader(path).tensors:
        values = dequantize(t.data, t.tensor_type).astype(np.float32)
        values = values.reshape([int(n) for n in reversed(t.shape)])
        if t.name in top:
            state[top[t.name]] = values
            continue
        _, i, rest = t.name.split(".", 2)
        prefix = f"model.layers.{i}."
        if rest in ("attn_k_b.weight", "attn_v_b.weight", "ffn_gate_exps.weight",
                    "ffn_up_exps.weight", "ffn_down_exps.weight"):
            experts.setdefault(i, {})[rest] = values
            continue
        state[prefix + layer[rest]] = values
    for i, parts in experts.items():
        prefix = f"model.layers.{i}."
        k_b = parts["attn_k_b.weight"].transpose(0, 2, 1)  # [heads, nope, kv_lora]
        kv_b = np.concatenate([k_b, parts["attn_v_b.weight"]], axis=1)
        state[prefix + "self_attn.kv_b_proj.weight"] = kv_b.reshape(-1, kv_b.shape[-1])
        if "ffn_gate_exps.weight" in parts:
            gate_up = np.concatenate([parts["ffn_gate_exps.weight"], parts["ffn_up_exps.weight"]],
                                     axis=1)
            state[prefix + "mlp.experts.gate_up_proj"] = gate_up
            state[prefix + "mlp.experts.down_proj"] = parts["ffn_down_exps.weight"]
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32, attn_implementation="eager",
                                             experts_implementation="eager").eval()
    missing, unexpected = model.load_state_dict(
        {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()}, strict=False)
    assert not missing and not unexpected, (missing, unexpected)
    return model


def greedy(model, prompt, steps):
    """transformers' greedy tokens after `prompt`, and the top-two margin at each step."""
    ids = torch.tensor([prompt])
    tokens, margins = [], []
    with torch.no_grad():
        for _ in range(steps):
            logits = model(ids).logits[0, -1].double()
            top = torch.topk(logits, 2)
            tokens.append(int(top.indices[0]))
            margins.append(float(top.values[0] - top.values[1]))
            ids = torch.cat([ids, top.indices[:1].view(1, 1)], dim=1)
    return tokens, margins


def main():
    os.makedirs(OUT, exist_ok=True)
    only = sys.argv[1] if len(sys.argv) > 1 else None
    expected = {}
    if only:
        with open(os.path.join(OUT, "expected.json")) as f:
            expected = json.load(f)
    for family, (config_class, config, types) in FAMILIES.items():
        if only not in (None, family):
            continue
        cfg = config_class(**config)
        torch.manual_seed(4321)
        model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32).eval()
        with torch.no_grad():
            for p in model.parameters():
                p.normal_(0.0, 0.5)
        f32 = os.path.join(OUT, f"{family}-f32.gguf")
        write_f32(f32, model, cfg, family)
        for kind in types:
            name = f"{family}-{kind.lower()}.gguf"
            path = os.path.join(OUT, name)
            subprocess.run([QUANTIZE, f32, path, kind], check=True, capture_output=True)
            reader = GGUFReader(path)
            tensor_types = {t.name: t.tensor_type.name for t in reader.tensors}
            if family == "deepseek2":
                hf = deepseek_twin(path, cfg)
            else:
                hf = AutoModelForCausalLM.from_pretrained(OUT, gguf_file=name, dtype=torch.float32,
                                                          attn_implementation="eager").eval()
            rng = np.random.default_rng(7)
            # A prompt after which the end-of-sequence token comes soon (the stop test).
            stop_prompt, stop_tokens = None, None
            for _ in range(400):
                prompt = [int(t) for t in rng.integers(3, cfg.vocab_size, 5)]
                tokens, margins = greedy(hf, prompt, 6)
                if EOS in tokens and min(margins[:tokens.index(EOS) + 1]) > 1e-3:
                    stop_prompt, stop_tokens = prompt, tokens[:tokens.index(EOS) + 1]
                    break
            prompt = [1, 17, 42, 99, 5, 64, 3]
            tokens, margins = greedy(hf, prompt, 12)
            expected[name] = dict(types=tensor_types, dequantized=dequantized_hashes(reader),
                                  prompt=prompt, greedy=tokens,
                                  margins=margins, stop_prompt=stop_prompt,
                                  stop_tokens=stop_tokens)
            print(name, os.path.getsize(path), "bytes", sorted(set(tensor_types.values())),
                  "min margin", min(margins), "stop", stop_prompt, stop_tokens)
            # compare's golden of the prompt: transformers in f32, then the same model in float64.
            ids = torch.tensor([prompt])
            with torch.no_grad():
                outputs = layer_outputs(hf, ids)
            golden = os.path.join(OUT, name.removesuffix(".gguf") + "-golden.safetensors")
            save_golden(ids, outputs, hf.to(torch.float64), golden, name)
        os.remove(f32)
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)


if __name__ == "__main__":
    main()
