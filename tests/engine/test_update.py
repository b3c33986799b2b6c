"""The fused clipped AdamW update against clip_grad_norm_ + AdamW, and its non-finite guard."""

from __future__ import annotations

import copy

import pytest
import torch

from engine.training.ema import EMA
from engine.training.update import clipped_step, make_adamw


def _net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.GELU(), torch.nn.Linear(16, 4))


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("scale", [0.01, 10.0])  # gradient norms below and above max_norm
def test_clipped_step_matches_clip_grad_norm_then_adamw(fused, scale):
    net, ref = _net(), _net()
    params = list(net.parameters())
    opt = make_adamw(params, 1e-2, (0.9, 0.99), 0.01)
    if not fused:
        opt = torch.optim.AdamW(params, lr=1e-2, betas=(0.9, 0.99), weight_decay=0.01)
    ref_opt = torch.optim.AdamW(ref.parameters(), lr=1e-2, betas=(0.9, 0.99), weight_decay=0.01)
    gen = torch.Generator().manual_seed(1)
    for _ in range(4):
        x = scale * torch.randn(32, 8, generator=gen)
        for model in (net, ref):
            model(x).pow(2).mean().backward()
        norm = clipped_step(opt, params, 1.0)
        ref_norm = torch.nn.utils.clip_grad_norm_(ref.parameters(), 1.0)
        ref_opt.step()
        opt.zero_grad()
        ref_opt.zero_grad()
        assert norm.item() == pytest.approx(ref_norm.item(), rel=1e-6)
        for a, b in zip(net.parameters(), ref.parameters(), strict=True):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)
    assert not hasattr(opt, "grad_scale") and not hasattr(opt, "found_inf")


@pytest.mark.parametrize("fused", [True, False])
def test_non_finite_gradients_skip_the_update(fused):
    net = _net()
    params = list(net.parameters())
    opt = make_adamw(params, 1e-2, (0.9, 0.99), 0.0) if fused else torch.optim.AdamW(params)
    net(torch.randn(4, 8)).sum().backward()
    clipped_step(opt, params, 1.0)  # one good step creates the optimizer state
    opt.zero_grad()
    before = copy.deepcopy(net.state_dict())
    state_before = copy.deepcopy(opt.state_dict())
    (net(torch.randn(4, 8)).sum() * float("nan")).backward()
    norm = clipped_step(opt, params, 1.0)
    assert not torch.isfinite(norm)
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k])
    for i, st in opt.state_dict()["state"].items():
        for k, v in st.items():
            assert torch.equal(torch.as_tensor(v), torch.as_tensor(state_before["state"][i][k]))


def test_ema_every_k_steps_tracks_the_per_step_average():
    net = _net()
    every1, every4 = EMA(net, 0.99), EMA(net, 0.99, every=4)
    gen = torch.Generator().manual_seed(2)
    for _ in range(400):
        with torch.no_grad():
            for p in net.parameters():
                p.add_(0.01 * torch.randn(p.shape, generator=gen))
        every1.update(net)
        every4.update(net)
    for a, b in zip(every1.model.parameters(), every4.model.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0.02)
    with pytest.raises(ValueError, match="every"):
        EMA(net, 0.99, every=0)


def _nudge(net: torch.nn.Module, gen: torch.Generator) -> None:
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.01 * torch.randn(p.shape, generator=gen))


def test_ema_flush_folds_pending_steps_in_once() -> None:
    net = _net()
    start = [p.detach().clone() for p in net.parameters()]
    ema = EMA(net, 0.99, every=4)
    gen = torch.Generator().manual_seed(3)
    for _ in range(3):  # fewer steps than `every`: nothing folded in yet
        _nudge(net, gen)
        ema.update(net)
    for a, b in zip(ema.model.parameters(), start, strict=True):
        assert torch.equal(a, b)
    ema.flush(net)  # decay^3 at the warm-up's decay: the average moves to the weights
    d = min(0.99, 4 / 13) ** 3
    for a, b, w in zip(ema.model.parameters(), start, net.parameters(), strict=True):
        torch.testing.assert_close(a, d * b + (1 - d) * w.detach())
    folded = [p.clone() for p in ema.model.parameters()]
    ema.flush(net)  # nothing pending: no change
    assert all(torch.equal(a, b) for a, b in zip(ema.model.parameters(), folded, strict=True))
    _nudge(net, gen)
    ema.update(net)  # step 4: only that step is pending now (decay^1, not ^4)
    d4 = min(0.99, 5 / 14)
    for a, b, w in zip(ema.model.parameters(), folded, net.parameters(), strict=True):
        torch.testing.assert_close(a, d4 * b + (1 - d4) * w.detach())


def test_ema_state_keeps_what_was_folded_in() -> None:
    net = _net()
    ema = EMA(net, 0.99, every=4)
    for _ in range(6):
        ema.update(net)
    ema.flush(net)
    again = EMA(net, 0.99, every=4)
    again.load_state_dict(ema.state_dict())
    assert (again.updates, again.applied) == (6, 6)
    old = {k: v for k, v in ema.state_dict().items() if k != "applied"}  # an older checkpoint
    again.load_state_dict(old)
    assert (again.updates, again.applied) == (6, 4)
