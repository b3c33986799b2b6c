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


def steps_that_fit(rate: float, seconds_left: float, val_every: int, val_seconds: float) -> int:
    """Optimiser steps that fit in seconds_left at `rate` steps/s, with a validation pass of
    val_seconds every val_every steps and one more at the end (the run's final score).

    Solves n = rate * (seconds_left - val_seconds * (n / val_every + 1)) for n; never negative.
    """
    if rate <= 0:
        return 0
    n = rate * (seconds_left - val_seconds) / (1 + rate * val_seconds / val_every)
    return max(0, math.floor(n))
