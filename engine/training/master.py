"""bf16 working weights with fp32 master weights, updated by torch's fused AdamW.

The trainer's `precision = "bf16-master"` now runs on `engine.training.flat_master`, which does
the same update in one fused pass over flat buffers; this two-copy version stays as the
baseline `bench/train_step.py --bf16-weights` measures it against.

Under bf16 autocast every matmul casts its fp32 weight to bf16 in the forward and its bf16
weight gradient back to fp32 in the backward, and DDP then all-reduces fp32 gradients. Here a
bf16 copy of the network runs the forward and backward instead: the casts go, DDP buckets and
all-reduces half the bytes, and the fp32 network stays the master that clip, AdamW, the EMA and
checkpoints see. Every step costs two copies instead: the gradients up into the master's,
the updated master down into the copy. Only parameters are cast (the RoPE and time-embedding
tables stay fp32 buffers), so the matmuls see exactly the bf16 weights autocast would make.

Measured (`bench/train_step.py --bf16-weights`, v2, batch 32 a GPU, CUDA graphs, 4 x H200,
2026-11-28): steps/s a GPU 48.0 -> 48.6 on one GPU, 41.3 -> 44.4 on two, 40.3 -> 43.6 on four.

Micro-batches would accumulate in the copy's bf16 gradients here; the trainer's FlatMaster
adds them up in fp32 instead.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class MasterWeights:
    """A bf16 working copy of `master` for forward/backward; `master` keeps fp32 gradients."""

    def __init__(self, master: nn.Module):
        self.master = master
        self.work = copy.deepcopy(master)
        for p in self.work.parameters():
            p.data = p.data.to(torch.bfloat16)
        self.master_params = list(master.parameters())
        self.work_params = list(self.work.parameters())
        for p in self.master_params:  # allocated once; `grads_to_master` overwrites them
            p.grad = torch.zeros_like(p)

    @torch.no_grad()
    def grads_to_master(self) -> None:
        """Copy the working gradients (after any all-reduce) into the master's, then drop them."""
        pairs = list(zip(self.master_params, self.work_params, strict=True))
        used = [(m.grad, w.grad) for m, w in pairs if w.grad is not None]
        if used:
            torch._foreach_copy_([m for m, _ in used], [w for _, w in used])
        for m, w in pairs:
            if w.grad is None:  # unused this step: no stale gradient from an earlier one
                m.grad.zero_()
        self.work.zero_grad(set_to_none=True)

    @torch.no_grad()
    def master_to_work(self) -> None:
        """Round the (updated) master weights into the working copy."""
        torch._foreach_copy_(self.work_params, [p.detach() for p in self.master_params])
