"""Writes models/tiny-random: a random-weight byte-level MHA model so `generate` runs before a trained model ships."""
import os, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch
from model import Config, Model
from safetensors.torch import save_file
torch.manual_seed(0)
cfg = Config(vocab_size=256, d_model=64, n_layers=2, n_heads=4, ffn_kind="swiglu", ffn_hidden=160,
    norm_kind="rmsnorm", norm_eps=1e-5, max_context=512, attention={"kind": "mha"}, tie_embeddings=True)
m = Model(cfg)
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models", "tiny-random"); os.makedirs(out, exist_ok=True)
open(f"{out}/config.json", "w").write(cfg.to_json() + "\n")
save_file(m.weights(), f"{out}/model.safetensors")
