"""The optimiser update: AdamW with gradient-norm clipping folded into its fused kernel.

`clip_grad_norm_` then `step()` reads and rewrites every gradient once more only to scale it.
The fused AdamW kernel already divides each gradient by an optional `grad_scale` tensor and skips
the update where `found_inf` is set (the protocol `torch.amp.GradScaler` uses), so the clip
coefficient and a non-finite guard go in there: one pass less over 4 bytes per parameter and no
wait for the GPU (measured on an H100, v2 batch 32: the clip's 1.4 ms, norm 0.5 + rescale 0.9,
shrink to the norm's 0.5 ms).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

CLIP_EPS = 1e-6  # as torch.nn.utils.clip_grad_norm_: coef = max_norm / (norm + eps)


def make_adamw(params: Iterable[nn.Parameter], lr: float, betas: tuple[float, float],
               weight_decay: float) -> torch.optim.AdamW:
    """AdamW with the fused kernel (CUDA and CPU), which `clipped_step` relies on."""
    return torch.optim.AdamW(params, lr=lr, betas=betas, weight_decay=weight_decay, fused=True)


def clipped_step(opt: torch.optim.Optimizer, params: list[nn.Parameter], max_norm: float,
                 norm: torch.Tensor | None = None) -> torch.Tensor:
    """Clip the gradients' global L2 norm to `max_norm` and step; returns the pre-clip norm
    (`norm` where the caller has it already).

    The same update as `clip_grad_norm_(params, max_norm)` + `opt.step()`, except that a
    non-finite norm skips the update (weights and optimizer state stay as they were).
    The result stays on the device: read it when convenient.
    """
    if norm is None:
        grads = [p.grad for p in params if p.grad is not None]
        norm = torch.nn.utils.get_total_norm(grads, 2.0, foreach=True)  # 0-d, on the device
    if not opt.defaults.get("fused"):
        torch.nn.utils.clip_grads_with_norm_(params, max_norm, norm, foreach=True)
        if torch.isfinite(norm):  # a host sync: only the unfused fallback pays it
            opt.step()
        return norm
    # the kernel computes grad / grad_scale: divide by 1 / coef, with coef clamped to <= 1
    scale = ((norm.float() + CLIP_EPS) / max_norm).clamp_min(1.0)
    opt.grad_scale = scale  # type: ignore[attr-defined]
    opt.found_inf = (~torch.isfinite(norm)).float()  # type: ignore[attr-defined]
    try:
        opt.step()
    finally:
        del opt.grad_scale, opt.found_inf  # type: ignore[attr-defined]
    return norm
