"""What the engine runs on: torch build, CUDA devices (for the app's About box and settings)."""

from __future__ import annotations

from dataclasses import dataclass

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
