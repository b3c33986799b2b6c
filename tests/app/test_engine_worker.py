"""EngineWorker message sequences on its own thread, with a fake engine (no widgets)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QThread
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


def record(qtbot: QtBot, worker: EngineWorker) -> list[object]:
    seen: list[object] = []
    for sig in (worker.job_progress, worker.job_finished, worker.job_failed,
                worker.job_cancelled, worker.model_status):
        sig.connect(seen.append)
    worker.job_started.connect(lambda rid, jid: seen.append(("started", rid, jid)))
    return seen


def test_a_job_reports_started_progress_then_result(qtbot: QtBot, worker: EngineWorker,
                                                    backend: FakeBackend) -> None:
    seen = record(qtbot, worker)
    with qtbot.waitSignal(worker.job_finished, timeout=5000):
        _invoke(worker, request())
    kinds = [type(m).__name__ if not isinstance(m, tuple) else m[0] for m in seen]
    assert kinds == ["started", "ModelStatus", *["JobProgress"] * 4, "JobResult"]
    result = seen[-1]
    assert isinstance(result, JobResult) and result.output_path.exists()
    assert backend.calls[0] == {"fmt": "wav", "subtype": "PCM_24", "overwrite": False,
                                "cutoff_hz": 3800.0}
    assert all(isinstance(m, JobProgress) and m.job_id == 7 for m in seen[2:6])


def test_the_model_is_loaded_once(qtbot: QtBot, worker: EngineWorker,
                                  backend: FakeBackend) -> None:
    for rid in (1, 2):
        with qtbot.waitSignal(worker.job_finished, timeout=5000):
            backend.out_dir.joinpath("out.wav").unlink(missing_ok=True)
            _invoke(worker, request(rid))
    assert backend.loads == 1


def test_cancel_mid_run_closes_the_generator(qtbot: QtBot, worker: EngineWorker,
                                             backend: FakeBackend) -> None:
    backend.block_at = 2
    seen = record(qtbot, worker)
    _invoke(worker, request())
    assert backend.blocked.wait(5)
    worker.cancel(1)
    with qtbot.waitSignal(worker.job_cancelled, timeout=5000) as blocker:
        backend.release.set()
    assert blocker.args[0] == JobCancelled(1, 7)
    assert backend.closed and not (backend.out_dir / "out.wav").exists()
    assert not any(isinstance(m, JobResult) for m in seen)


def test_a_request_cancelled_before_it_starts_is_skipped(qtbot: QtBot, worker: EngineWorker,
                                                         backend: FakeBackend) -> None:
    seen = record(qtbot, worker)
    worker.cancel(5)
    with qtbot.waitSignal(worker.job_cancelled, timeout=5000):
        _invoke(worker, request(rid=5))
    assert not any(isinstance(m, tuple) for m in seen) and backend.calls == []


def test_an_engine_error_fails_the_job_and_the_queue_goes_on(
        qtbot: QtBot, worker: EngineWorker, backend: FakeBackend) -> None:
    backend.fail_at = 1
    with qtbot.waitSignal(worker.job_failed, timeout=5000) as blocker:
        _invoke(worker, request())
    assert blocker.args[0] == JobFailed(1, 7, "model exploded")
    backend.fail_at = -1
    with qtbot.waitSignal(worker.job_finished, timeout=5000):
        _invoke(worker, request(rid=2, job=8))


def test_a_model_that_cannot_load_fails_the_job_with_the_reason(
        qtbot: QtBot, worker: EngineWorker, backend: FakeBackend) -> None:
    backend.load_error = "no default model is shipped yet"
    seen = record(qtbot, worker)
    with qtbot.waitSignal(worker.job_failed, timeout=5000) as blocker:
        _invoke(worker, request())
    status = next(m for m in seen if isinstance(m, ModelStatus))
    assert not status.ok and "no default model" in status.error
    assert "no default model" in blocker.args[0].reason


def test_free_path_never_reuses_an_existing_file(tmp_path: Path) -> None:
    target = tmp_path / "a.jatsr.wav"
    assert free_path(target) == target
    target.write_bytes(b"x")
    (tmp_path / "a.jatsr (2).wav").write_bytes(b"x")
    assert free_path(target) == tmp_path / "a.jatsr (3).wav"


def _invoke(worker: EngineWorker, req: JobRequest) -> None:
    """Send a request the way the app does: a queued signal into the worker's thread."""
    from PySide6.QtCore import QObject, Signal

    class Sender(QObject):
        send = Signal(object)

    sender = Sender()
    sender.send.connect(worker.process)
    sender.send.emit(req)
    _keep.append(sender)


_keep: list[object] = []
