"""torch.distributed glue: one process per GPU (NCCL) or per CPU worker (gloo), via torchrun.

`jatsr train --gpus N` re-launches itself under torchrun; across machines run
`torchrun --nnodes M --nproc_per_node N --rdzv_backend c10d --rdzv_endpoint HOST:PORT
 -m engine.training ...` on each (README "Training").
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import logging
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

log = logging.getLogger(__name__)

SCAN_TIMEOUT = datetime.timedelta(hours=2)  # longest wait at a collective (first scan)
COMPILED_BUCKET_MB = 256.0  # DDP bucket size for compiled runs: DistInfo.compile says why


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the job."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def local_world_size(self) -> int:
        """Processes on this machine (torchrun's LOCAL_WORLD_SIZE; all of them when unset)."""
        return int(os.environ.get("LOCAL_WORLD_SIZE", self.world_size))

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @classmethod
    def single(cls, device: torch.device | None = None) -> DistInfo:
        return cls(0, 1, 0, device or torch.device("cpu"))

    @classmethod
    def from_env(cls, device: str = "auto") -> DistInfo:
        """Join the process group torchrun describes in the environment (or run alone)."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank, local = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
        use_cuda = torch.cuda.is_available() and device in ("auto", "cuda")
        dev = torch.device(f"cuda:{local}") if use_cuda else torch.device("cpu")
        if use_cuda:
            torch.cuda.set_device(dev)
        if world > 1 and not dist.is_initialized():
            # long timeout: the other ranks wait while rank 0 scans a new corpus into the cache
            dist.init_process_group("nccl" if use_cuda else "gloo", timeout=SCAN_TIMEOUT,
                                    device_id=dev if use_cuda else None)
        return cls(rank, world, local, dev)

    def wrap(self, net: nn.Module, bucket_mb: float | None = None) -> nn.Module:
        """DDP around net (net itself in a single process); `bucket_mb`: DDP's bucket size
        (None: its 25 MB default)."""
        if not self.active:
            return net
        ids = [self.device.index] if self.device.type == "cuda" else None
        extra = {} if bucket_mb is None else {"bucket_cap_mb": bucket_mb}
        # gradients live in the all-reduce buckets: one copy of them less per step
        return DistributedDataParallel(net, device_ids=ids, gradient_as_bucket_view=True, **extra)

    def compile(self, net: nn.Module, mode: str, order: str, bucket_mb: float | None = None
                ) -> nn.Module:
        """torch.compile and (with several processes) DDP around net, in `order`.

        "outer" compiles DDP(net): Dynamo's DDP optimizer splits the graph at the gradient
        buckets so their all-reduces overlap the backward. At DDP's 25 MB buckets that was 34
        compiled pieces a step for the v2 preset and no faster than eager, so compiled runs
        default to COMPILED_BUCKET_MB. "inner" wraps compile(net) in DDP as one graph (the
        split turned off) and all-reduces after the compiled backward: nothing overlaps.
        Measured on 4 x H200, v2 batch 32, steps/s a GPU (bench/ddp_matrix.sh; one GPU 26-32
        compiled, 48.2 CUDA graphs): outer 256 MB 20.7 / 24.5 on 2 / 4 GPUs, with CUDA graphs
        41.3 / 40.2; inner 28.7 / 21.3, with CUDA graphs 38.1 / 36.4.
        """
        bucket_mb = COMPILED_BUCKET_MB if bucket_mb is None else bucket_mb
        if not self.active or order == "outer":
            return torch.compile(self.wrap(net, bucket_mb), mode=mode)
        from torch import _dynamo

        _dynamo.config.optimize_ddp = False  # process-wide: one model trains here
        return self.wrap(torch.compile(net, mode=mode), bucket_mb)

    def no_sync(self, model: nn.Module) -> Any:
        """Skip the gradient all-reduce on accumulation micro-batches."""
        return model.no_sync() if isinstance(model, DistributedDataParallel) else None

    def all_reduce_mean(self, t: torch.Tensor) -> None:
        """In place: t becomes the mean of every rank's t (as DDP averages gradients)."""
        if self.active:
            dist.all_reduce(t)
            t.div_(self.world_size)

    def barrier(self) -> None:
        if self.active:
            dist.barrier()

    def from_main(self, values: Sequence[float]) -> list[float]:
        """Rank 0's values on every rank (decisions the ranks must share: stop, step count)."""
        if not self.active:
            return list(values)
        t = torch.tensor(list(values), dtype=torch.float64, device=self.device)
        dist.broadcast(t, src=0)
        return t.tolist()

    def ranks_identical(self, net: nn.Module) -> bool:
        """Do all ranks hold bit-identical weights? (A checksum all-gathered from each.)"""
        digest = hashlib.sha256()
        for t in net.state_dict().values():
            digest.update(t.detach().float().cpu().numpy().tobytes())
        mine = torch.tensor(list(digest.digest()[:8]), dtype=torch.int64, device=self.device)
        if not self.active:
            return True
        gathered = [torch.zeros_like(mine) for _ in range(self.world_size)]
        dist.all_gather(gathered, mine)
        return all(torch.equal(g, gathered[0]) for g in gathered)

    def close(self) -> None:
        if self.active and dist.is_initialized():
            # every rank finishes its last sends first: a rank that tore its connections down
            # while a peer's gloo thread was still writing made that peer abort at exit
            # (seen once in CI: "terminate called without an active exception")
            dist.barrier()
            dist.destroy_process_group()


def launch(nproc: int, args: Sequence[str]) -> int:
    """Run `python -m engine.training ARGS` under torchrun with nproc processes on this host."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           f"--nproc_per_node={nproc}", "-m", "engine.training", *args]
    log.info("launching: %s", " ".join(cmd))
    with contextlib.suppress(KeyboardInterrupt):
        return subprocess.call(cmd)
    return 130
