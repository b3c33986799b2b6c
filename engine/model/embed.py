"""Embedders of the JaT V2 DiT: timestep, bottleneck patch embedding, learned positions.

Dimensions: B batch, C codec channels, T latent frames, P patch length, N = T/P tokens, D width.
"""

from __future__ import annotations

import math

import torch
from einops import rearrange
from torch import nn


class TimestepEmbedder(nn.Module):
    """t in [0, 1] -> sinusoidal features (freq_dim) -> MLP freq_dim -> D -> D."""

    def __init__(self, width: int, freq_dim: int = 512, max_period: float = 10000.0):
        super().__init__()
        half = freq_dim // 2
        freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32) / half)
        self.register_buffer("freqs", freqs, persistent=False)  # (freq_dim/2,)
        self.mlp = nn.Sequential(nn.Linear(freq_dim, width), nn.SiLU(), nn.Linear(width, width))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        """t (B,) -> (B, D). t is scaled by 1000 so the sinusoids span DiT's timestep range."""
        args = (1000.0 * t.float())[:, None] * self.freqs[None]  # (B, freq_dim/2)
        emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)  # (B, freq_dim)
        return self.mlp(emb.to(self.mlp[0].weight.dtype))


class BottleneckPatchEmbed(nn.Module):
    """(B, Cin, T) with T a multiple of P -> tokens (B, N, D) through a narrow bottleneck.

    Cin*P (8192 for V2) -> bottleneck (512) -> GELU -> D (1024).
    """

    def __init__(self, in_channels: int, patch_len: int, bottleneck: int, width: int):
        super().__init__()
        self.patch_len = patch_len
        self.down = nn.Linear(in_channels * patch_len, bottleneck)
        self.up = nn.Linear(bottleneck, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = rearrange(x, "b c (n p) -> b n (p c)", p=self.patch_len)  # (B, N, P*Cin)
        return self.up(nn.functional.gelu(self.down(x), approximate="tanh"))  # (B, N, D)


class LearnedPositions(nn.Module):
    """Learned absolute position embedding (the spec's V1)."""

    def __init__(self, max_tokens: int, width: int):
        super().__init__()
        self.table = nn.Parameter(torch.zeros(1, max_tokens, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, N, D) -> x + pos[:N]."""
        n = x.shape[1]
        if n > self.table.shape[1]:
            raise ValueError(f"sequence of {n} tokens exceeds max_tokens={self.table.shape[1]}")
        return x + self.table[:, :n]
