"""Short jobs on the QThreadPool: scan dropped paths, probe a file, prepare A/B clips and views.

Each job owns a `JobSignals` object created on the GUI thread, so its signals arrive there as
queued calls. `JobRunner` keeps a reference to every job until it has finished (superqt does
the same: PySide would otherwise collect a running runnable's Python object).
"""

from __future__ import annotations

import logging
import math
import os
import platform
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot

from app import analysis, buffers
from app.playback.devices import output_devices, portaudio_version
from app.workers.messages import ClipData, DetailViews, ProbeResult, SystemInfo, ViewData

log = logging.getLogger(__name__)


class JobSignals(QObject):
    """Results of one job: `done(payload)` / `failed(key, reason)`; `partial` for early data."""

    partial = Signal(object)
    done = Signal(object)
    failed = Signal(object, str)
    finished = Signal(object)  # the Job


class Job(QRunnable):
    """A QRunnable that reports through `signals` and always emits `finished` last."""

    def __init__(self) -> None:
        super().__init__()
        self.setAutoDelete(False)  # the runner drops its reference on `finished`
        self.signals = JobSignals()
        self._cancel = threading.Event()

    def cancel(self) -> None:
        self._cancel.set()

    def run(self) -> None:
        try:
            self.work()
        except Exception as e:  # a job must never take the pool thread down silently
            log.exception("%s failed", type(self).__name__)
            self.signals.failed.emit(self.key(), f"unexpected error: {e!r}")
        finally:
            self.signals.finished.emit(self)

    def key(self) -> object:
        return None

    def work(self) -> None:
        raise NotImplementedError


