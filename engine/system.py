"""What the engine runs on: torch build, CUDA devices (for the app's About box and settings)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch


@dataclass(frozen=True)
class Gpu:
    """One CUDA device."""

    index: int
    name: str
    memory_gib: float


@dataclass(frozen=True)
class SystemInfo:
    """torch version, its CUDA build, and the GPUs it sees."""

    torch_version: str
    cuda_build: str
    cuda_available: bool
    gpus: tuple[Gpu, ...]


def system_info() -> SystemInfo:
    """Probe torch and the CUDA devices (may take a second on first CUDA init)."""
    cuda = bool(torch.cuda.is_available())
    gpus = []
    for i in range(torch.cuda.device_count() if cuda else 0):
        props = torch.cuda.get_device_properties(i)
        gpus.append(Gpu(i, str(props.name), props.total_memory / 2**30))
    return SystemInfo(torch.__version__, str(torch.version.cuda), cuda, tuple(gpus))


def device_name(device: torch.device | str) -> str:
    """'cpu' or 'cuda:0 (GPU name)'."""
    device = torch.device(device)
    if device.type != "cuda":
        return str(device)
    index = device.index if device.index is not None else torch.cuda.current_device()
    return f"cuda:{index} ({torch.cuda.get_device_name(index)})"


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
