"""Composition root: builds the models, workers, player and widgets and wires their signals.

This is the only module that connects workers to widgets (STYLE §12). The GUI thread only paints
and routes: files are scanned/probed/decoded by pool jobs, restored by the engine worker thread,
and the views redraw on one timer at 30 fps.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from PySide6.QtCore import QModelIndex, QTimer, QUrl, Slot
from PySide6.QtGui import QCloseEvent, QDesktopServices, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QFileDialog, QMainWindow, QMessageBox, QStyle, QTabWidget

from app.listening import Listening
from app.playback.player import Player, State, StreamFactory, StreamStopped
from app.queue_controller import QueueController
from app.settings import Settings
from app.widgets.about_dialog import AboutDialog
from app.widgets.finetune_page import FineTunePage
from app.widgets.menus import MenuTable, install_menus
from app.widgets.restore_page import RestorePage
from app.widgets.status_bar import AppStatusBar
from app.widgets.theme import ACCENT, ERROR, transport_icon
from app.workers.engine_worker import EngineWorker
from app.workers.jobs import SystemProbeJob
from app.workers.messages import ClipData, ModelStatus, SystemInfo
from app.workers.train_worker import FineTuneController, TrainerFactory

log = logging.getLogger(__name__)

REDRAW_INTERVAL_MS = 33  # <= 30 fps
SEEK_STEP_S = 5.0


class MainWindow(QMainWindow):
    """The JaT-SR main window."""

    def __init__(self, settings: Settings, *, worker: EngineWorker | None = None,
                 stream_factory: StreamFactory | None = None,
                 callback_stop: type[BaseException] = StreamStopped,
                 trainer_factory: TrainerFactory | None = None, log_dir: Path | None = None,
                 ) -> None:
        super().__init__()
        self.settings = settings
        self.log_dir = log_dir
        self.setWindowTitle("JaT-SR — audio super-resolution")
        self.setAcceptDrops(True)
        self.system_info: SystemInfo | None = None
        self.model_status: ModelStatus | None = None
        self.controller = QueueController(settings, worker, parent=self)
        self.player = Player(stream_factory, callback_stop, parent=self)
        self._injected_stream = stream_factory is not None
        self._build_widgets(trainer_factory)
        self.listening = Listening(self.controller.model, self.player, self.controller.runner,
                                   settings, self)
        self._build_actions()
        self._wire()
        self.redraw_timer = QTimer(self, interval=REDRAW_INTERVAL_MS)
        self.redraw_timer.timeout.connect(self._on_redraw_timer_timeout)
        self.redraw_timer.start()
        self._restore_geometry()
        job = SystemProbeJob()
        job.signals.done.connect(self._on_system_probe_done)
        self.controller.runner.start(job)
        self.controller.load_model()

    # ---- construction ----
    def _build_widgets(self, trainer_factory: TrainerFactory | None) -> None:
        self.page = RestorePage(self.settings, self.controller.model)
        page = self.page
        self.queue_view, self.transport, self.panel = page.queue_view, page.transport, page.panel
        self.spectrogram, self.overview = page.spectrogram, page.overview
        self.view_stack, self.placeholder = page.view_stack, page.placeholder
        self.finetune = FineTunePage(self.settings)
        self.training = FineTuneController(trainer_factory, parent=self)
        self.finetune.show_available(*self.training.available())
        self.tabs = QTabWidget()
        self.tabs.addTab(page, "Restore")
        self.tabs.addTab(self.finetune, "Fine-tune")
        self.setCentralWidget(self.tabs)
        self.status = AppStatusBar()
        self.setStatusBar(self.status)

    def _build_actions(self) -> None:
        c, lst, q = self.controller, self.listening, self.queue_view
        menus: MenuTable = {
            "&File": [("&Open files…", "Ctrl+O", self._on_open_triggered),
                      ("Open &folder…", "Ctrl+Shift+O", self._on_open_folder_triggered), None,
                      ("&Quit", "Ctrl+Q", self.close)],
            "&Process": [("Process &all", "Ctrl+R", self._on_process_all_triggered),
                         ("&Process selected", "Ctrl+Return",
                          lambda: c.process(q.selected_job_ids())),
                         ("&Cancel selected", "Ctrl+.", lambda: c.cancel(q.selected_job_ids())),
                         ("Cancel a&ll", "Ctrl+Shift+.", c.cancel_all),
                         ("&Remove selected", "Del", lambda: c.remove(q.selected_job_ids()))],
            "P&layback": [("Play / pause", "Space", lst.toggle_play),
                          ("Toggle A / B", "Tab", lst.toggle_ab),
                          ("A: original", "A", lambda: lst.select_mode(0)),
                          ("B: restored", "B", lambda: lst.select_mode(1)),
                          ("B − A: difference", "D", lambda: lst.select_mode(2)),
                          ("Loop selection", "L", lst.toggle_loop),
                          ("Seek back", "Left", lambda: lst.seek_by(-SEEK_STEP_S)),
                          ("Seek forward", "Right", lambda: lst.seek_by(SEEK_STEP_S)),
                          ("Back to start", "Home", lambda: lst.seek_to(0.0))],
            "&Help": [("&About JaT-SR", "", self._on_about_triggered),
                      ("Open &log folder", "", self._on_open_log_triggered)],
        }
        self.actions_by_text = install_menus(self, menus, (
            ("Open files…", QStyle.StandardPixmap.SP_DialogOpenButton),
            ("Process all", transport_icon("play", ACCENT)),
            ("Cancel all", transport_icon("stop", ERROR))))

    def _wire(self) -> None:
        c = self.controller
        c.model_status.connect(self._on_controller_model_status)
        c.overall_progress.connect(self._on_controller_overall_progress)
        c.item_finished.connect(self._on_controller_item_finished)
        c.unexpected_error.connect(self._on_controller_unexpected_error)
        c.model.dataChanged.connect(self._on_queue_model_data_changed)
        self.queue_view.process_requested.connect(c.process)
        self.queue_view.cancel_requested.connect(c.cancel)
        self.queue_view.remove_requested.connect(c.remove)
        self.queue_view.current_changed.connect(self._on_queue_view_current_changed)
        self.panel.model_changed.connect(c.load_model)
        self.panel.model_changed.connect(self.finetune.refresh_paths)
        self.panel.view_changed.connect(self.page.apply_view_settings)
        self.spectrogram.levels_changed.connect(self.panel.show_levels)
        tr, page = self.training, self.finetune
        page.start_requested.connect(tr.start)
        page.stop_requested.connect(tr.stop)
        page.export_requested.connect(tr.export)
        tr.update.connect(page.show_update)
        tr.finished.connect(page.show_finished)
        tr.failed.connect(page.show_failed)
        tr.exported.connect(page.show_exported)
        tr.exported.connect(self._on_training_exported)
        lst, t = self.listening, self.transport
        t.play_toggled.connect(lst.toggle_play)
        t.stop_requested.connect(lst.stop)
        t.mode_selected.connect(lst.select_mode)
        t.loop_toggled.connect(lst.set_loop)
        t.match_toggled.connect(lst.set_loudness_match)
        t.device_selected.connect(lst.set_device)
        t.match_button.setChecked(self.settings.get("playback/loudness_match"))
        lst.mode_changed.connect(t.show_mode)
        lst.loop_changed.connect(self._on_listening_loop_changed)
        lst.availability_changed.connect(t.set_enabled_state)
        lst.clip_loaded.connect(self._on_listening_clip_loaded)
        lst.views_ready.connect(self.page.show_views)
        lst.detail_ready.connect(self.page.show_detail)
        self.spectrogram.detail_requested.connect(lst.request_detail)
        lst.cleared.connect(self.page.show_cleared)
        lst.message.connect(self.status.show_text)
        self.player.state_changed.connect(self._on_player_state_changed)
        self.player.failed.connect(self.status.show_text)
        self.spectrogram.seek_requested.connect(lst.seek_to)
        self.overview.seek_requested.connect(lst.seek_to)
        self.overview.region_changed.connect(self._on_overview_region_changed)

    # ---- public API ----
    def add_paths(self, paths: list[str]) -> None:
        """Queue files and folders (drop, File › Open, command line)."""
        self.controller.add_paths(paths)

    # ---- Qt overrides ----
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if any(url.isLocalFile() for url in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
        if not paths:
            return
        event.acceptProposedAction()
        if self.tabs.currentWidget() is self.finetune:  # training data, not files to restore
            added = self.finetune.add_folders(paths)
            self.status.show_text(
                f"{added} training folder(s) added" if added
                else "Only folders are added here: training reads folders of audio")
        else:
            self.add_paths(paths)

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.training.running and QMessageBox.question(
                self, "Quit JaT-SR", "Fine-tuning is running. Stop it (its checkpoint is saved) "
                "and quit?") != QMessageBox.StandardButton.Yes:
            event.ignore()
            return
        self.hide()  # the workers may take a moment to stop after their current step
        self.redraw_timer.stop()
        self.settings.set("window/geometry", self.saveGeometry())
        self.settings.set("window/state", self.saveState())
        self.settings.sync()
        self.player.stop()
        self.training.shutdown()
        self.controller.shutdown()
        super().closeEvent(event)

    def _restore_geometry(self) -> None:
        geometry = self.settings.get("window/geometry")
        if geometry.isEmpty() or not self.restoreGeometry(geometry):
            self.resize(1400, 900)
        state = self.settings.get("window/state")
        if not state.isEmpty():
            self.restoreState(state)

    # ---- slots ----
    @Slot()
    def _on_redraw_timer_timeout(self) -> None:
        self.page.show_position(self.listening.position_s, self.listening.duration_s)

    @Slot(object)
    def _on_listening_clip_loaded(self, clip: ClipData) -> None:
        self.page.show_clip_loaded()
        self.listening.set_region_s(*self.overview.selection_s())

    @Slot(bool)
    def _on_listening_loop_changed(self, on: bool) -> None:
        self.page.show_loop(on, self.listening.loop_region_s)

    @Slot(float, float)
    def _on_overview_region_changed(self, start_s: float, end_s: float) -> None:
        self.listening.set_region_s(start_s, end_s)
        self._on_listening_loop_changed(self.transport.loop_button.isChecked())

    @Slot(object)
    def _on_player_state_changed(self, state: State) -> None:
        self.transport.show_playing(state is State.PLAYING)

    @Slot(object)
    def _on_system_probe_done(self, info: SystemInfo) -> None:
        self.system_info = info
        self.panel.show_system(info)
        self.finetune.show_system(info)
        self.transport.show_devices(info.audio_devices, self.settings.get("playback/device"))
        if not self._injected_stream:
            self.listening.use_audio_devices(info)
        else:
            self.listening.use_injected_stream()

    @Slot(object)
    def _on_controller_model_status(self, status: ModelStatus) -> None:
        self.model_status = status
        self.panel.show_model_status(status)
        self.status.show_model_status(status)

    @Slot(float, str)
    def _on_controller_overall_progress(self, fraction: float, text: str) -> None:
        self.status.show_progress(fraction, text, self.controller.busy)

    @Slot(int)
    def _on_controller_item_finished(self, job_id: int) -> None:
        if not self.listening.current_job_id:  # nothing selected: show the first result
            self.queue_view.select_job(job_id)

    @Slot(object)
    def _on_controller_unexpected_error(self, exc_info: object) -> None:
        sys.excepthook(*exc_info)  # type: ignore[misc]  # the app's error dialog

    @Slot(QModelIndex, QModelIndex)
    def _on_queue_model_data_changed(self, top: QModelIndex, bottom: QModelIndex) -> None:
        row = self.controller.model.row_of(self.listening.current_job_id)
        if row is not None and top.row() <= row <= bottom.row():
            self.listening.show_item(self.listening.current_job_id)  # e.g. now restored

    @Slot(int)
    def _on_queue_view_current_changed(self, job_id: int) -> None:
        self.listening.show_item(job_id)
        item = self.controller.model.item(job_id)
        if item is not None and item.message:
            self.status.show_text(f"{item.path.name}: {item.message}")

    @Slot()
    def _on_open_triggered(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Open audio files", "",
                                                "Audio (*.wav *.flac *.mp3 *.ogg *.opus *.aif "
                                                "*.aiff);;All files (*)")
        self.add_paths(paths)

    @Slot()
    def _on_open_folder_triggered(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of audio files")
        if folder:
            self.add_paths([folder])

    @Slot()
    def _on_process_all_triggered(self) -> None:
        if not self.controller.process_all():
            self.status.show_text("Nothing to process: add files, or wait for them to be read")

    @Slot()
    def _on_about_triggered(self) -> None:
        AboutDialog(self.system_info, self.model_status, self).exec()

    @Slot()
    def _on_open_log_triggered(self) -> None:
        if self.log_dir is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.log_dir)))

    @Slot(str)
    def _on_training_exported(self, path: str) -> None:
        self.panel.set_model_spec(path)
        self.status.show_text(f"Fine-tuned model saved and selected: {path}")
