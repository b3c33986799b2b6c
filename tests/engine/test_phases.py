"""PhaseTimer: per-phase milliseconds of the steps since the last read (the CPU clock)."""

from __future__ import annotations

import time

import pytest
import torch

from engine.training.phases import PhaseTimer


def test_phases_add_up_within_a_step_and_average_over_steps(monkeypatch):
    clock = iter([0.0, 0.010, 0.030, 0.035, 0.045, 0.050,  # step 1: a, b, a, c (s)
                  1.0, 1.002, 1.006, 1.007, 1.009, 1.010])  # step 2
    monkeypatch.setattr(time, "perf_counter", lambda: next(clock))
    timer = PhaseTimer(torch.device("cpu"))
    for _ in range(2):
        timer.start()
        for phase in ("a", "b", "a", "c", "d"):
            timer.mark(phase)
    got = timer.means()
    assert got == pytest.approx({"perf/ms_a": (15 + 3) / 2, "perf/ms_b": (20 + 4) / 2,
                                 "perf/ms_c": (10 + 2) / 2, "perf/ms_d": (5 + 1) / 2})
    assert timer.means() == {}  # read once

