"""When does each DDP gradient bucket become ready, against the backward it should overlap?

    torchrun --standalone --nproc_per_node 2 bench/ddp_buckets.py [--compile] [--bucket-mb 25]

The `v2` preset, batch 32 a GPU, synthetic latents, eager (or compile(DDP(net))). A comm hook
wraps DDP's all-reduce and records, for each bucket of the last step, the CPU time and a CUDA
event when the reducer hands it over, against events at the start and end of the backward. If
the buckets arrive during the backward, their all-reduces can overlap it; if all arrive at its
end, the all-reduce is serial whatever the streams do. Rank 0 prints the table (and its JSON to
--out when given).
"""

# no `from __future__ import annotations`: DDP checks the comm hook's annotations at run time

import argparse
import json
import time
from pathlib import Path

import torch
import torch.distributed as dist

from engine.flow import FlowObjective
from engine.model.dit import PRESETS, DiT
from engine.training.distributed import DistInfo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--bucket-mb", type=float, default=25.0)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--preset", default="v2", choices=sorted(PRESETS))
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    info = DistInfo.from_env("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(0)
    run = PRESETS[args.preset]
    cuda = info.device.type == "cuda"
    net = DiT(run.model).to(info.device)
    names = {id(p): n for n, p in net.named_parameters()}
    ddp = info.wrap(net, args.bucket_mb)
    obj = FlowObjective(run.flow)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-4, fused=cuda)
    arrivals: list[dict] = []

    def hook(state: object, bucket: dist.GradBucket) -> torch.futures.Future[torch.Tensor]:
        event = torch.cuda.Event(enable_timing=True) if cuda else None
        if event is not None:
            event.record()
        params = bucket.parameters()
        arrivals.append({"bucket": bucket.index(), "cpu": time.perf_counter(), "event": event,
                         "mb": bucket.buffer().numel() * 4 / 2**20, "params": len(params),
                         "first": names.get(id(params[0]), "?"),
                         "last": names.get(id(params[-1]), "?")})
        tensor = bucket.buffer().div_(dist.get_world_size())
        return dist.all_reduce(tensor, async_op=True).get_future().then(lambda f: f.value()[0])

    ddp.register_comm_hook(None, hook)
    model = torch.compile(ddp) if args.compile else ddp
    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    def gpu_ms(event: torch.cuda.Event | None) -> float:
        return start.elapsed_time(event) if cuda else float("nan")

    frames = 517
    x = torch.randn(args.batch, run.model.latent_channels, frames, device=info.device)
    cond = torch.randn_like(x)
    for _ in range(args.steps):
        arrivals.clear()
        with torch.autocast(info.device.type, dtype=torch.bfloat16, enabled=cuda):
            loss, _ = obj.loss(model, x, cond)
        start, end = (torch.cuda.Event(enable_timing=True) for _ in range(2)) if cuda else (
            None, None)
        sync()
        if start is not None:
            start.record()
        t0 = time.perf_counter()
        loss.backward()
        if end is not None:
            end.record()
        t1 = time.perf_counter()
        opt.step()
        opt.zero_grad(set_to_none=True)
        sync()
    if info.is_main:
        rows = [{k: v for k, v in a.items() if k not in ("event", "cpu")}
                | {"cpu_ms": 1000 * (a["cpu"] - t0), "gpu_ms": gpu_ms(a["event"])}
                for a in arrivals]
        summary = {"compile": args.compile, "bucket_mb": args.bucket_mb,
                   "backward_cpu_ms": 1000 * (t1 - t0), "backward_gpu_ms": gpu_ms(end),
                   "card": torch.cuda.get_device_name(info.device) if cuda else "cpu",
                   "torch": torch.__version__,
                   "gpus": info.world_size, "buckets": rows}
        print(f"backward: CPU {summary['backward_cpu_ms']:.1f} ms, GPU "
              f"{summary['backward_gpu_ms']:.1f} ms; buckets in the order they arrived:")
        for r in rows:
            print(f"  #{r['bucket']:2d} {r['mb']:6.1f} MB {r['params']:3d} params  CPU "
                  f"{r['cpu_ms']:7.1f} ms  GPU {r['gpu_ms']:7.1f} ms  {r['first']} .. {r['last']}")
        if args.out:
            args.out.write_text(json.dumps(summary, indent=1))
    info.close()


if __name__ == "__main__":
    main()
