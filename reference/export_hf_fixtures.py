"""Tiny seeded random Hugging Face checkpoints of the dense families, saved by transformers'
own `save_pretrained`, with transformers' outputs for `tests/hf_models.rs`.

    python reference/export_hf_fixtures.py                      # tests/fixtures/hf-dense/
    python reference/export_hf_fixtures.py --real-shape /tmp/smollm2-shaped   # not committed
    python reference/export_hf_fixtures.py --real-shape /tmp/v2-lite-shaped --shape deepseek-v2-lite

Each fixture directory holds:
  model/               the checkpoint exactly as save_pretrained wrote it (config.json,
                       generation_config.json, model.safetensors or shards + index, tokenizer)
  golden.safetensors   the format of export_golden.py: `tokens`, `hidden.<i>` (each decoder
                       layer's output) and `logits` in fp32, `hidden_f64.<i>` and `logits_f64` in
                       float64, all on the CPU
  golden-bf16.safetensors   (qwen2-bias only) the same with transformers in bfloat16
  expected.json        prompt ids and transformers' greedy continuation (generate(), KV cache)

Shapes are awkward on purpose: GQA ratio 3, MQA, odd vocabularies, tied and untied heads, a
bf16 checkpoint, a sharded one, a Mistral window shorter than the sequence, llama3 RoPE over a
context past original_max_position_embeddings, Qwen2 biases, Qwen3 head_dim != hidden/heads.
--real-shape writes a Llama with SmolLM2-135M's shapes (30 layers, d 576, 9/3 heads, vocab
49152, tied) and random weights, and a golden for it; with --shape deepseek-v2-lite, a
DeepSeek-V2-Lite slice instead: its real widths (d 2048, 16 heads, kv_lora 512, no q_lora,
nope/rope/v 128/64/128, YaRN, 64 routed experts of width 1408 with 6 active, 2 shared, vocab
102400) and 3 layers, the first dense: 1.67 B parameters, 6.7 GB in f32.
"""
import argparse
import json
import os
import shutil

import torch
from safetensors.torch import save_file
from transformers import (AutoModelForCausalLM, DeepseekV2Config, DeepseekV3Config, Gemma3TextConfig, LlamaConfig,
                          MistralConfig, MixtralConfig, Phi3Config, PreTrainedTokenizerFast, Qwen2Config,
                          Qwen3Config, Qwen3MoeConfig, SmolLM3Config)

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "fixtures", "hf-dense")
PROMPT = 8
NEW = 24
SEQ = 40

