"""EngineWorker message sequences on its own thread, with a fake engine (no widgets)."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QObject, QThread, Signal, Slot
from pytestqt.qtbot import QtBot

from app.workers.engine_worker import EngineWorker, free_path
from app.workers.messages import (
    JobCancelled,
    JobFailed,
    JobProgress,
    JobRequest,
    JobResult,
    ModelStatus,
)


@dataclass(frozen=True)
class FakeResult:
    output_path: Path
    cutoff_hz: float = 4000.0
    generated: bool = True
    elapsed_s: float = 0.1
    clipped_samples: int = 3


@dataclass(frozen=True)
class FakeProgress:
    fraction: float
    chunks_done: int
    chunks_total: int
    step: int
    steps: int
    result: FakeResult | None = None


class FakeRestorer:
    def __init__(self, backend: FakeBackend) -> None:
        self.backend = backend

    def iter_file(self, in_path: Path, out_path: Path, **kwargs: Any) -> Iterator[FakeProgress]:
        b = self.backend
        b.calls.append(kwargs)
        try:
            for i in range(b.steps):
                if i == b.block_at:
                    b.blocked.set()
                    assert b.release.wait(5)
                if i == b.fail_at:
                    raise ValueError("model exploded")
                yield FakeProgress((i + 1) / (b.steps + 1), 0, 1, i + 1, b.steps)
            out_path.write_bytes(b"RIFF")
            yield FakeProgress(1.0, 1, 1, b.steps, b.steps, FakeResult(out_path))
        finally:
            b.closed = True


class FakeBackend:
    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.steps, self.block_at, self.fail_at = 4, -1, -1
        self.blocked, self.release = threading.Event(), threading.Event()
        self.closed = False
        self.load_error: str | None = None
        self.loads = 0
        self.calls: list[dict[str, Any]] = []

    def load(self, spec: str, device: str) -> tuple[Any, ModelStatus]:
        self.loads += 1
        if self.load_error:
            raise ValueError(self.load_error)
        return "model", ModelStatus(True, spec, "cpu", Path(spec))

    def restorer(self, model: Any, request: JobRequest) -> FakeRestorer:
        return FakeRestorer(self)

    def output_path(self, request: JobRequest) -> Path:
        return self.out_dir / "out.wav"

    def expected_errors(self) -> tuple[type[BaseException], ...]:
        return (ValueError, OSError)


@pytest.fixture
def backend(tmp_path: Path) -> FakeBackend:
    return FakeBackend(tmp_path)


@pytest.fixture
def worker(qtbot: QtBot, backend: FakeBackend) -> Iterator[EngineWorker]:
    w = EngineWorker(backend, clock=iter(range(0, 10_000, 1)).__next__)
    thread = QThread()
    w.moveToThread(thread)
    thread.start()
    yield w
    backend.release.set()
    thread.quit()
    assert thread.wait(5000)


def request(rid: int = 1, job: int = 7) -> JobRequest:
    return JobRequest(rid, job, Path("in.wav"), None, "wav", "PCM_24", "m", "cpu", 4, "euler",
                      3800.0)


class Recorder(QObject):
    """Lives on the test's (GUI) thread, so worker signals reach it queued, as in the app.

    (pytest-qt's waitSignal connects a plain callable, which PySide calls directly on the
    emitting thread: racy for signals from a worker thread.)
    """

    def __init__(self, worker: EngineWorker) -> None:
        super().__init__()
        self.seen: list[object] = []
        for sig in (worker.job_progress, worker.job_finished, worker.job_failed,
                    worker.job_cancelled, worker.model_status):
            sig.connect(self._on_worker_message)
        worker.job_started.connect(self._on_worker_job_started)

    @Slot(object)
    def _on_worker_message(self, message: object) -> None:
        self.seen.append(message)

    @Slot(int, int)
    def _on_worker_job_started(self, request_id: int, job_id: int) -> None:
        self.seen.append(("started", request_id, job_id))

    def wait_for(self, qtbot: QtBot, kind: type, count: int = 1) -> object:
        qtbot.waitUntil(lambda: sum(isinstance(m, kind) for m in self.seen) >= count,
                        timeout=5000)
        return [m for m in self.seen if isinstance(m, kind)][-1]


def test_a_job_reports_started_progress_then_result(qtbot: QtBot, worker: EngineWorker,
                                                    backend: FakeBackend) -> None:
    rec = Recorder(worker)
    _invoke(worker, request())
    rec.wait_for(qtbot, JobResult)
    seen = rec.seen
    kinds = [type(m).__name__ if not isinstance(m, tuple) else m[0] for m in seen]
    assert kinds == ["started", "ModelStatus", *["JobProgress"] * 4, "JobResult"]
    assert seen[-1].clipped_samples == 3  # type: ignore[union-attr]
    result = seen[-1]
    assert isinstance(result, JobResult) and result.output_path.exists()
    assert backend.calls[0] == {"fmt": "wav", "subtype": "PCM_24", "overwrite": False,
                                "cutoff_hz": 3800.0, "out_rate": 44100}
    assert all(isinstance(m, JobProgress) and m.job_id == 7 for m in seen[2:6])


def test_the_model_is_loaded_once(qtbot: QtBot, worker: EngineWorker,
                                  backend: FakeBackend) -> None:
    rec = Recorder(worker)
    for rid in (1, 2):
        backend.out_dir.joinpath("out.wav").unlink(missing_ok=True)
        _invoke(worker, request(rid))
        rec.wait_for(qtbot, JobResult, rid)
    assert backend.loads == 1


def test_cancel_mid_run_closes_the_generator(qtbot: QtBot, worker: EngineWorker,
                                             backend: FakeBackend) -> None:
    backend.block_at = 2
    rec = Recorder(worker)
    _invoke(worker, request())
    assert backend.blocked.wait(5)
    worker.cancel(1)
    backend.release.set()
    assert rec.wait_for(qtbot, JobCancelled) == JobCancelled(1, 7)
    assert backend.closed and not (backend.out_dir / "out.wav").exists()
    assert not any(isinstance(m, JobResult) for m in rec.seen)


def test_a_request_cancelled_before_it_starts_is_skipped(qtbot: QtBot, worker: EngineWorker,
                                                         backend: FakeBackend) -> None:
    rec = Recorder(worker)
    worker.cancel(5)
    _invoke(worker, request(rid=5))
    rec.wait_for(qtbot, JobCancelled)
    assert not any(isinstance(m, tuple) for m in rec.seen) and backend.calls == []


def test_an_engine_error_fails_the_job_and_the_queue_goes_on(
        qtbot: QtBot, worker: EngineWorker, backend: FakeBackend) -> None:
    backend.fail_at = 1
    rec = Recorder(worker)
    _invoke(worker, request())
    assert rec.wait_for(qtbot, JobFailed) == JobFailed(1, 7, "model exploded")
    backend.fail_at = -1
    _invoke(worker, request(rid=2, job=8))
    assert rec.wait_for(qtbot, JobResult).job_id == 8  # type: ignore[attr-defined]


def test_a_model_that_cannot_load_fails_the_job_with_the_reason(
        qtbot: QtBot, worker: EngineWorker, backend: FakeBackend) -> None:
    backend.load_error = "no default model is shipped yet"
    rec = Recorder(worker)
    _invoke(worker, request())
    failed = rec.wait_for(qtbot, JobFailed)
    status = next(m for m in rec.seen if isinstance(m, ModelStatus))
    assert not status.ok and "no default model" in status.error
    assert "no default model" in failed.reason  # type: ignore[attr-defined]


def test_free_path_never_reuses_an_existing_file(tmp_path: Path) -> None:
    target = tmp_path / "a.jatsr.wav"
    assert free_path(target) == target
    target.write_bytes(b"x")
    (tmp_path / "a.jatsr (2).wav").write_bytes(b"x")
    assert free_path(target) == tmp_path / "a.jatsr (3).wav"


def _invoke(worker: EngineWorker, req: JobRequest) -> None:
    """Send a request the way the app does: a queued signal into the worker's thread."""

    class Sender(QObject):
        send = Signal(object)

    sender = Sender()
    sender.send.connect(worker.process)
    sender.send.emit(req)
    _keep.append(sender)


