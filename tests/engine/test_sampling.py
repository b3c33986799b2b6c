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


def test_warm_start_gates_by_flatness_only_at_low_cutoffs():
    cfg = SamplerConfig(steps=4, prior_t=0.85, prior_flatness_below_hz=6000.0,
                        prior_skip_one_shots=False)
    assert cfg.wants_flatness(3800.0) and cfg.wants_flatness(6000.0)
    assert not cfg.wants_flatness(7300.0)  # 16 kHz files: no flatness needed
    assert cfg.for_input(7300.0) is cfg and cfg.for_input(16000.0, 0.01) is cfg
    low = cfg.for_input(3800.0, 0.1)  # tonal 8 kHz file: from noise
    assert low.prior_t == 0.0 and low.steps == 4 and low.timesteps()[0] == 0.0
    assert cfg.for_input(3800.0, 0.3) is cfg  # noise-like: warm
    assert SamplerConfig(prior_t=0.0).for_input(7300.0, 0.9, False).prior_t == 0.0
    everywhere = SamplerConfig(prior_flatness_below_hz=22050.0, prior_skip_one_shots=False)
    assert everywhere.for_input(16000.0, 0.1).prior_t == 0.0
    assert everywhere.for_input(16000.0, 0.5).prior_t == WARM_START_T
    warm = SamplerConfig(prior_min_flatness=0, prior_skip_one_shots=False)  # the app's box
    assert not warm.wants_flatness(3800.0) and not warm.wants_one_shot()
    assert warm.for_input(3800.0).prior_t == warm.for_input(16000.0).prior_t == WARM_START_T


def test_the_default_warm_start():
    cfg = SamplerConfig()  # prior_t 0.85; flatness >= 0.3 at or below 6 kHz; no one-shots
    assert cfg.prior_t == WARM_START_T and cfg.prior_min_flatness == 0.3
    assert cfg.prior_flatness_below_hz == 6000.0 and cfg.wants_one_shot()
    assert cfg.wants_flatness(3800.0) and not cfg.wants_flatness(7300.0)
    assert cfg.for_input(3800.0, 0.45, False).prior_t == WARM_START_T  # fire, rain, hiss
    assert cfg.for_input(3800.0, 0.3, False).prior_t == WARM_START_T
    assert cfg.for_input(3800.0, 0.12, False).prior_t == 0.0  # tonal: from noise
    assert cfg.for_input(3800.0, None, False).prior_t == 0.0  # unknown (too short, silent)
    for cutoff in (7300.0, 10475.0, 16000.0):  # 16 / 22.05 kHz files, MP3 low-passes
        assert cfg.for_input(cutoff, None, False).prior_t == WARM_START_T
        assert cfg.for_input(cutoff, None, True).prior_t == 0.0  # a drum hit: from noise
        assert cfg.for_input(cutoff).prior_t == 0.0  # not known to be no one-shot
    assert cfg.for_input(3800.0, 0.9, True).prior_t == 0.0
    assert not SamplerConfig(prior_t=0.0).wants_flatness(3800.0)
    assert not SamplerConfig(prior_t=0.0).wants_one_shot()
    with pytest.raises(ValueError, match="prior_min_flatness"):
        SamplerConfig(prior_min_flatness=1.5)


def test_prior_flatness_cutoff_must_be_in_band():
    with pytest.raises(ValueError, match="prior_flatness_below_hz"):
        SamplerConfig(prior_flatness_below_hz=-1.0)
    with pytest.raises(ValueError, match="prior_flatness_below_hz"):
        SamplerConfig(prior_flatness_below_hz=30000.0)


def test_reports_say_where_sampling_starts():
    assert SamplerConfig(prior_t=0.0).describe_start() == "from noise"
    gated = SamplerConfig().describe_start()
    assert gated.startswith("warm start from SBR at t = 0.85 (inputs cut off at or below "
                            "6000 Hz only if") and "flatness of at least 0.3" in gated
    assert "except one-shots" in gated and gated.endswith("else from noise")
    box = SamplerConfig(prior_min_flatness=0.0, prior_skip_one_shots=False).describe_start()
    assert "flatness" not in box and "one-shot" not in box and box.endswith("every input")
