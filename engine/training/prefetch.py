"""Step batches copied to the GPU one step ahead, on a side stream.

On the training stream, the host-to-device copy of a step's audio (v2, 32 crops of 6 s: 34 MB
of HR plus the rows the CPU degraded) sits between two steps' kernels and the GPU computes
nothing meanwhile. `DevicePrefetcher` issues the next step's copies on a stream of their own as
soon as the current step is handed out, so they run under its compute; the training stream
waits for them only when it reaches that batch.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import torch

Step = list[dict[str, torch.Tensor]]  # a step's micro-batches (`batches.StepBatches`)

DEVICE_KEYS = ("hr", "lr", "lr_rows")  # what the step reads on the device; the rest (filter
# rows, holes, cutoffs) is read on the host


class DevicePrefetcher:
    """Iterates `steps` with each micro-batch's DEVICE_KEYS already on `device` (CUDA only;
    elsewhere the steps pass through as they come)."""

    def __init__(self, steps: Iterable[Step], device: torch.device,
                 keys: tuple[str, ...] = DEVICE_KEYS):
        self.steps, self.device, self.keys = steps, device, keys

    def __iter__(self) -> Iterator[Step]:
        if self.device.type != "cuda":
            yield from self.steps
            return
        side = torch.cuda.Stream(self.device)
        it = iter(self.steps)
        ahead = self._copy(next(it, None), side)
        while ahead is not None:
            step, moved = ahead
            main = torch.cuda.current_stream(self.device)
            main.wait_stream(side)  # the copies are done before the step's kernels read them
            for t in moved:  # allocated on `side`, used on `main`: not reused before it is done
                t.record_stream(main)
            ahead = self._copy(next(it, None), side)
            yield step

    def _copy(self, step: Step | None, side: torch.cuda.Stream
              ) -> tuple[Step, list[torch.Tensor]] | None:
        if step is None:
            return None
        moved: list[torch.Tensor] = []
        with torch.cuda.stream(side):
            out = []
            for mb in step:
                mb = dict(mb)
                for k in self.keys:
                    if k in mb:
                        mb[k] = mb[k].to(self.device, non_blocking=True)
                        moved.append(mb[k])
                out.append(mb)
        return out, moved
