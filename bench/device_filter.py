"""The training device's degradation filters, piece by piece (CUDA events, median of reps).

    python bench/device_filter.py [--batch 32] [--seconds 6] [--reps 20]

A batch of `--batch` crops with the default family mix (`Degrader(deferred=True)`, as
`CropDataset` sends them) goes through `apply_filters`; beside it, each piece on every row of
the batch (what the filter cost before it sent each path only its own rows): the IIR gains
(compiled and eager), the zero-padded FFT filter, the MP3-like STFT, and the pinned host-to-
device copy of the HR batch; and whether the host waits in `apply_filters` for work queued
before it (it must not: the CPU has to run ahead of the GPU). Results go to
bench/results/device_filter_<device>_<date>.jsonl.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from engine.config import SAMPLE_RATE
from engine.training import device_filter
from engine.training.degrade import MODE_DONE, MODE_MP3, Degrader, device_rows


def timed(fn: Callable[[], object], reps: int, cuda: bool) -> float:
    """Median milliseconds of `fn` over `reps` runs after two warm-up runs."""
    for _ in range(2):
        fn()
    times = []
    for _ in range(reps):
        if cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
        else:
            t0 = time.perf_counter()
            fn()
            times.append(1e3 * (time.perf_counter() - t0))
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--reps", type=int, default=20)
    args = parser.parse_args()
    cuda = torch.cuda.is_available()
    dev = torch.device("cuda" if cuda else "cpu")
    n = int(args.seconds * SAMPLE_RATE)
    rng = np.random.default_rng(0)
    x = (0.1 * rng.standard_normal(n)).astype(np.float32)
    degrader = Degrader()
    drawn = [degrader(x, rng, deferred=True) for _ in range(args.batch)]
    rows = [device_rows(d, n) for d in drawn]
    filters = torch.from_numpy(np.stack([r for r, _ in rows]))  # (B, W) host, as the loader's
    holes = torch.from_numpy(np.stack([h for _, h in rows]))
    host_hr = torch.from_numpy(np.stack([x] * args.batch))[:, None]  # (B, 1, S)
    if cuda:
        filters, holes, host_hr = filters.pin_memory(), holes.pin_memory(), host_hr.pin_memory()
    hr = host_hr.to(dev)
    lr = hr.clone()
    modes = filters[:, 0]
    n_fft = 2 * n
    on_dev = filters.to(dev)
    result: dict[str, object] = {
        "batch": args.batch, "seconds": args.seconds,
        "rows": {"fft": int(torch.isin(modes, torch.tensor(device_filter.FFT_MODES,
                                                           dtype=modes.dtype)).sum()),
                 "mp3": int((modes == MODE_MP3).sum()), "cpu": int((modes == MODE_DONE).sum())},
    }
    ms = {
        "apply_filters": timed(lambda: device_filter.apply_filters(hr, lr, filters, holes),
                               args.reps, cuda),
        "all_rows_gains": timed(lambda: device_filter.filter_gains(on_dev, n_fft), args.reps,
                                cuda),
        "all_rows_gains_eager": timed(
            lambda: device_filter.filter_gains(on_dev, n_fft, compiled=False), args.reps, cuda),
        "all_rows_fft_filter": timed(lambda: torch.fft.irfft(
            torch.fft.rfft(hr[:, 0], n=n_fft) * device_filter.filter_gains(on_dev, n_fft),
            n=n_fft), args.reps, cuda),
        "all_rows_mp3": timed(lambda: device_filter.mp3_like(hr[:, 0], on_dev, holes.to(dev)),
                              args.reps, cuda),
        "h2d_hr_batch": timed(lambda: host_hr.to(dev, non_blocking=True), args.reps, cuda),
    }
    result["ms"] = ms
    if cuda:  # does the host wait for the queue? apply_filters behind ~100 ms of queued matmuls
        a = torch.randn(8192, 8192, device=dev)
        torch.cuda.synchronize()
        busy_start = time.perf_counter()
        for _ in range(int(100 / max(timed(lambda: a @ a, 3, cuda), 1e-3))):
            a @ a
        queued = time.perf_counter()
        device_filter.apply_filters(hr, lr, filters, holes)
        returned = time.perf_counter()
        torch.cuda.synchronize()
        result["host_wait"] = {"apply_filters_host_ms": 1e3 * (returned - queued),
                               "queue_ms": 1e3 * (time.perf_counter() - busy_start)}
    result["gains_compiled"] = device_filter._compiled.get("fn") is not None
    result.update({"device": torch.cuda.get_device_name() if cuda else "cpu",
                   "torch": torch.__version__, "date": dt.date.today().isoformat()})
    print(json.dumps(result))
    out = Path(__file__).parent / "results" / (
        f"device_filter_{'cuda' if cuda else 'cpu'}_{result['date']}.jsonl")
    with out.open("a") as f:
        f.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