FIXTURES = {
    # GQA ratio 3, untied, a tokenizer that adds BOS, and a generation_config that stops early.
    "llama-gqa3": (LlamaConfig, dict(vocab_size=131, hidden_size=36, intermediate_size=70, num_hidden_layers=2,
                                     num_attention_heads=6, num_key_value_heads=2, tie_word_embeddings=False)),
    # MQA, tied, llama3 RoPE past its original context, saved in bf16.
    "llama3-mqa-bf16": (LlamaConfig, dict(vocab_size=97, hidden_size=40, intermediate_size=56, num_hidden_layers=2,
                                          num_attention_heads=5, num_key_value_heads=1, tie_word_embeddings=True,
                                          max_position_embeddings=128,
                                          rope_parameters=dict(rope_type="llama3", rope_theta=10000.0, factor=8.0,
                                                               low_freq_factor=1.0, high_freq_factor=4.0,
                                                               original_max_position_embeddings=16))),
    # Linear RoPE scaling, GeGLU, q/k/v/o biases.
    "llama-linear-gelu-bias": (LlamaConfig, dict(vocab_size=67, hidden_size=24, intermediate_size=40,
                                                 num_hidden_layers=3, num_attention_heads=3, num_key_value_heads=3,
                                                 hidden_act="gelu", attention_bias=True,
                                                 rope_parameters=dict(rope_type="linear", rope_theta=500.0, factor=2.0))),
    # A window of 7 over 40 tokens, saved in shards.
    "mistral-window-sharded": (MistralConfig, dict(vocab_size=89, hidden_size=32, intermediate_size=48,
                                                   num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                                   sliding_window=7, max_position_embeddings=256)),
    # q/k/v biases, tied.
    "qwen2-bias": (Qwen2Config, dict(vocab_size=113, hidden_size=32, intermediate_size=44, num_hidden_layers=2,
                                     num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True,
                                     max_position_embeddings=256)),
    # head_dim 12 with hidden 32 / 4 heads, q_norm and k_norm.
    "qwen3-head-dim": (Qwen3Config, dict(vocab_size=101, hidden_size=32, intermediate_size=40, num_hidden_layers=2,
                                         num_attention_heads=4, num_key_value_heads=2, head_dim=12,
                                         tie_word_embeddings=False, max_position_embeddings=256)),
    # DeepSeek-V2: MLA without q_lora, a dense first layer, then mixtures of 8 experts (2 chosen,
    # greedy) with one shared expert.
    "deepseek-v2-moe": (DeepseekV2Config, dict(vocab_size=71, hidden_size=32, intermediate_size=48,
                                               moe_intermediate_size=12, num_hidden_layers=3, num_attention_heads=2,
                                               num_key_value_heads=2, n_routed_experts=8, n_shared_experts=1,
                                               num_experts_per_tok=2, first_k_dense_replace=1, kv_lora_rank=16,
                                               q_lora_rank=None, qk_nope_head_dim=8, qk_rope_head_dim=8,
                                               v_head_dim=8, topk_method="greedy", routed_scaling_factor=1.5,
                                               max_position_embeddings=128)),
    # DeepSeek-V2: q_lora, YaRN past its original context, group_limited_greedy over 4 groups of 4
    # (2 kept), moe_layer_freq 2 and norm_topk_prob set (transformers 5 ignores both).
    "deepseek-v2-groups-yarn": (DeepseekV2Config, dict(vocab_size=61, hidden_size=32, intermediate_size=44,
                                                       moe_intermediate_size=12, num_hidden_layers=3,
                                                       num_attention_heads=2, num_key_value_heads=2,
                                                       n_routed_experts=16, n_shared_experts=1, num_experts_per_tok=3,
                                                       n_group=4, topk_group=2, topk_method="group_limited_greedy",
                                                       first_k_dense_replace=0, moe_layer_freq=2,
                                                       norm_topk_prob=True, routed_scaling_factor=1.0,
                                                       kv_lora_rank=16, q_lora_rank=20, qk_nope_head_dim=8,
                                                       qk_rope_head_dim=8, v_head_dim=8, max_position_embeddings=128,
                                                       rope_parameters=dict(rope_type="yarn", rope_theta=10000.0,
                                                                            factor=4.0,
                                                                            original_max_position_embeddings=16,
                                                                            beta_fast=32, beta_slow=1, mscale=0.707,
                                                                            mscale_all_dim=0.707))),
    # DeepSeek-V3: q_lora, noaux_tc over 4 groups of 3 (2 kept) with a random correction bias,
    # normalised weights, two shared experts, a mixture in every layer.
    "deepseek-v3-noaux": (DeepseekV3Config, dict(vocab_size=67, hidden_size=32, intermediate_size=40,
                                                 moe_intermediate_size=10, num_hidden_layers=2,
                                                 num_attention_heads=2, num_key_value_heads=2, n_routed_experts=12,
                                                 n_shared_experts=2, num_experts_per_tok=3, n_group=4, topk_group=2,
                                                 first_k_dense_replace=0, norm_topk_prob=True,
                                                 routed_scaling_factor=2.5, kv_lora_rank=16, q_lora_rank=24,
                                                 qk_nope_head_dim=8, qk_rope_head_dim=8, v_head_dim=8,
                                                 max_position_embeddings=128)),
    # DeepSeek-V3 with weights not normalised, one group, a dense first layer, no q_lora.
    "deepseek-v3-unnormed": (DeepseekV3Config, dict(vocab_size=59, hidden_size=24, intermediate_size=36,
                                                    moe_intermediate_size=8, num_hidden_layers=2,
                                                    num_attention_heads=2, num_key_value_heads=2, n_routed_experts=6,
                                                    n_shared_experts=1, num_experts_per_tok=2, n_group=1,
                                                    topk_group=1, first_k_dense_replace=1, norm_topk_prob=False,
                                                    routed_scaling_factor=1.0, kv_lora_rank=12, q_lora_rank=None,
                                                    qk_nope_head_dim=8, qk_rope_head_dim=4, v_head_dim=8,
                                                    max_position_embeddings=128)),
    # Gemma 3: seven layers, the sixth full between sliding ones (the default pattern of 6), a window
    # of 5 over 40 tokens, head_dim 12 with hidden 24 / 4 heads, linear RoPE on the full layer only,
    # its own base on the sliding ones, four norms a block, a scaled tied embedding.
    # query_pre_attn_scalar is head_dim, as in every Gemma 3 but 27B: GGUF files do not keep it
    # (llama.cpp derives it), and tests/families_gguf.rs loads this fixture's GGUF twin.
    "gemma3-window-full": (Gemma3TextConfig, dict(vocab_size=67, hidden_size=24, intermediate_size=32,
                                                  num_hidden_layers=7, num_attention_heads=4, num_key_value_heads=2,
                                                  head_dim=12, query_pre_attn_scalar=12, sliding_window=5,
                                                  max_position_embeddings=256,
                                                  rope_parameters={
                                                      "sliding_attention": dict(rope_type="default",
                                                                                rope_theta=10000.0),
                                                      "full_attention": dict(rope_type="linear", factor=2.0,
                                                                             rope_theta=1000000.0)})),
    # SmolLM3: NoPE in every fourth layer, as its default interval and llama.cpp have it (config.json
    # lists it per layer), untied.
    "smollm3-nope": (SmolLM3Config, dict(vocab_size=97, hidden_size=32, intermediate_size=44, num_hidden_layers=4,
                                         num_attention_heads=4, num_key_value_heads=2, pad_token_id=0, bos_token_id=1,
                                         eos_token_id=2,
                                         tie_word_embeddings=False, max_position_embeddings=256,
                                         rope_parameters=dict(rope_type="default", rope_theta=50000.0))),
    # Qwen3-MoE: mixtures in every second layer (decoder_sparse_step 2) but layer 3 (mlp_only_layers),
    # so layers 1 and 5; 6 experts, 3 chosen, weights not normalised; dense layers of another width.
    "qwen3-moe-sparse-step": (Qwen3MoeConfig, dict(vocab_size=73, hidden_size=24, intermediate_size=40,
                                                   moe_intermediate_size=16, num_hidden_layers=6,
                                                   num_attention_heads=4, num_key_value_heads=2, head_dim=8,
                                                   num_experts=6, num_experts_per_tok=3, decoder_sparse_step=2,
                                                   mlp_only_layers=[3], norm_topk_prob=False,
                                                   tie_word_embeddings=False, max_position_embeddings=256)),
    # Qwen3-MoE as its published models are and llama.cpp runs a qwen3moe GGUF file: a mixture in
    # every layer, weights normalised (tests/families_gguf.rs loads its GGUF twin).
    "qwen3-moe-normed": (Qwen3MoeConfig, dict(vocab_size=61, hidden_size=24, intermediate_size=40,
                                              moe_intermediate_size=16, num_hidden_layers=2, num_attention_heads=4,
                                              num_key_value_heads=2, head_dim=8, num_experts=5, num_experts_per_tok=2,
                                              norm_topk_prob=True, tie_word_embeddings=False,
                                              max_position_embeddings=256)),
    # Phi-4-mini's shape of Phi-3: RoPE over three quarters of each head (3 of 4 pairs), LongRoPE
    # past an original context of 16 (the 40-token golden runs on the long factors; greedy decoding
    # from an 8-token prompt on the short ones, then the long), a window of 9, tied.
    "phi4-mini-longrope": (Phi3Config, dict(vocab_size=79, hidden_size=32, intermediate_size=40, num_hidden_layers=2,
                                            num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True,
                                            max_position_embeddings=64, original_max_position_embeddings=16,
                                            sliding_window=9, pad_token_id=0, bos_token_id=1, eos_token_id=2,
                                            rope_parameters=dict(rope_type="longrope", rope_theta=10000.0,
                                                                 partial_rotary_factor=0.75,
                                                                 short_factor=[1.0, 1.3, 2.1],
                                                                 long_factor=[1.1, 3.7, 9.5]))),
    # Qwen3 past its native context: YaRN with factor 4 over an original context of 16.
    "qwen3-yarn": (Qwen3Config, dict(vocab_size=83, hidden_size=32, intermediate_size=40, num_hidden_layers=2,
                                     num_attention_heads=4, num_key_value_heads=2, head_dim=8,
                                     tie_word_embeddings=True, max_position_embeddings=64,
                                     rope_parameters=dict(rope_type="yarn", rope_theta=10000.0, factor=4.0,
                                                          original_max_position_embeddings=16))),
    # Mixtral: top-2 of 8 experts in every layer, normalised, GQA.
    "mixtral-top2": (MixtralConfig, dict(vocab_size=71, hidden_size=32, intermediate_size=20, num_hidden_layers=2,
                                         num_attention_heads=4, num_key_value_heads=2, num_local_experts=8,
                                         num_experts_per_tok=2, tie_word_embeddings=False,
                                         max_position_embeddings=256)),
}


