"""The optimiser update alone, at a preset's size: the two-copy bf16-master update against the
flat fused one.

    python bench/update_step.py [--preset v2] [--steps 20]

"two-copy": `MasterWeights.grads_to_master` + `clipped_step` (torch's fused AdamW with the clip
inside) + `master_to_work` (bench/train_step.py --bf16-weights). "flat": `FlatMaster.step`
(--flat-master), compiled on CUDA; on CUDA also "flat_fused": `FlatMaster(compile=False)`,
its fallback where torch.compile cannot run (torch's fused AdamW over the flat buffers, the
path the CPU always takes). All get the same bf16 gradients, made once; the median step after
two warm-up steps is timed with CUDA events (on the CPU, with the clock). Results go to
bench/results/update_step_<device>_<date>.jsonl.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
from pathlib import Path

import torch

from bench.device_filter import timed
from engine.model.dit import PRESETS, DiT, param_counts
from engine.training.flat_master import FlatMaster
from engine.training.master import MasterWeights
from engine.training.update import clipped_step, make_adamw

BETAS, DECAY, LR = (0.9, 0.99), 0.01, 1e-4


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--preset", default="v2", choices=sorted(PRESETS))
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out-dir", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    net = DiT(PRESETS[args.preset].model).to(device)
    grads = [torch.randn_like(p, dtype=torch.bfloat16) * 1e-3 for p in net.parameters()]

    two = copy.deepcopy(net)
    master = MasterWeights(two)
    opt = make_adamw(two.parameters(), LR, BETAS, DECAY)
    params = list(two.parameters())

    def two_copy() -> None:
        master.grads_to_master()
        clipped_step(opt, params, 1.0)
        master.master_to_work()

    cuda = device.type == "cuda"
    fused = (FlatMaster(copy.deepcopy(net), BETAS, weight_decay=DECAY, max_norm=1.0,
                        compile=False) if cuda else None)
    flat = FlatMaster(net, BETAS, weight_decay=DECAY, max_norm=1.0, compile=cuda)

    def with_grads(work: torch.nn.Module, step):
        def run() -> None:  # the backward's output (host-side assignments), then the update
            for p, g in zip(work.parameters(), grads, strict=True):
                p.grad = g
            step()
        return run

    row = {"preset": args.preset, "params": param_counts(net)["total"],
           "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
           "torch": torch.__version__, "date": dt.date.today().isoformat()}
    row["two_copy_ms"] = timed(with_grads(master.work, two_copy), args.steps, cuda)
    row["flat_ms"] = timed(with_grads(flat.work, lambda: flat.step(LR)), args.steps, cuda)
    if fused is not None:
        row["flat_fused_ms"] = timed(with_grads(fused.work, lambda: fused.step(LR)), args.steps,
                                     cuda)
    drift = max((a - b).abs().max().item()
                for a, b in zip(net.parameters(), two.parameters(), strict=True))
    row["max_weight_difference"] = drift  # the same steps on the same gradients
    print(json.dumps(row), flush=True)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    out = args.out_dir / f"update_step_{device.type}_{row['date']}.jsonl"
    with open(out, "a") as f:
        f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
