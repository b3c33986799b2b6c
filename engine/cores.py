"""How many CPU cores this process may use (no torch here: the corpus scan imports it)."""

from __future__ import annotations

import os
from pathlib import Path


def cpu_budget(cpu_max: Path = Path("/sys/fs/cgroup/cpu.max")) -> dict[str, float | int | None]:
    """CPU cores this process may use: logical cores, its affinity mask, and the cgroup quota.

    A container can show 64 cores yet grant a fraction of them (cgroup v2 `cpu.max`); data
    loading and launch-bound GPU loops then run slower than the core count promises.
    """
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    quota = None
    try:
        limit, period = cpu_max.read_text().split()[:2]
        quota = None if limit == "max" else int(limit) / int(period)
    except (OSError, ValueError):
        pass
    return {"logical_cores": os.cpu_count(), "affinity_cores": affinity, "cgroup_cores": quota}


def usable_cores(budget: dict[str, float | int | None] | None = None) -> int:
    """Whole cores this process may keep busy: the smallest of `cpu_budget`'s three (>= 1)."""
    budget = cpu_budget() if budget is None else budget
    known = [v for v in budget.values() if v is not None]
    return max(1, int(min(known))) if known else 1