def randomize(model, seed):
    """Weights large enough that logits have clear top-1 gaps; norms and biases not trivial.
    Untied embeddings get std 0.02, as real checkpoints' (small first-layer activations are where
    a wrong norm epsilon shows)."""
    g = torch.Generator().manual_seed(seed)
    tied = model.config.tie_word_embeddings
    # Gemma's norms scale by 1 + weight: their weights are stored around 0.
    norm_centre = 0.0 if model.config.model_type.startswith("gemma") else 1.0
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g, dtype=torch.float64).to(p.dtype)
            if "embed_tokens" in name and not tied:
                p.copy_(0.02 * noise)
            elif "norm" in name:
                p.copy_(norm_centre + 0.2 * noise)
            elif name.endswith("bias"):
                p.copy_(0.3 * noise)
            else:
                p.copy_(noise / p.shape[-1] ** 0.5 * 1.5)
        # DeepSeek-V3's router correction bias is a buffer: not zeros, so that choosing by it
        # differs from weighing by the scores.
        for name, b in model.named_buffers():
            if name.endswith("e_score_correction_bias"):
                b.copy_(0.3 * torch.randn(b.shape, generator=g, dtype=torch.float64).to(b.dtype))


def layer_outputs(model, ids):
    """Logits and the output of every decoder layer for ids [1, n]."""
    outs = []
    hooks = [layer.register_forward_hook(lambda m, i, o: outs.append((o[0] if isinstance(o, tuple) else o)[0]))
             for layer in model.model.layers]
    with torch.no_grad():
        logits = model(ids).logits[0]
    for h in hooks:
        h.remove()
    return logits, outs


