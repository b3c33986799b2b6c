"""Flow objective: t densities, interpolation convention, loss forms."""

from __future__ import annotations

import math

import pytest
import torch

from engine.config import FlowConfig
from engine.flow import (
    FlowObjective,
    interpolate,
    metric_floats,
    sample_t,
    ushaped_density,
    velocity,
)


def _histogram(t: torch.Tensor, bins: int = 20) -> torch.Tensor:
    return torch.histc(t, bins=bins, min=0.0, max=1.0) / t.numel() * bins


def test_ushaped_histogram_matches_its_density_and_is_lowest_in_the_middle():
    g = torch.Generator().manual_seed(0)
    t = sample_t(FlowConfig(t_sampling="ushaped"), 400_000, g)
    assert t.min() >= 0 and t.max() <= 1
    hist = _histogram(t)
    centres = (torch.arange(20) + 0.5) / 20
    # Average density over each bin, from the closed-form CDF.
    a = 4.0
    edges = torch.linspace(0, 1, 21)
    cdf = (torch.exp(a * edges) - torch.exp(a * (1 - edges))) / (2 * math.expm1(a)) + 0.5
    expected = (cdf[1:] - cdf[:-1]) * 20
    assert torch.allclose(hist, expected, rtol=0.03, atol=0.01)
    assert hist[9:11].mean() < 0.5 * hist[[0, -1]].mean()
    assert torch.allclose(ushaped_density(centres).sum() / 20, torch.tensor(1.0), atol=0.01)


def test_uniform_and_logit_normal_histograms():
    g = torch.Generator().manual_seed(1)
    hist = _histogram(sample_t(FlowConfig(t_sampling="uniform"), 200_000, g))
    assert torch.allclose(hist, torch.ones(20), atol=0.05)
    t = sample_t(FlowConfig(t_sampling="logit_normal"), 200_000, g)
    logit = torch.log(t / (1 - t))
    assert abs(logit.mean().item() + 0.8) < 0.01 and abs(logit.std().item() - 0.8) < 0.01


def test_interpolation_convention_t1_is_clean():
    x, eps = torch.randn(3, 4, 5), torch.randn(3, 4, 5)
    assert torch.equal(interpolate(x, eps, torch.ones(3)), x)
    assert torch.equal(interpolate(x, eps, torch.zeros(3)), eps)
    t = torch.full((3,), 0.25)
    z = interpolate(x, eps, t)
    assert torch.allclose(velocity(x, z, t, 0.05), x - eps, atol=1e-6)


@pytest.mark.parametrize("loss", ["v", "x"])
def test_perfect_prediction_has_zero_loss(loss):
    x, cond = torch.randn(8, 6, 10), torch.randn(8, 6, 10)
    obj = FlowObjective(FlowConfig(loss=loss))
    value, metrics = obj.loss(lambda z, t, c: x, x, cond, torch.Generator().manual_seed(0))
    assert value.item() == 0.0 and metrics["loss/flow"] == 0.0


def test_v_loss_is_x_loss_weighted_by_inverse_one_minus_t_squared():
    x = torch.randn(1, 4, 8)
    off = torch.randn(1, 4, 8)
    g = torch.Generator().manual_seed(3)
    t = sample_t(FlowConfig(), 1, torch.Generator().manual_seed(3)).item()
    v_loss, _ = FlowObjective(FlowConfig(loss="v")).loss(lambda z, tt, c: x + off, x, x, g)
    x_loss = off.pow(2).mean().item()
    assert v_loss.item() == pytest.approx(x_loss / max(1 - t, 0.05) ** 2, rel=1e-4)


def test_condition_dropout_zeroes_some_conditions():
    seen = []
    obj = FlowObjective(FlowConfig(cond_drop_prob=0.5))
    obj.loss(lambda z, t, c: seen.append(c) or z, torch.randn(64, 2, 3), torch.ones(64, 2, 3),
             torch.Generator().manual_seed(0))
    dropped = (seen[0].flatten(1).abs().sum(1) == 0).float().mean().item()
    assert 0.3 < dropped < 0.7


def test_quarter_metrics_match_a_direct_computation_and_empty_quarters_are_dropped():
    x, cond = torch.randn(16, 3, 5), torch.randn(16, 3, 5)
    off = torch.randn(16, 3, 5)
    obj = FlowObjective(FlowConfig(t_sampling="uniform", loss="x"))
    loss, metrics = obj.loss(lambda z, t, c: x + off, x, cond, torch.Generator().manual_seed(1))
    t = sample_t(obj.cfg, 16, torch.Generator().manual_seed(1))
    per_item = off.pow(2).flatten(1).mean(1)
    floats = metric_floats(metrics)
    assert floats["loss/flow"] == pytest.approx(loss.item())
    for q in range(4):
        sel = (t * 4).long().clamp(max=3) == q
        if sel.any():
            assert floats[f"loss/flow_t{q}"] == pytest.approx(per_item[sel].mean().item(), rel=1e-5)
        else:
            assert f"loss/flow_t{q}" not in floats
    one = metric_floats(obj.loss(lambda z, t, c: z, x[:1], cond[:1])[1])
    assert sum(k.startswith("loss/flow_t") for k in one) == 1  # one item: one quarter


