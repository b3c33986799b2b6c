"""Training checkpoints: one dict written atomically; `last`, `best` and the last N numbered.

Checkpoints are our own files and are read back with `torch.load(weights_only=True)`, which
refuses anything but tensors and plain containers, so a tampered file cannot run code.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

import torch

from engine.atomic import write_atomically

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
_NUMBERED = re.compile(r"step_(\d+)\.pt$")


def save_checkpoint(state: dict[str, Any], ckpt_dir: Path, step: int, keep: int,
                    best: bool = False) -> Path:
    """Write step_N.pt (kept N at most), then copy it to last.pt (and best.pt); all atomic."""
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    state = {"schema_version": SCHEMA_VERSION, **state}
    numbered = ckpt_dir / f"step_{step:08d}.pt"
    _atomic_save(state, numbered)
    _atomic_link_or_copy(numbered, ckpt_dir / "last.pt")
    if best:
        _atomic_link_or_copy(numbered, ckpt_dir / "best.pt")
    _prune(ckpt_dir, keep)
    return numbered


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint (weights only: no arbitrary objects are unpickled)."""
    state = torch.load(path, map_location=map_location, weights_only=True)
    if state.get("schema_version", 0) > SCHEMA_VERSION:
        raise ValueError(f"{path}: checkpoint from a newer JaT-SR")
    return state


def _atomic_save(state: dict[str, Any], path: Path) -> None:
    write_atomically(path, lambda tmp: torch.save(state, tmp))


def _atomic_link_or_copy(src: Path, dst: Path) -> None:
    tmp = dst.with_name(f".{dst.name}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)  # a hard link costs no space; the numbered file may be pruned later
    except OSError:
        tmp.write_bytes(src.read_bytes())
    os.replace(tmp, dst)


def _prune(ckpt_dir: Path, keep: int) -> None:
    numbered = sorted(p for p in ckpt_dir.iterdir() if _NUMBERED.search(p.name))
    for old in numbered[: max(0, len(numbered) - keep)]:
        old.unlink()
