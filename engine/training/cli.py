"""`jatsr train` and `jatsr export` (also `python -m engine.training`, which torchrun runs)."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.config import FINETUNE, TrainConfig

if TYPE_CHECKING:
    import torch

    from engine.training.dataconfig import DataConfig

log = logging.getLogger(__name__)


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    """Options of `jatsr train` (shared with `python -m engine.training`)."""
    from engine.model.dit import PRESETS

    t, ft = TrainConfig(), FINETUNE
    p.add_argument("--preset", choices=sorted(PRESETS), default=t.preset,
                   help=f"architecture (default {t.preset}; with --base the model file's)")
    p.add_argument("--data", nargs="+", required=True, metavar="DIR",
                   help="folders of full-band audio (searched recursively)")
    p.add_argument("--val-data", nargs="+", default=(), metavar="DIR",
                   help="held-out folders for validation (default: 5%% of --data's files)")
    p.add_argument("--out", type=Path, required=True, help="run folder, e.g. runs/my-run")
    p.add_argument("--base", default=None, metavar="MODEL",
                   help="fine-tune this model file (or 'default') with the fine-tune preset")
    for flag, field, kind, what in [  # None: the preset's (TrainConfig, or FINETUNE with --base)
            ("--steps", "steps", int, "optimiser steps"),
            ("--batch", "batch_size", int, "crops per step over all GPUs"),
            ("--lr", "lr", float, "peak AdamW learning rate"),
            ("--warmup", "warmup_steps", int, "linear warm-up steps"),
            ("--log-every", "log_every", int, "steps between metric lines"),
            ("--val-every", "val_every", int, "steps between validations"),
            ("--ckpt-every", "ckpt_every", int, "steps between checkpoints")]:
        p.add_argument(flag, type=kind, default=None, help=f"{what} (default "
                       f"{getattr(t, field):g}; fine-tune {getattr(ft, field):g})")
    p.add_argument("--grad-accum", type=int, default=1,
                   help="micro-batches per step (default 1): the same batch in less memory")
    # crop recipe: None = DataConfig's default, or with --base the base model's own recipe
    # (the defaults are spelled here: importing DataConfig would pull scipy.signal into every
    # `jatsr` command's start-up)
    base_s = "; with --base the base model's"
    p.add_argument("--crop-s", type=float, default=None,
                   help=f"crop length in s (default 6{base_s})")
    p.add_argument("--group-exponent", type=float, default=None,
                   help="crops per top-level data folder ~ its duration ** this "
                        f"(1: by duration, 0: equal shares; default 1{base_s})")
    p.add_argument("--tilt", type=float, default=None, metavar="P",
                   help="share of crops given a random spectral tilt above a 0.5-2 kHz pivot "
                        f"(default 0: none{base_s})")
    p.add_argument("--tilt-db", type=float, nargs=2, default=None, metavar=("LO", "HI"),
                   help=f"range of the tilt in dB/octave (default -4 4{base_s})")
    p.add_argument("--hole-floor", type=float, default=None, metavar="MAG",
                   help="target STFT bins below this magnitude in active frames (encoder "
                        "holes) carry no loss; 1e-4 is the LSD's clamp (default 0: every bin"
                        f"{base_s})")
    p.add_argument("--phone", type=float, default=None, metavar="P",
                   help="share of crops made as phone calls: 8 kHz, the 300-3400 Hz voice band, "
                        f"G.711 mu-law or GSM 06.10 (default 0{base_s})")
    p.add_argument("--workers", type=_workers_arg, default=None, metavar="N|auto",
                   help="DataLoader workers per process (default auto: the usable cores "
                        "shared among this machine's processes, one kept for each; at most 16 "
                        "on CUDA, 2 on the CPU)")
    p.add_argument("--degrade-on", choices=["auto", "workers", "device"],
                   default=TrainConfig.degrade_on,
                   help="where the filter and MP3-like degradations run (auto: the GPU when "
                        "training on one; resampling always runs in the workers)")
    p.add_argument("--seed", type=int, default=0, help="data order and init (default 0)")
    p.add_argument("--max-minutes", type=float, default=None,
                   help="stop cleanly with a checkpoint after this much wall time")
    p.add_argument("--fit-schedule", action="store_true",
                   help="with --max-minutes: end the LR decay when the time is up (the step "
                        "count planned from the measured step rate; --steps caps it)")
    p.add_argument("--cond-drop", type=float, default=None, metavar="P",
                   help="drop the low-resolution condition with probability P (classifier-free "
                        "guidance: sample with --guidance > 1); not with --base")
    p.add_argument("--bridge", type=float, default=None, metavar="P",
                   help="share of items trained on the sampler's warm-start path from the SBR "
                        "estimate (the states a warm start visits; default 0 for a new model, "
                        "the base model's with --base)")
    p.add_argument("--grow-depth", type=int, default=None, metavar="N",
                   help="with --base: deepen its network to N blocks before training (copies "
                        "of its blocks, gated off, so training starts from what it computes)")
    p.add_argument("--bridge-t", type=float, default=None, metavar="T",
                   help="where that path starts (default 0.85, the sampler's --prior-t)")
    p.add_argument("--device", default="auto", help="auto, cuda or cpu")
    p.add_argument("--gpus", type=int, default=1, help="processes on this host (torchrun)")
    p.add_argument("--compile", action="store_true", help="torch.compile the network")
    p.add_argument("--compile-mode", default="default",
                   choices=["default", "reduce-overhead", "max-autotune"],
                   help="reduce-overhead: CUDA graphs (the fastest, on one GPU and with --gpus)")
    p.add_argument("--compile-ddp", default="outer", choices=["outer", "inner"],
                   help="with --gpus > 1: compile DDP(net) (outer) or wrap compile(net) in DDP "
                        "(inner)")
    p.add_argument("--ddp-bucket-mb", type=float, default=None, metavar="MB",
                   help="with --gpus > 1: DDP's gradient bucket size (default: 256 compiled, "
                        "25 eager)")
    p.add_argument("--ema-every", type=int, default=TrainConfig.ema_every, metavar="K",
                   help="update the EMA every K-th step with decay^K (default %(default)s; 1: "
                        "every step)")
    p.add_argument("--fp32", action="store_true", help="no bf16 autocast on CUDA")
    p.add_argument("--bf16-master", action="store_true",
                   help="forward/backward on bf16 weights, fp32 master weights for the update "
                        "(faster with several GPUs)")
    p.add_argument("--tensorboard", action="store_true",
                   help="also log to OUT/tb (when tensorboard is installed)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/ckpt/last.pt")
    p.add_argument("--export", type=Path, default=None, metavar="MODEL",
                   help="write the final EMA model file here")
    add_weights_argument(p)


def add_weights_argument(p: argparse.ArgumentParser) -> None:
    from engine.modelfile import WEIGHT_DTYPES

    p.add_argument("--weights", choices=sorted(WEIGHT_DTYPES), default="float16",
                   help="how the model file stores the weights (int8: one scale per matrix "
                        "row, half the size of float16; int4: 4-bit groups of 32 with fp16 "
                        "scales, input layers int8, about 0.6 of int8)")


def weights_dtype(args: argparse.Namespace) -> torch.dtype:
    from engine.modelfile import WEIGHT_DTYPES

    return WEIGHT_DTYPES[args.weights]


def _workers_arg(text: str) -> int | None:
    if text == "auto":
        return None
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be >= 0 or 'auto'")
    return value


def precision_of(args: argparse.Namespace) -> str:
    if args.fp32 and args.bf16_master:
        raise ValueError("--fp32 and --bf16-master: choose one")
    return "fp32" if args.fp32 else "bf16-master" if args.bf16_master else "bf16"


def train_config_from_args(args: argparse.Namespace) -> TrainConfig:
    """CLI flags -> TrainConfig (the fine-tune preset when --base is given)."""
    base = FINETUNE if args.base else TrainConfig()
    overrides = {"preset": args.preset, "seed": args.seed, "num_workers": args.workers,
                 "grad_accum": args.grad_accum, "compile": args.compile,
                 "degrade_on": args.degrade_on,
                 "compile_mode": args.compile_mode, "compile_ddp": args.compile_ddp,
                 "ddp_bucket_mb": args.ddp_bucket_mb,
                 "ema_every": args.ema_every,
                 "precision": precision_of(args), "tensorboard": args.tensorboard,
                 "max_minutes": args.max_minutes, "fit_schedule": args.fit_schedule}
    for flag, name in [("steps", "steps"), ("batch", "batch_size"), ("lr", "lr"),
                       ("warmup", "warmup_steps"), ("log_every", "log_every"),
                       ("val_every", "val_every"), ("ckpt_every", "ckpt_every")]:
        if getattr(args, flag) is not None:
            overrides[name] = getattr(args, flag)
    return dataclasses.replace(base, **overrides)


def data_config_from_args(args: argparse.Namespace,
                          recipe: dict[str, Any] | None = None) -> DataConfig:
    """CLI flags -> DataConfig; flags left out keep `recipe` (a fine-tune's base model's)."""
    from engine.training.dataconfig import DataConfig

    data = DataConfig.continuing(
        recipe, tuple(str(d) for d in args.data), crop_s=args.crop_s,
        group_exponent=args.group_exponent, tilt_prob=args.tilt, hole_floor=args.hole_floor,
        tilt_db_per_octave=None if args.tilt_db is None else tuple(args.tilt_db),
        val_folders=tuple(str(d) for d in args.val_data), seed=args.seed)
    if args.phone is not None:
        data = dataclasses.replace(data, degrade=data.degrade.with_phone_share(args.phone))
    return data


def flow_changes_from_args(args: argparse.Namespace) -> dict[str, float]:
    """The objective's fields the flags set (`Trainer(flow_changes=...)`); the rest stay the
    preset's, or with --base the base model's."""
    return {name: value for name, value in (("bridge_prob", args.bridge),
                                            ("bridge_t", args.bridge_t)) if value is not None}


def run_train(args: argparse.Namespace) -> int:
    """Train in this process (or launch torchrun for --gpus > 1)."""
    import os

    from tqdm import tqdm

    from engine.modelfile import resolve_model_path, training_recipe
    from engine.training.distributed import DistInfo, launch
    from engine.training.loop import Trainer

    if args.gpus > 1 and "LOCAL_RANK" not in os.environ:
        return launch(args.gpus, _without_gpus_flag(sys.argv[2:]))
    train = train_config_from_args(args)
    base = resolve_model_path(args.base) if args.base else None
    data = data_config_from_args(args, None if base is None else training_recipe(base))
    dist_info = DistInfo.from_env(args.device)
    run = None
    if args.cond_drop is not None:
        if base is not None:
            raise ValueError("--cond-drop trains a new model; a fine-tune keeps its base's")
        from engine.model.dit import PRESETS
        preset = PRESETS[train.preset]
        run = dataclasses.replace(preset, flow=dataclasses.replace(
            preset.flow, cond_drop_prob=args.cond_drop))
    trainer = Trainer(run, train, data, args.out, base_model=base, resume=args.resume,
                      dist_info=dist_info, flow_changes=flow_changes_from_args(args),
                      grow_depth=args.grow_depth)
    bar = tqdm(total=train.steps, initial=trainer.step_idx, file=sys.stderr, unit="step",
               disable=not dist_info.is_main)
    try:
        for ev in trainer.iter_fit():
            bar.n, bar.total = ev.step, ev.total_steps
            if ev.kind == "log":
                bar.set_postfix_str(f"loss {ev.metrics['loss/flow']:.4f} "
                                    f"{ev.metrics['perf/steps_per_s']:.2f} it/s", refresh=True)
            elif ev.kind == "val" and dist_info.is_main:
                clean = ev.metrics.get("val/clean/lsd")
                bar.write(f"step {ev.step}: val LSD {ev.metrics['val/lsd']:.3f} "
                          f"(sinc {ev.metrics['val/lsd_sinc']:.3f})"
                          + (f", hole-free references {clean:.3f}" if clean is not None else ""),
                          file=sys.stderr)
            elif ev.kind == "done" and dist_info.is_main and dist_info.active:
                same = ev.metrics["ddp/ranks_identical"] == 1.0
                bar.write("ranks hold identical weights" if same else "RANKS DIVERGED",
                          file=sys.stderr)
    finally:
        bar.close()
    if args.export is not None and dist_info.is_main:
        print(f"exported {trainer.export(args.export, weights_dtype(args))}")
    dist_info.close()
    return 0


def _without_gpus_flag(argv: list[str]) -> list[str]:
    """argv minus `--gpus N` / `--gpus=N` (the children run one process each)."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--gpus":
            skip = True
        elif not a.startswith("--gpus="):
            out.append(a)
    return out


def add_export_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", type=Path, help="a run folder or a checkpoint file (.pt)")
    p.add_argument("out", type=Path, help="model file to write (NAME or NAME.safetensors)")
    add_weights_argument(p)
    p.add_argument("--fp32", action="store_true", help="the same as --weights float32")
    p.add_argument("--raw", action="store_true", help="export the raw weights, not the EMA")


def run_export(args: argparse.Namespace) -> int:
    import torch

    from engine.training.export import export_checkpoint

    path = export_checkpoint(args.checkpoint, args.out, use_ema=not args.raw,
                             dtype=torch.float32 if args.fp32 else weights_dtype(args))
    print(f"exported {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m engine.training` (what torchrun starts in each process)."""
    parser = argparse.ArgumentParser(prog="python -m engine.training")
    add_train_arguments(parser)
    args = parser.parse_args(argv)
    args.gpus = 1  # already inside torchrun (or a single process)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return run_train(args)
