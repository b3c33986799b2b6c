"""The card's measured bf16 matmul throughput: the denominator of MFU in train_step's rows.

Times `n x n @ n x n` on random bf16 matrices (n = 8192 by default) after a warm-up, takes the
best of several timed rounds, and appends {card, torch, date, n, tflops} to
bench/results/matmul_peak_<date>.jsonl.
    python bench/matmul_peak.py [--n 8192] [--iters 50] [--rounds 5]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path

import torch


def measure(n: int, iters: int, rounds: int, device: torch.device) -> float:
    """Best TFLOP/s over `rounds` rounds of `iters` bf16 n x n matmuls."""
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    out = torch.empty(n, n, device=device, dtype=torch.bfloat16)
    for _ in range(10):
        torch.mm(a, b, out=out)
    best = 0.0
    for _ in range(rounds):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(iters):
            torch.mm(a, b, out=out)
        end.record()
        torch.cuda.synchronize()
        seconds = start.elapsed_time(end) / 1e3
        best = max(best, 2 * n**3 * iters / seconds / 1e12)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=8192)
    parser.add_argument("--iters", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out-dir", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("matmul_peak: needs a CUDA GPU")
    dev = torch.device("cuda")
    row = {"card": torch.cuda.get_device_name(dev), "torch": torch.__version__,
           "date": dt.date.today().isoformat(), "n": args.n, "dtype": "bfloat16",
           "tflops": round(measure(args.n, args.iters, args.rounds, dev), 1)}
    print(json.dumps(row))
    args.out_dir.mkdir(parents=True, exist_ok=True)
    with open(args.out_dir / f"matmul_peak_{row['date']}.jsonl", "a") as f:
        f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