def golden(model_dir, tokens, out_path, device="cpu", dtype=torch.float32):
    """export_golden.py's format, transformers on `device` in `dtype` beside float64 on the CPU."""
    ids = torch.tensor([tokens])
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype, attn_implementation="eager", experts_implementation="eager").to(device).eval()
    logits, hidden = layer_outputs(model, ids.to(device))
    # The float64 reference is the same model converted, not loaded again: one model in memory
    # at a time (the DeepSeek-V2-Lite slice is 6.7 GB in f32 and 13.4 GB in float64).
    if dtype == torch.float32:
        ref = model.to("cpu", torch.float64)
    else:
        del model
        ref = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float64, attn_implementation="eager",
                                                   experts_implementation="eager")
    name = os.path.basename(os.path.normpath(model_dir))
    return save_golden(ids, (logits, hidden), ref, out_path, name, device, dtype)


def save_golden(ids, outputs, ref, out_path, name, device="cpu", dtype=torch.float32):
    """Writes export_golden.py's format: `outputs` (the logits and layer outputs transformers
    gave on `device` in `dtype`) beside those of `ref` (the same model in float64 on the CPU).
    Returns the logits' largest difference."""
    logits, hidden = outputs
    ref.eval()
    logits64, hidden64 = layer_outputs(ref, ids)
    out = {"tokens": ids[0].to(torch.int64), "logits": logits.float().cpu(), "logits_f64": logits64}
    for i, (h, h64) in enumerate(zip(hidden, hidden64)):
        out[f"hidden.{i}"] = h.float().cpu()
        out[f"hidden_f64.{i}"] = h64
    device_name = torch.cuda.get_device_name() if device.startswith("cuda") else device
    meta = {"device": device_name, "torch": torch.__version__,
            "dtype": str(dtype).removeprefix("torch."), "model": name}
    save_file({k: v.contiguous() for k, v in out.items()}, out_path, metadata=meta)
    return (logits.double().cpu() - logits64).abs().max().item()


