"""Where a training step's time goes, without waiting for the device inside the step.

On a GPU each mark records a CUDA event, read only when the log drains (the queue has long
passed them by then); on the CPU, where every op runs before the next line, it reads the clock.
A phase is the time from the previous mark to its own; a phase met several times in one step
(one per micro-batch) adds up. `means()` gives each phase's mean milliseconds a step since the
last call, as `perf/ms_<phase>` metrics.
"""

from __future__ import annotations

import time
from collections import defaultdict
from itertools import pairwise
from typing import Any

import torch

Mark = Any  # a recorded torch.cuda.Event on a GPU, perf_counter() seconds on the CPU


class PhaseTimer:
    """Marks between a step's phases: `start()`, `mark(name)`..., then `means()` at a log."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"
        self._steps: list[list[tuple[str, Mark]]] = []  # per step: (phase, its end)

    def _now(self) -> Mark:
        if not self.cuda:
            return time.perf_counter()
        event = torch.cuda.Event(enable_timing=True)
        event.record()
        return event

    def start(self) -> None:
        """A step begins."""
        self._steps.append([("", self._now())])

    def mark(self, phase: str) -> None:
        """`phase` ends here (it began at the previous mark)."""
        self._steps[-1].append((phase, self._now()))

    def means(self) -> dict[str, float]:
        """{"perf/ms_<phase>": mean ms a step} over the steps since the last call."""
        if not self._steps:
            return {}
        if self.cuda:
            self._steps[-1][-1][1].synchronize()
        totals: dict[str, float] = defaultdict(float)
        for marks in self._steps:
            for (_, before), (phase, after) in pairwise(marks):
                totals[phase] += self._ms(before, after)
        n = len(self._steps)
        self._steps = []
        return {f"perf/ms_{phase}": total / n for phase, total in totals.items()}

    def _ms(self, before: Mark, after: Mark) -> float:
        return before.elapsed_time(after) if self.cuda else 1000.0 * (after - before)
