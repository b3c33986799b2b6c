"""Transformer layers of the JaT V2 DiT: RoPE, GQA attention, MLP, adaLN modulation.

Dimensions: B batch, N tokens, D width, H query heads, Hkv key/value heads, Dh head dim.

References:
  DiT (Peebles & Xie 2023) — adaLN-Zero blocks, modulate().
  RoFormer (Su et al. 2021) — rotary position embedding, theta_i = 10000^(-2i/d).
  GQA (Ainslie et al. 2023) — grouped key/value heads.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """adaLN: x (B, N, D) * (1 + scale) + shift, with shift/scale (B, D)."""
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


class RotaryEmbedding(nn.Module):
    """Rotary position embedding applied to the head dimension of Q and K."""

    def __init__(self, head_dim: int, theta: float = 10000.0):
        super().__init__()
        inv_freq = theta ** (-torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
        self.register_buffer("inv_freq", inv_freq.float(), persistent=False)  # (Dh/2,)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, H, N, Dh) -> x rotated by its position (pairs of adjacent channels)."""
        n = x.shape[-2]
        pos = torch.arange(n, device=x.device, dtype=torch.float32)
        angles = torch.outer(pos, self.inv_freq.to(x.device))  # (N, Dh/2)
        cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
        x1, x2 = x[..., 0::2], x[..., 1::2]  # (B, H, N, Dh/2) each
        rotated = torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)
        return rotated.flatten(-2)  # (B, H, N, Dh)


def _sdpa_supports_gqa() -> bool:
    try:
        q = torch.zeros(1, 2, 1, 2)
        kv = torch.zeros(1, 1, 1, 2)
        F.scaled_dot_product_attention(q, kv, kv, enable_gqa=True)
        return True
    except TypeError:
        return False


_SDPA_GQA = _sdpa_supports_gqa()


class Attention(nn.Module):
    """Multi-head self-attention with grouped KV heads (GQA; kv_heads == heads is MHA)."""

    def __init__(self, width: int, heads: int, kv_heads: int, rope: RotaryEmbedding | None):
        super().__init__()
        self.heads, self.kv_heads = heads, kv_heads
        self.head_dim = width // heads
        self.q = nn.Linear(width, heads * self.head_dim)
        self.kv = nn.Linear(width, 2 * kv_heads * self.head_dim)
        self.proj = nn.Linear(width, width)
        self.rope = rope

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q = rearrange(self.q(x), "b n (h d) -> b h n d", h=self.heads)  # (B, H, N, Dh)
        k, v = rearrange(self.kv(x), "b n (two h d) -> two b h n d", two=2, h=self.kv_heads)
        if self.rope is not None:
            q, k = self.rope(q), self.rope(k)
        groups = self.heads // self.kv_heads
        if groups == 1:
            out = F.scaled_dot_product_attention(q, k, v)  # (B, H, N, Dh)
        elif _SDPA_GQA:
            # torch maps each query head to its KV group without materialising repeated K/V.
            out = F.scaled_dot_product_attention(q, k, v, enable_gqa=True)
        else:
            k = k.repeat_interleave(groups, dim=1)  # (B, H, N, Dh): the one visible expansion
            v = v.repeat_interleave(groups, dim=1)
            out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(rearrange(out, "b h n d -> b n (h d)"))  # (B, N, D)


class Mlp(nn.Module):
    """Linear -> GELU -> Linear."""

    def __init__(self, width: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(width, hidden)
        self.fc2 = nn.Linear(hidden, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


class DiTBlock(nn.Module):
    """adaLN-Zero transformer block: x + gate * f(modulate(LN(x))) for attention and MLP."""

    def __init__(self, width: int, heads: int, kv_heads: int, mlp_ratio: float,
                 rope: RotaryEmbedding | None):
        super().__init__()
        self.norm1 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(width, heads, kv_heads, rope)
        self.norm2 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.mlp = Mlp(width, int(width * mlp_ratio))
        self.ada_ln = nn.Sequential(nn.SiLU(), nn.Linear(width, 6 * width))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """x (B, N, D), c (B, D) -> (B, N, D)."""
        shift_a, scale_a, gate_a, shift_m, scale_m, gate_m = self.ada_ln(c).chunk(6, dim=-1)
        x = x + gate_a.unsqueeze(1) * self.attn(modulate(self.norm1(x), shift_a, scale_a))
        x = x + gate_m.unsqueeze(1) * self.mlp(modulate(self.norm2(x), shift_m, scale_m))
        return x