def word_tokenizer(vocab_size):
    """A word-level tokenizer whose post-processor adds BOS (`<s>`), as Llama's does."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors, decoders
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    vocab.update({f"w{i}": i for i in range(3, vocab_size)})
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    tok.decoder = decoders.WordPiece(prefix="##")
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>")


def make(name, cls, kwargs, seed):
    root = os.path.join(OUT, name)
    model_dir = os.path.join(root, "model")
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(model_dir)
    torch.manual_seed(seed)
    config = cls(**kwargs)
    model = AutoModelForCausalLM.from_config(config, attn_implementation="eager", experts_implementation="eager").eval()
    randomize(model, seed)
    if name.endswith("bf16"):
        model = model.to(torch.bfloat16)
    shard = "12KB" if "sharded" in name else "50MB"
    model.config.eos_token_id = None
    model.generation_config.eos_token_id = None
    model.generation_config.bos_token_id = None
    model.save_pretrained(model_dir, max_shard_size=shard)

    g = torch.Generator().manual_seed(seed + 1)
    tokens = torch.randint(3, config.vocab_size, (SEQ,), generator=g).tolist()
    prompt = tokens[:PROMPT]
    fp32 = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="eager",
                                                experts_implementation="eager").eval()
    with torch.no_grad():
        out = fp32.generate(torch.tensor([prompt]), max_new_tokens=NEW, do_sample=False, pad_token_id=0)
        greedy = out[0, PROMPT:].tolist()
        # The smallest top-1/top-2 gap along the way: how far exact token equality is from a tie.
        logits = fp32(out).logits[0, PROMPT - 1:-1]
        top2 = logits.topk(2, dim=-1).values
        gap = (top2[:, 0] - top2[:, 1]).min().item()
    expected = {"prompt_ids": prompt, "greedy_ids": greedy, "min_top2_gap": gap,
                "generator": "transformers generate(do_sample=False), KV cache, fp32 CPU"}

    if name == "llama-gqa3":
        tok = word_tokenizer(config.vocab_size)
        tok.save_pretrained(model_dir)
        text = " ".join(f"w{t}" for t in prompt)
        expected["tokenizer_text"] = text
        expected["tokenizer_ids"] = tok(text).input_ids
        # Greedy from the tokenized prompt (BOS first), and its text, for the web page's check.
        with torch.no_grad():
            out = fp32.generate(torch.tensor([expected["tokenizer_ids"]]), max_new_tokens=12, do_sample=False,
                                pad_token_id=0)
        new = out[0, len(expected["tokenizer_ids"]):].tolist()
        expected["tokenizer_greedy_ids"] = new
        expected["tokenizer_greedy_text"] = tok.decode(new)
        # Stop at the first new occurrence of the 6th generated token: generation_config's
        # eos_token_id as a list, and transformers' own stopping with it.
        stop = next(t for i, t in enumerate(greedy) if i >= 5 and t not in greedy[:i])
        fp32.generation_config.eos_token_id = [2, stop]
        fp32.generation_config.do_sample = False
        fp32.generation_config.save_pretrained(model_dir)
        with torch.no_grad():
            out = fp32.generate(torch.tensor([prompt]), max_new_tokens=NEW, pad_token_id=0)
        expected["eos_token_ids"] = [2, stop]
        expected["greedy_ids_with_eos"] = out[0, PROMPT:].tolist()

    err = golden(model_dir, tokens, os.path.join(root, "golden.safetensors"))
    if name == "qwen2-bias":
        # A golden computed in bf16, as a user checking a bf16 run on CUDA would export one.
        golden(model_dir, tokens, os.path.join(root, "golden-bf16.safetensors"), dtype=torch.bfloat16)
    with open(os.path.join(root, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
    size = sum(os.path.getsize(os.path.join(d, x)) for d, _, xs in os.walk(root) for x in xs)
    print(f"{name}: {size / 1024:.0f} KB, fp32 logits error vs f64 {err:.2e}, min top-2 gap {gap:.3f}")


REAL_SHAPES = {
    "smollm2": lambda: LlamaConfig(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                                   num_attention_heads=9, num_key_value_heads=3, max_position_embeddings=8192,
                                   rms_norm_eps=1e-5, tie_word_embeddings=True,
                                   rope_parameters=dict(rope_type="default", rope_theta=100000.0)),
    # DeepSeek-V2-Lite's config.json, with 3 of its 27 layers.
    "deepseek-v2-lite": lambda: DeepseekV2Config(
        vocab_size=102400, hidden_size=2048, intermediate_size=10944, moe_intermediate_size=1408,
        num_hidden_layers=3, num_attention_heads=16, num_key_value_heads=16, n_routed_experts=64,
        n_shared_experts=2, num_experts_per_tok=6, kv_lora_rank=512, q_lora_rank=None, qk_nope_head_dim=128,
        qk_rope_head_dim=64, v_head_dim=128, first_k_dense_replace=1, topk_method="greedy", n_group=1,
        topk_group=1, norm_topk_prob=False, routed_scaling_factor=1.0, max_position_embeddings=163840,
        rms_norm_eps=1e-6, tie_word_embeddings=False,
        rope_parameters=dict(rope_type="yarn", rope_theta=10000.0, factor=40.0, beta_fast=32.0, beta_slow=1.0,
                             mscale=0.707, mscale_all_dim=0.707, original_max_position_embeddings=4096)),
    # Qwen3-0.6B's config.json: widths that are multiples of 256, so its K-quant files hold K-quants.
    "qwen3-0.6b": lambda: Qwen3Config(vocab_size=151936, hidden_size=1024, intermediate_size=3072,
                                      num_hidden_layers=28, num_attention_heads=16, num_key_value_heads=8,
                                      head_dim=128, max_position_embeddings=40960, rms_norm_eps=1e-6,
                                      tie_word_embeddings=True,
                                      rope_parameters=dict(rope_type="default", rope_theta=1000000.0)),
    # Gemma-3-270M's config.json: head_dim 256 with 4 heads of a 640-wide model, one key/value head,
    # a window of 512, every sixth layer full, a 262144-token tied vocabulary (640 MiB in f32).
    "gemma3-270m": lambda: Gemma3TextConfig(vocab_size=262144, hidden_size=640, intermediate_size=2048,
                                            num_hidden_layers=18, num_attention_heads=4, num_key_value_heads=1,
                                            head_dim=256, query_pre_attn_scalar=256, sliding_window=512,
                                            max_position_embeddings=32768, rms_norm_eps=1e-6,
                                            tie_word_embeddings=True,
                                            rope_parameters={
                                                "sliding_attention": dict(rope_type="default", rope_theta=10000.0),
                                                "full_attention": dict(rope_type="default", rope_theta=1000000.0)}),
    # Phi-4-mini's widths (d 3072, 24 heads of 128, 8 key/value heads, three quarters rotated,
    # LongRoPE from 4k to 128k, vocabulary 200064, tied) with 2 of its 32 layers.
    "phi4-mini-slice": lambda: Phi3Config(vocab_size=200064, hidden_size=3072, intermediate_size=8192,
                                          num_hidden_layers=2, num_attention_heads=24, num_key_value_heads=8,
                                          max_position_embeddings=131072, original_max_position_embeddings=4096,
                                          rms_norm_eps=1e-5, tie_word_embeddings=True, sliding_window=262144,
                                          pad_token_id=199999, bos_token_id=199999, eos_token_id=199999,
                                          rope_parameters=dict(rope_type="longrope", rope_theta=10000.0,
                                                               partial_rotary_factor=0.75,
                                                               short_factor=[1.0 + 0.02 * i for i in range(48)],
                                                               long_factor=[1.0 + 1.5 * i for i in range(48)])),
}


def real_shape(out_dir, tokens, shape):
    """A real model's shapes, random weights (transformers' own init), and a CPU golden."""
    shutil.rmtree(out_dir, ignore_errors=True)
    torch.manual_seed(0)
    config = REAL_SHAPES[shape]()
    AutoModelForCausalLM.from_config(config).save_pretrained(out_dir)
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, config.vocab_size, (tokens,), generator=g).tolist()
    err = golden(out_dir, ids, os.path.join(out_dir, "..", os.path.basename(out_dir) + "-golden.safetensors"))
    print(f"{out_dir}: fp32 logits error vs f64 {err:.2e}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--real-shape", help="write the SmolLM2-135M-shaped Llama here instead")
    ap.add_argument("--tokens", type=int, default=64, help="golden length for --real-shape")
    ap.add_argument("--shape", choices=sorted(REAL_SHAPES), default="smollm2", help="which real shape")
    ap.add_argument("--only", help="write only this fixture")
    args = ap.parse_args()
    torch.set_float32_matmul_precision("highest")
    if args.real_shape:
        real_shape(args.real_shape, args.tokens, args.shape)
        return
    for i, (name, (cls, kwargs)) in enumerate(FIXTURES.items()):
        if args.only in (None, name):
            make(name, cls, kwargs, seed=100 + i)


if __name__ == "__main__":
    main()
