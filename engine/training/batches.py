"""Deterministic batch stream: the batch of step k depends only on (seed, k, rank).

So a resumed run sees exactly the data an uninterrupted run would have seen, whatever the
number of DataLoader workers: worker w makes the batches of steps start+w, start+w+W, ... and
the DataLoader hands them out in order.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from engine.cores import usable_cores
from engine.training.data import CropDataset
from engine.training.degrade import MODE_DONE


class StepBatches(IterableDataset):
    """Yields, per optimiser step, a list of grad_accum micro-batches {"hr","lr": (B,1,S)}
    (+ "filter" (B, FILTER_WIDTH) and "holes" (B, K, 8) when the crops defer their filters to
    the device; then "lr" holds only the K rows the CPU degraded, (K,1,S), and "lr_rows" (K,)
    their indices: every other row's LR starts as its HR on the device
    (`device_filter.with_cpu_rows`), so half the bytes cross from the workers to the GPU)."""

    def __init__(self, crops: CropDataset, batch: int, grad_accum: int, rank: int,
                 world_size: int, seed: int, start_step: int = 0):
        super().__init__()
        self.crops, self.batch, self.grad_accum = crops, batch, grad_accum
        self.rank, self.world_size, self.seed, self.start_step = rank, world_size, seed, start_step

    def make(self, step: int) -> list[dict[str, torch.Tensor]]:
        """The micro-batches of one step for this rank."""
        micro = []
        for m in range(self.grad_accum):
            rng = np.random.default_rng([self.seed, step, m, self.rank, self.world_size])
            samples = [self.crops.sample(rng) for _ in range(self.batch)]
            mb = {"hr": torch.stack([s["hr"] for s in samples]),
                  "cutoff_hz": torch.tensor([s["cutoff_hz"] for s in samples])}
            if "filter" in samples[0]:  # (B, FILTER_WIDTH), (B, K, 8): for the training device
                mb["filter"] = torch.stack([s["filter"] for s in samples])
                mb["holes"] = torch.stack([s["holes"] for s in samples])
                rows = [i for i, s in enumerate(samples) if int(s["filter"][0]) == MODE_DONE]
                mb["lr"] = (torch.stack([samples[i]["lr"] for i in rows]) if rows
                            else mb["hr"][:0].clone())  # (K, 1, S)
                mb["lr_rows"] = torch.tensor(rows, dtype=torch.long)  # (K,)
            else:
                mb["lr"] = torch.stack([s["lr"] for s in samples])  # (B, 1, S)
            micro.append(mb)
        return micro

    def __iter__(self) -> Iterator[list[dict[str, torch.Tensor]]]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        step = self.start_step + worker
        while True:
            yield self.make(step)
            step += workers


def _single_threaded(_worker_id: int) -> None:
    # Each worker is one core's worth of work; intra-op threads in every worker would
    # oversubscribe the CPU (measured: 6 steps/s of batch 64 on 16 cores without this).
    torch.set_num_threads(1)


MAX_AUTO_WORKERS = 16  # the most `auto_workers` picks (the v7 runs fed an H200 with 15)


def auto_workers(processes: int, cuda: bool, cores: int | None = None) -> int:
    """DataLoader workers per process when not told: this machine's usable cores shared among
    its `processes`, one core each left for the process itself (it launches the GPU's work),
    at most MAX_AUTO_WORKERS. On the CPU the training itself needs the cores: at most 2."""
    cores = usable_cores() if cores is None else cores
    share = cores // max(1, processes) - 1
    return max(1 if cores > processes else 0, min(share, MAX_AUTO_WORKERS if cuda else 2))


def make_loader(batches: StepBatches, num_workers: int, device: torch.device) -> DataLoader:
    """A DataLoader over whole steps (batch_size=None), pinned for CUDA."""
    return DataLoader(batches, batch_size=None, num_workers=num_workers,
                      pin_memory=device.type == "cuda", worker_init_fn=_single_threaded,
                      persistent_workers=False, prefetch_factor=4 if num_workers else None)
