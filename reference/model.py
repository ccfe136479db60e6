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


class Projections(nn.Module):
    """The four [d, d] projections of one latent-attention phase."""

    def __init__(self, d):
        super().__init__()
        self.q_proj = nn.Linear(d, d, bias=False)
        self.k_proj = nn.Linear(d, d, bias=False)
        self.v_proj = nn.Linear(d, d, bias=False)
        self.o_proj = nn.Linear(d, d, bias=False)


def full_attention(q, k, v, scale):
    """Non-causal attention: q [.., n, H, dh], k/v [.., m, H, dh] -> [.., n, H, dh]."""
    scores = torch.einsum("...nhd,...mhd->...hnm", q, k) * scale
    return torch.einsum("...hnm,...mhd->...nhd", scores.softmax(-1), v)


class LatentAttention(nn.Module):
    """Three-phase latent attention, causal by chunks (docs/latent-attention.md).

    Token t in chunk c = t // C attends, in one softmax, to the M latents' keys/values built from
    the tokens of chunks < c, and to the tokens of chunk c up to t. RoPE rotates the first r values
    of each head of the token queries and local keys; the latents' keys are zero there.
    """

    def __init__(self, cfg: Config):
        super().__init__()
        a = cfg.attention
        d = cfg.d_model
        self.h, self.dh = cfg.n_heads, cfg.head_dim
        self.M, self.C = a["latents"], a["chunk"]
        self.r = rope_dim(cfg)
        self.mode = cfg.rope.get("mode", "half_split")
        self.latents = nn.Parameter(torch.randn(self.M, d) * 0.02)
        self.gather = Projections(d)
        self.synth = Projections(d) if a.get("synthesis", True) else None
        self.broadcast = Projections(d)
        mask = torch.ones(self.dh)
        mask[: self.r] = 0
        self.register_buffer("key_mask", mask, persistent=False)

    def heads(self, x):
        return x.view(*x.shape[:-1], self.h, self.dh)

    def rope(self, x, cos, sin):
        return torch.cat((apply_rope(x[..., : self.r], cos, sin, self.mode), x[..., self.r:]), dim=-1)

    def latent_kv(self, g):
        """Phases 2 and 3's latent side from the gathered summary g [.., M, d]."""
        l1 = self.latents + self.gather.o_proj(g)
        l2 = l1
        if self.synth is not None:
            p = self.synth
            a = full_attention(self.heads(p.q_proj(l1)), self.heads(p.k_proj(l1)), self.heads(p.v_proj(l1)), self.dh ** -0.5)
            l2 = l1 + p.o_proj(a.flatten(-2))
        k3 = self.heads(self.broadcast.k_proj(l2)) * self.key_mask
        v3 = self.heads(self.broadcast.v_proj(l2))
        return k3, v3

    def forward(self, x, cos, sin):
        """x [.., n, d] at positions 0..n -> [.., n, d]."""
        n = x.shape[-2]
        scale = self.dh ** -0.5
        q3 = self.rope(self.heads(self.broadcast.q_proj(x)), cos, sin)
        k1 = self.heads(self.gather.k_proj(x))
        v1 = self.heads(self.gather.v_proj(x))
        k1r = self.rope(k1, cos, sin)
        q1 = self.heads(self.gather.q_proj(self.latents)).expand(*x.shape[:-2], self.M, self.h, self.dh)
        g = torch.zeros(*x.shape[:-2], self.M, x.shape[-1], dtype=x.dtype, device=x.device)
        outs = []
        for c0 in range(0, n, self.C):
            c1 = min(c0 + self.C, n)
            k3, v3 = self.latent_kv(g)
            keys = torch.cat((k3, k1r[..., c0:c1, :, :]), dim=-3)
            values = torch.cat((v3, v1[..., c0:c1, :, :]), dim=-3)
            outs.append(causal_attention(q3[..., c0:c1, :, :], keys, values, scale))
            if c1 - c0 == self.C:
                # The gather over every token of chunks 0..c: exact softmax (the GPU keeps it online).
                g = full_attention(q1, k1[..., :c1, :, :], v1[..., :c1, :, :], scale).flatten(-2)
        return self.broadcast.o_proj(torch.cat(outs, dim=-3).flatten(-2))

    def forward_bidirectional(self, x):
        """The seeds' three equations, no position: x [n, d] -> [n, d]."""
        scale = self.dh ** -0.5
        q1 = self.heads(self.gather.q_proj(self.latents))
        g = full_attention(q1, self.heads(self.gather.k_proj(x)), self.heads(self.gather.v_proj(x)), scale)
        l1 = self.latents + self.gather.o_proj(g.flatten(-2))
        l2 = l1
        if self.synth is not None:
            p = self.synth
            a = full_attention(self.heads(p.q_proj(l1)), self.heads(p.k_proj(l1)), self.heads(p.v_proj(l1)), scale)
            l2 = l1 + p.o_proj(a.flatten(-2))
        y = full_attention(self.heads(self.broadcast.q_proj(x)), self.heads(self.broadcast.k_proj(l2)),
                           self.heads(self.broadcast.v_proj(l2)), scale)
        return self.broadcast.o_proj(y.flatten(-2))


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def yarn_mscale(scale, m):
    return 1.0 if scale <= 1 else 0.1 * m * math.log(scale) + 1.0


