"""The long-lived engine worker: owns the model on its own QThread and restores files in order.

Requests arrive by queued signal (`process`), so Qt's event queue is the job queue: one file at a
time, in the order they were sent. `cancel()` is thread-safe and is checked between the
restoration generator's steps; closing `Restorer.iter_file` early leaves no output file.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

from PySide6.QtCore import QObject, Signal, Slot

from app.workers.messages import (
    JobCancelled,
    JobFailed,
    JobProgress,
    JobRequest,
    JobResult,
    ModelStatus,
)

log = logging.getLogger(__name__)

PROGRESS_INTERVAL_S = 0.05  # at most 20 progress messages a second


class RestorerLike(Protocol):
    def iter_file(self, in_path: Path, out_path: Path, fmt: str = ..., subtype: str = ...,
                  overwrite: bool = ..., cutoff_hz: float | None = ...,
                  out_rate: int = ...) -> Iterator[Any]: ...


class EngineBackend(Protocol):
    """What the worker needs from `engine`; tests pass a fake."""

    def load(self, spec: str, device: str) -> tuple[Any, ModelStatus]: ...
    def restorer(self, model: Any, request: JobRequest) -> RestorerLike: ...
    def output_path(self, request: JobRequest) -> Path: ...
    def expected_errors(self) -> tuple[type[BaseException], ...]: ...


class RealEngine:
    """`EngineBackend` over the engine's public API (imported lazily, on the worker thread)."""

    def load(self, spec: str, device: str) -> tuple[Any, ModelStatus]:
        import engine

        dev = engine.resolve_device(device)
        path = engine.resolve_model_path(spec)
        summary = engine.read_model_config(path)
        model = engine.load_model(path, device=dev)
        return model, ModelStatus(True, spec, describe_device(dev), Path(path), "", summary)

    def restorer(self, model: Any, request: JobRequest) -> RestorerLike:
        import engine

        # the box on: every input; off: the default, which leaves out one-shots, and inputs
        # cut off at or below 6 kHz unless noise-like
        extra = {"prior_min_flatness": 0.0, "prior_skip_one_shots": False} \
            if request.warm_start else {}
        sampler = engine.SamplerConfig(steps=request.steps, solver=request.solver, **extra)
        pipeline = engine.PipelineConfig(
            keep_louder_input=request.keep_louder_input,
            fill_holes_db=engine.HOLE_DEPTH_DB if request.fill_holes else None)
        return engine.Restorer(model, sampler, pipeline,
                               device=engine.resolve_device(request.device))

    def output_path(self, request: JobRequest) -> Path:
        import engine

        path = engine.output_path(request.input_path, request.output_folder, request.fmt,
                                  request.output_subdir)
        if request.output_folder is not None and request.output_folder.is_dir():
            # a dropped folder's tree, made as it fills; a missing output folder (a drive no
            # longer mounted) is not made: the job fails with the writer's "does not exist"
            path.parent.mkdir(parents=True, exist_ok=True)
        return free_path(path)

    def expected_errors(self) -> tuple[type[BaseException], ...]:
        import engine

        return (engine.AudioInputError, engine.ModelFileError, engine.CodecError, ValueError,
                RuntimeError, OSError, MemoryError)


def describe_device(device: Any) -> str:
    """'cpu' or 'cuda:0 (GPU name)'."""
    import engine

    return engine.device_name(device)


def free_path(path: Path) -> Path:
    """`path`, or `stem (2).ext`, `stem (3).ext`, ... : the first that does not exist."""
    if not path.exists():
        return path
    for n in itertools.count(2):
        candidate = path.with_name(f"{path.stem} ({n}){path.suffix}")
        if not candidate.exists():
            return candidate
    raise AssertionError("unreachable")


