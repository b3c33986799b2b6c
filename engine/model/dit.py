"""The JaT V2 Diffusion Transformer: (z_t, t, cond) -> predicted clean latent (x-prediction).

Dimensions: B batch, C codec channels, T latent frames, Tp = T padded to a multiple of P,
P patch length, N = Tp/P tokens, D width.

Data flow (V2 design note, with its final-layer error fixed: the final LayerNorm is modulated by
the time embedding and the modulation and output Linear start at zero, as in DiT):
    concat(z_t, cond) (B, 2C, T) -> pad -> bottleneck patch embed (B, N, D)
    -> depth x DiTBlock(adaLN-Zero, GQA + RoPE, MLP) -> FinalLayer (B, N, P*C)
    -> unpatchify (B, C, Tp) -> remove padding (B, C, T)

References: DiT (Peebles & Xie 2023), JiT (Li & He 2025, x-prediction).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from engine.config import FlowConfig, ModelConfig, RunConfig
from engine.model.embed import BottleneckPatchEmbed, LearnedPositions, TimestepEmbedder
from engine.model.layers import DiTBlock, RotaryEmbedding, modulate


class FinalLayer(nn.Module):
    """adaLN-Zero output head: modulated LayerNorm -> Linear D -> P*C, both zero-initialised."""

    def __init__(self, width: int, out_features: int):
        super().__init__()
        self.norm = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.ada_ln = nn.Sequential(nn.SiLU(), nn.Linear(width, 2 * width))
        self.linear = nn.Linear(width, out_features)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift, scale = self.ada_ln(c).chunk(2, dim=-1)  # (B, D) each
        return self.linear(modulate(self.norm(x), shift, scale))  # (B, N, P*C)


class DiT(nn.Module):
    """Conditional flow-matching DiT over codec latents."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        c, d = cfg.latent_channels, cfg.width
        self.t_embed = TimestepEmbedder(d, cfg.time_freq_dim)
        self.patch_embed = BottleneckPatchEmbed(2 * c, cfg.patch_len, cfg.bottleneck, d)
        self.pos_embed = LearnedPositions(cfg.max_tokens, d) if cfg.positions == "learned" else None
        rope = RotaryEmbedding(cfg.head_dim, cfg.rope_theta) if cfg.positions == "rope" else None
        self.blocks = nn.ModuleList(
            DiTBlock(d, cfg.heads, cfg.kv_heads, cfg.mlp_ratio, rope) for _ in range(cfg.depth)
        )
        self.final = FinalLayer(d, cfg.patch_len * c)
        self.initialize_weights()

    def initialize_weights(self) -> None:
        """Every non-default init (DiT): xavier Linears, N(0, 0.02) time MLP and positions,
        adaLN modulations and the output Linear at zero, so each block starts as the identity
        and the prediction starts at zero."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)
        for layer in (self.t_embed.mlp[0], self.t_embed.mlp[2]):
            nn.init.normal_(layer.weight, std=0.02)
        if self.pos_embed is not None:
            nn.init.normal_(self.pos_embed.table, std=0.02)
        for block in self.blocks:
            nn.init.zeros_(block.ada_ln[-1].weight)
            nn.init.zeros_(block.ada_ln[-1].bias)
        for layer in (self.final.ada_ln[-1], self.final.linear):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, z: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """z, cond (B, C, T); t (B,) in [0, 1] -> predicted clean latent (B, C, T)."""
        if z.ndim != 3 or z.shape != cond.shape or z.shape[1] != self.cfg.latent_channels:
            raise ValueError(f"expected z and cond of shape (B, {self.cfg.latent_channels}, T), "
                             f"got {tuple(z.shape)} and {tuple(cond.shape)}")
        frames = z.shape[-1]
        pad = (-frames) % self.cfg.patch_len
        x = torch.cat([z, cond], dim=1)  # (B, 2C, T)
        x = F.pad(x, (0, pad))  # (B, 2C, Tp)
        x = self.patch_embed(x)  # (B, N, D)
        if self.pos_embed is not None:
            x = self.pos_embed(x)
        c = self.t_embed(t)  # (B, D)
        for block in self.blocks:
            x = block(x, c)  # (B, N, D)
        x = self.final(x, c)  # (B, N, P*C)
        x = rearrange(x, "b n (p c) -> b c (n p)", p=self.cfg.patch_len)  # (B, C, Tp)
        return x[..., :frames]  # (B, C, T)


def param_counts(model: DiT) -> OrderedDict[str, int]:
    """Parameter count by component (and 'total')."""
    parts: OrderedDict[str, int] = OrderedDict()
    parts["t_embed"] = sum(p.numel() for p in model.t_embed.parameters())
    parts["patch_embed"] = sum(p.numel() for p in model.patch_embed.parameters())
    if model.pos_embed is not None:
        parts["pos_embed"] = model.pos_embed.table.numel()
    blocks = model.blocks
    parts["blocks.attn"] = sum(p.numel() for b in blocks for p in b.attn.parameters())
    parts["blocks.mlp"] = sum(p.numel() for b in blocks for p in b.mlp.parameters())
    parts["blocks.ada_ln"] = sum(p.numel() for b in blocks for p in b.ada_ln.parameters())
    parts["final"] = sum(p.numel() for p in model.final.parameters())
    parts["total"] = sum(p.numel() for p in model.parameters())
    return parts


# Named architectures (DiT's DiT_models). Flow settings go with them where the spec sets them.
PRESETS: dict[str, RunConfig] = {
    "v2": RunConfig(ModelConfig(), FlowConfig(t_sampling="ushaped")),
    "v1": RunConfig(
        ModelConfig(width=768, depth=12, heads=12, kv_heads=12, positions="learned",
                    bottleneck=256),
        FlowConfig(t_sampling="uniform"),
    ),
    # The first shipped size: same architecture, <= 8M parameters (fp16 file <= 16 MB), faster
    # than real time on 2 CPU cores at 8 steps (the default then).
    "small": RunConfig(
        ModelConfig(width=256, depth=6, heads=4, kv_heads=1, bottleneck=128, mlp_ratio=2.5),
        FlowConfig(t_sampling="ushaped"),
    ),
    # Twice the parameters at nearly the same CPU time (the codec, not the network, dominates
    # a restore there: RTF 0.20 vs 0.21 for `small` on a 60 s stereo file, 2-core Xeon, 8
    # steps): 14.2M parameters, shipped as an int8 file of 14.4 MB (`save_model(..., int8)`).
    "medium": RunConfig(
        ModelConfig(width=320, depth=8, heads=5, kv_heads=1, bottleneck=160, mlp_ratio=2.5),
        FlowConfig(t_sampling="ushaped"),
    ),
    "tiny": RunConfig(
        ModelConfig(width=64, depth=2, heads=4, kv_heads=2, bottleneck=32, mlp_ratio=2.0,
                    time_freq_dim=64, max_tokens=512),
        FlowConfig(t_sampling="ushaped"),
    ),
}
