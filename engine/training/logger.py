"""Metric sinks: JSONL, a plain log file, and optionally TensorBoard (main process only)."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class MetricLogger:
    """Appends {"step", "time", metrics...} lines to metrics.jsonl and log.txt."""

    def __init__(self, out_dir: Path, enabled: bool = True, tensorboard: bool = False):
        self.enabled = enabled
        self.out_dir = out_dir
        self.writer: Any = None
        if enabled and tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                log.warning("TensorBoard is not installed; logging to JSONL only")
            else:
                self.writer = SummaryWriter(str(out_dir / "tb"))

    def log(self, step: int, metrics: dict[str, float]) -> None:
        if not self.enabled:
            return
        record = {"step": step, "time": round(time.time(), 3), **metrics}
        with open(self.out_dir / "metrics.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
        text = " ".join(f"{k}={v:.4g}" for k, v in metrics.items())
        with open(self.out_dir / "log.txt", "a") as f:
            f.write(f"step {step}: {text}\n")
        if self.writer is not None:
            for k, v in metrics.items():
                self.writer.add_scalar(k, v, step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