_keep: list[object] = []


def test_real_engine_sampler_follows_the_warm_start_setting() -> None:
    import torch

    from app.workers.engine_worker import RealEngine
    from engine.codecs import build_codec
    from engine.config import HOLE_DEPTH_DB, WARM_START_T
    from engine.model.dit import PRESETS, DiT
    from engine.modelfile import JaTModel

    run = PRESETS["tiny"]
    torch.manual_seed(0)
    model = JaTModel(DiT(run.model), build_codec("stft"), run)
    auto = RealEngine().restorer(model, request())  # the default: noise-like inputs only
    warm = RealEngine().restorer(model, dataclasses.replace(request(), warm_start=True))
    assert warm.sampler.prior_t == auto.sampler.prior_t == WARM_START_T > 0
    assert warm.sampler.prior_min_flatness == 0.0 < auto.sampler.prior_min_flatness
    assert auto.sampler.for_input(3800.0, 0.1, False).prior_t == 0.0  # tonal: from noise
    assert auto.sampler.for_input(10000.0, None, True).prior_t == 0.0  # one-shot: from noise
    assert warm.sampler.for_input(3800.0, 0.1).prior_t == WARM_START_T  # the box: always
    assert warm.sampler.for_input(10000.0, None, True).prior_t == WARM_START_T
    assert (auto.sampler.steps, auto.sampler.solver) == (4, "euler")
    assert warm.pipeline.keep_louder_input is True  # the engine's default
    replacing = RealEngine().restorer(model, dataclasses.replace(request(),
                                                                 keep_louder_input=False))
    assert replacing.pipeline.keep_louder_input is False
    assert auto.pipeline.fill_holes_db is None  # the engine's default: the kept band untouched
    filling = RealEngine().restorer(model, dataclasses.replace(request(), fill_holes=True))
    assert filling.pipeline.fill_holes_db == HOLE_DEPTH_DB
