"""Trainer: overfits, exact resume, clean stop, non-finite loss, export -> upsample, gloo DDP."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.cli import main
from engine.config import TrainConfig
from engine.modelfile import load_model, read_model_config
from engine.training.batches import StepBatches
from engine.training.dataconfig import DataConfig
from engine.training.distributed import DistInfo
from engine.training.loop import NonFiniteLossError, Trainer, TrainingOutOfMemoryError
from tests.engine.conftest import lowpass, synth_clip, write_wav

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("corpus")
    for i in range(4):
        write_wav(folder / f"clip{i}.wav", synth_clip(6.0, seed=10 + i), 44100)
    return folder


def _cfg(**kw) -> TrainConfig:
    base = {"preset": "tiny", "steps": 12, "batch_size": 4, "num_workers": 0, "lr": 2e-3,
            "warmup_steps": 0, "log_every": 3, "val_every": 1000, "ckpt_every": 1000,
            "val_steps": 4, "stats_crops": 8, "seed": 3}
    return TrainConfig(**{**base, **kw})


def _data(folder: Path) -> DataConfig:
    return DataConfig(folders=(str(folder),), crop_s=1.5, val_files=1, seed=0)


def _losses(events) -> dict[int, float]:
    return {ev.step: ev.metrics["loss/flow"] for ev in events if ev.kind == "log"}


def test_trainer_overfits_and_validates(data_dir, tmp_path):
    trainer = Trainer(None, _cfg(steps=60, log_every=10, val_every=60), _data(data_dir),
                      tmp_path / "run", device="cpu")
    events = list(trainer.iter_fit())
    losses = _losses(events)
    assert losses[60] < 0.6 * losses[10], losses
    val = next(ev for ev in events if ev.kind == "val").metrics
    for key in ("val/lsd", "val/lsd_sinc", "val/lsd@4000", "val/lsd_high@8000",
                "val/lsd_low@11025"):
        assert np.isfinite(val[key]), key
    records = [json.loads(x) for x in (tmp_path / "run/metrics.jsonl").read_text().splitlines()]
    assert any("loss/flow_t0" in r or "loss/flow_t3" in r for r in records)
    assert (tmp_path / "run/ckpt/last.pt").exists() and (tmp_path / "run/ckpt/best.pt").exists()
    assert events[-1].kind == "done"


def test_log_window_rates_exclude_validation(data_dir, tmp_path):
    # validation (every 3 steps) falls inside log windows (every 6): each window's data-wait
    # share must stay a share of that window's own time
    trainer = Trainer(None, _cfg(steps=12, log_every=6, val_every=3), _data(data_dir),
                      tmp_path / "run", device="cpu")
    sample = trainer.crops.sample
    trainer.crops.sample = lambda rng: (time.sleep(0.05), sample(rng))[1]  # a slow loader
    logs = [ev.metrics for ev in trainer.iter_fit() if ev.kind == "log"]
    assert len(logs) == 2
    for m in logs:
        assert 0 <= m["perf/data_wait_frac"] <= 1 and m["perf/steps_per_s"] > 0, m


def test_resume_continues_exactly(data_dir, tmp_path):
    full = _losses(Trainer(None, _cfg(), _data(data_dir), tmp_path / "a", "cpu").iter_fit())
    first = Trainer(None, _cfg(steps=12), _data(data_dir), tmp_path / "b", "cpu")
    gen = first.iter_fit()
    for ev in gen:
        if ev.kind == "log" and ev.step == 6:
            break
    gen.close()  # clean stop: checkpoint at step 6
    saved = (tmp_path / "b/ckpt/last.pt").read_bytes()
    with pytest.raises(ValueError, match="already holds a training run"):  # not over it
        Trainer(None, _cfg(), _data(data_dir), tmp_path / "b", "cpu")
    assert main(["train", "--data", str(data_dir), "--out", str(tmp_path / "b"), "--preset",
                 "tiny", "--steps", "1", "--workers", "0", "--device", "cpu"]) != 0
    assert (tmp_path / "b/ckpt/last.pt").read_bytes() == saved
    resumed = Trainer(None, _cfg(), _data(data_dir), tmp_path / "b", "cpu", resume=True)
    assert resumed.step_idx == 6
    after = _losses(resumed.iter_fit())
    assert after[9] == pytest.approx(full[9], rel=1e-5)
    assert after[12] == pytest.approx(full[12], rel=1e-5)


def test_bf16_master_weights_train_like_autocast_and_resume_exactly(data_dir, tmp_path):
    plain = _losses(Trainer(None, _cfg(), _data(data_dir), tmp_path / "a", "cpu").iter_fit())
    cfg = _cfg(precision="bf16-master")
    full = _losses(Trainer(None, cfg, _data(data_dir), tmp_path / "b", "cpu").iter_fit())
    for step, loss in plain.items():  # the same run, rounded to bf16 in the forward/backward
        assert full[step] == pytest.approx(loss, rel=0.02), (step, full, plain)
    first = Trainer(None, cfg, _data(data_dir), tmp_path / "c", "cpu")
    gen = first.iter_fit()
    for ev in gen:
        if ev.kind == "log" and ev.step == 6:
            break
    gen.close()
    state = torch.load(tmp_path / "c/ckpt/last.pt", weights_only=True)
    assert all(v.dtype == torch.float32 for v in state["model"].values())  # the master
    resumed = Trainer(None, cfg, _data(data_dir), tmp_path / "c", "cpu", resume=True)
    assert resumed.step_idx == 6
    assert resumed.master is not None
    for w, p in zip(resumed.master.work.parameters(), resumed.net.parameters(), strict=True):
        assert torch.equal(w, p.detach().to(torch.bfloat16))
    after = _losses(resumed.iter_fit())
    assert after[9] == pytest.approx(full[9], rel=1e-5)
    assert after[12] == pytest.approx(full[12], rel=1e-5)


def test_bf16_master_accumulates_micro_batches_like_autocast(data_dir, tmp_path):
    plain = _losses(Trainer(None, _cfg(steps=6, grad_accum=2), _data(data_dir), tmp_path / "a",
                            "cpu").iter_fit())
    trainer = Trainer(None, _cfg(steps=6, grad_accum=2, precision="bf16-master"),
                      _data(data_dir), tmp_path / "b", "cpu")
    master = _losses(trainer.iter_fit())
    for step, loss in plain.items():
        assert master[step] == pytest.approx(loss, rel=0.02), (step, master, plain)
    assert trainer.master.step_count.item() == 6 and trainer.master.accumulated == 0


def _oom_above(trainer: Trainer, rows: int, after_backwards: int = 0) -> list[int]:
    """Make trainer's loss run out of memory on passes of more than `rows` crops (once
    `after_backwards` passes have run); returns the rows of every pass tried."""
    real, seen = trainer.objective.loss, []

    def loss(model, x, *args):
        seen.append(len(x))
        if len(x) > rows and len(seen) > after_backwards:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB\nmore")
        return real(model, x, *args)

    trainer.objective.loss = loss
    return seen


@pytest.mark.parametrize("precision", ["bf16", "bf16-master"])
def test_out_of_memory_splits_the_micro_batches_and_redoes_the_step(data_dir, tmp_path,
                                                                    precision):
    cfg = _cfg(steps=3, log_every=1, grad_accum=2, batch_size=8, precision=precision)
    # the reference runs every micro-batch in two passes from the start
    ref = Trainer(None, cfg, _data(data_dir), tmp_path / "ref", "cpu")
    ref.pieces = 2
    ref_losses = _losses(ref.iter_fit())
    trainer = Trainer(None, cfg, _data(data_dir), tmp_path / "oom", "cpu")
    # 4 crops a micro-batch: the first micro-batch's backward runs, the second one's fails
    seen = _oom_above(trainer, rows=2, after_backwards=1)
    losses = _losses(trainer.iter_fit())
    assert seen[:3] == [4, 4, 2] and set(seen[3:]) == {2}
    assert trainer.pieces == 2 and trainer.step_idx == 3
    assert losses == pytest.approx(ref_losses, rel=1e-6)  # the half-done try left nothing
    for p, q in zip(trainer.net.parameters(), ref.net.parameters(), strict=True):
        assert torch.allclose(p, q, rtol=0, atol=1e-6)


def test_out_of_memory_at_one_crop_a_pass_is_a_clear_error(data_dir, tmp_path):
    trainer = Trainer(None, _cfg(steps=2, batch_size=4), _data(data_dir), tmp_path / "a", "cpu")
    seen = _oom_above(trainer, rows=0)
    with pytest.raises(TrainingOutOfMemoryError, match="one crop a pass") as err:
        list(trainer.iter_fit())
    assert seen == [4, 2, 1] and "\n" not in str(err.value)
    assert "Tried to allocate 2.00 GiB" in str(err.value)


def test_out_of_memory_with_several_processes_is_not_retried(data_dir, tmp_path):
    trainer = Trainer(None, _cfg(steps=2, batch_size=4), _data(data_dir), tmp_path / "a", "cpu")
    trainer.dist = DistInfo(rank=1, world_size=2, local_rank=1, device=torch.device("cpu"))
    _oom_above(trainer, rows=2)
    with pytest.raises(TrainingOutOfMemoryError, match=r"rank 1.*grad-accum"):
        trainer.step(next(iter(StepBatches(trainer.crops, 4, 1, 0, 1, seed=0))))
    assert trainer.pieces == 1


def test_out_of_memory_in_validation_halves_its_batch(data_dir, tmp_path, monkeypatch):
    import engine.training.loop as loop

    tried, real = [], loop.validate

    def validate(*args, batch, **kw):
        tried.append(batch)
        if batch > 4:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 1.00 GiB")
        return real(*args, batch=batch, **kw)

    monkeypatch.setattr(loop, "validate", validate)
    trainer = Trainer(None, _cfg(steps=2), _data(data_dir), tmp_path / "a", "cpu")
    metrics = trainer.evaluate()
    assert tried == [16, 8, 4] and trainer.val_batch == 4
    assert metrics["val/lsd"] > 0
    assert trainer.evaluate() == metrics  # the failed tries left nothing behind
    assert tried == [16, 8, 4, 4]  # later validations start at the batch that fitted
    monkeypatch.setattr(loop, "validate", lambda *a, batch, **kw: validate(*a, batch=batch * 9))
    with pytest.raises(TrainingOutOfMemoryError, match="one crop at a time"):
        trainer.evaluate()


def test_the_trainer_logs_where_its_steps_go(data_dir, tmp_path):
    trainer = Trainer(None, _cfg(steps=4, log_every=2, grad_accum=2), _data(data_dir),
                      tmp_path / "run", device="cpu")
    logs = [ev.metrics for ev in trainer.iter_fit() if ev.kind == "log"]
    assert len(logs) == 2
    for m in logs:
        phases = {k: v for k, v in m.items() if k.startswith("perf/ms_")}
        assert set(phases) == {"perf/ms_input", "perf/ms_encode", "perf/ms_forward_backward",
                               "perf/ms_update", "perf/ms_ema"}
        assert all(v >= 0 for v in phases.values())
        assert phases["perf/ms_forward_backward"] > 0
        step_ms = 1000.0 / m["perf/steps_per_s"]
        assert sum(phases.values()) <= step_ms * 1.05  # the phases are parts of the step


def test_stop_request_ends_with_a_checkpoint(data_dir, tmp_path):
    trainer = Trainer(None, _cfg(steps=1000), _data(data_dir), tmp_path / "run", "cpu")
    events = []
    for ev in trainer.iter_fit():
        events.append(ev)
        if ev.kind == "log":
            trainer.stop()
    assert events[-1].kind == "done" and events[-1].step == 3
    assert (tmp_path / "run/ckpt/last.pt").exists()


def test_non_finite_loss_stops_cleanly(data_dir, tmp_path, monkeypatch):
    trainer = Trainer(None, _cfg(), _data(data_dir), tmp_path / "run", "cpu")
    real = trainer.objective.loss

    def poisoned(*args, **kwargs):
        loss, metrics = real(*args, **kwargs)
        return loss * float("nan"), {**metrics, "loss/flow": metrics["loss/flow"] * float("nan")}

    monkeypatch.setattr(trainer.objective, "loss", poisoned)
    with pytest.raises(NonFiniteLossError):
        list(trainer.iter_fit())


def test_cli_train_export_then_upsample(data_dir, tmp_path):
    run = tmp_path / "run"
    assert main(["train", "--preset", "tiny", "--data", str(data_dir), "--out", str(run),
                 "--steps", "6", "--batch", "2", "--workers", "0", "--crop-s", "1.5",
                 "--val-every", "6", "--log-every", "3", "--device", "cpu",
                 "--export", str(tmp_path / "model8"), "--weights", "int8",
                 "--tilt", "0.25"]) == 0
    assert main(["export", str(run), str(tmp_path / "model")]) == 0
    model = load_model(tmp_path / "model.safetensors")
    assert model.training["steps"] == 6 and model.run.model.width == 64
    for name in ("model", "model8"):  # how the crops were made, without local paths
        recipe = load_model(tmp_path / f"{name}.safetensors").training["recipe"]
        assert recipe["tilt_prob"] == 0.25 and recipe["crop_s"] == 1.5
        assert "folders" not in recipe and "cache_dir" not in recipe
    assert model.training["world_size"] == 1 and model.training["hardware"] == "1 x cpu"
    assert load_model(tmp_path / "model8.safetensors").training["hardware"] == "1 x cpu"
    assert read_model_config(tmp_path / "model")["weights_dtype"] == "float16"
    assert read_model_config(tmp_path / "model8")["weights_dtype"] == "int8"
    src = write_wav(tmp_path / "in.wav", lowpass(synth_clip(1.0), 8000), 44100)
    for name in ("model", "model8"):
        out = tmp_path / name
        assert main(["upsample", str(src), "--model", str(tmp_path / name), "--steps", "2",
                     "-o", str(out)]) == 0
        assert (out / "in.wav").exists()


def test_fine_tune_records_provenance(data_dir, tmp_path, tiny_model_path):
    trainer = Trainer(None, _cfg(steps=3), _data(data_dir), tmp_path / "ft", "cpu",
                      base_model=tiny_model_path)
    trainer.fit()
    out = trainer.export(tmp_path / "ft_model")
    model = load_model(out)
    assert model.training["base_model"] == str(tiny_model_path)
    assert model.training["steps"] == 3
    # 3 steps, fewer than the EMA's default 4 between updates: the export folds them in
    assert trainer.ema.every == 4 and trainer.ema.applied == 3
    base, trained = load_model(tiny_model_path).net.state_dict(), trainer.net.state_dict()
    exported = model.net.state_dict()
    to_trained = sum((exported[k].float() - trained[k].float()).norm() for k in exported)
    to_base = sum((exported[k].float() - base[k].float()).norm() for k in exported)
    assert to_trained < 0.2 * to_base  # decay (4/13)^3 = 0.03: nearly the trained weights


def test_fine_tune_can_deepen_its_base(data_dir, tmp_path, tiny_model_path):
    base = load_model(tiny_model_path)
    trainer = Trainer(None, _cfg(steps=2), _data(data_dir), tmp_path / "deep", "cpu",
                      base_model=tiny_model_path, grow_depth=2 * base.run.model.depth)
    z = torch.randn(1, base.run.model.latent_channels, 9)
    t = torch.tensor([0.5])
    with torch.no_grad():  # before training the deeper network computes what its base did
        torch.testing.assert_close(trainer.net.eval()(z, t, z), base.net(z, t, z),
                                   rtol=1e-5, atol=1e-6)
    trainer.net.train()
    trainer.fit()
    model = load_model(trainer.export(tmp_path / "deep_model"))
    assert model.run.model.depth == 2 * base.run.model.depth
    assert model.training["grown_from_depth"] == base.run.model.depth
    with pytest.raises(ValueError, match="base model"):
        Trainer(None, _cfg(), _data(data_dir), tmp_path / "new", "cpu", grow_depth=4)
    assert main(["train", "--data", str(data_dir), "--out", str(tmp_path / "x"),
                 "--grow-depth", "4", "--steps", "1"]) != 0


@pytest.mark.slow
@pytest.mark.parametrize("compile_args", [[], ["--compile", "--compile-ddp", "inner"],
                                          ["--bf16-master"],
                                          ["--bf16-master", "--grad-accum", "2"]],
                         ids=["eager", "ddp-of-compiled", "bf16-master", "bf16-master-accum"])
def test_two_process_gloo_ddp_ends_with_identical_weights(data_dir, tmp_path, compile_args):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CUDA_VISIBLE_DEVICES": ""}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "engine.training", "--preset", "tiny", "--data", str(data_dir), "--out",
           str(tmp_path / "ddp"), "--steps", "4", "--batch", "4", "--workers", "0",
           "--crop-s", "1.5", "--log-every", "2", "--val-every", "1000", "--device", "cpu",
           *compile_args]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "ranks hold identical weights" in proc.stderr
    state = torch.load(tmp_path / "ddp/ckpt/last.pt", weights_only=True)
    assert state["step"] == 4 and state["config"]["world_size"] == 2
    assert state["config"]["hardware"] == "2 x cpu"
    assert state["config"]["train"]["compile_ddp"] == ("inner" if "--compile" in compile_args
                                                        else "outer")
    master = "--bf16-master" in compile_args
    assert state["config"]["train"]["precision"] == ("bf16-master" if master else "bf16")
    assert not any(k.startswith("_orig_mod") for k in state["model"])


def test_degradation_filters_on_the_device(data_dir, tmp_path, monkeypatch):
    from engine.training import loop as loop_mod

    applied = []
    real = loop_mod.apply_filters

    def spy(hr, lr, filters, holes):
        out = real(hr, lr, filters, holes)
        applied.append((filters[:, 0].tolist(), torch.equal(out, lr)))
        return out

    monkeypatch.setattr(loop_mod, "apply_filters", spy)
    trainer = Trainer(None, _cfg(steps=6, degrade_on="device"), _data(data_dir),
                      tmp_path / "run", device="cpu")
    assert trainer.crops.deferred
    events = list(trainer.iter_fit())
    assert len(applied) == 6 and all(np.isfinite(v) for v in _losses(events).values())
    modes = [m for step, _ in applied for m in step]
    assert any(m != 0 for m in modes)  # some crops were filtered here, not in the loader
    assert all(not same for step, same in applied if any(m != 0 for m in step))
    assert not Trainer(None, _cfg(steps=1), _data(data_dir), tmp_path / "cpu",
                       device="cpu").crops.deferred  # "auto" on a CPU: the workers filter
    with pytest.raises(ValueError, match="degrade_on"):
        _cfg(degrade_on="gpu")


def test_deferred_batches_carry_only_the_cpu_degraded_lr_rows(data_dir):
    """The loader sends LR audio only for rows the CPU degraded; the rest is rebuilt from HR."""
    from engine.training.corpus import scan
    from engine.training.data import CropDataset
    from engine.training.degrade import MODE_DONE
    from engine.training.device_filter import with_cpu_rows

    cfg = _data(data_dir)
    crops = CropDataset(scan(cfg, log_fn=lambda m: None).train, cfg, deferred=True)
    batches = StepBatches(crops, batch=16, grad_accum=1, rank=0, world_size=1, seed=5)
    kinds = []
    for step in range(4):
        (mb,) = batches.make(step)
        rows = torch.nonzero(mb["filter"][:, 0] == MODE_DONE)[:, 0]
        assert torch.equal(mb["lr_rows"], rows)
        assert mb["lr"].shape == (len(rows), *mb["hr"].shape[1:])
        # the full LR batch, as the samples themselves hold it
        rng = np.random.default_rng([5, step, 0, 0, 1])
        full = torch.stack([crops.sample(rng)["lr"] for _ in range(16)])
        assert torch.equal(with_cpu_rows(mb["hr"], mb["lr"], mb["lr_rows"]), full)
        kinds.append(len(rows))
    assert 0 < sum(kinds) < 4 * 16  # some rows of each kind


def test_steps_that_fit_plans_for_validation():
    from engine.training.lr import steps_that_fit

    assert steps_that_fit(10.0, 100.0, 100, 0.0) == 1000
    # n = 10 * (100 - 5) / (1 + 10 * 5 / 100): 633 steps and 7 validations (6 + the final) fit
    assert steps_that_fit(10.0, 100.0, 100, 5.0) == 633
    assert steps_that_fit(10.0, 3.0, 100, 5.0) == 0
    assert steps_that_fit(0.0, 100.0, 100, 0.0) == 0


def test_fit_schedule_ends_the_lr_decay_with_the_time_budget(data_dir, tmp_path, monkeypatch):
    """A fake clock: 1 s a training step, 2 s a validation; a 30 s budget fits ~25 steps."""
    from engine.training import budget, loop

    monkeypatch.setattr(budget, "WARM_STEPS", 4)
    monkeypatch.setattr(budget, "RATE_STEPS", 6)
    now = [0.0]
    monkeypatch.setattr(loop, "_clock", lambda: now[0])
    cfg = _cfg(steps=10_000, log_every=2, val_every=10, max_minutes=0.5, fit_schedule=True)
    trainer = Trainer(None, cfg, _data(data_dir), tmp_path / "run", "cpu")
    step, evaluate = trainer.step, trainer.evaluate

    def timed_step(micro):
        now[0] += 1.0
        return step(micro)

    def timed_evaluate():
        now[0] += 2.0
        return evaluate()

    monkeypatch.setattr(trainer, "step", timed_step)
    monkeypatch.setattr(trainer, "evaluate", timed_evaluate)
    events = list(trainer.iter_fit())
    done = events[-1]
    assert 20 <= done.step == done.total_steps <= 30, done
    assert now[0] <= 60 * cfg.max_minutes + 2  # ended by the plan, not past the deadline
    lrs = [ev.metrics["opt/lr"] for ev in events if ev.kind == "log"]
    assert lrs[-1] < 0.12 * cfg.lr  # decayed to ~final_fraction (0.1) by the end
    assert any(ev.kind == "val" and ev.step == done.step for ev in events)


def test_time_budget_without_fitting_keeps_the_step_count(data_dir, tmp_path, monkeypatch):
    from engine.training import loop

    now = [0.0]
    monkeypatch.setattr(loop, "_clock", lambda: now[0])
    cfg = _cfg(steps=10_000, log_every=2, max_minutes=0.2)  # 12 s
    trainer = Trainer(None, cfg, _data(data_dir), tmp_path / "run", "cpu")
    step = trainer.step

    def timed_step(micro):
        now[0] += 1.0
        return step(micro)

    monkeypatch.setattr(trainer, "step", timed_step)
    events = list(trainer.iter_fit())
    assert events[-1].total_steps == 10_000
    assert events[-1].step == 12  # stopped at the first log step past the deadline
    assert any(ev.kind == "val" and ev.step == 12 for ev in events)
    assert (tmp_path / "run/ckpt/last.pt").exists()


def test_single_process_compile_wraps_no_ddp():
    from torch import nn


    net = nn.Linear(2, 2)
    for order in ("outer", "inner"):
        compiled = DistInfo.single().compile(net, "default", order)
        assert getattr(compiled, "_orig_mod", None) is net  # torch.compile's wrapper, no DDP


def test_ddp_bucket_size_defaults_to_large_buckets_when_compiled(monkeypatch):
    from torch import nn

    from engine.training import distributed
    from engine.training.distributed import COMPILED_BUCKET_MB, DistInfo

    made = []

    def fake_ddp(net, **kwargs):
        made.append(kwargs.get("bucket_cap_mb"))
        return net

    monkeypatch.setattr(distributed, "DistributedDataParallel", fake_ddp)
    monkeypatch.setattr(torch, "compile", lambda net, mode=None: net)
    from torch import _dynamo

    info = DistInfo(0, 2, 0, torch.device("cpu"))  # "two ranks", no process group needed here
    net = nn.Linear(2, 2)
    info.wrap(net)  # eager: DDP's own default
    info.compile(net, "default", "outer")
    # "inner" turns Dynamo's DDP split off process-wide: restored after (monkeypatch's undo
    # would delete the entry from torch's config module, breaking later compiles)
    with _dynamo.config.patch(optimize_ddp=_dynamo.config.optimize_ddp):
        info.compile(net, "default", "inner", 64.0)
        assert _dynamo.config.optimize_ddp is False
    assert made == [None, COMPILED_BUCKET_MB, 64.0]


def test_auto_workers_share_the_cores_among_the_processes():
    from engine.training.batches import MAX_AUTO_WORKERS, auto_workers

    assert auto_workers(2, cuda=True, cores=32) == 15  # one core kept for each process
    assert auto_workers(4, cuda=True, cores=64) == 15
    assert auto_workers(1, cuda=True, cores=128) == MAX_AUTO_WORKERS
    assert auto_workers(1, cuda=True, cores=8) == 7
    assert auto_workers(2, cuda=True, cores=3) == 1  # a worker still beats loading inline
    assert auto_workers(4, cuda=True, cores=4) == 0  # a core a process: load in the process
    assert auto_workers(1, cuda=False, cores=2) == 1  # the CPU trains too
    assert auto_workers(1, cuda=False, cores=32) == 2


def test_workers_flag_takes_a_count_or_auto():
    from engine.training.cli import add_train_arguments, train_config_from_args

    parser = argparse.ArgumentParser()
    add_train_arguments(parser)
    base = ["--data", "d", "--out", "o"]
    assert train_config_from_args(parser.parse_args(base)).num_workers is None
    assert train_config_from_args(parser.parse_args([*base, "--workers", "auto"])
                                  ).num_workers is None
    assert train_config_from_args(parser.parse_args([*base, "--workers", "3"])).num_workers == 3
    with pytest.raises(SystemExit):
        parser.parse_args([*base, "--workers", "-1"])
    with pytest.raises(ValueError, match="num_workers"):
        TrainConfig(num_workers=-2)


def test_the_trainer_picks_its_workers_when_not_told(data_dir, tmp_path, monkeypatch):
    from engine.training import loop as loop_mod

    seen = []
    real = loop_mod.make_loader
    monkeypatch.setattr(loop_mod, "make_loader",
                        lambda batches, workers, device: seen.append(workers) or real(
                            batches, 0, device))
    monkeypatch.setattr(loop_mod, "usable_cores", lambda: 6)
    monkeypatch.setattr(loop_mod, "auto_workers",
                        lambda processes, cuda, cores=None: 10 * processes + cuda)
    list(Trainer(None, _cfg(steps=1, num_workers=None), _data(data_dir), tmp_path / "a",
                 "cpu").iter_fit())
    list(Trainer(None, _cfg(steps=1, num_workers=3), _data(data_dir), tmp_path / "b",
                 "cpu").iter_fit())
    assert seen == [10, 3]  # one process, not CUDA; a count given is kept


def test_ddp_bucket_flag_reaches_the_config():
    from engine.config import TrainConfig
    from engine.training.cli import add_train_arguments, train_config_from_args

    parser = argparse.ArgumentParser()
    add_train_arguments(parser)
    args = parser.parse_args(["--data", "d", "--out", "o", "--ddp-bucket-mb", "100"])
    assert train_config_from_args(args).ddp_bucket_mb == 100.0
    with pytest.raises(ValueError, match="ddp_bucket_mb"):
        TrainConfig(ddp_bucket_mb=0)


def test_a_fine_tune_keeps_its_base_models_recipe_unless_told(tiny_model, tmp_path):
    import dataclasses

    from engine.modelfile import save_model, training_recipe
    from engine.training.cli import add_train_arguments, data_config_from_args

    assert training_recipe(save_model(tmp_path / "plain", tiny_model)) is None
    recipe = {**DataConfig(folders=(), tilt_prob=0.5, tilt_db_per_octave=(-3.0, 3.0),
                           group_exponent=0.5, crop_s=4.0).recipe(), "from_a_newer_version": 1}
    base = save_model(tmp_path / "base", dataclasses.replace(tiny_model,
                                                             training={"recipe": recipe}))
    assert training_recipe(base)["tilt_prob"] == 0.5
    parser = argparse.ArgumentParser()
    add_train_arguments(parser)
    args = parser.parse_args(["--data", "d", "--out", "o", "--base", str(base)])
    kept = data_config_from_args(args, training_recipe(base))
    assert (kept.tilt_prob, kept.tilt_db_per_octave, kept.group_exponent, kept.crop_s) == (
        0.5, (-3.0, 3.0), 0.5, 4.0)
    assert kept.folders == ("d",) and kept.recipe() == {
        k: v for k, v in recipe.items() if k != "from_a_newer_version"}
    args = parser.parse_args(["--data", "d", "--out", "o", "--base", str(base), "--tilt", "0",
                              "--crop-s", "6"])
    told = data_config_from_args(args, training_recipe(base))
    assert (told.tilt_prob, told.crop_s, told.group_exponent) == (0.0, 6.0, 0.5)
    fresh = data_config_from_args(parser.parse_args(["--data", "d", "--out", "o"]))
    assert fresh == DataConfig(folders=("d",))  # no base: DataConfig's defaults


def test_the_command_line_parser_leaves_the_training_data_module_unloaded():
    code = ("import sys, engine.cli; engine.cli.build_parser(); "
            "bad = [m for m in ('engine.training.dataconfig', 'scipy.signal') "
            "if m in sys.modules]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120, cwd=ROOT)


def test_tilt_flags_reach_the_data_config():
    from engine.training.cli import add_train_arguments, data_config_from_args

    parser = argparse.ArgumentParser()
    add_train_arguments(parser)
    plain = data_config_from_args(parser.parse_args(["--data", "d", "--out", "o"]))
    assert plain.tilt_prob == 0.0 and plain.folders == ("d",)
    args = parser.parse_args(["--data", "d", "--out", "o", "--tilt", "0.5", "--tilt-db", "-3", "5"])
    cfg = data_config_from_args(args)
    assert cfg.tilt_prob == 0.5 and cfg.tilt_db_per_octave == (-3.0, 5.0)
    with pytest.raises(ValueError, match="tilt_prob"):
        data_config_from_args(parser.parse_args(["--data", "d", "--out", "o", "--tilt", "2"]))


def test_phone_flag_sets_the_share_and_a_fine_tune_keeps_its_bases_unless_told():
    from engine.training.cli import add_train_arguments, data_config_from_args

    parser = argparse.ArgumentParser()
    add_train_arguments(parser)

    def share(cfg) -> float:
        weights = cfg.degrade.family_weights()
        return weights["phone"] / sum(weights.values())

    assert share(data_config_from_args(parser.parse_args(["--data", "d", "--out", "o"]))) == 0
    phoned = data_config_from_args(parser.parse_args(["--data", "d", "--out", "o",
                                                      "--phone", "0.2"]))
    assert share(phoned) == pytest.approx(0.2)
    recipe = json.loads(json.dumps(phoned.recipe()))  # as a model file's provenance holds it
    base_args = parser.parse_args(["--data", "e", "--out", "o"])
    assert share(data_config_from_args(base_args, recipe)) == pytest.approx(0.2)
    off = parser.parse_args(["--data", "e", "--out", "o", "--phone", "0"])
    assert share(data_config_from_args(off, recipe)) == 0
    with pytest.raises(ValueError, match="phone share"):
        data_config_from_args(parser.parse_args(["--data", "d", "--out", "o", "--phone", "1"]))


def test_hole_floor_leaves_encoder_holes_out_of_the_loss(data_dir, tmp_path):
    from engine.training.cli import add_train_arguments, data_config_from_args

    data = DataConfig(folders=(str(data_dir),), crop_s=1.5, val_files=1, seed=0, hole_floor=1e-4)
    trainer = Trainer(None, _cfg(), data, tmp_path / "run", device="cpu")
    clip = torch.tensor(synth_clip(1.5, seed=5), dtype=torch.float32)[None, None]  # (1, 1, S)
    spec = torch.fft.rfft(clip)
    freqs = torch.fft.rfftfreq(clip.shape[-1], 1 / 44100)
    holey = torch.fft.irfft(spec.masked_fill((freqs > 14000) & (freqs < 18000), 0),
                            n=clip.shape[-1])  # a band a lossy encoder dropped
    clean = trainer.step([{"hr": clip, "lr": lowpass_t(clip)}])
    dropped = trainer.step([{"hr": holey, "lr": lowpass_t(holey)}])
    assert float(clean["data/hole_share"]) < 1e-3  # the synthetic clip's faint top bins
    assert 0.1 < float(dropped["data/hole_share"]) < 0.25  # ~4 of 22 kHz, minus the edges
    parser = argparse.ArgumentParser()
    add_train_arguments(parser)
    args = parser.parse_args(["--data", "d", "--out", "o", "--hole-floor", "1e-4"])
    assert data_config_from_args(args).hole_floor == 1e-4
    inherited = data_config_from_args(parser.parse_args(["--data", "d", "--out", "o"]),
                                      data.recipe())
    assert inherited.hole_floor == 1e-4  # a fine-tune goes on leaving holes out
    with pytest.raises(ValueError, match="hole_floor"):
        DataConfig(folders=("d",), hole_floor=-1)


def lowpass_t(x: torch.Tensor, cutoff_hz: float = 8000.0) -> torch.Tensor:
    return torch.tensor(lowpass(x.numpy(), cutoff_hz))


def test_validation_also_scores_the_hole_free_references_alone(tiny_model):
    from engine.config import SamplerConfig
    from engine.training.data import ValidationSet, ValItem
    from engine.training.validate import validate

    clean = synth_clip(1.5, seed=6).astype(np.float32)
    spec = np.fft.rfft(clean)
    freqs = np.fft.rfftfreq(clean.shape[0], 1 / 44100)
    holey = np.fft.irfft(np.where((freqs > 11000) & (freqs < 19000), 0, spec),
                         n=clean.shape[0]).astype(np.float32)  # a band an encoder dropped
    items = [ValItem(hr, lowpass(hr, 4000.0), 4000.0, name, 0.0)
             for hr, name in ((clean, "clean"), (holey, "holey"))]
    sampler = SamplerConfig(steps=2, prior_t=0.0)
    # batch 1: a batch's cutoff is detected on all its items together
    both = validate(tiny_model, ValidationSet(items), sampler, torch.device("cpu"), batch=1)
    alone = validate(tiny_model, ValidationSet(items[:1]), sampler, torch.device("cpu"), batch=1)
    # (Griffin-Lim's phase noise comes from the global generator: not bit-identical per call)
    assert both["val/clean/lsd"] == pytest.approx(alone["val/lsd"], rel=2e-3)
    assert both["val/clean/lsd_sinc"] == pytest.approx(alone["val/lsd_sinc"], rel=1e-6)
    assert both["val/lsd"] > 1.5 * alone["val/lsd"]  # the filled holes, scored as errors
    only_holey = validate(tiny_model, ValidationSet(items[1:]), sampler, torch.device("cpu"))
    assert "val/clean/lsd" not in only_holey


def test_bridge_training_scores_the_warm_path_and_fine_tunes_keep_it(data_dir, tmp_path):
    from engine.training.cli import add_train_arguments, flow_changes_from_args

    trainer = Trainer(None, _cfg(steps=6, log_every=3, val_every=6), _data(data_dir),
                      tmp_path / "run", device="cpu", flow_changes={"bridge_prob": 0.5})
    events = list(trainer.iter_fit())
    logs = [ev.metrics for ev in events if ev.kind == "log"]
    assert all(np.isfinite(m["loss/flow_bridge"]) for m in logs)
    val = next(ev for ev in events if ev.kind == "val").metrics
    for key in ("val/lsd", "val/warm/lsd", "val/warm/lsd@8000", "val/warm/lsd_high@4000"):
        assert np.isfinite(val[key]), key
    assert "val/warm/lsd_sinc" not in val  # the same crops: sinc is scored once
    assert val["val/warm/lsd"] != val["val/lsd"]
    model = trainer.export(tmp_path / "bridged")
    assert read_model_config(model)["run"]["flow"]["bridge_prob"] == 0.5
    fine = Trainer(None, _cfg(steps=1), _data(data_dir), tmp_path / "ft", "cpu",
                   base_model=model)
    assert fine.run.flow.bridge_prob == 0.5  # the base's objective, kept
    parser = argparse.ArgumentParser()
    add_train_arguments(parser)
    args = parser.parse_args(["--data", "d", "--out", "o", "--bridge", "0.3", "--bridge-t", "0.9"])
    assert flow_changes_from_args(args) == {"bridge_prob": 0.3, "bridge_t": 0.9}
    assert flow_changes_from_args(parser.parse_args(["--data", "d", "--out", "o"])) == {}
