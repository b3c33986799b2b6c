"""Training-step throughput: steps/s, achieved TFLOP/s and peak memory of one optimiser step.

    python bench/train_step.py --preset v2 --batch 32 [--compile]            # one GPU
    torchrun --nproc_per_node N bench/train_step.py --preset v2 --batch 32   # DDP, per-GPU batch

A step = STFT-codec encode of (batch x 6 s) HR and LR audio + DiT forward/backward (bf16
autocast) + grad clip + AdamW + EMA, the same calls the trainer makes. Audio is synthetic (data
loading is measured separately). FLOPs of the network's forward+backward are counted by
torch.utils.flop_counter. Results go to bench/results/train_step_<device>_<date>.json (rank 0).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from engine.codecs import build_codec
from engine.config import HOP_SAMPLES, SAMPLE_RATE
from engine.flow import FlowObjective
from engine.model import layers
from engine.model.dit import PRESETS, DiT, param_counts
from engine.training.distributed import DistInfo
from engine.training.ema import EMA


def count_flops(net: DiT, obj: FlowObjective, x: torch.Tensor, cond: torch.Tensor) -> int:
    """Forward+backward FLOPs of one loss evaluation (GQA counted through expanded K/V)."""
    native = layers._SDPA_GQA
    layers._SDPA_GQA = False
    try:
        with FlopCounterMode(display=False) as counter, torch.autocast("cuda", torch.bfloat16):
            loss, _ = obj.loss(net, x, cond)
            loss.backward()
    finally:
        layers._SDPA_GQA = native
    net.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--preset", default="v2", choices=sorted(PRESETS))
    parser.add_argument("--batch", type=int, default=32, help="per GPU")
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--tag", default="")
    parser.add_argument("--out-dir", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    info = DistInfo.from_env("cuda")
    dev = info.device
    torch.manual_seed(0)
    run = PRESETS[args.preset]
    net = DiT(run.model).to(dev)
    codec = build_codec("stft").to(dev)
    obj = FlowObjective(run.flow)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-4, betas=(0.9, 0.99), fused=True)
    ema = EMA(net, 0.999)
    model_fn = info.wrap(net)
    if args.compile:
        model_fn = torch.compile(model_fn)
    samples = round(args.seconds * SAMPLE_RATE / HOP_SAMPLES) * HOP_SAMPLES
    hr = 0.1 * torch.randn(args.batch, 1, samples, device=dev)
    lr_wav = hr.clone()
    flops = None
    if info.is_main:
        with torch.no_grad():
            x0, c0 = codec.encode(hr), codec.encode(lr_wav)
        flops = count_flops(net, obj, x0, c0)

    def step() -> None:
        with torch.no_grad():
            x, cond = codec.encode(hr), codec.encode(lr_wav)  # (B, C, T)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss, _ = obj.loss(model_fn, x, cond)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        ema.update(net)

    for _ in range(args.warmup):
        step()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats(dev)
    info.barrier()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    torch.cuda.synchronize()
    info.barrier()
    elapsed = time.perf_counter() - start
    if not info.is_main:
        info.close()
        return
    steps_per_s = args.steps / elapsed
    row = {
        "preset": args.preset, "params": param_counts(net)["total"], "gpus": info.world_size,
        "batch_per_gpu": args.batch, "seconds": args.seconds, "compile": args.compile,
        "steps_per_s": steps_per_s, "samples_per_s": steps_per_s * args.batch * info.world_size,
        "audio_s_per_s": steps_per_s * args.batch * info.world_size * args.seconds,
        "tflop_per_step_per_gpu": flops / 1e12,
        "tflops_achieved_per_gpu": flops * steps_per_s / 1e12,
        "peak_mem_gib": torch.cuda.max_memory_allocated(dev) / 2**30,
        "card": torch.cuda.get_device_name(dev), "torch": torch.__version__,
        "date": dt.date.today().isoformat(), "tag": args.tag,
    }
    print(json.dumps(row), flush=True)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    out = args.out_dir / f"train_step_cuda_{row['date']}.jsonl"
    with open(out, "a") as f:
        f.write(json.dumps(row) + "\n")
    info.close()


if __name__ == "__main__":
    main()
