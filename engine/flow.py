"""Flow-matching objective with x-prediction: t sampling, interpolation, target and loss.

Convention: z_t = t*x + (1-t)*eps, t = 1 is clean data, t = 0 pure noise; the network predicts x.
Dimensions: B batch, C channels, T frames.

References:
  JiT, "Back to Basics: Let Denoising Generative Models Denoise" (Li & He 2025) — x-prediction
    trained with the velocity loss, v = (x - z_t) / max(1 - t, 0.05).
  "Improving the Training of Rectified Flows" (Lee et al. 2024, arXiv 2405.20320) — U-shaped t,
    p(t) = a / (2 (e^a - 1)) * (e^{a t} + e^{a (1 - t)}), lowest at t = 0.5.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from engine.config import FlowConfig

Net = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def sample_t(cfg: FlowConfig, n: int, generator: torch.Generator | None = None,
             device: torch.device | str = "cpu") -> torch.Tensor:
    """Draw n training times t in [0, 1] from the configured density."""
    if cfg.t_sampling == "uniform":
        return torch.rand(n, generator=generator, device=device)
    if cfg.t_sampling == "logit_normal":
        g = torch.randn(n, generator=generator, device=device)
        return torch.sigmoid(cfg.logit_normal_mean + cfg.logit_normal_std * g)
    # U-shaped: inverse CDF of the one-sided density a e^{a x}/(e^a - 1) on [0, 1], mirrored
    # with probability 1/2 — the mixture is the symmetric density above.
    a = cfg.ushaped_a
    u = torch.rand(n, generator=generator, device=device)
    x = torch.log1p(u * math.expm1(a)) / a
    flip = torch.rand(n, generator=generator, device=device) < 0.5
    return torch.where(flip, 1.0 - x, x)


def ushaped_density(t: torch.Tensor, a: float = 4.0) -> torch.Tensor:
    """The U-shaped density p(t) (for tests and plots)."""
    return a / (2 * math.expm1(a)) * (torch.exp(a * t) + torch.exp(a * (1 - t)))


def interpolate(x: torch.Tensor, eps: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """z_t = t*x + (1-t)*eps with t (B,) broadcast over (B, C, T)."""
    tb = t.view(-1, *([1] * (x.ndim - 1)))
    return tb * x + (1 - tb) * eps


def velocity(x: torch.Tensor, z: torch.Tensor, t: torch.Tensor, clamp: float) -> torch.Tensor:
    """v = (x - z_t) / max(1 - t, clamp): the flow's velocity implied by a clean estimate x."""
    tb = t.view(-1, *([1] * (x.ndim - 1)))
    return (x - z) / (1 - tb).clamp_min(clamp)


def bridge(x: torch.Tensor, eps: torch.Tensor, prior: torch.Tensor, u: torch.Tensor,
           t0: float) -> tuple[torch.Tensor, torch.Tensor]:
    """States on the warm start's path: (z, t) at t = t0 + (1 - t0) u for u (B,) in [0, 1).

    The sampler's warm start begins at z0 = t0 * prior + (1 - t0) * eps and, with a perfect
    x-prediction, its Euler steps (v = (x - z) / (1 - t)) move z on the straight line to x:
    z = (1 - u) z0 + u x. x, eps, prior (B, C, T) -> z (B, C, T), t (B,).
    """
    ub = u.view(-1, *([1] * (x.ndim - 1)))
    z0 = t0 * prior + (1 - t0) * eps
    return (1 - ub) * z0 + ub * x, t0 + (1 - t0) * u


def drop_condition(cond: torch.Tensor, p: float, generator: torch.Generator | None = None
                   ) -> torch.Tensor:
    """Classifier-free guidance training: replace the condition by zeros with probability p."""
    if p <= 0:
        return cond
    keep = torch.rand(cond.shape[0], generator=generator, device=cond.device) >= p
    return cond * keep.view(-1, *([1] * (cond.ndim - 1))).to(cond.dtype)


def metric_floats(metrics: dict[str, torch.Tensor]) -> dict[str, float]:
    """0-d metric tensors -> floats with one device sync; quarters that drew no t (and a bridge
    no item drew) are dropped."""
    values = torch.stack([v.detach().float() for v in metrics.values()]).tolist()
    return {k: v for k, v in zip(metrics, values, strict=True)
            if math.isfinite(v) or not k.startswith(("loss/flow_t", "loss/flow_bridge"))}


class FlowObjective:
    """Wraps any net (z_t, t, cond) -> x_hat and computes the training loss."""

    def __init__(self, cfg: FlowConfig):
        self.cfg = cfg

    def loss(self, net: Net, x: torch.Tensor, cond: torch.Tensor,
             generator: torch.Generator | None = None, weight: torch.Tensor | None = None,
             prior: torch.Tensor | None = None
             ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """x, cond (B, C, T) normalised latents -> (loss, metrics incl. loss per quarter of t).

        `weight` (B, C, T), optional: each element's share of its item's loss (0 leaves it out,
        e.g. a target bin a lossy encoder zeroed); an item's loss is its weighted mean.
        `prior` (B, C, T): the normalised latent of each item's DSP estimate, needed when
        `bridge_prob` > 0 (those items then start from it, `bridge`).

        Metrics are detached 0-d tensors (a quarter of [0, 1] that drew no t is NaN), so a
        training step never waits for the GPU here; `metric_floats` converts them at once.
        """
        b = x.shape[0]
        t = sample_t(self.cfg, b, generator, x.device)  # (B,)
        eps = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        z = interpolate(x, eps, t)  # (B, C, T)
        bridged = None
        if self.cfg.bridge_prob > 0:
            if prior is None or prior.shape != x.shape:
                raise ValueError(f"bridge_prob > 0 needs a prior of shape {tuple(x.shape)}")
            bridged = torch.rand(b, generator=generator, device=x.device) < self.cfg.bridge_prob
            u = torch.rand(b, generator=generator, device=x.device)  # (B,) along the bridge
            zb, tb = bridge(x, eps, prior, u, self.cfg.bridge_t)
            z = torch.where(bridged.view(-1, 1, 1), zb, z)
            t = torch.where(bridged, tb, t)
        cond = drop_condition(cond, self.cfg.cond_drop_prob, generator)
        x_hat = net(z, t, cond)  # (B, C, T)
        if self.cfg.loss == "v":
            err = velocity(x_hat.float(), z.float(), t, self.cfg.v_clamp) - velocity(
                x.float(), z.float(), t, self.cfg.v_clamp)
        else:
            err = x_hat.float() - x.float()
        if weight is None:
            per_item = err.pow(2).flatten(1).mean(1)  # (B,)
        else:
            w = weight.float().flatten(1)  # (B, C*T)
            per_item = (err.pow(2).flatten(1) * w).sum(1) / w.sum(1).clamp_min(1.0)  # (B,)
        loss = per_item.mean()
        quarter = (t * 4).long().clamp(max=3)  # (B,)
        onehot = torch.nn.functional.one_hot(quarter, 4).float()  # (B, 4); bincount would sync
        by_quarter = (per_item.detach() @ onehot) / onehot.sum(0)  # (4,): NaN where empty
        metrics = {"loss/flow": loss.detach()}
        metrics.update({f"loss/flow_t{q}": by_quarter[q] for q in range(4)})
        if bridged is not None:  # NaN when no item drew the bridge
            share = bridged.float()
            metrics["loss/flow_bridge"] = (per_item.detach() * share).sum() / share.sum()
        return loss, metrics