def mla_rope(a, base, positions):
    """inv_freq (fp32, as Hugging Face, YaRN when a["yarn"]) -> cos, sin [positions, rope/2]."""
    dim = a["qk_rope_head_dim"]
    pos_freqs = base ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim)
    inv_freq, scale = 1.0 / pos_freqs, 1.0
    y = a.get("yarn")
    if y:
        def corr(rot):
            return dim * math.log(y["original_max_position_embeddings"] / (rot * 2 * math.pi)) / (2 * math.log(base))
        low = max(math.floor(corr(y.get("beta_fast", 32))), 0)
        high = min(math.ceil(corr(y.get("beta_slow", 1))), dim - 1)
        if low == high:
            high += 0.001
        ramp = ((torch.arange(dim // 2, dtype=torch.float32) - low) / (high - low)).clamp(0, 1)
        extra = 1 - ramp
        inv_freq = (1.0 / (y["factor"] * pos_freqs)) * (1 - extra) + (1.0 / pos_freqs) * extra
        m, m_all = y.get("mscale", 0), y.get("mscale_all_dim", 0)
        scale = yarn_mscale(y["factor"], m) / yarn_mscale(y["factor"], m_all) if m and m_all else yarn_mscale(y["factor"], 1)
    angles = torch.outer(torch.arange(positions).float(), inv_freq)
    return angles.cos() * scale, angles.sin() * scale


class Mla(nn.Module):
    """DeepSeek MLA, naive form, Hugging Face DeepseekV2/V3 weight names and semantics:
    RoPE on interleaved pairs of the rope part, softmax scale (nope+rope)^-1/2 (times YaRN's m²)."""

    def __init__(self, cfg: Config):
        super().__init__()
        a = cfg.attention
        d, self.h = cfg.d_model, cfg.n_heads
        self.nope, self.rope, self.v, self.r = a["qk_nope_head_dim"], a["qk_rope_head_dim"], a["v_head_dim"], a["kv_lora_rank"]
        eps = a.get("norm_eps", 1e-6)
        qk = self.nope + self.rope
        self.q_lora = a.get("q_lora_rank")
        if self.q_lora:
            self.q_a_proj = nn.Linear(d, self.q_lora, bias=False)
            self.q_a_layernorm = RMSNorm(self.q_lora, eps)
            self.q_b_proj = nn.Linear(self.q_lora, self.h * qk, bias=False)
        else:
            self.q_proj = nn.Linear(d, self.h * qk, bias=False)
        self.kv_a_proj_with_mqa = nn.Linear(d, self.r + self.rope, bias=False)
        self.kv_a_layernorm = RMSNorm(self.r, eps)
        self.kv_b_proj = nn.Linear(self.r, self.h * (self.nope + self.v), bias=False)
        self.o_proj = nn.Linear(self.h * self.v, d, bias=False)
        self.scale = qk ** -0.5
        y = a.get("yarn")
        if y and y.get("mscale_all_dim"):
            self.scale *= yarn_mscale(y["factor"], y["mscale_all_dim"]) ** 2
        cos, sin = mla_rope(a, cfg.rope.get("base", 10000.0), cfg.max_context)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)

    def forward(self, x, cos_unused=None, sin_unused=None):
        lead, n = x.shape[:-1], x.shape[-2]
        q = self.q_b_proj(self.q_a_layernorm(self.q_a_proj(x))) if self.q_lora else self.q_proj(x)
        q = q.view(*lead, self.h, self.nope + self.rope)
        cos, sin = self.cos[:n], self.sin[:n]
        q = torch.cat((q[..., : self.nope], apply_rope(q[..., self.nope:], cos, sin, "interleaved")), dim=-1)
        kv_a = self.kv_a_proj_with_mqa(x)
        c = self.kv_a_layernorm(kv_a[..., : self.r])
        k_pe = apply_rope(kv_a[..., self.r:].unsqueeze(-2), cos, sin, "interleaved")  # [.., n, 1, rope]
        kv = self.kv_b_proj(c).view(*lead, self.h, self.nope + self.v)
        k = torch.cat((kv[..., : self.nope], k_pe.expand(*lead, self.h, self.rope)), dim=-1)
        o = causal_attention(q, k, kv[..., self.nope:], self.scale)
        return self.o_proj(o.reshape(*lead, self.h * self.v))


def rope_dim(cfg: Config):
    """Rotated values per head: the whole head for MHA, `rope_dim` (default half) for latent."""
    if cfg.attention["kind"] == "latent":
        return cfg.attention.get("rope_dim") or (cfg.head_dim // 2 // 2 * 2)
    return cfg.head_dim  # (MLA keeps its own tables)


def make_attention(cfg: Config):
    kind = cfg.attention["kind"]
    if kind == "mha":
        return Mha(cfg)
    if kind == "latent":
        return LatentAttention(cfg)
    if kind == "mla":
        return Mla(cfg)
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
        cos, sin = rope_tables(rope_dim(cfg), cfg.rope.get("base", 10000.0), cfg.max_context)
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
