"""Attention kernels at the DiT's shapes: forward+backward time of each SDPA backend.

    python bench/attention.py [--batch 32] [--tokens 130] [--heads 16] [--kv-heads 4]

Times are the kernels' own (the profiler's sum: what a CUDA-graphed step pays, K/V repeats
included) and the eager wall time. The `v2` preset attends over 130 tokens (6 s = 517 latent
frames in patches of 4) with 16 query and 4 KV heads of 64 channels, batch 32: short sequences,
where a kernel's fixed costs and its tile padding (130 = 128 + 2) weigh more than its FLOPs.
Each backend runs with `enable_gqa` (K/V read per group) and with K/V repeated to every head
first (what a backend without GQA support needs), in bf16. Rows go to
bench/results/attention_<device>_<date>.jsonl.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

BACKENDS = {"flash": SDPBackend.FLASH_ATTENTION, "cudnn": SDPBackend.CUDNN_ATTENTION,
            "efficient": SDPBackend.EFFICIENT_ATTENTION, "math": SDPBackend.MATH}


def time_ms(fn, iters: int = 20, warmup: int = 5) -> tuple[float, float]:
    """(GPU kernel time, wall time) of one fn() in ms: the kernels' own time summed by the
    profiler (what the step pays under CUDA graphs), and the eager wall time with its launches."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(iters):
        fn()
    end.record()
    torch.cuda.synchronize()
    wall_ms = start.elapsed_time(end) / iters
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        for _ in range(iters):
            fn()
        torch.cuda.synchronize()
    kernel_us = sum(e.self_device_time_total for e in prof.key_averages())
    return kernel_us / 1000 / iters, wall_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--tokens", type=int, default=130)
    parser.add_argument("--heads", type=int, default=16)
    parser.add_argument("--kv-heads", type=int, default=4)
    parser.add_argument("--head-dim", type=int, default=64)
    parser.add_argument("--tag", default="")
    parser.add_argument("--out-dir", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    dev = torch.device("cuda")
    b, n, h, hkv, dh = args.batch, args.tokens, args.heads, args.kv_heads, args.head_dim
    q = torch.randn(b, h, n, dh, device=dev, dtype=torch.bfloat16, requires_grad=True)
    k = torch.randn(b, hkv, n, dh, device=dev, dtype=torch.bfloat16, requires_grad=True)
    v = torch.randn(b, hkv, n, dh, device=dev, dtype=torch.bfloat16, requires_grad=True)
    grad = torch.randn(b, h, n, dh, device=dev, dtype=torch.bfloat16)
    flops = 4 * b * h * n * n * dh * 3  # forward (QK^T, PV) + backward (twice that)
    rows = []
    for name, backend in BACKENDS.items():
        for gqa in (True, False):
            def step(backend: SDPBackend = backend, gqa: bool = gqa) -> None:
                kk, vv = (k, v) if gqa else (k.repeat_interleave(h // hkv, 1),
                                             v.repeat_interleave(h // hkv, 1))
                with sdpa_kernel(backend):
                    out = F.scaled_dot_product_attention(q, kk, vv, enable_gqa=gqa)
                out.backward(grad)
            try:
                ms, wall_ms = time_ms(step)
            except RuntimeError as exc:  # the backend refuses these inputs
                print(f"{name:9s} gqa={gqa!s:5s} unsupported: {str(exc).splitlines()[0][:90]}")
                continue
            rows.append({"backend": name, "enable_gqa": gqa, "kernel_ms_fwd_bwd": ms,
                         "wall_ms_fwd_bwd": wall_ms, "tflops": flops / ms / 1e9})
            print(f"{name:9s} gqa={gqa!s:5s} kernels {ms:7.3f} ms ({flops / ms / 1e9:6.1f} "
                  f"TFLOP/s), eager wall {wall_ms:7.3f} ms", flush=True)
    meta = {"batch": b, "tokens": n, "heads": h, "kv_heads": hkv, "head_dim": dh,
            "card": torch.cuda.get_device_name(dev), "torch": torch.__version__,
            "date": dt.date.today().isoformat(), "tag": args.tag}
    args.out_dir.mkdir(parents=True, exist_ok=True)
    with open(args.out_dir / f"attention_cuda_{meta['date']}.jsonl", "a") as f:
        for row in rows:
            f.write(json.dumps({**meta, **row}) + "\n")


if __name__ == "__main__":
    main()
