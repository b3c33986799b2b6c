"""Kernel timeline of a profiled training step, and where each all-reduce waited.

    python bench/timeline.py bench/results/traces/TAG.timeline.json.gz   # the report

`bench/train_step.py --timeline FILE` keeps, from torch.profiler's Chrome trace of rank 0's
traced steps, every GPU kernel (name, stream, start, duration, grid, block, shared memory) and
the CPU-side launches (`cudaLaunchKernel*`, `cudaGraphLaunch`, `cudaStreamWaitEvent`, ...) with
the correlation id that ties a kernel to its launch: a few MB gzipped, small enough to come back
from the GPU machine. The report answers what the summary of `--trace` cannot: for each NCCL
kernel, when the host launched it, when the GPU started it, and what ran on the other streams
in between — whether an all-reduce waits for its bucket, for SMs, or for the peer.
"""

from __future__ import annotations

import argparse
import gzip
import json
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

KEEP_RUNTIME = ("Launch", "StreamWaitEvent", "EventRecord", "GraphLaunch", "Synchronize")


def write_timeline(prof: Any, path: Path) -> int:
    """Rank 0's profiled steps as compact gzipped JSON: kernels and their launches. Returns the
    number of kernels kept."""
    with tempfile.TemporaryDirectory() as tmp:
        trace_path = Path(tmp) / "trace.json"
        prof.export_chrome_trace(str(trace_path))
        events = json.loads(trace_path.read_text()).get("traceEvents", [])
    kernels, launches = [], []
    for e in events:
        if e.get("ph") != "X":
            continue
        args, cat = e.get("args", {}), e.get("cat", "")
        if cat in ("kernel", "gpu_memcpy", "gpu_memset"):
            kernels.append({"name": e["name"][:120], "cat": cat, "ts": e["ts"], "dur": e["dur"],
                            "stream": args.get("stream"), "corr": args.get("correlation"),
                            "grid": args.get("grid"), "block": args.get("block"),
                            "smem": args.get("shared memory"),
                            "regs": args.get("registers per thread")})
        elif cat in ("cuda_runtime", "cuda_driver") and any(k in e["name"] for k in KEEP_RUNTIME):
            launches.append({"name": e["name"], "ts": e["ts"], "dur": e["dur"],
                             "corr": args.get("correlation")})
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt") as f:
        json.dump({"kernels": kernels, "launches": launches}, f)
    return len(kernels)


def _busy_others(kernels: list[dict], stream: int, t0: float, t1: float) -> list[dict]:
    """Kernels on other streams that overlap [t0, t1)."""
    return [k for k in kernels
            if k["stream"] != stream and k["ts"] < t1 and k["ts"] + k["dur"] > t0]


def _slowdown(compute: list[dict], nccl: list[dict]) -> list[str]:
    """How much longer the same kernel (name and grid) runs while an all-reduce runs beside it:
    median duration with and without, for kernels seen >= 3 times each way."""
    spans = [(k["ts"], k["ts"] + k["dur"]) for k in nccl if k["dur"] > 50]  # the bucket ones
    runs: dict[tuple, tuple[list[float], list[float]]] = {}
    for k in compute:
        beside = any(a < k["ts"] + k["dur"] and b > k["ts"] for a, b in spans)
        runs.setdefault((k["name"][:50], tuple(k["grid"] or ())), ([], []))[beside].append(k["dur"])
    rows = []
    for (name, grid), (alone, beside) in runs.items():
        if len(alone) >= 3 and len(beside) >= 3:
            a, b = float(np.median(alone)), float(np.median(beside))
            rows.append(((b - a) * len(beside), name, grid, a, b, sum(beside)))
    extra, overlapped = sum(r[0] for r in rows), sum(r[5] for r in rows)
    lines = [f"compute beside the all-reduce: {overlapped / 1e3:.2f} ms of kernels, "
             f"{extra / 1e3:.2f} ms longer than the same kernels alone (all traced steps); "
             "the largest:"]
    for cost, name, grid, a, b, _ in sorted(rows, reverse=True)[:6]:
        lines.append(f"  {name:50s} grid {grid}: {a:.1f} -> {b:.1f} us (x{b / a:.2f}), "
                     f"+{cost / 1e3:.3f} ms")
    return lines


def report(path: Path) -> str:
    data = json.load(gzip.open(path, "rt"))
    kernels = sorted(data["kernels"], key=lambda k: k["ts"])
    launch_by_corr = {x["corr"]: x for x in data["launches"] if x["corr"] is not None}
    nccl = [k for k in kernels if "nccl" in k["name"].lower()]
    compute = [k for k in kernels if "nccl" not in k["name"].lower()]
    lines = [f"{path.name}: {len(kernels)} kernels, {len(nccl)} NCCL, streams "
             + ", ".join(f"{s}: {n}" for s, n in Counter(k["stream"] for k in kernels).items())]
    if not kernels:
        return "\n".join(lines)
    t_origin = kernels[0]["ts"]
    lines.append("NCCL kernels (ms from the first kernel): host launch -> GPU start -> end; "
                 "what the other streams ran meanwhile")
    for k in nccl:
        launch = launch_by_corr.get(k["corr"])
        t_launch = launch["ts"] if launch else float("nan")
        start, end = k["ts"], k["ts"] + k["dur"]
        waiting = _busy_others(compute, k["stream"], t_launch, start) if launch else []
        beside = _busy_others(compute, k["stream"], start, end)
        beside_us = sum(min(end, c["ts"] + c["dur"]) - max(start, c["ts"]) for c in beside)
        grids = Counter(tuple(c["grid"] or ()) for c in beside).most_common(2)
        lines.append(
            f"  {(t_launch - t_origin) / 1e3:8.3f} -> {(start - t_origin) / 1e3:8.3f} -> "
            f"{(end - t_origin) / 1e3:8.3f}  ({k['dur'] / 1e3:.3f} ms, grid {k['grid']}, "
            f"block {k['block']}): {len(waiting)} kernels ran between launch and start, "
            f"{len(beside)} ({beside_us / 1e3:.3f} ms) beside it; their grids {grids}")
    lines += _slowdown(compute, nccl)
    big = [k for k in compute if k["grid"] and int(np.prod(k["grid"])) >= 100]
    by_name: dict[str, list[float]] = {}
    for k in big:
        by_name.setdefault(k["name"][:60], []).append(int(np.prod(k["grid"])))
    lines.append("compute kernels with >= 100 blocks: name, count, blocks (min / max)")
    for name, blocks in sorted(by_name.items(), key=lambda kv: -len(kv[1]))[:12]:
        lines.append(f"  {name:60s} {len(blocks):5d}  {min(blocks)} / {max(blocks)}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("timeline", type=Path, nargs="+")
    for path in parser.parse_args().timeline:
        print(report(path))


if __name__ == "__main__":
    main()
