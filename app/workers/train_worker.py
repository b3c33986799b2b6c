"""Fine-tuning off the GUI thread: `TrainWorker` drains the engine's `Trainer.iter_fit()`.

The engine's trainer contract (engine issue: training):
    trainer = Trainer(run=None, train=TrainConfig(steps, batch_size), data=DataConfig(folders),
                      out_dir=Path, device="auto", base_model=Path | None, resume=bool)
    for ev in trainer.iter_fit(): ev.kind in {"log", "val", "checkpoint", "done"},
        ev.step, ev.total_steps, ev.metrics (dict[str, float]), ev.message
    trainer.stop()          # thread-safe: finish the step, save a checkpoint, end the generator
    trainer.export(path)    # -> Path of a model file usable in the settings
`FineTuneController` owns the worker's QThread; tests inject a fake trainer factory.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from PySide6.QtCore import QObject, QThread, Signal, Slot

log = logging.getLogger(__name__)

REQUIRED_NAMES = ("Trainer", "TrainConfig", "DataConfig")
SHUTDOWN_WAIT_MS = 180_000  # stop = finish the step, validate, save a checkpoint


@dataclass(frozen=True)
class FineTuneParams:
    folders: tuple[str, ...]
    base_model: str | None  # "default", a model file, or None to train from scratch
    steps: int
    batch_size: int
    out_dir: Path
    device: str = "auto"
    max_minutes: float = 0.0  # > 0: stop after this long, the LR decay fitted to end then
    resume: bool = False  # continue the run in out_dir from its last checkpoint
    cache_dir: Path | None = None  # decoded-audio cache (None: out_dir/cache)


@dataclass(frozen=True)
class TrainUpdate:
    """A copy of one engine `TrainEvent` (safe to hand to the GUI thread)."""

    kind: str  # log | val | checkpoint | done
    step: int
    total_steps: int
    metrics: dict[str, float] = field(default_factory=dict)
    message: str = ""


class TrainerLike(Protocol):
    def iter_fit(self) -> Iterator[Any]: ...
    def stop(self) -> None: ...
    def export(self, path: Path) -> Path: ...


TrainerFactory = Callable[[FineTuneParams], TrainerLike]


def trainer_available() -> tuple[bool, str]:
    """Whether this build's engine exports the trainer API (checked without importing it)."""
    import engine

    missing = [name for name in REQUIRED_NAMES if name not in engine.__all__]
    if missing:
        return False, ("Fine-tuning needs the engine's trainer, which this build lacks "
                       f"(missing: {', '.join(missing)}).")
    return True, ""


def engine_trainer(params: FineTuneParams) -> TrainerLike:
    """Build the engine's `Trainer` from the page's parameters (runs on the worker thread)."""
    import dataclasses

    from engine import (
        FINETUNE,
        DataConfig,
        TrainConfig,
        Trainer,
        resolve_model_path,
        training_recipe,
    )

    base = None if params.base_model is None else resolve_model_path(params.base_model)
    # From a base model: the fine-tune preset (lower LR, short warm-up); else a fresh run.
    preset = FINETUNE if base is not None else TrainConfig()
    train = dataclasses.replace(preset, steps=params.steps, batch_size=params.batch_size)
    if params.max_minutes > 0:
        train = dataclasses.replace(train, max_minutes=params.max_minutes, fit_schedule=True)
    # a fine-tune makes its crops the way its base model was trained (e.g. its spectral tilt)
    data = DataConfig.continuing(None if base is None else training_recipe(base), params.folders)
    if params.cache_dir is not None:  # shared by the page's runs: the audio is decoded once
        data = dataclasses.replace(data, cache_dir=str(params.cache_dir))
    return Trainer(run=None, train=train, data=data, out_dir=params.out_dir,
                   device=params.device, base_model=base, resume=params.resume)


class TrainWorker(QObject):
    """Runs one training at a time on its thread; `stop()` is thread-safe."""

    update = Signal(object)  # TrainUpdate
    finished = Signal(bool)  # True: stopped early, False: ran to the end
    failed = Signal(str)
    exported = Signal(str)

    def __init__(self, factory: TrainerFactory) -> None:
        super().__init__()
        self._factory = factory
        self._lock = threading.Lock()
        self._trainer: TrainerLike | None = None
        self._stop = False

    def stop(self) -> None:
        with self._lock:
            self._stop = True
            trainer = self._trainer
        if trainer is not None:
            trainer.stop()

    @Slot(object)
    def run(self, params: FineTuneParams) -> None:
        with self._lock:
            self._stop = False
        try:
            trainer = self._factory(params)
            with self._lock:
                self._trainer = trainer
                stop_now = self._stop
            if stop_now:
                trainer.stop()
            for ev in trainer.iter_fit():
                self.update.emit(TrainUpdate(str(ev.kind), int(ev.step), int(ev.total_steps),
                                             {str(k): float(v) for k, v in ev.metrics.items()},
                                             str(getattr(ev, "message", ""))))
        except Exception as e:  # data, model or CUDA problems end the run, not the app
            log.exception("fine-tuning failed")
            self.failed.emit(f"{type(e).__name__}: {e}")
            return
        with self._lock:
            stopped = self._stop
        self.finished.emit(stopped)

    @Slot(str)
    def export(self, path: str) -> None:
        with self._lock:
            trainer = self._trainer
        if trainer is None:
            self.failed.emit("nothing to export: no training has run")
            return
        try:
            written = trainer.export(Path(path))
        except Exception as e:
            log.exception("exporting the fine-tuned model failed")
            self.failed.emit(f"export failed: {type(e).__name__}: {e}")
            return
        self.exported.emit(str(written))


class FineTuneController(QObject):
    """Owns the training thread; the main window connects the page to it."""

    update = Signal(object)
    finished = Signal(bool)
    failed = Signal(str)
    exported = Signal(str)
    _run_requested = Signal(object)
    _export_requested = Signal(str)

    def __init__(self, factory: TrainerFactory | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.injected = factory is not None
        self.worker = TrainWorker(factory or engine_trainer)
        self.thread = QThread(self)
        self.thread.setObjectName("train-worker")
        self.worker.moveToThread(self.thread)
        self.thread.finished.connect(self.worker.deleteLater)
        self._run_requested.connect(self.worker.run)
        self._export_requested.connect(self.worker.export)
        self.worker.update.connect(self.update)
        self.worker.finished.connect(self._on_worker_finished)
        self.worker.failed.connect(self._on_worker_failed)
        self.worker.exported.connect(self.exported)
        self.running = False
        self.thread.start()

    def available(self) -> tuple[bool, str]:
        return (True, "") if self.injected else trainer_available()

    @Slot(object)
    def start(self, params: FineTuneParams) -> None:
        if not self.running:
            self.running = True
            self._run_requested.emit(params)

    @Slot()
    def stop(self) -> None:
        self.worker.stop()

    @Slot(str)
    def export(self, path: str) -> None:
        self._export_requested.emit(path)

    @Slot(bool)
    def _on_worker_finished(self, stopped: bool) -> None:
        self.running = False
        self.finished.emit(stopped)

    @Slot(str)
    def _on_worker_failed(self, reason: str) -> None:
        self.running = False
        self.failed.emit(reason)

    def shutdown(self) -> None:
        self.worker.stop()
        self.thread.quit()
        if not self.thread.wait(SHUTDOWN_WAIT_MS):
            log.warning("the training worker did not stop within %d ms", SHUTDOWN_WAIT_MS)
