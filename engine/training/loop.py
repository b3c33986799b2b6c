"""The trainer: flow-matching steps, EMA, validation LSD, checkpoints, exact resume, DDP.

`Trainer.iter_fit()` is a generator yielding `TrainEvent`s (log / val / checkpoint / done), so
the CLI prints a progress bar and the GUI's fine-tuning page shows curves and can stop it.
Dimensions: B batch, S samples, C codec channels, T frames.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from engine.codecs import build_codec
from engine.config import RunConfig, SamplerConfig, TrainConfig
from engine.cores import usable_cores
from engine.flow import FlowObjective, metric_floats
from engine.model.dit import PRESETS, DiT
from engine.model.grow import grow_depth as grow_depth_of
from engine.modelfile import JaTModel, load_model, save_model
from engine.sbr import sbr_batch
from engine.training.batches import StepBatches, auto_workers, make_loader
from engine.training.budget import TimeBudget
from engine.training.checkpoint import load_checkpoint, save_checkpoint
from engine.training.corpus import scan
from engine.training.data import CropDataset, ValidationSet
from engine.training.dataconfig import DataConfig
from engine.training.device_filter import apply_filters, with_cpu_rows
from engine.training.distributed import DistInfo
from engine.training.ema import EMA
from engine.training.flat_master import FlatMaster
from engine.training.holes import hole_weights
from engine.training.logger import MetricLogger
from engine.training.lr import lr_at
from engine.training.phases import PhaseTimer
from engine.training.prefetch import DevicePrefetcher
from engine.training.update import clipped_step, make_adamw
from engine.training.validate import validate

log = logging.getLogger(__name__)

_clock = time.perf_counter  # the loop's clock (tests swap in a fake one)
VAL_BATCH = 16  # validation crops restored at once


class NonFiniteLossError(RuntimeError):
    """The loss became NaN/Inf: training stopped; the last checkpoint is intact."""


class TrainingOutOfMemoryError(RuntimeError):
    """The device ran out of memory even with one crop a pass (or with several processes,
    which cannot retry alone); the last checkpoint is intact."""


@dataclass(frozen=True)
class TrainEvent:
    """What the trainer reports: kind, step, and the metrics of that moment."""

    kind: Literal["log", "val", "checkpoint", "done"]
    step: int
    total_steps: int
    metrics: dict[str, float] = field(default_factory=dict)
    message: str = ""


class Trainer:
    """Trains (or fine-tunes) a JaT model on folders of full-band audio."""

    def __init__(self, run: RunConfig | None, train: TrainConfig, data: DataConfig,
                 out_dir: str | Path, device: str | torch.device = "auto",
                 base_model: str | Path | None = None, resume: bool = False,
                 dist_info: DistInfo | None = None, flow_changes: dict[str, Any] | None = None,
                 grow_depth: int | None = None):
        """`run` is ignored with `base_model` (its own architecture and objective);
        `flow_changes` then change that objective (e.g. {"bridge_prob": 0.5}) and `grow_depth`
        deepens its network to that many blocks, computing what it computed
        (`engine.model.grow`)."""
        if grow_depth is not None and base_model is None:
            raise ValueError("grow_depth deepens a base model; a new model takes its preset's")
        self.train_cfg, self.data_cfg = train, data
        self.out_dir = Path(out_dir)
        self.dist = dist_info or DistInfo.single()
        self.device = self.dist.device if dist_info else _device(device)
        self._stop = threading.Event()
        self.step_idx = 0
        self.pieces = 1  # passes a micro-batch runs in (raised when the device runs out)
        self.val_batch = VAL_BATCH  # crops a validation batch (halved when the device runs out)
        self.total_steps = train.steps  # where the LR schedule ends (fit_schedule moves it)
        self._agreed_stop = False  # a stop all ranks decided together (at a log step)
        self.best_lsd = float("inf")
        self.provenance: dict[str, Any] = {}
        if not resume and (self.out_dir / "ckpt" / "last.pt").exists():
            # a new run there would replace its checkpoints and mix its metrics into theirs
            raise ValueError(f"{self.out_dir} already holds a training run (ckpt/last.pt): "
                             "resume it, or choose another run folder")
        if self.dist.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        if data.cache_dir is None:
            data = dataclasses.replace(data, cache_dir=str(self.out_dir / "cache"))
            self.data_cfg = data
        # rank 0 decodes and measures every file into the cache; the others then only read it
        # (4 ranks decoding one corpus at once into one cache ran past a 10-minute budget)
        if not self.dist.is_main:
            self.dist.barrier()
        self.corpus = scan(data, log_fn=log.info)
        if self.dist.is_main:
            self.dist.barrier()
        if not self.corpus.train:
            raise ValueError("no usable full-band training files in " + ", ".join(data.folders))
        on_device = train.degrade_on == "device" or (
            train.degrade_on == "auto" and self.device.type == "cuda")
        self.crops = CropDataset(self.corpus.train, data, seed=train.seed, deferred=on_device)
        torch.manual_seed(train.seed)  # weight init: the same on every rank and every run
        if base_model is not None:
            base = load_model(base_model)
            self.run, net, self.codec = base.run, base.net, base.codec
            self.provenance = {"base_model": str(base_model), "base_training": base.training}
            if grow_depth is not None and grow_depth != net.cfg.depth:
                self.provenance["grown_from_depth"] = net.cfg.depth
                net = grow_depth_of(net, grow_depth)
                self.run = dataclasses.replace(self.run, model=net.cfg)
        else:
            self.run = run or PRESETS[train.preset]
            net, self.codec = DiT(self.run.model), build_codec("stft")
            self._fit_codec_stats()
        if flow_changes:
            self.run = dataclasses.replace(self.run, flow=dataclasses.replace(
                self.run.flow, **flow_changes))
        self.net = net.to(self.device).train()
        self.codec.to(self.device)
        if data.hole_floor > 0 and self.codec.name != "stft":
            raise ValueError(f"hole_floor needs the stft codec's log-magnitude latents, "
                             f"not {self.codec.name!r}")
        self.ema = EMA(self.net, train.ema_decay, every=train.ema_every)
        # "bf16-master": a bf16 copy runs forward/backward, self.net stays the fp32 master,
        # and FlatMaster updates both in one pass (self.opt then only lends its state format)
        self.master = (FlatMaster(self.net, train.betas, weight_decay=train.weight_decay,
                                  max_norm=train.grad_clip, compile=self.device.type == "cuda")
                       if train.precision == "bf16-master" else None)
        self.params = list(self.net.parameters())
        self.opt = make_adamw(self.params, train.lr, train.betas, train.weight_decay)
        self.objective = FlowObjective(self.run.flow)
        self.noise = torch.Generator(self.device).manual_seed(train.seed * 1000 + self.dist.rank)
        self.phases = PhaseTimer(self.device)  # perf/ms_<phase> at every log
        working = self.net if self.master is None else self.master.work
        self.model_fn = (self.dist.compile(working, train.compile_mode, train.compile_ddp,
                                           train.ddp_bucket_mb)
                         if train.compile else self.dist.wrap(working, train.ddp_bucket_mb))
        self.val_set = ValidationSet.build(self.corpus.val, data) if self.dist.is_main else None
        self.logger = MetricLogger(self.out_dir, enabled=self.dist.is_main,
                                   tensorboard=train.tensorboard)
        if resume and (self.out_dir / "ckpt" / "last.pt").exists():
            self.load(self.out_dir / "ckpt" / "last.pt")
        if self.dist.is_main:
            (self.out_dir / "config.json").write_text(json.dumps(self._config_dict(), indent=2))

    # --- pieces -------------------------------------------------------------------------
    def _fit_codec_stats(self) -> None:
        rng = np.random.default_rng([self.train_cfg.seed, 7])
        hr = [self.crops.sample(rng)["hr"] for _ in range(self.train_cfg.stats_crops)]
        self.codec.fit_stats([torch.stack(hr[i : i + 16]) for i in range(0, len(hr), 16)])

    def _autocast(self) -> Any:
        precision = self.train_cfg.precision
        # bf16 weights need it everywhere (fp32 activations meet them in every matmul)
        on = precision == "bf16-master" or (self.device.type == "cuda" and precision == "bf16")
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=on)

    def step(self, micro_batches: list[dict[str, torch.Tensor]]
             ) -> dict[str, torch.Tensor | float]:
        """One optimiser step over grad_accum micro-batches of {"hr","lr"} (B, 1, S).

        Nothing here waits for the GPU: the metrics come back as device tensors, and a
        non-finite loss (hence gradient norm) makes the fused update a no-op, so the weights
        stay intact until `_drain` reads the metrics at the next log and raises.

        When the device runs out of memory in the forward or backward, the step starts again
        (gradients dropped, the noise generator rewound) with every micro-batch run in twice as
        many passes: the same batch and update in less memory. Later steps keep the split.
        """
        cfg = self.train_cfg
        lr = lr_at(self.step_idx, cfg.lr, cfg.warmup_steps, self.total_steps)
        for group in self.opt.param_groups:
            group["lr"] = lr
        noise_state = self.noise.get_state()
        while True:
            try:
                sums = self._forward_backward(micro_batches)
                break
            except torch.OutOfMemoryError as exc:
                reason = str(exc).splitlines()[0] if str(exc) else "out of memory"
            # out of the except block: the failed pass's tensors are free now
            self._split_after_oom(min(len(mb["hr"]) for mb in micro_batches), reason)
            self.noise.set_state(noise_state)
        if self.master is not None:  # clip + AdamW + the copy down, one pass
            grad_norm = self.master.step(lr)
        else:
            grad_norm = clipped_step(self.opt, self.params, cfg.grad_clip)
            self.opt.zero_grad(set_to_none=True)
        self.phases.mark("update")
        self.ema.update(self.net)
        self.phases.mark("ema")
        self.step_idx += 1
        out = {k: torch.stack(v).mean() if k == "loss/flow" else torch.stack(v).nanmean()
               for k, v in sums.items()}
        return {**out, "opt/grad_norm": grad_norm.detach(), "opt/lr": lr}

    def _forward_backward(self, micro_batches: list[dict[str, torch.Tensor]]
                          ) -> dict[str, list[torch.Tensor]]:
        """The backward of every micro-batch, each in `self.pieces` passes; their metrics."""
        sums: dict[str, list[torch.Tensor]] = defaultdict(list)
        passes = sum(min(self.pieces, len(mb["hr"])) for mb in micro_batches)
        # bf16-master with several passes: each one's bf16 gradients go into the master's fp32
        # sum, which is all-reduced once at the end (DDP's own all-reduce would see only the
        # last pass's), so every backward runs without DDP's sync
        accumulate = self.master is not None and passes > 1
        done = 0
        self.phases.start()
        for mb in micro_batches:
            hr = mb["hr"].to(self.device, non_blocking=True)
            lr_wav = mb["lr"].to(self.device, non_blocking=True)
            if "lr_rows" in mb:  # only the rows the CPU degraded came; the rest start as hr
                lr_wav = with_cpu_rows(hr, lr_wav, mb["lr_rows"].to(self.device, non_blocking=True))
            if "filter" in mb:  # IIR / brick-wall / MP3-like degradations left to this device
                # (the rows stay in host memory: their modes pick which rows travel, no wait)
                lr_wav = apply_filters(hr, lr_wav, mb["filter"], mb["holes"])
            self.phases.mark("input")  # copies to the device, degradation filters
            with torch.no_grad():
                x, cond = self.codec.encode(hr), self.codec.encode(lr_wav)  # (B, C, T)
                prior = None
                if self.run.flow.bridge_prob > 0:  # the warm start's DSP estimate, per item
                    prior = self.codec.encode(sbr_batch(lr_wav, mb["cutoff_hz"].tolist()))
                weight = None
                if self.data_cfg.hole_floor > 0:  # encoder holes in the target: no loss
                    weight = hole_weights(self.codec.denormalize(x), self.data_cfg.hole_floor)
                    sums["data/hole_share"].append(1.0 - weight.mean())
            self.phases.mark("encode")
            rows, n = len(x), min(self.pieces, len(x))
            for j in range(n):
                a, b = rows * j // n, rows * (j + 1) // n  # this pass's rows [a, b)
                done += 1
                last = done == passes
                sync = self.dist.no_sync(self.model_fn) if accumulate or not last else None
                with sync or contextlib.nullcontext(), self._autocast():
                    loss, metrics = self.objective.loss(
                        self.model_fn, x[a:b], cond[a:b], self.noise,
                        None if weight is None else weight[a:b],
                        None if prior is None else prior[a:b])
                    (loss * ((b - a) / rows / len(micro_batches))).backward()
                if accumulate:
                    self.master.accumulate()
                    if last:
                        self.dist.all_reduce_mean(self.master.grad_sum)
                self.phases.mark("forward_backward")
                for k, v in metrics.items():
                    sums[k].append(v)
        return sums

    def _split_after_oom(self, rows: int, reason: str) -> None:
        """Drop this step's gradients and run micro-batches of `rows` in twice as many passes;
        raise TrainingOutOfMemoryError where that cannot help."""
        per_pass = -(-rows // self.pieces)
        if self.dist.active:
            raise TrainingOutOfMemoryError(
                f"out of device memory at {per_pass} crops a pass on rank {self.dist.rank} "
                f"({reason}); with several processes, lower the batch or raise --grad-accum")
        if per_pass <= 1:
            raise TrainingOutOfMemoryError(
                f"out of device memory even at one crop a pass ({reason}); try shorter crops "
                "or a smaller preset")
        self.net.zero_grad(set_to_none=True)
        if self.master is not None:
            self.master.drop_gradients()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        self.pieces = min(rows, self.pieces * 2)
        log.warning("out of device memory at %d crops a pass: running each micro-batch of %d "
                    "in %d passes from now on (the same batch and update)", per_pass, rows,
                    self.pieces)

    def _drain(self, window: dict[str, list[Any]]) -> dict[str, float]:
        """Means of the steps since the last log, read from the device at once.

        Raises NonFiniteLossError naming the first step whose loss was not finite."""
        losses = torch.stack(window["loss/flow"])  # (n,)
        index = torch.arange(len(losses), device=losses.device)
        first_bad = torch.where(torch.isfinite(losses), len(losses), index).min()
        stats = {k: torch.stack(v).nanmean() for k, v in window.items()
                 if k != "loss/flow" and isinstance(v[0], torch.Tensor)}
        stats["loss/flow"] = losses.mean()  # plain mean: NaN must show
        floats = metric_floats({**stats, "_first_bad": first_bad})
        floats.update({k: float(np.mean(v)) for k, v in window.items() if k not in stats})
        bad = int(floats.pop("_first_bad"))
        if bad < len(losses):
            step = self.step_idx - len(losses) + bad + 1
            raise NonFiniteLossError(f"step {step}: the loss is not finite "
                                     "(that update and later ones were skipped)")
        return floats

    def evaluate(self) -> dict[str, float]:
        """LSD of the EMA model on the validation crops at 4 / 8 / 11.025 kHz, beside sinc."""
        if self.val_set is None or not len(self.val_set):
            return {}
        model = JaTModel(self.ema.model, self.codec, self.run)
        # the network alone, from noise: comparable across runs whatever the product's default
        sampler = SamplerConfig(steps=self.train_cfg.val_steps, seed=self.train_cfg.seed,
                                prior_t=0.0)
        warm = None  # a network trained on the warm start's path: that path scored too
        if self.run.flow.bridge_prob > 0:
            warm = dataclasses.replace(sampler, prior_t=self.run.flow.bridge_t)
        while True:  # out of device memory: again with half the crops a batch
            try:
                return validate(model, self.val_set, sampler, self.device,
                                batch=self.val_batch, warm=warm)
            except torch.OutOfMemoryError as exc:
                reason = str(exc).splitlines()[0] if str(exc) else "out of memory"
            if self.val_batch == 1:
                raise TrainingOutOfMemoryError(
                    f"out of device memory validating one crop at a time ({reason})")
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
            self.val_batch //= 2
            log.warning("out of device memory in validation: %d crops a batch from now on",
                        self.val_batch)

    # --- checkpoints --------------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        return {
            "step": self.step_idx, "best_lsd": self.best_lsd, "total_steps": self.total_steps,
            "model": self.net.state_dict(), "ema": self.ema.state_dict(),
            "optimizer": (self.opt.state_dict() if self.master is None
                          else self.master.optimizer_state(self.opt)),
            "config": self._config_dict(),
            "codec": {"name": self.codec.name, "config": self.codec.config_dict(),
                      "stats": self.codec.stats_tensors()},
            "rng": {"noise": self.noise.get_state(), "torch": torch.get_rng_state()},
            "data_summary": self.corpus.summary(),
        }

    def save(self, best: bool = False) -> Path | None:
        """Checkpoint (main process only); returns its path."""
        if not self.dist.is_main:
            return None
        return save_checkpoint(self._state(), self.out_dir / "ckpt", self.step_idx,
                               self.train_cfg.keep_ckpts, best=best)

    def load(self, path: Path) -> None:
        """Resume exactly: weights, EMA, optimizer, step, RNG and codec statistics."""
        state = load_checkpoint(path, map_location="cpu")
        self.net.load_state_dict(state["model"])
        self.ema.load_state_dict(state["ema"])
        if self.master is None:
            self.opt.load_state_dict(state["optimizer"])
        else:
            self.master.load_optimizer_state(state["optimizer"])
            self.master.master_to_work()
        self.codec.load_stats(state["codec"]["stats"])
        self.step_idx, self.best_lsd = int(state["step"]), float(state["best_lsd"])
        if self.train_cfg.fit_schedule:  # the fitted schedule goes on until re-planned
            self.total_steps = int(state.get("total_steps", self.total_steps))
        self.noise.set_state(state["rng"]["noise"])
        torch.set_rng_state(state["rng"]["torch"])
        log.info("resumed from %s at step %d", path, self.step_idx)

    def export(self, path: str | Path, dtype: torch.dtype = torch.float16) -> Path:
        """Write the EMA weights as a model file the pipeline loads."""
        self.ema.flush(self.net)
        training = {**self.provenance, "steps": self.step_idx,
                    "train": dataclasses.asdict(self.train_cfg),
                    "data": self.corpus.summary(), "recipe": self.data_cfg.recipe(),
                    "world_size": self.dist.world_size, "hardware": self._hardware()}
        return save_model(path, JaTModel(self.ema.model, self.codec, self.run, training), dtype)

    def _config_dict(self) -> dict[str, Any]:
        return {"run": self.run.to_dict(), "train": dataclasses.asdict(self.train_cfg),
                "data": dataclasses.asdict(self.data_cfg), "world_size": self.dist.world_size,
                "hardware": self._hardware(), **self.provenance}

    def _hardware(self) -> str:
        """What trained this: e.g. "4 x NVIDIA H100 80GB HBM3" or "1 x cpu" (model provenance)."""
        dev = self.device
        name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else dev.type
        return f"{self.dist.world_size} x {name}"

    # --- the loop -----------------------------------------------------------------------
    def stop(self) -> None:
        """Ask the loop to end after the current step with a checkpoint (thread-safe)."""
        self._stop.set()

    def _agree(self, budget: TimeBudget | None) -> None:
        """At a log step: rank 0 decides whether to stop and where the schedule ends."""
        stop, total = self._stop.is_set(), self.total_steps
        if budget is not None:
            now = _clock()
            if budget.expired(now):
                stop = True
                log.info("time budget of %g min reached at step %d", self.train_cfg.max_minutes,
                         self.step_idx)
            if self.step_idx < total:  # a schedule that has ended is not stretched again
                planned = budget.plan(self.step_idx, now)
                total = total if planned is None else planned
        stop_f, total_f = self.dist.from_main([float(stop), float(total)])
        self._agreed_stop = stop_f > 0
        if int(total_f) != self.total_steps and budget is not None and self.dist.is_main:
            log.debug("schedule fitted to the time budget: %d steps", int(total_f))
        self.total_steps = max(self.step_idx, int(total_f))

    def iter_fit(self) -> Iterator[TrainEvent]:
        """Train to total_steps, yielding events; closing the generator checkpoints."""
        cfg = self.train_cfg
        per_rank = cfg.batch_size // (self.dist.world_size * cfg.grad_accum)
        if per_rank < 1 or per_rank * self.dist.world_size * cfg.grad_accum != cfg.batch_size:
            raise ValueError(f"batch_size {cfg.batch_size} must divide evenly over "
                             f"{self.dist.world_size} processes x {cfg.grad_accum} accumulation")
        batches = StepBatches(self.crops, per_rank, cfg.grad_accum, self.dist.rank,
                              self.dist.world_size, cfg.seed, start_step=self.step_idx)
        workers = cfg.num_workers
        if workers is None:
            cores, here = usable_cores(), self.dist.local_world_size
            workers = auto_workers(here, self.device.type == "cuda", cores=cores)
            if self.dist.is_main:
                log.info("data loading: %d workers a process (auto: %d usable cores, %d "
                         "processes here)", workers, cores, here)
        loader = DevicePrefetcher(make_loader(batches, workers, self.device), self.device)
        saved_at = last_val = self.step_idx
        window: dict[str, list[Any]] = defaultdict(list)
        tick = _clock()
        budget = None if cfg.max_minutes is None else TimeBudget(
            cfg.max_minutes, self.step_idx, cfg.steps, cfg.val_every, cfg.fit_schedule, _clock)
        waited = 0.0  # seconds spent waiting for the DataLoader since the last log
        stopped = False
        fetch = _clock()
        try:
            for micro in loader:
                waited += _clock() - fetch
                # one process may stop at any step; ranks stop together, at a log step
                stopped = self._agreed_stop or (self._stop.is_set() and not self.dist.active)
                if self.step_idx >= self.total_steps or stopped:
                    break
                for k, v in self.step(micro).items():
                    window[k].append(v)
                if self.step_idx % cfg.log_every == 0 or self.step_idx == self.total_steps:
                    now = _clock()
                    means = self._drain(window)
                    means.update(self.phases.means())
                    means["perf/steps_per_s"] = len(window["loss/flow"]) / (now - tick)
                    means["perf/data_wait_frac"] = waited / (now - tick)
                    waited = 0.0
                    window.clear()
                    tick = now
                    self.logger.log(self.step_idx, means)
                    self._agree(budget)
                    yield TrainEvent("log", self.step_idx, self.total_steps, means)
                if self.step_idx % cfg.val_every == 0 or self.step_idx == self.total_steps:
                    paused = _clock()
                    yield from self._validate_event(self.total_steps)
                    last_val = self.step_idx
                    # validation is not training time; the log window keeps its steps and its
                    # data wait, so it keeps its clock too (resetting it made the wait share > 1)
                    spent = _clock() - paused
                    tick += spent
                    if budget is not None:
                        budget.validated(spent)
                if self.step_idx % cfg.ckpt_every == 0:
                    path = self.save()
                    saved_at = self.step_idx
                    yield TrainEvent("checkpoint", self.step_idx, self.total_steps,
                                     message=str(path))
                fetch = _clock()
            if stopped and last_val != self.step_idx:
                yield from self._validate_event(self.total_steps)  # the run's final score
        finally:
            if self.step_idx != saved_at:
                self.save()
            self.logger.close()
        identical = self.dist.ranks_identical(self.net)
        yield TrainEvent("done", self.step_idx, self.total_steps,
                         {"ddp/ranks_identical": float(identical)},
                         message=str(self.out_dir / "ckpt" / "last.pt"))

    def _validate_event(self, total: int) -> Iterator[TrainEvent]:
        # the steps since the EMA's last update count too (every rank alike; rank 0 evaluates)
        self.ema.flush(self.net)
        metrics = self.evaluate() if self.dist.is_main else {}
        self.dist.barrier()
        if not metrics:
            return
        best = metrics.get("val/lsd", float("inf")) < self.best_lsd
        if best:
            self.best_lsd = metrics["val/lsd"]
            self.save(best=True)
        self.logger.log(self.step_idx, metrics)
        yield TrainEvent("val", self.step_idx, total, metrics)

    def fit(self) -> None:
        """Blocking loop: drain iter_fit."""
        for _ in self.iter_fit():
            pass


def _device(name: str | torch.device) -> torch.device:
    if isinstance(name, torch.device):
        return name
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)

