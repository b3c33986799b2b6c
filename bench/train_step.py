"""Training-step throughput: steps/s, achieved TFLOP/s and peak memory of one optimiser step.

    python bench/train_step.py --preset v2 --batch 32 [--compile [--compile-scope loss]
                               [--compile-mode max-autotune-no-cudagraphs]] [--trace FILE]
    torchrun --nproc_per_node N bench/train_step.py --preset v2 --batch 32   # DDP, per-GPU batch

A step = [the LR batch's degradation filters, `--device-filter`] + STFT-codec encode of
(batch x 6 s) HR and LR audio + DiT forward/backward (bf16
autocast) + grad clip + AdamW + EMA, the same calls the trainer makes. Audio is synthetic (data
loading is measured separately). FLOPs of the network's forward+backward are counted by
torch.utils.flop_counter. Each phase (encode, forward+backward, clip, AdamW, EMA) is timed with
CUDA events, which do not stall the queue. `--trace` writes torch.profiler's kernel table
(rank 0's under torchrun), `--timeline` its kernels and launches (`bench/timeline.py`).
Results go to bench/results/train_step_<device>_<date>.jsonl (rank 0).
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import os
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from bench.timeline import write_timeline
from engine.codecs import build_codec
from engine.config import HOP_SAMPLES, SAMPLE_RATE
from engine.cores import cpu_budget
from engine.flow import FlowObjective
from engine.model import layers
from engine.model.dit import PRESETS, DiT, param_counts
from engine.training.degrade import Degrader, device_rows
from engine.training.device_filter import apply_filters
from engine.training.distributed import DistInfo
from engine.training.ema import EMA
from engine.training.flat_master import FlatMaster
from engine.training.master import MasterWeights
from engine.training.update import clipped_step


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


def _union(intervals: list[tuple[float, float]]) -> list[tuple[float, float]]:
    merged: list[tuple[float, float]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _length(intervals: list[tuple[float, float]]) -> float:
    return sum(end - start for start, end in intervals)


def _intersection(a: list[tuple[float, float]], b: list[tuple[float, float]]) -> float:
    total, i, j = 0.0, 0, 0
    while i < len(a) and j < len(b):
        total += max(0.0, min(a[i][1], b[j][1]) - max(a[i][0], b[j][0]))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return total


def comm_overlap(prof: torch.profiler.profile, steps: int) -> dict[str, float]:
    """How much of the all-reduce hides behind compute, per step, from the kernels' own times
    (ms): NCCL kernels vs all others (their unions, so concurrent kernels count once)."""
    kernels = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
    spans = [(e.time_range.start, e.time_range.end, "nccl" in e.name.lower()) for e in kernels]
    comm = _union([(a, b) for a, b, is_comm in spans if is_comm])
    compute = _union([(a, b) for a, b, is_comm in spans if not is_comm])
    busy = _union(comm + compute)
    hidden = _intersection(comm, compute)
    window = (busy[-1][1] - busy[0][0]) if busy else 0.0
    per_step = 1000.0 * steps
    return {"comm_ms": _length(comm) / per_step, "comm_hidden_ms": hidden / per_step,
            "comm_exposed_ms": (_length(comm) - hidden) / per_step,
            "compute_ms": _length(compute) / per_step,
            "gpu_idle_ms": (window - _length(busy)) / per_step, "kernels": len(kernels)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--preset", default="v2", choices=sorted(PRESETS))
    parser.add_argument("--batch", type=int, default=32, help="per GPU")
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--compile-scope", default="model", choices=["model", "loss"],
                        help="compile the network only, or the whole loss around it")
    parser.add_argument("--compile-mode", default="default",
                        choices=["default", "max-autotune-no-cudagraphs", "max-autotune",
                                 "reduce-overhead"])
    parser.add_argument("--fused-clip", action="store_true",
                        help="clip inside the fused AdamW kernel (engine.training.update)")
    parser.add_argument("--ema-every", type=int, default=1)
    parser.add_argument("--sync-loss", action="store_true",
                        help="read the loss on the host each step, as a per-step check would")
    parser.add_argument("--device-filter", action="store_true",
                        help="filter the LR batch on the GPU first (degrade_on=device): the "
                             "default family mix, timed as its own phase")
    parser.add_argument("--ddp-inner-compile", action="store_true",
                        help="DDP(compile(net)) instead of compile(DDP(net))")
    parser.add_argument("--comm-bf16", action="store_true",
                        help="DDP: all-reduce the gradients in bf16 (half the bytes)")
    parser.add_argument("--bucket-mb", type=float, help="DDP bucket size (default 25 MB)")
    parser.add_argument("--optimize-ddp", default=None,
                        choices=["ddp_optimizer", "python_reducer", "no_optimization"],
                        help="Dynamo's DDP strategy for compile(DDP(net)); python_reducer traces "
                             "DDP's reducer through compiled autograd (default: torch's)")
    parser.add_argument("--compile-optimizer", action="store_true",
                        help="clip + AdamW (foreach) compiled by torch.compile instead of the "
                             "fused kernel")
    parser.add_argument("--bf16-weights", action="store_true",
                        help="forward/backward on a bf16 copy of the network (what autocast "
                             "casts to anyway), its gradients all-reduced in bf16 and copied "
                             "into the fp32 master's for clip + AdamW, the master copied back")
    parser.add_argument("--flat-master", action="store_true",
                        help="--bf16-weights with the master, AdamW's moments and the bf16 copy "
                             "in flat buffers: clip + AdamW + the copy down as one compiled "
                             "kernel (engine.training.flat_master)")
    parser.add_argument("--compile-encode", action="store_true",
                        help="the two codec encodes as one compiled call on both batches "
                             "(one STFT; Inductor fuses what follows it)")
    parser.add_argument("--sdpa", default="auto", choices=["auto", "flash", "cudnn", "efficient"],
                        help="attention kernel: torch's choice, or only this SDPA backend")
    parser.add_argument("--sm-carveout", type=int, default=0,
                        help="SMs cuBLAS matmuls leave free (for the all-reduce's kernels)")
    parser.add_argument("--carveout-scope", default="all", choices=["all", "backward"],
                        help="backward: matmuls leave --sm-carveout SMs free only in the "
                             "backward, where the all-reduce runs beside them")
    parser.add_argument("--blas", default="default", choices=["default", "cublas", "cublaslt"],
                        help="torch.backends.cuda.preferred_blas_library (torch 2.11 applies "
                             "the SM carve-out to cuBLASLt matmuls only)")
    parser.add_argument("--gemm", default="aten", choices=["aten", "triton"],
                        help="triton: Inductor autotunes its own matmul kernels (no thread-block "
                             "clusters, grids of many small tiles) instead of calling cuBLAS")
    parser.add_argument("--trace", type=Path, help="write the profiler's kernel table here")
    parser.add_argument("--timeline", type=Path,
                        help="with --trace: also every kernel and launch (bench/timeline.py)")
    parser.add_argument("--tag", default="")
    parser.add_argument("--out-dir", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    info = DistInfo.from_env("cuda")
    if args.gemm == "triton":  # before anything compiles
        from torch._inductor import config as inductor_config

        inductor_config.max_autotune_gemm = True
        inductor_config.max_autotune_gemm_backends = "TRITON"
    if args.blas != "default":
        torch.backends.cuda.preferred_blas_library(args.blas)
    carveout = args.sm_carveout or None
    if carveout and args.carveout_scope == "all":  # before anything runs: CUDA graphs keep
        torch._C._set_sm_carveout_experimental(carveout)  # the grid they captured
    if args.sdpa != "auto":  # read when the graph is traced: set before anything compiles
        for name in ("flash", "cudnn", "mem_efficient"):
            getattr(torch.backends.cuda, f"enable_{name}_sdp")(args.sdpa in name)
    dev = info.device
    torch.manual_seed(0)
    run = PRESETS[args.preset]
    net = DiT(run.model).to(dev)
    codec = build_codec("stft").to(dev)
    obj = FlowObjective(run.flow)
    if args.compile_optimizer:  # foreach AdamW traced by Inductor (the bench's lr is fixed)
        opt = torch.optim.AdamW(net.parameters(), lr=1e-4, betas=(0.9, 0.99), foreach=True)
    else:
        opt = torch.optim.AdamW(net.parameters(), lr=1e-4, betas=(0.9, 0.99), fused=True)
    ema = EMA(net, 0.999, every=args.ema_every)
    params = list(net.parameters())
    samples = round(args.seconds * SAMPLE_RATE / HOP_SAMPLES) * HOP_SAMPLES
    hr = 0.1 * torch.randn(args.batch, 1, samples, device=dev)
    lr_wav = hr.clone()
    # FLOPs on rank 0 before DDP wraps net: with the python_reducer DDP hooks every gradient
    # of net with an all-reduce, and a backward on one rank alone deadlocks the group (the
    # seventh and eleventh sessions' "python_reducer never steps" on 4 GPUs)
    flops = None
    if info.is_main:
        with torch.no_grad():
            x0, c0 = codec.encode(hr), codec.encode(lr_wav)
        flops = count_flops(net, obj, x0, c0)
    # --bf16-weights: the trainer's "bf16-master" (engine.training.master): `work` runs the
    # step, net stays the fp32 master the optimiser updates; made after count_flops, which
    # clears the master's gradients
    master = MasterWeights(net) if args.bf16_weights and not args.flat_master else None
    flat = (FlatMaster(net, betas=(0.9, 0.99), weight_decay=0.01, max_norm=1.0)
            if args.flat_master else None)  # torch's AdamW's default weight decay, as `opt`
    work = net if master is None and flat is None else (master or flat).work
    inner = args.compile and args.ddp_inner_compile and info.active
    if args.optimize_ddp is not None:
        from torch import _dynamo

        _dynamo.config.optimize_ddp = args.optimize_ddp
        if args.optimize_ddp == "python_reducer":  # it needs the backward compiled too
            _dynamo.config.compiled_autograd = True
    # DDP(compile(net)) as one graph (DistInfo.compile says why); the "model" scope compiles
    # DDP(net) further down unless inner
    model_fn = (info.compile(work, args.compile_mode, "inner", args.bucket_mb) if inner
                else info.wrap(work, args.bucket_mb))
    if args.comm_bf16 and info.active:
        from torch.distributed.algorithms.ddp_comm_hooks import default_hooks
        model_fn.register_comm_hook(None, default_hooks.bf16_compress_hook)
    loss_fn = functools.partial(obj.loss, model_fn)
    if args.compile and not inner and args.compile_scope == "model":
        loss_fn = functools.partial(obj.loss, torch.compile(model_fn, mode=args.compile_mode))
    elif args.compile and not inner:
        loss_fn = torch.compile(loss_fn, mode=args.compile_mode)
    filters = holes = None
    if args.device_filter:  # what CropDataset(deferred=True) would send, default family mix
        degrader, rng = Degrader(), np.random.default_rng(0)
        x = hr[0, 0].cpu().numpy()
        rows = [device_rows(degrader(x, rng, deferred=True), samples) for _ in range(args.batch)]
        # kept in pinned host memory, as the trainer's DataLoader hands them over
        filters = torch.from_numpy(np.stack([r for r, _ in rows])).pin_memory()
        holes = torch.from_numpy(np.stack([h for _, h in rows])).pin_memory()

    @torch.compile(fullgraph=False)
    def compiled_update() -> None:  # clip + AdamW as Inductor kernels (--compile-optimizer)
        if master is not None:
            master.grads_to_master()
        norm = torch.nn.utils.get_total_norm([p.grad for p in params], 2.0, foreach=True)
        torch.nn.utils.clip_grads_with_norm_(params, 1.0, norm, foreach=True)
        opt.step()
        if master is not None:
            master.master_to_work()

    def encode_pair(hr: torch.Tensor, lr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """codec.encode of both (B, 1, S) batches -> two (B, C, T), as one STFT."""
        return codec.encode(torch.cat([hr, lr])).chunk(2)

    encode = (torch.compile(encode_pair) if args.compile_encode
              else lambda hr, lr: (codec.encode(hr), codec.encode(lr)))

    phases = ("degrade", "encode", "fwd_bwd", "clip", "adamw", "ema")
    marks: list[list[torch.cuda.Event]] = []

    def step(timed: bool = False) -> None:
        ev = [torch.cuda.Event(enable_timing=True) for _ in range(len(phases) + 1)]
        ev[0].record()
        lr_in = lr_wav if filters is None else apply_filters(hr, lr_wav, filters, holes)
        ev[1].record()
        with torch.no_grad():
            x, cond = encode(hr, lr_in)  # (B, C, T)
        ev[2].record()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss, _ = loss_fn(x, cond)
        if carveout and args.carveout_scope == "backward":  # read as each matmul is called
            torch._C._set_sm_carveout_experimental(carveout)  # (or captured)
        loss.backward()
        if carveout and args.carveout_scope == "backward":
            torch._C._set_sm_carveout_experimental(None)
        if args.sync_loss:
            loss.item()
        ev[3].record()
        if args.compile_optimizer:  # likewise one phase
            ev[4].record()
            compiled_update()
        elif flat is not None:  # gather, norm, fused update: all in the "adamw" phase
            ev[4].record()
            flat.step(1e-4)
        elif master is not None:  # "clip" is the gradients' copy into the fp32 master here
            master.grads_to_master()
            ev[4].record()
            clipped_step(opt, params, 1.0)
            master.master_to_work()
        elif args.fused_clip:  # clip + AdamW in one: all of it lands in the "adamw" phase
            ev[4].record()
            clipped_step(opt, params, 1.0)
        else:
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            ev[4].record()
            opt.step()
        if master is None and flat is None:  # (both drop the copy's; the master's stay)
            opt.zero_grad(set_to_none=True)
        ev[5].record()
        ema.update(net)
        ev[6].record()
        if timed:
            marks.append(ev)

    for _ in range(args.warmup):
        step()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats(dev)
    info.barrier()
    start = time.perf_counter()
    for _ in range(args.steps):
        step(timed=True)
    torch.cuda.synchronize()
    info.barrier()
    elapsed = time.perf_counter() - start
    if args.trace:  # every rank steps (DDP's collectives need them all); rank 0 profiles
        activities = [torch.profiler.ProfilerActivity.CPU, torch.profiler.ProfilerActivity.CUDA]
        with torch.profiler.profile(activities=activities) if info.is_main else nullcontext(
                ) as prof:
            for _ in range(3):
                step()
            torch.cuda.synchronize()
        if info.is_main:
            args.trace.parent.mkdir(parents=True, exist_ok=True)
            overlap = comm_overlap(prof, 3)
            args.trace.write_text(json.dumps(overlap) + "\n" + prof.key_averages().table(
                sort_by="cuda_time_total", row_limit=40, max_name_column_width=70))
            print("overlap", json.dumps(overlap), flush=True)
            if args.timeline:
                print("timeline kernels", write_timeline(prof, args.timeline), flush=True)
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
        "device_index": dev.index, "cpu": cpu_budget(),
        "date": dt.date.today().isoformat(), "tag": args.tag,
        "fused_clip": args.fused_clip, "compile_optimizer": args.compile_optimizer,
        "ema_every": args.ema_every, "sync_loss": args.sync_loss,
        "comm_bf16": args.comm_bf16, "bucket_mb": args.bucket_mb,
        "optimize_ddp": args.optimize_ddp, "sdpa": args.sdpa, "sm_carveout": args.sm_carveout,
        "bf16_weights": args.bf16_weights or args.flat_master, "flat_master": args.flat_master,
        "compile_encode": args.compile_encode, "carveout_scope": args.carveout_scope,
        "blas": args.blas, "gemm": args.gemm,
        "env": {k: v for k, v in os.environ.items()
                if k.startswith(("NCCL_", "TORCH_NCCL_", "CUDA_DEVICE_MAX"))},
        "device_filter": args.device_filter, "ddp_inner_compile": args.ddp_inner_compile,
        "compile_scope": args.compile_scope if args.compile else None,
        "compile_mode": args.compile_mode if args.compile else None,
        "phase_ms": {name: sum(ev[i].elapsed_time(ev[i + 1]) for ev in marks) / len(marks)
                     for i, name in enumerate(phases)},
    }
    print(json.dumps(row), flush=True)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    out = args.out_dir / f"train_step_cuda_{row['date']}.jsonl"
    with open(out, "a") as f:
        f.write(json.dumps(row) + "\n")
    info.close()


if __name__ == "__main__":
    main()