class JobRunner(QObject):
    """Starts jobs on a thread pool and keeps them alive until they finish."""

    def __init__(self, pool: QThreadPool | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.pool = pool or QThreadPool.globalInstance()
        self._running: set[Job] = set()

    def start(self, job: Job) -> Job:
        """Run `job`; connect to its signals before this call (it may finish at once)."""
        self._running.add(job)
        job.signals.finished.connect(self._on_job_finished)
        self.pool.start(job)
        return job

    @Slot(object)
    def _on_job_finished(self, job: Job) -> None:
        self._running.discard(job)

    def cancel_all(self) -> None:
        for job in list(self._running):
            job.cancel()

    @property
    def active(self) -> int:
        return len(self._running)

    def wait(self, timeout_ms: int) -> bool:
        return self.pool.waitForDone(timeout_ms)


def expand_paths(paths: Iterable[str | os.PathLike[str]]) -> list[tuple[Path, Path]]:
    """(file, its folder under the dropped folder) for files as given and folders walked
    recursively for audio files (hidden ones and our outputs skipped)."""
    import engine  # lazily, as the jobs below: importing the app stays cheap

    return engine.expand_paths(Path(raw).expanduser().resolve() for raw in paths)


class ScanJob(Job):
    """Expand dropped files and folders: done(list[(file, folder under the dropped one)])."""

    def __init__(self, paths: list[str]) -> None:
        super().__init__()
        self.paths = paths

    def work(self) -> None:
        self.signals.done.emit(expand_paths(self.paths))


class ProbeJob(Job):
    """Read a file's header and detect its band limit: done(ProbeResult) or failed(id, why)."""

    def __init__(self, job_id: int, path: Path) -> None:
        super().__init__()
        self.job_id, self.path = job_id, path

    def key(self) -> object:
        return self.job_id

    def work(self) -> None:
        import engine

        try:
            info = engine.probe(self.path)
            cutoff_hz = engine.detect_cutoff_file(self.path)
        except engine.AudioInputError as e:
            self.signals.failed.emit(self.job_id, e.reason)
            return
        self.signals.done.emit(ProbeResult(self.job_id, info.sample_rate, info.channels,
                                           info.duration_s, float(cutoff_hz)))


class ClipJob(Job):
    """Decode an item for A/B listening and compute its views.

    partial(ClipData) as soon as the buffers are ready, then done(ViewData).
    """

    def __init__(self, job_id: int, input_path: Path, output_path: Path | None,
                 cutoff_hz: float, weighted_loudness: bool = True) -> None:
        super().__init__()
        self.job_id, self.input_path, self.output_path = job_id, input_path, output_path
        self.cutoff_hz, self.weighted = cutoff_hz, weighted_loudness

    def key(self) -> object:
        return self.job_id

    def work(self) -> None:
        import engine

        rate = int(engine.SAMPLE_RATE)
        try:  # (S, Ch) buffers, disk-backed when large (app.buffers)
            lr = buffers.decode(self.input_path, rate)
            sr = None
            if self.output_path is not None:  # written at 48 kHz etc. (Output › Rate), it
                # comes back to the restoration's 44.1 kHz for listening beside the input
                sr = buffers.decode(self.output_path, rate, frames=lr.shape[0])
            diff = None if sr is None else buffers.difference(sr, lr)
        except engine.AudioInputError as e:
            self.signals.failed.emit(self.job_id, e.reason)
            return
        except OSError as e:  # no room for the disk-backed buffers
            self.signals.failed.emit(self.job_id, f"cannot hold the audio for listening: {e}")
            return
        gain = 1.0 if sr is None else analysis.match_gain(lr, sr, rate, self.weighted)
        self.signals.partial.emit(ClipData(self.job_id, rate, lr, sr, diff, (1.0, gain, 1.0),
                                           self.cutoff_hz))
        views = [None if x is None or self._cancel.is_set() else analysis.spectrogram(x, rate)
                 for x in (lr, sr, diff)]
        if self._cancel.is_set() or views[0] is None:
            return
        low, high = analysis.envelope(sr if sr is not None else lr)
        self.signals.done.emit(ViewData(self.job_id, views[0], views[1], views[2], low, high,
                                        lr.shape[0] / rate, self.cutoff_hz))


class DetailJob(Job):
    """Spectrograms of a span of a loaded clip, `columns` wide at most: done(DetailViews)."""

    def __init__(self, clip: ClipData, request: int, start_s: float, stop_s: float,
                 columns: int) -> None:
        super().__init__()
        self.clip, self.request = clip, request
        self.start_s, self.stop_s, self.columns = start_s, stop_s, max(1, columns)

    def key(self) -> object:
        return self.clip.job_id

    def work(self) -> None:
        rate, n = self.clip.sample_rate, self.clip.lr.shape[0]
        first = min(max(0, math.floor(self.start_s * rate)), n - 1)
        last = min(n, max(first + 1, math.ceil(self.stop_s * rate)))
        views = []
        for x in (self.clip.lr, self.clip.sr, self.clip.diff):
            if self._cancel.is_set():
                return
            views.append(None if x is None else
                         analysis.spectrogram(x[first:last], rate, self.columns))
        self.signals.done.emit(DetailViews(self.clip.job_id, self.request, first / rate,
                                           last / rate, *views))


class SystemProbeJob(Job):
    """Versions, GPUs and audio outputs: done(SystemInfo)."""

    def __init__(self, device_lister: Callable[[], tuple[tuple, str]] = output_devices) -> None:
        super().__init__()
        self.device_lister = device_lister

    def work(self) -> None:
        import pyqtgraph
        import PySide6
        from PySide6.QtCore import qVersion

        import engine
        from app import __version__

        system = engine.system_info()
        cuda = system.cuda_available
        devices, audio_error = self.device_lister()
        versions = {
            "JaT-SR": __version__, "Python": platform.python_version(),
            "Qt": qVersion(), "PySide6": PySide6.__version__,
            "pyqtgraph": pyqtgraph.__version__, "numpy": np.__version__,
            "torch": system.torch_version, "CUDA (torch build)": system.cuda_build,
            "PortAudio": portaudio_version(), "OS": platform.platform(),
        }
        self.signals.done.emit(SystemInfo(versions, cuda, system.gpus, tuple(devices),
                                          audio_error))
