"""Training-crop throughput on one CPU core: what one DataLoader worker can deliver.

    python bench/data_loading.py --data DIR [--crops 300] [--deferred]

Scans DIR like the trainer (cache in a temporary folder), then times `CropDataset.sample` —
read from the memory-mapped cache, crop, level, degrade — and, separately, each degradation
family on the same crops. One thread (`torch.set_num_threads(1)`), as each worker runs.
`--deferred`: the workers leave IIR / brick-wall filtering to the training device (the
trainer's `degrade_on` on CUDA); the batched device filter is timed here too, on this CPU.
Results go to bench/results/data_loading_cpu_<date>[_deferred].json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from engine.cores import cpu_budget
from engine.training.corpus import AudioCache, scan
from engine.training.data import CropDataset
from engine.training.dataconfig import DataConfig
from engine.training.degrade import FAMILIES
from engine.training.device_filter import apply_filters


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", nargs="+", required=True)
    parser.add_argument("--crops", type=int, default=300)
    parser.add_argument("--deferred", action="store_true")
    parser.add_argument("--out-dir", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as cache_dir:
        cfg = DataConfig(folders=tuple(args.data), cache_dir=cache_dir, val_files=0)
        corpus = scan(cfg)
        crops = CropDataset(corpus.train, cfg, AudioCache(cache_dir), deferred=args.deferred)
        rng = np.random.default_rng(0)
        for _ in range(20):  # open the maps, warm the page cache
            crops.sample(rng)
        start = time.perf_counter()
        samples = [crops.sample(rng) for _ in range(args.crops)]
        per_crop_ms = (time.perf_counter() - start) / args.crops * 1e3
        hrs = [s["hr"][0].numpy() for s in samples]
        device_ms = None
        if args.deferred:  # the device's share, batch of 16, on this CPU (one thread)
            hr = torch.stack([s["hr"] for s in samples[:16]])  # (16, 1, S)
            rows = torch.stack([s["filter"] for s in samples[:16]])
            start = time.perf_counter()
            apply_filters(hr, torch.stack([s["lr"] for s in samples[:16]]), rows,
                          torch.stack([s["holes"] for s in samples[:16]]))
            device_ms = (time.perf_counter() - start) / 16 * 1e3
        family_ms = {}
        for family in FAMILIES:
            start = time.perf_counter()
            for hr in hrs[:60]:
                crops.degrader.apply(hr, family, crops.degrader.draw_cutoff(rng), rng)
            family_ms[family] = (time.perf_counter() - start) / min(60, len(hrs)) * 1e3
    row = {"crops": args.crops, "crop_s": cfg.crop_s, "train_files": len(corpus.train),
           "ms_per_crop": per_crop_ms, "crops_per_s_per_core": 1e3 / per_crop_ms,
           "degrade_ms_by_family": family_ms, "cpu": _cpu_name(), "cores": os.cpu_count(),
           "cpu_budget": cpu_budget(), "deferred": args.deferred,
           "device_filter_ms_per_crop_here": device_ms,
           "torch": torch.__version__, "date": dt.date.today().isoformat()}
    print(json.dumps(row, indent=1))
    args.out_dir.mkdir(parents=True, exist_ok=True)
    name = f"data_loading_cpu_{row['date']}{'_deferred' if args.deferred else ''}.json"
    (args.out_dir / name).write_text(json.dumps(row, indent=1))


if __name__ == "__main__":
    main()
