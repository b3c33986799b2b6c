"""ODE samplers for the x-prediction flow: Euler and Heun, with classifier-free guidance.

The sampler is a generator that yields after every step, so a GUI or CLI gets progress and can
cancel between steps; `sample()` drains it (guided-diffusion's p_sample_loop_progressive).
Dimensions: B batch, C channels, T frames.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from itertools import pairwise

import torch

from engine.config import SamplerConfig
from engine.flow import Net, interpolate, velocity


@dataclass(frozen=True)
class SampleStep:
    """One finished solver step: its index, the time reached and the current state."""

    index: int
    total: int
    t: float
    z: torch.Tensor  # (B, C, T)


def predict_x(net: Net, z: torch.Tensor, t: float, cond: torch.Tensor, guidance: float
              ) -> torch.Tensor:
    """x_hat at time t; with guidance != 1, cond and uncond run as one batched forward."""
    tt = torch.full((z.shape[0],), t, device=z.device, dtype=torch.float32)
    if guidance == 1.0:
        return net(z, tt, cond)
    both = net(torch.cat([z, z]), torch.cat([tt, tt]), torch.cat([cond, torch.zeros_like(cond)]))
    x_cond, x_uncond = both.chunk(2)
    return x_uncond + guidance * (x_cond - x_uncond)


def _velocity_at(net: Net, z: torch.Tensor, t: float, cond: torch.Tensor,
                 cfg: SamplerConfig) -> torch.Tensor:
    x_hat = predict_x(net, z, t, cond, cfg.guidance)
    tt = torch.full((z.shape[0],), t, device=z.device, dtype=z.dtype)
    return velocity(x_hat, z, tt, cfg.v_clamp)


def euler_step(net: Net, z: torch.Tensor, t0: float, t1: float, cond: torch.Tensor,
               cfg: SamplerConfig) -> torch.Tensor:
    """z_{t1} = z + (t1 - t0) v(z, t0). The last step to t = 1 lands exactly on x_hat."""
    return z + (t1 - t0) * _velocity_at(net, z, t0, cond, cfg)


def heun_step(net: Net, z: torch.Tensor, t0: float, t1: float, cond: torch.Tensor,
              cfg: SamplerConfig) -> torch.Tensor:
    """Heun's second-order step; the final step to t = 1 is Euler (v is singular there)."""
    v0 = _velocity_at(net, z, t0, cond, cfg)
    z_euler = z + (t1 - t0) * v0
    if t1 >= 1.0:
        return z_euler
    v1 = _velocity_at(net, z_euler, t1, cond, cfg)
    return z + (t1 - t0) * 0.5 * (v0 + v1)


STEP_FNS = {"euler": euler_step, "heun": heun_step}


def initial_noise(shape: tuple[int, ...], seeds: list[int], device: torch.device | str = "cpu",
                  dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Noise (B, ...) with item b drawn from its own seed: results do not depend on batching."""
    if len(seeds) != shape[0]:
        raise ValueError(f"need one seed per item: {len(seeds)} seeds for batch {shape[0]}")
    out = torch.empty(shape, dtype=dtype)
    for b, seed in enumerate(seeds):
        g = torch.Generator().manual_seed(int(seed))
        out[b] = torch.randn(shape[1:], generator=g)
    return out.to(device)


@torch.no_grad()
def iter_sample(net: Net, cond: torch.Tensor, cfg: SamplerConfig,
                noise: torch.Tensor | None = None, prior: torch.Tensor | None = None
                ) -> Iterator[SampleStep]:
    """Integrate from noise at t = 0 (or the prior at cfg.prior_t) to data at t = 1, yielding
    after each step.

    cond (B, C, T) normalised LR latent; noise defaults to seeds cfg.seed + b; prior (B, C, T)
    a normalised latent estimate of the clean audio, required when cfg.prior_t > 0.
    """
    if cond.ndim != 3:
        raise ValueError(f"cond must be (B, C, T), got {tuple(cond.shape)}")
    z = noise if noise is not None else initial_noise(
        tuple(cond.shape), [cfg.seed + b for b in range(cond.shape[0])], cond.device, cond.dtype)
    if cfg.prior_t > 0:
        if prior is None or prior.shape != cond.shape:
            raise ValueError(f"prior_t = {cfg.prior_t} needs a prior of shape {tuple(cond.shape)}")
        z = interpolate(prior, z, torch.full((z.shape[0],), cfg.prior_t, device=z.device))
    step_fn = STEP_FNS[cfg.solver]
    for i, (t0, t1) in enumerate(pairwise(cfg.timesteps())):
        z = step_fn(net, z, t0, t1, cond, cfg)
        yield SampleStep(index=i, total=cfg.steps, t=t1, z=z)


def sample(net: Net, cond: torch.Tensor, cfg: SamplerConfig,
           noise: torch.Tensor | None = None, prior: torch.Tensor | None = None) -> torch.Tensor:
    """Blocking sampler: drain iter_sample and return the final latent (B, C, T)."""
    z = noise
    for step in iter_sample(net, cond, cfg, noise, prior):
        z = step.z
    assert z is not None
    return z
