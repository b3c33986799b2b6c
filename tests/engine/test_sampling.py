"""Sampler: determinism, generator protocol, exactness on a known flow, guidance batching."""

from __future__ import annotations

import pytest
import torch

from engine.config import WARM_START_T, SamplerConfig
from engine.model.dit import PRESETS, DiT
from engine.sampling import initial_noise, iter_sample, sample


def _random_net(seed: int = 0) -> DiT:
    torch.manual_seed(seed)
    net = DiT(PRESETS["tiny"].model).eval()
    for p in net.parameters():
        torch.nn.init.normal_(p, std=0.05)
    return net


@pytest.mark.parametrize("solver", ["euler", "heun"])
def test_seeded_sampler_is_deterministic(solver):
    net = _random_net()
    cond = torch.randn(2, 1024, 9)
    cfg = SamplerConfig(steps=4, solver=solver, seed=7, prior_t=0.0)
    a, b = sample(net, cond, cfg), sample(net, cond, cfg)
    assert torch.equal(a, b)
    other = SamplerConfig(steps=4, solver=solver, seed=8, prior_t=0.0)
    assert not torch.equal(a, sample(net, cond, other))


def test_iter_sample_yields_every_step_and_ends_at_t1():
    net = _random_net()
    steps = list(iter_sample(net, torch.randn(1, 1024, 4), SamplerConfig(steps=5, prior_t=0.0)))
    assert [s.index for s in steps] == list(range(5))
    assert steps[-1].t == 1.0 and all(s.total == 5 for s in steps)


@pytest.mark.parametrize("solver", ["euler", "heun"])
def test_constant_prediction_is_reached_exactly(solver):
    # If the net always predicts x, the x-prediction ODE lands on x at t = 1.
    x = torch.randn(3, 1024, 6)
    out = sample(lambda z, t, c: x, x, SamplerConfig(steps=3, solver=solver, prior_t=0.0))
    assert torch.allclose(out, x, atol=1e-5)


def test_noise_does_not_depend_on_batching():
    both = initial_noise((2, 3, 4), [5, 6])
    assert torch.equal(both[1], initial_noise((1, 3, 4), [6])[0])


def test_guidance_runs_cond_and_uncond_in_one_batch():
    calls = []

    def net(z, t, c):
        calls.append(z.shape[0])
        return c

    cond = torch.ones(2, 8, 3)
    out = sample(net, cond, SamplerConfig(steps=2, guidance=3.0, prior_t=0.0))
    assert calls == [4, 4]
    # x_u = 0, x_c = 1 -> guided prediction 3.
    assert torch.allclose(out, torch.full_like(cond, 3.0))


def test_warm_start_begins_at_prior_t_from_the_prior():
    cfg = SamplerConfig(steps=4, prior_t=0.5)
    assert cfg.timesteps() == [0.5, 0.625, 0.75, 0.875, 1.0]
    prior, noise = torch.randn(2, 1024, 5), torch.randn(2, 1024, 5)
    # a net that predicts x = z has zero velocity: the state never moves from where it starts
    out = sample(lambda z, t, c: z, prior, cfg, noise=noise, prior=prior)
    assert torch.allclose(out, 0.5 * prior + 0.5 * noise, atol=1e-6)
    with pytest.raises(ValueError, match="prior"):
        sample(lambda z, t, c: z, prior, cfg, noise=noise)
    with pytest.raises(ValueError, match="prior_t"):
        SamplerConfig(prior_t=1.0)


def test_warm_start_only_below_its_cutoff_limit():
    cfg = SamplerConfig(steps=4, prior_t=0.85, prior_max_cutoff_hz=9000.0, prior_min_flatness=0)
    assert cfg.for_input(8000.0) is cfg and cfg.for_input(9000.0) is cfg
    above = cfg.for_input(11025.0)
    assert above.prior_t == 0.0 and above.steps == 4 and above.timesteps()[0] == 0.0
    assert SamplerConfig(prior_t=0.0).for_input(4000.0, 0.9).prior_t == 0.0  # none unless asked
    assert not cfg.wants_flatness(4000.0)  # no gate: nothing to measure
    warm = SamplerConfig(prior_t=WARM_START_T, prior_min_flatness=0)  # the app's box
    assert warm.for_input(3800.0).prior_t == 0.85 and warm.for_input(7600.0).prior_t > 0
    assert warm.for_input(10475.0).prior_t == 0.0  # 22.05 kHz files (measured better)
    assert warm.for_input(16000.0).prior_t == 0.0


def test_the_default_warm_starts_only_noise_like_inputs():
    cfg = SamplerConfig()  # prior_t 0.85, up to 9 kHz, flatness >= 0.3
    assert cfg.prior_t == WARM_START_T and cfg.prior_min_flatness == 0.3
    assert cfg.wants_flatness(3800.0) and not cfg.wants_flatness(10475.0)
    assert cfg.for_input(3800.0, 0.45).prior_t == WARM_START_T  # fire, rain, hiss
    assert cfg.for_input(3800.0, 0.3).prior_t == WARM_START_T
    assert cfg.for_input(3800.0, 0.12).prior_t == 0.0  # tonal: from noise
    assert cfg.for_input(3800.0, None).prior_t == 0.0  # unknown (too short, silent)
    assert cfg.for_input(10475.0, 0.9).prior_t == 0.0  # above the cutoff limit
    assert not SamplerConfig(prior_t=0.0).wants_flatness(3800.0)
    with pytest.raises(ValueError, match="prior_min_flatness"):
        SamplerConfig(prior_min_flatness=1.5)


def test_prior_cutoff_limit_must_be_positive():
    with pytest.raises(ValueError, match="prior_max_cutoff_hz"):
        SamplerConfig(prior_max_cutoff_hz=0.0)


def test_reports_say_where_sampling_starts():
    assert SamplerConfig(prior_t=0.0).describe_start() == "from noise"
    gated = SamplerConfig().describe_start()
    assert gated.startswith("warm start from SBR at t = 0.85 for inputs cut off at or below "
                            "9000 Hz") and "flatness of at least 0.3" in gated
    assert "flatness" not in SamplerConfig(prior_min_flatness=0.0).describe_start()