def test_weighted_loss_is_the_mean_over_the_weighted_elements_of_each_item():
    x, cond = torch.randn(4, 3, 5), torch.randn(4, 3, 5)
    off = torch.randn(4, 3, 5)
    weight = (torch.rand(4, 3, 5, generator=torch.Generator().manual_seed(2)) > 0.4).float()
    weight[3] = 0  # an item with nothing scored adds 0, not NaN
    obj = FlowObjective(FlowConfig(loss="x"))
    loss, _ = obj.loss(lambda z, t, c: x + off, x, cond, torch.Generator().manual_seed(0), weight)
    sq = off.pow(2)
    per_item = [sq[i][weight[i] > 0].mean().item() if weight[i].any() else 0.0 for i in range(4)]
    assert loss.item() == pytest.approx(sum(per_item) / 4, rel=1e-5)
    ones, _ = obj.loss(lambda z, t, c: x + off, x, cond, torch.Generator().manual_seed(0),
                       torch.ones(4, 3, 5))
    plain, _ = obj.loss(lambda z, t, c: x + off, x, cond, torch.Generator().manual_seed(0))
    assert ones.item() == pytest.approx(plain.item(), rel=1e-6)
    # what the prediction does at a weight-0 element changes nothing
    spoiled = (x + off).masked_fill(weight == 0, 1e3)
    same, _ = obj.loss(lambda z, t, c: spoiled, x, cond, torch.Generator().manual_seed(0), weight)
    assert same.item() == pytest.approx(loss.item(), rel=1e-6)


def test_the_bridge_is_the_path_a_warm_started_sampler_takes():
    from engine.config import SamplerConfig
    from engine.flow import bridge
    from engine.sampling import iter_sample

    x, prior, eps = (torch.randn(2, 3, 7, generator=torch.Generator().manual_seed(s))
                     for s in range(3))
    cfg = SamplerConfig(steps=4, prior_t=0.85, prior_skip_one_shots=False)
    states = [step.z for step in iter_sample(lambda z, t, c: x, x, cfg, eps, prior)]
    for k, z in enumerate(states[:-1], start=1):  # after step k: a quarter more of the way
        expected, t = bridge(x, eps, prior, torch.full((2,), k / 4), 0.85)
        assert torch.allclose(z, expected, atol=1e-5), k
        assert t[0].item() == pytest.approx(0.85 + 0.15 * k / 4)
    start, _ = bridge(x, eps, prior, torch.zeros(2), 0.85)
    assert torch.allclose(start, 0.85 * prior + 0.15 * eps)


def test_bridged_items_train_on_warm_states_and_report_their_own_loss():
    x, cond, prior = (torch.randn(64, 3, 5, generator=torch.Generator().manual_seed(s))
                      for s in range(3))
    seen = {}

    def net(z, t, c):
        seen["z"], seen["t"] = z, t
        return x + 0.1

    # the other items' t near 0, so t >= 0.85 tells the bridged ones
    obj = FlowObjective(FlowConfig(bridge_prob=0.5, loss="x", t_sampling="logit_normal",
                                   logit_normal_mean=-5.0, logit_normal_std=0.1))
    loss, metrics = obj.loss(net, x, cond, torch.Generator().manual_seed(0), prior=prior)
    warm = seen["t"] >= 0.85
    assert 0.3 < warm.float().mean().item() < 0.7
    # a bridged state is a mix of prior, noise and x with the prior's weight 0.85 (1 - u)
    u = (seen["t"][warm] - 0.85) / 0.15
    residual = seen["z"][warm] - 0.85 * (1 - u).view(-1, 1, 1) * prior[warm] \
        - u.view(-1, 1, 1) * x[warm]
    assert residual.std() < 0.16  # what is left is (1 - u) 0.15 eps
    floats = metric_floats(metrics)
    assert floats["loss/flow_bridge"] == pytest.approx(0.01, rel=1e-4)
    assert floats["loss/flow"] == pytest.approx(loss.item())
    off = FlowObjective(FlowConfig(bridge_prob=0.0)).loss(net, x, cond, prior=prior)[1]
    assert "loss/flow_bridge" not in metric_floats(off)
    with pytest.raises(ValueError, match="prior"):
        obj.loss(net, x, cond)
    with pytest.raises(ValueError, match="bridge_t"):
        FlowConfig(bridge_t=1.0)
