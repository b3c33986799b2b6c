"""The item being listened to: loads its A/B buffers (pool job) into the player, prepares views.

No widgets here: the main window routes the transport's intents to these methods and this
object's signals to the views.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QObject, Signal, Slot

from app.models.queue_model import QueueModel, Status
from app.playback.player import Mode, Player, State, sounddevice_factory
from app.settings import Settings
from app.workers.jobs import ClipJob, DetailJob, JobRunner
from app.workers.messages import ClipData, DetailViews, SystemInfo, ViewData

log = logging.getLogger(__name__)

SHOWABLE = frozenset({Status.READY, Status.QUEUED, Status.PROCESSING, Status.CANCELLING,
                      Status.DONE, Status.CANCELLED, Status.FAILED})


class Listening(QObject):
    """A/B session state around the `Player`."""

    clip_loaded = Signal(object)  # ClipData
    views_ready = Signal(object)  # ViewData
    detail_ready = Signal(object)  # DetailViews of the span last asked for
    cleared = Signal()
    availability_changed = Signal(bool, str, int)  # can play, why not / hint, sources
    mode_changed = Signal(int)
    loop_changed = Signal(bool)
    message = Signal(str)

    def __init__(self, model: QueueModel, player: Player, runner: JobRunner,
                 settings: Settings, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.model, self.player, self.runner, self.settings = model, player, runner, settings
        self.current_job_id = 0
        self._shown: tuple[int, object] | None = None  # (job id, output path) loaded
        self._job: ClipJob | None = None
        self._clip: ClipData | None = None  # the loaded buffers, for zoomed-in views
        self._detail_job: DetailJob | None = None
        self._detail_request = 0
        self._audio_reason = "Looking for audio outputs…"
        self._loop_on = False
        self._region_s: tuple[float, float] | None = None
        self.player.set_loudness_match(settings.get("playback/loudness_match"))

    # ---- audio output ----
    def use_audio_devices(self, info: SystemInfo) -> None:
        """Playback through sounddevice when an output exists; otherwise say why not."""
        if info.audio_error:
            self._audio_reason = info.audio_error
            self.player.set_stream_factory(None)
        else:
            try:
                factory, stop = sounddevice_factory()
            except OSError as e:
                self._audio_reason = f"Playback is off: {e}"
                self.player.set_stream_factory(None)
            else:
                self._audio_reason = ""
                self.player.set_stream_factory(factory, stop)
                device = self.settings.get("playback/device")
                self.player.set_device(None if device < 0 else device)
        self._report_availability()

    def use_injected_stream(self) -> None:
        self._audio_reason = ""
        self._report_availability()

    def _report_availability(self) -> None:
        if not self.player.available:
            self.availability_changed.emit(False, self._audio_reason, 0)
        elif not self.player.has_sources:
            self.availability_changed.emit(False, "Select a file in the queue to listen.", 0)
        else:
            hint = "" if self.player.source_count > 1 else "Only A until the file is restored."
            self.availability_changed.emit(True, hint, self.player.source_count)

    # ---- item selection ----
    def show_item(self, job_id: int) -> None:
        """Load the selected item's buffers and views (no-op if already shown)."""
        self.current_job_id = job_id
        item = self.model.item(job_id)
        if item is None or item.status not in SHOWABLE:
            self._clear()
            return
        output = item.output_path if item.status is Status.DONE else None
        if self._shown == (job_id, output):
            return
        self._shown = (job_id, output)
        self._drop_clip()
        if self._job is not None:
            self._job.cancel()
        job = ClipJob(job_id, item.path, output, item.cutoff_used_hz or item.cutoff_hz or 0.0)
        job.signals.partial.connect(self._on_clip_job_partial)
        job.signals.done.connect(self._on_clip_job_done)
        job.signals.failed.connect(self._on_clip_job_failed)
        self._job = job
        self.runner.start(job)

    def _clear(self) -> None:
        self._shown = None
        self._drop_clip()
        if self._job is not None:
            self._job.cancel()
            self._job = None
        self.player.clear()
        self.cleared.emit()
        self._report_availability()

    @Slot(object)
    def _on_clip_job_partial(self, clip: ClipData) -> None:
        if clip.job_id != self.current_job_id:
            return
        sources = [clip.lr] if clip.sr is None else [clip.lr, clip.sr, clip.diff]
        self.player.set_sources(sources, clip.gains[: len(sources)], clip.sample_rate)
        self._clip = clip
        self.mode_changed.emit(int(self.player.mode))
        self._apply_loop()
        self.clip_loaded.emit(clip)
        self._report_availability()

    @Slot(object)
    def _on_clip_job_done(self, views: ViewData) -> None:
        if views.job_id == self.current_job_id:
            self.views_ready.emit(views)

    @Slot(object, str)
    def _on_clip_job_failed(self, job_id: object, reason: str) -> None:
        if job_id == self.current_job_id:  # not retried until the item changes
            self.message.emit(f"Could not load the file for listening: {reason}")

    # ---- zoomed-in views ----
    @Slot(float, float, int)
    def request_detail(self, start_s: float, stop_s: float, columns: int) -> None:
        """Compute the span's spectrograms at up to full resolution (replaces any pending)."""
        if self._clip is None or stop_s <= start_s:
            return
        if self._detail_job is not None:
            self._detail_job.cancel()
        self._detail_request += 1
        job = DetailJob(self._clip, self._detail_request, start_s, stop_s, columns)
        job.signals.done.connect(self._on_detail_done)
        self._detail_job = job
        self.runner.start(job)

    @Slot(object)
    def _on_detail_done(self, detail: DetailViews) -> None:
        if (self._clip is not None and detail.job_id == self._clip.job_id
                and detail.request == self._detail_request):
            self.detail_ready.emit(detail)

    def _drop_clip(self) -> None:
        self._clip = None
        if self._detail_job is not None:
            self._detail_job.cancel()
            self._detail_job = None

    # ---- transport intents ----
    @Slot()
    def toggle_play(self) -> None:
        self.player.toggle()

    @Slot()
    def stop(self) -> None:
        self.player.stop()

    @Slot()
    def toggle_ab(self) -> None:
        self.select_mode(Mode.ORIGINAL if self.player.mode is not Mode.ORIGINAL
                         else Mode.RESTORED)

    @Slot(int)
    def select_mode(self, mode: int) -> None:
        self.player.set_mode(Mode(mode))
        self.mode_changed.emit(int(self.player.mode))

    @Slot()
    def toggle_loop(self) -> None:
        self.set_loop(not self._loop_on)

    @Slot(bool)
    def set_loop(self, on: bool) -> None:
        self._loop_on = on
        self._apply_loop()
        self.loop_changed.emit(on)

    @Slot(float, float)
    def set_region_s(self, start_s: float, end_s: float) -> None:
        self._region_s = (start_s, end_s)
        self._apply_loop()

    def _apply_loop(self) -> None:
        if self._loop_on and self._region_s is not None and self.player.has_sources:
            rate = self.player.sample_rate
            self.player.set_loop((round(self._region_s[0] * rate),
                                  round(self._region_s[1] * rate)))
        else:
            self.player.set_loop(None)

    @property
    def loop_region_s(self) -> tuple[float, float] | None:
        loop = self.player.loop
        return None if loop is None else (loop[0] / self.player.sample_rate,
                                          loop[1] / self.player.sample_rate)

    @Slot(bool)
    def set_loudness_match(self, on: bool) -> None:
        self.player.set_loudness_match(on)
        self.settings.set("playback/loudness_match", on)

    @Slot(int)
    def set_device(self, device: int) -> None:
        self.settings.set("playback/device", device)
        self.player.set_device(None if device < 0 else device)

    @Slot(float)
    def seek_to(self, seconds: float) -> None:
        self.player.seek(round(seconds * self.player.sample_rate))

    def seek_by(self, seconds: float) -> None:
        self.seek_to(max(0.0, self.position_s + seconds))

    @property
    def position_s(self) -> float:
        return self.player.position / self.player.sample_rate

    @property
    def duration_s(self) -> float:
        return self.player.length / self.player.sample_rate

    @property
    def playing(self) -> bool:
        return self.player.state is State.PLAYING
