"""Drives the queue: scans and probes added files, sends jobs to the engine worker, tracks them.

Owns the engine worker's QThread and the job runner; no widgets here. The main window connects
its widgets to this object's signals and methods.
"""

from __future__ import annotations

import itertools
import logging
from pathlib import Path

from PySide6.QtCore import QObject, QThread, Signal, Slot

from app.models.queue_model import ACTIVE, PROCESSABLE, QueueModel, Status
from app.settings import Settings
from app.workers.engine_worker import EngineWorker
from app.workers.jobs import JobRunner, ProbeJob, ScanJob
from app.workers.messages import (
    JobCancelled,
    JobFailed,
    JobProgress,
    JobRequest,
    JobResult,
    ProbeResult,
)

log = logging.getLogger(__name__)

SHUTDOWN_WAIT_MS = 60_000  # a cancelled job ends after its current sampler step


class QueueController(QObject):
    """Queue state machine around `QueueModel`, the engine worker and the pool jobs."""

    item_finished = Signal(int)  # job id, restored successfully
    overall_progress = Signal(float, str)  # 0..1 over the current batch, status text
    model_status = Signal(object)  # ModelStatus, from the worker
    unexpected_error = Signal(object)  # exc_info from the worker
    _process_requested = Signal(object)  # JobRequest -> worker (queued)
    _load_requested = Signal(str, str)  # model spec, device -> worker (queued)

    def __init__(self, settings: Settings, worker: EngineWorker | None = None,
                 runner: JobRunner | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.model = QueueModel(self)
        self.runner = runner or JobRunner(parent=self)
        self._request_ids = itertools.count(1)
        self._batch: set[int] = set()
        self.worker = worker or EngineWorker()
        self.thread = QThread(self)
        self.thread.setObjectName("engine-worker")
        self.worker.moveToThread(self.thread)
        self.thread.finished.connect(self.worker.deleteLater)
        self._process_requested.connect(self.worker.process)
        self._load_requested.connect(self.worker.load_model)
        self.worker.model_status.connect(self.model_status)
        self.worker.unexpected_error.connect(self.unexpected_error)
        self.worker.job_started.connect(self._on_worker_job_started)
        self.worker.job_progress.connect(self._on_worker_job_progress)
        self.worker.job_finished.connect(self._on_worker_job_finished)
        self.worker.job_failed.connect(self._on_worker_job_failed)
        self.worker.job_cancelled.connect(self._on_worker_job_cancelled)
        self.thread.start()

    # ---- commands ----
    def load_model(self) -> None:
        """Ask the worker to (re)load the configured model (reports `model_status`)."""
        options = self.settings.processing_options()
        self._load_requested.emit(options.model, options.device)

    def add_paths(self, paths: list[str]) -> None:
        """Files and folders: expanded off the GUI thread, then probed one by one."""
        if paths:
            job = ScanJob([str(p) for p in paths])
            job.signals.done.connect(self._on_scan_done)
            self.runner.start(job)

    def process(self, job_ids: list[int]) -> int:
        """Queue these items (those that can be processed); returns how many were queued."""
        options = self.settings.processing_options()
        queued = 0
        for job_id in job_ids:
            item = self.model.item(job_id)
            if item is None or item.status not in PROCESSABLE:
                continue
            request = JobRequest(
                next(self._request_ids), job_id, item.path,
                Path(options.output_folder) if options.output_folder else None,
                options.fmt, options.subtype, options.model, options.device, options.steps,
                options.solver, item.cutoff_set_hz or options.cutoff_hz or item.cutoff_hz,
                warm_start=options.warm_start, keep_louder_input=options.keep_louder_input,
                fill_holes=options.fill_holes, output_subdir=item.subdir, out_rate=options.rate)
            self.model.update(job_id, status=Status.QUEUED, progress=0.0, step_text="",
                              message="", request_id=request.request_id)
            self._batch.add(job_id)
            self._process_requested.emit(request)
            queued += 1
        self._report_progress()
        return queued

    def process_all(self) -> int:
        return self.process([i.job_id for i in self.model.items() if i.status is Status.READY])

    def cancel(self, job_ids: list[int]) -> None:
        for job_id in job_ids:
            item = self.model.item(job_id)
            if item is None or item.status not in ACTIVE:
                continue
            self.worker.cancel(item.request_id)  # thread-safe
            if item.status is Status.QUEUED:
                self.model.update(job_id, status=Status.CANCELLED, progress=0.0, step_text="")
            else:
                self.model.update(job_id, status=Status.CANCELLING)
        self._report_progress()

    def cancel_all(self) -> None:
        self.cancel([i.job_id for i in self.model.items() if i.status in ACTIVE])

    def remove(self, job_ids: list[int]) -> None:
        self.cancel(job_ids)
        self.model.remove(job_ids)
        self._batch.difference_update(job_ids)
        self._report_progress()

    def shutdown(self) -> None:
        """Cancel everything, stop the worker thread (bounded wait) and the pool jobs."""
        self.cancel_all()
        self.runner.cancel_all()
        self.thread.quit()
        if not self.thread.wait(SHUTDOWN_WAIT_MS):
            log.warning("the engine worker did not stop within %d ms", SHUTDOWN_WAIT_MS)
        if not self.runner.wait(SHUTDOWN_WAIT_MS):
            log.warning("pool jobs still running at shutdown")

    @property
    def busy(self) -> bool:
        return any(i.status in ACTIVE for i in self.model.items())

    # ---- pool job results ----
    @Slot(object)
    def _on_scan_done(self, found: list[tuple[Path, Path]]) -> None:
        paths, subdirs = [p for p, _ in found], [s for _, s in found]
        for job_id in self.model.add_paths(paths, subdirs):
            item = self.model.item(job_id)
            assert item is not None
            job = ProbeJob(job_id, item.path)
            job.signals.done.connect(self._on_probe_done)
            job.signals.failed.connect(self._on_probe_failed)
            self.runner.start(job)

    @Slot(object)
    def _on_probe_done(self, result: ProbeResult) -> None:
        self.model.update(result.job_id, status=Status.READY, sample_rate=result.sample_rate,
                          channels=result.channels, duration_s=result.duration_s,
                          cutoff_hz=result.cutoff_hz)

    @Slot(object, str)
    def _on_probe_failed(self, job_id: object, reason: str) -> None:
        self.model.update(int(job_id), status=Status.INVALID, message=reason)  # type: ignore

    # ---- worker messages (stale request ids are ignored) ----
    def _current(self, request_id: int, job_id: int) -> bool:
        item = self.model.item(job_id)
        return item is not None and item.request_id == request_id

    @Slot(int, int)
    def _on_worker_job_started(self, request_id: int, job_id: int) -> None:
        if self._current(request_id, job_id):
            item = self.model.item(job_id)
            if item is not None and item.status is Status.QUEUED:
                self.model.update(job_id, status=Status.PROCESSING, progress=0.001,
                                  step_text="starting…")
            self._report_progress()

    @Slot(object)
    def _on_worker_job_progress(self, p: JobProgress) -> None:
        if self._current(p.request_id, p.job_id):
            text = f"{p.fraction:.0%} · chunk {min(p.chunks_done + 1, p.chunks_total)}/" \
                   f"{p.chunks_total} · step {p.step}/{p.steps}"
            self.model.update(p.job_id, progress=max(p.fraction, 0.001), step_text=text)
            self._report_progress()

    @Slot(object)
    def _on_worker_job_finished(self, r: JobResult) -> None:
        if not self._current(r.request_id, r.job_id):
            return
        note = f"restored in {r.elapsed_s:.1f} s" if r.generated else \
            "already full-band: nothing generated"
        if r.clipped_samples:
            n = r.clipped_samples
            note += (f"; {n} sample{'s' if n > 1 else ''} beyond full scale clipped (WAV "
                     "32-bit float keeps them)")
        item = self.model.item(r.job_id)
        # the detected cutoff stays what it is (a hand-set one, per file or global, only
        # applies to that run); the engine's own detection fills it if the probe had none
        detected = {"cutoff_hz": r.cutoff_hz} if item is not None and item.cutoff_hz is None \
            else {}
        self.model.update(r.job_id, status=Status.DONE, progress=1.0, step_text="",
                          output_path=r.output_path, message=note, cutoff_used_hz=r.cutoff_hz,
                          **detected)
        self._report_progress()
        self.item_finished.emit(r.job_id)

    @Slot(object)
    def _on_worker_job_failed(self, f: JobFailed) -> None:
        if self._current(f.request_id, f.job_id):
            self.model.update(f.job_id, status=Status.FAILED, progress=0.0, step_text="",
                              message=f.reason)
            self._report_progress()

    @Slot(object)
    def _on_worker_job_cancelled(self, c: JobCancelled) -> None:
        if self._current(c.request_id, c.job_id):
            self.model.update(c.job_id, status=Status.CANCELLED, progress=0.0, step_text="")
            self._report_progress()

    def _report_progress(self) -> None:
        items = [self.model.item(j) for j in self._batch]
        items = [i for i in items if i is not None]
        active = [i for i in items if i.status in ACTIVE]
        if not active:
            done = sum(i.status is Status.DONE for i in items)
            text = f"{done} of {len(items)} restored" if items else ""
            self._batch.clear()
            self.overall_progress.emit(1.0 if items else 0.0, text)
            return
        total = sum(1.0 if i.status not in ACTIVE else i.progress for i in items)
        running = next((i for i in active if i.status is Status.PROCESSING), None)
        text = f"{len(items) - len(active)} of {len(items)} done" + (
            f" · {running.path.name}" if running else "")
        self.overall_progress.emit(total / len(items), text)
