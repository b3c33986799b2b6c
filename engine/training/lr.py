"""Learning-rate schedule: a pure function of the step (so resuming needs no scheduler state)."""

from __future__ import annotations

import math


def lr_at(step: int, base_lr: float, warmup_steps: int, total_steps: int,
          final_fraction: float = 0.1) -> float:
    """Linear warm-up to base_lr, then cosine decay to final_fraction * base_lr at total_steps."""
    if warmup_steps > 0 and step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    cosine = 0.5 * (1 + math.cos(math.pi * progress))
    return base_lr * (final_fraction + (1 - final_fraction) * cosine)
