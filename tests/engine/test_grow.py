"""Deepening a trained DiT: the grown network computes what the original computed, then trains."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from engine.model.dit import PRESETS, DiT
from engine.model.grow import closed_copy, copies_after, grow_depth


def _trained_like(depth: int = 3) -> DiT:
    """A tiny DiT with every weight random (open gates, non-zero output), as after training."""
    torch.manual_seed(0)
    net = DiT(dataclasses.replace(PRESETS["tiny"].model, depth=depth))
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0.0, 0.05)
    return net.eval()


def _inputs(net: DiT, frames: int = 21) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    c = net.cfg.latent_channels
    return (torch.randn(2, c, frames, generator=g), torch.tensor([0.2, 0.9]),
            torch.randn(2, c, frames, generator=g))


def test_copies_are_spread_evenly():
    assert copies_after(8, 16) == [1] * 8
    assert copies_after(3, 3) == [0, 0, 0]
    assert copies_after(4, 6) == [0, 1, 0, 1]
    spread = copies_after(5, 13)
    assert sum(spread) == 8 and max(spread) - min(spread) <= 1
    with pytest.raises(ValueError, match="deepen"):
        copies_after(4, 3)


def test_a_closed_copy_is_the_identity_and_keeps_its_shift_and_scale():
    net = _trained_like()
    block = net.blocks[0]
    copy = closed_copy(block)
    x, c = torch.randn(2, 5, net.cfg.width), torch.randn(2, net.cfg.width)
    torch.testing.assert_close(copy(x, c), x, rtol=0, atol=0)
    assert not torch.equal(block(x, c), x)  # the original's gates are open
    d = net.cfg.width
    w_new, w_old = copy.ada_ln[-1].weight, block.ada_ln[-1].weight
    for chunk in (0, 1, 3, 4):  # shift and scale kept
        assert torch.equal(w_new[chunk * d:(chunk + 1) * d], w_old[chunk * d:(chunk + 1) * d])
    for chunk in (2, 5):  # gates closed
        assert not w_new[chunk * d:(chunk + 1) * d].any()
    assert torch.equal(copy.mlp.fc1.weight, block.mlp.fc1.weight)
    assert copy.mlp.fc1.weight.data_ptr() != block.mlp.fc1.weight.data_ptr()


def test_grown_network_computes_the_same_prediction():
    net = _trained_like(depth=3)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    grown = grow_depth(net, 7).eval()
    assert grown.cfg.depth == 7 and len(grown.blocks) == 7
    with torch.no_grad():
        torch.testing.assert_close(grown(*_inputs(net)), net(*_inputs(net)), rtol=1e-5, atol=1e-6)
    for k, v in net.state_dict().items():  # the original is left as it was
        assert torch.equal(v, before[k])
    # old blocks keep their places in order: 3 blocks -> 7 gives copies [1, 1, 2]
    for new_i, old_i in ((0, 0), (2, 1), (4, 2)):
        assert torch.equal(grown.blocks[new_i].attn.q.weight, net.blocks[old_i].attn.q.weight)


def test_grown_copies_learn_once_trained():
    net = _trained_like(depth=2)
    grown = grow_depth(net, 4).train()
    z, t, cond = _inputs(net)
    loss = (grown(z, t, cond) - cond).square().mean()
    loss.backward()
    gate_grad = grown.blocks[1].ada_ln[-1].weight.grad
    assert gate_grad is not None and gate_grad.abs().sum() > 0
    opt = torch.optim.AdamW(grown.parameters(), lr=1e-3)
    opt.step()
    opt.zero_grad()
    (grown(z, t, cond) - cond).square().mean().backward()
    assert grown.blocks[1].mlp.fc1.weight.grad.abs().sum() > 0  # gates open: the copy trains
