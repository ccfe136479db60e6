"""The PyTorch twin of the latentgpu model: same config JSON, same weight names, same equations.

Shapes in comments: n tokens, d model width, H heads, dh head width, V vocabulary.
"""
import json
import math
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class Config:
    vocab_size: int
    d_model: int
    n_layers: int
    n_heads: int
    ffn_kind: str  # "swiglu" | "gelu"
    ffn_hidden: int
    norm_kind: str  # "rmsnorm" | "layernorm"
    norm_eps: float
    max_context: int
    attention: dict
    rope: dict = field(default_factory=lambda: {"base": 10000.0, "mode": "half_split"})
    tie_embeddings: bool = False

    @staticmethod
    def load(path):
        with open(path) as f:
            return Config(**json.load(f))

    def to_json(self):
        return json.dumps(self.__dict__, indent=2)

    @property
    def head_dim(self):
        return self.d_model // self.n_heads


class Norm(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.kind, self.eps = cfg.norm_kind, cfg.norm_eps
        self.weight = nn.Parameter(torch.ones(cfg.d_model))
        if self.kind == "layernorm":
            self.bias = nn.Parameter(torch.zeros(cfg.d_model))

    def forward(self, x):
        if self.kind == "layernorm":
            return F.layer_norm(x, x.shape[-1:], self.weight, self.bias, self.eps)
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class Ffn(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        d, h = cfg.d_model, cfg.ffn_hidden
        self.kind = cfg.ffn_kind
        if self.kind == "swiglu":
            self.gate_proj = nn.Linear(d, h, bias=False)
            self.up_proj = nn.Linear(d, h, bias=False)
            self.down_proj = nn.Linear(h, d, bias=False)
        else:
            self.fc1 = nn.Linear(d, h, bias=False)
            self.fc2 = nn.Linear(h, d, bias=False)

    def forward(self, x):
        if self.kind == "swiglu":
            return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))
        return self.fc2(F.gelu(self.fc1(x)))


def rope_tables(rot_dim, base, positions, device=None):
    """cos, sin [positions, rot_dim/2], built in fp32 exactly as the Rust runtime does."""
    inv_freq = 1.0 / (base ** (torch.arange(0, rot_dim, 2, dtype=torch.int64, device=device).float() / rot_dim))
    angles = torch.outer(torch.arange(positions, device=device).float(), inv_freq)
    return angles.cos(), angles.sin()


def apply_rope(x, cos, sin, mode):
    """x [n, H, r]; cos/sin [n, r/2] -> rotated x (pairs interleaved or half-split)."""
    cos, sin = cos[:, None, :].to(x.dtype), sin[:, None, :].to(x.dtype)
    if mode == "interleaved":
        x0, x1 = x[..., 0::2], x[..., 1::2]
        return torch.stack((x0 * cos - x1 * sin, x0 * sin + x1 * cos), dim=-1).flatten(-2)
    half = x.shape[-1] // 2
    x0, x1 = x[..., :half], x[..., half:]
    return torch.cat((x0 * cos - x1 * sin, x0 * sin + x1 * cos), dim=-1)


def causal_attention(q, k, v, scale):
    """q [.., n, H, dq], k [.., m, Hkv, dq], v [.., m, Hkv, dv]; query i is position m - n + i."""
    n, h = q.shape[-3:-1]
    m, hkv = k.shape[-3:-1]
    k = k.repeat_interleave(h // hkv, dim=-2)
    v = v.repeat_interleave(h // hkv, dim=-2)
    scores = torch.einsum("...nhd,...mhd->...hnm", q, k) * scale
    mask = torch.arange(m, device=q.device)[None, :] > (torch.arange(n, device=q.device)[:, None] + m - n)
    scores = scores.masked_fill(mask, float("-inf"))
    return torch.einsum("...hnm,...mhd->...nhd", scores.softmax(-1), v)


class Mha(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        d, h, dh = cfg.d_model, cfg.n_heads, cfg.head_dim
        self.h, self.dh = h, dh
        self.kv = cfg.attention.get("n_kv_heads") or h
        self.q_proj = nn.Linear(d, h * dh, bias=False)
        self.k_proj = nn.Linear(d, self.kv * dh, bias=False)
        self.v_proj = nn.Linear(d, self.kv * dh, bias=False)
        self.o_proj = nn.Linear(h * dh, d, bias=False)
        self.mode = cfg.rope.get("mode", "half_split")

    def forward(self, x, cos, sin):
        lead = x.shape[:-1]  # [.., n]
        q = apply_rope(self.q_proj(x).view(*lead, self.h, self.dh), cos, sin, self.mode)
        k = apply_rope(self.k_proj(x).view(*lead, self.kv, self.dh), cos, sin, self.mode)
        v = self.v_proj(x).view(*lead, self.kv, self.dh)
        o = causal_attention(q, k, v, 1.0 / math.sqrt(self.dh))
        return self.o_proj(o.reshape(*lead, self.h * self.dh))


def make_attention(cfg: Config):
    kind = cfg.attention["kind"]
    if kind == "mha":
        return Mha(cfg)
    raise ValueError(f"unknown attention kind {kind!r}")


class Block(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.attn_norm = Norm(cfg)
        self.attn = make_attention(cfg)
        self.ffn_norm = Norm(cfg)
        self.ffn = Ffn(cfg)

    def forward(self, x, cos, sin):
        x = x + self.attn(self.attn_norm(x), cos, sin)
        return x + self.ffn(self.ffn_norm(x))


class Model(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.layers = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.norm = Norm(cfg)
        if not cfg.tie_embeddings:
            self.lm_head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        cos, sin = rope_tables(cfg.head_dim, cfg.rope.get("base", 10000.0), cfg.max_context)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)

    def init_weights(self, std=0.02):
        """GPT-2 style initialisation (used by the trainer): N(0, std) matrices, unit norms."""
        for name, p in self.named_parameters():
            if p.dim() > 1:
                nn.init.normal_(p, std=std)
            elif name.endswith("bias"):
                nn.init.zeros_(p)
            else:
                nn.init.ones_(p)
        return self

    def forward(self, ids, return_hidden=False):
        """ids [.., n] -> logits [.., n, V] (and each block's output [.., n, d])."""
        n = ids.shape[-1]
        cos, sin = self.rope_cos[:n], self.rope_sin[:n]
        x = self.embed_tokens(ids)
        hidden = []
        for layer in self.layers:
            x = layer(x, cos, sin)
            hidden.append(x)
        x = self.norm(x)
        head = self.embed_tokens.weight if self.cfg.tie_embeddings else self.lm_head.weight
        logits = x @ head.t()
        return (logits, hidden) if return_hidden else logits

    def weights(self):
        """The state dict as saved (tied LM head omitted)."""
        return {k: v.detach().float().contiguous() for k, v in self.state_dict().items()}


def load(directory, device="cpu", dtype=torch.float32):
    from safetensors.torch import load_file

    cfg = Config.load(f"{directory}/config.json")
    model = Model(cfg)
    model.load_state_dict(load_file(f"{directory}/model.safetensors"), strict=True)
    return model.to(device=device, dtype=dtype).eval()