class EngineWorker(QObject):
    """Restores files one by one on its own thread; create it, then `moveToThread`."""

    model_status = Signal(object)  # ModelStatus
    job_started = Signal(int, int)  # request_id, job_id
    job_progress = Signal(object)  # JobProgress
    job_finished = Signal(object)  # JobResult
    job_failed = Signal(object)  # JobFailed
    job_cancelled = Signal(object)  # JobCancelled
    unexpected_error = Signal(object)  # (type, value, traceback) for the excepthook dialog

    def __init__(self, backend: EngineBackend | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._backend: EngineBackend = backend or RealEngine()
        self._clock = clock
        self._lock = threading.Lock()
        self._cancelled: set[int] = set()  # request ids
        self._model: Any = None
        self._model_key: tuple[str, str] | None = None
        self._model_error = ""

    def cancel(self, request_id: int) -> None:
        """Thread-safe: stop that request at the next step (or skip it if not started)."""
        with self._lock:
            self._cancelled.add(request_id)

    def _is_cancelled(self, request_id: int) -> bool:
        with self._lock:
            return request_id in self._cancelled

    def _forget(self, request_id: int) -> None:
        with self._lock:
            self._cancelled.discard(request_id)

    @Slot(str, str)
    def load_model(self, spec: str, device: str) -> None:
        """(Re)load the model if the spec or device changed; reports `model_status`."""
        self._ensure_model(spec, device)

    def _ensure_model(self, spec: str, device: str) -> Any:
        if self._model is not None and self._model_key == (spec, device):
            return self._model
        self._model, self._model_key = None, None
        try:
            model, status = self._backend.load(spec, device)
        except self._backend.expected_errors() as e:
            log.warning("model %s on %s: %s", spec, device, e)
            self._model_error = str(e)
            self.model_status.emit(ModelStatus(False, spec, device, None, str(e)))
            return None
        self._model, self._model_key = model, (spec, device)
        log.info("model %s loaded on %s", status.path, status.device)
        self.model_status.emit(status)
        return model

    @Slot(object)
    def process(self, request: JobRequest) -> None:
        """Restore one file; emits started, progress..., then finished/failed/cancelled."""
        rid, jid = request.request_id, request.job_id
        try:
            if self._is_cancelled(rid):
                self.job_cancelled.emit(JobCancelled(rid, jid))
                return
            self.job_started.emit(rid, jid)
            self._run(request)
        except self._backend.expected_errors() as e:
            reason = getattr(e, "reason", None) or str(e) or type(e).__name__
            log.warning("%s: %s", request.input_path, reason)
            self.job_failed.emit(JobFailed(rid, jid, reason))
        except Exception as e:
            log.exception("unexpected error restoring %s", request.input_path)
            self.job_failed.emit(JobFailed(rid, jid, f"unexpected error: {e!r} (see the log)"))
            self.unexpected_error.emit(sys.exc_info())
        finally:
            self._forget(rid)

    def _run(self, request: JobRequest) -> None:
        rid, jid = request.request_id, request.job_id
        model = self._ensure_model(request.model, request.device)
        if model is None:
            raise _ModelUnavailable(f"no usable model ({self._model_error})")
        restorer = self._backend.restorer(model, request)
        out_path = self._backend.output_path(request)
        steps = restorer.iter_file(request.input_path, out_path, fmt=request.fmt,
                                   subtype=request.subtype, overwrite=False,
                                   cutoff_hz=request.cutoff_hz, out_rate=request.out_rate)
        last_emit = -1.0
        with contextlib.closing(steps):
            for progress in steps:
                if self._is_cancelled(rid):
                    steps.close()  # the engine's writer discards its temporary file
                    log.info("cancelled %s", request.input_path)
                    self.job_cancelled.emit(JobCancelled(rid, jid))
                    return
                result = progress.result
                if result is not None:
                    self.job_finished.emit(JobResult(rid, jid, Path(result.output_path),
                                                     float(result.cutoff_hz),
                                                     bool(result.generated),
                                                     float(result.elapsed_s),
                                                     int(result.clipped_samples)))
                    return
                now = self._clock()
                if now - last_emit >= PROGRESS_INTERVAL_S:
                    last_emit = now
                    self.job_progress.emit(JobProgress(
                        rid, jid, float(progress.fraction), int(progress.step),
                        int(progress.steps), int(progress.chunks_done),
                        int(progress.chunks_total)))
        raise RuntimeError("the restoration ended without a result")


class _ModelUnavailable(RuntimeError):
    """No model could be loaded for a job (the reason was reported by `model_status`)."""
