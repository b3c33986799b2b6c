"""Forward time of the DiT per preset at batch 1/16/64 for 6 s chunks; TFLOP/s achieved.

    python bench/forward.py [--device cpu|cuda] [--presets v2 small ...] [--batches 1 16 64]

Writes bench/results/forward_<device>_<date>.{json,md} (or to --out-dir). FLOPs are counted
by torch.utils.flop_counter (matmuls and attention), not estimated by hand.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from engine.config import HOP_SAMPLES, SAMPLE_RATE
from engine.model import layers
from engine.model.dit import PRESETS, DiT, param_counts

gqa_native = layers._SDPA_GQA
FRAMES_6S = round(6.0 * SAMPLE_RATE / HOP_SAMPLES)  # 517 latent frames


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo (Linux), else platform's guess."""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def bench_one(preset: str, batch: int, device: torch.device, dtype: torch.dtype,
              min_time_s: float) -> dict:
    net = DiT(PRESETS[preset].model).to(device).eval()
    for p in net.parameters():  # non-zero outputs, as a trained model has
        torch.nn.init.normal_(p, std=0.02)
    c = net.cfg.latent_channels
    z = torch.randn(batch, c, FRAMES_6S, device=device)
    t = torch.rand(batch, device=device)
    autocast = torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32)
    with torch.no_grad(), autocast:
        # torch's FLOP counter rejects GQA-shaped SDPA; the expanded-KV path has the same FLOPs.
        layers._SDPA_GQA = False
        with FlopCounterMode(display=False) as counter:
            net(z, t, z)
        layers._SDPA_GQA = gqa_native
        flops = counter.get_total_flops()
        net(z, t, z)  # warm-up
        _sync(device)
        times = []
        start = time.perf_counter()
        while time.perf_counter() - start < min_time_s or len(times) < 3:
            t0 = time.perf_counter()
            net(z, t, z)
            _sync(device)
            times.append(time.perf_counter() - t0)
    best = min(times)
    return {"preset": preset, "batch": batch, "params": param_counts(net)["total"],
            "dtype": str(dtype).removeprefix("torch."), "runs": len(times),
            "time_s_min": best, "time_s_median": sorted(times)[len(times) // 2],
            "gflop": flops / 1e9, "tflops_achieved": flops / best / 1e12,
            "audio_s_per_s": batch * 6.0 / best}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--presets", nargs="+", default=["v2", "v1", "small", "tiny"])
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 16, 64])
    parser.add_argument("--min-time-s", type=float, default=2.0)
    parser.add_argument("--out-dir", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    device = torch.device(args.device)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    card = torch.cuda.get_device_name(device) if device.type == "cuda" else (
        f"{cpu_name()}, {torch.get_num_threads()} threads")
    rows = []
    for preset in args.presets:
        for batch in args.batches:
            row = bench_one(preset, batch, device, dtype, args.min_time_s)
            rows.append(row)
            print(json.dumps(row), flush=True)
    date = dt.date.today().isoformat()
    meta = {"date": date, "device": card, "torch": torch.__version__,
            "frames": FRAMES_6S, "chunk_s": 6.0}
    args.out_dir.mkdir(parents=True, exist_ok=True)
    stem = args.out_dir / f"forward_{device.type}_{date}"
    stem.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    lines = [f"# DiT forward, 6 s chunks ({FRAMES_6S} frames) — {card}, torch {torch.__version__}, "
             f"{date}", "", "| preset | params | batch | dtype | ms (min) | GFLOP | TFLOP/s | "
             "audio s per s |", "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['preset']} | {r['params'] / 1e6:.1f}M | {r['batch']} | {r['dtype']} | "
              f"{1000 * r['time_s_min']:.1f} | {r['gflop']:.1f} | {r['tflops_achieved']:.2f} | "
              f"{r['audio_s_per_s']:.0f} |" for r in rows]
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"wrote {stem}.json/.md")


if __name__ == "__main__":
    main()
