"""A run's time budget: when to stop, and how many steps fit before then (`--max-minutes`).

With `fit_schedule` the cosine schedule's end moves to the step the budget is expected to end
at: the step rate is measured on training time only (validation passes are timed apart and
planned for), from a mark taken once compilation and the DataLoader's start-up are behind.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from engine.training.lr import steps_that_fit

WARM_STEPS = 20  # steps after the start (or a resume) before the rate is measured
RATE_STEPS = 50  # steps measured before the first plan


class TimeBudget:
    """Wall-time budget of one training run (started at `start_step`)."""

    def __init__(self, minutes: float, start_step: int, max_steps: int, val_every: int,
                 fit_schedule: bool, clock: Callable[[], float] = time.perf_counter):
        self.clock = clock
        self.start = clock()
        self.deadline = self.start + 60 * minutes
        self.start_step, self.max_steps, self.val_every = start_step, max_steps, val_every
        self.fit_schedule = fit_schedule
        self.val_seconds: list[float] = []
        self._mark: tuple[int, float] | None = None  # (step, training seconds) of the mark

    def _training_seconds(self, now: float) -> float:
        return now - self.start - sum(self.val_seconds)

    def validated(self, seconds: float) -> None:
        """A validation pass took this long (not training time; planned for separately)."""
        self.val_seconds.append(seconds)

    def expired(self, now: float | None = None) -> bool:
        return (self.clock() if now is None else now) >= self.deadline

    def rate(self, step: int, now: float) -> float | None:
        """Training steps per second since the mark (None until enough steps were measured)."""
        if self._mark is None:
            if step - self.start_step >= WARM_STEPS:
                self._mark = (step, self._training_seconds(now))
            return None
        mark_step, mark_s = self._mark
        elapsed = self._training_seconds(now) - mark_s
        if step - mark_step < RATE_STEPS or elapsed <= 0:
            return None
        return (step - mark_step) / elapsed

    def plan(self, step: int, now: float | None = None) -> int | None:
        """The step count the schedule should end at, or None (no plan yet / not fitting)."""
        if not self.fit_schedule:
            return None
        now = self.clock() if now is None else now
        rate = self.rate(step, now)
        if rate is None:
            return None
        val_s = sum(self.val_seconds) / len(self.val_seconds) if self.val_seconds else 0.0
        fit = steps_that_fit(rate, self.deadline - now, self.val_every, val_s)
        return min(self.max_steps, step + fit)
