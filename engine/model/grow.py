"""Deepen a trained DiT without changing what it computes, so a fine-tune starts where it stands.

Each new block is a copy of the block before it with the adaLN gates (`gate_a`, `gate_m`: the
third and sixth of the six modulation chunks) at zero, so it adds nothing until training opens
its gates; its attention, MLP and shift/scale start from a block that already works at that
depth instead of from noise. New blocks are spread evenly: with 8 blocks grown to 16 every old
block is followed by its copy.

References: adaLN-Zero identity blocks (DiT, Peebles & Xie 2023); growing transformers by
stacking / function-preserving expansion (Gong et al. 2019; Chen et al., Net2Net, 2016).
"""

from __future__ import annotations

import copy
import dataclasses

import torch
from torch import nn

from engine.model.dit import DiT

GATE_CHUNKS = (2, 5)  # gate_a, gate_m in DiTBlock's six modulation chunks


def copies_after(old_depth: int, new_depth: int) -> list[int]:
    """How many copies follow each old block: `new_depth - old_depth` spread evenly."""
    if not 0 < old_depth <= new_depth:
        raise ValueError(f"can only deepen a network: {old_depth} -> {new_depth} blocks")
    extra = new_depth - old_depth
    return [(i + 1) * extra // old_depth - i * extra // old_depth for i in range(old_depth)]


def closed_copy(block: nn.Module) -> nn.Module:
    """A copy of a DiTBlock whose residual branches are gated off (the identity map)."""
    new = copy.deepcopy(block)
    modulation = new.ada_ln[-1]  # Linear D -> 6D
    width = modulation.out_features // 6
    with torch.no_grad():
        for chunk in GATE_CHUNKS:
            modulation.weight[chunk * width:(chunk + 1) * width].zero_()
            modulation.bias[chunk * width:(chunk + 1) * width].zero_()
    return new


def grow_depth(net: DiT, depth: int) -> DiT:
    """A DiT of `depth` blocks computing exactly what `net` computes (`net` is left as it is)."""
    grown = DiT(dataclasses.replace(net.cfg, depth=depth))
    state = {k: v for k, v in net.state_dict().items() if not k.startswith("blocks.")}
    blocks: list[nn.Module] = []
    for block, n in zip(net.blocks, copies_after(net.cfg.depth, depth), strict=True):
        blocks += [block] + [closed_copy(block) for _ in range(n)]
    for i, block in enumerate(blocks):
        state.update({f"blocks.{i}.{k}": v for k, v in block.state_dict().items()})
    grown.load_state_dict(state, strict=True)
    return grown.to(next(net.parameters()).device)
