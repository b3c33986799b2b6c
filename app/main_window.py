"""Composition root: builds the models, workers, player and widgets and wires their signals.

This is the only module that connects workers to widgets (STYLE §12). The GUI thread only paints
and routes: files are scanned/probed/decoded by pool jobs, restored by the engine worker thread,
and the views redraw on one timer at 30 fps.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QModelIndex, Qt, QTimer, QUrl, Slot
from PySide6.QtGui import QAction, QCloseEvent, QDesktopServices, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QFileDialog,
    QLabel,
    QMainWindow,
    QProgressBar,
    QScrollArea,
    QSplitter,
    QStackedWidget,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.listening import Listening
from app.playback.player import Player, State, StreamFactory, StreamStopped
from app.queue_controller import QueueController
from app.settings import Settings
from app.widgets.about_dialog import AboutDialog
from app.widgets.finetune_page import FineTunePage
from app.widgets.overview_view import OverviewView
from app.widgets.queue_view import QueueView
from app.widgets.settings_panel import SettingsPanel
from app.widgets.spectrogram_view import SpectrogramView
from app.widgets.transport_bar import TransportBar
from app.workers.engine_worker import EngineWorker
from app.workers.jobs import SystemProbeJob
from app.workers.messages import ClipData, ModelStatus, SystemInfo, ViewData
from app.workers.train_worker import FineTuneController, TrainerFactory

log = logging.getLogger(__name__)

REDRAW_INTERVAL_MS = 33  # <= 30 fps
SEEK_STEP_S = 5.0
PLACEHOLDER = ("Drop audio files or folders anywhere on this window\n"
               "or use File › Open…   ·   then Process › Process all (Ctrl+R)")


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
        self._apply_view_settings()
        self.redraw_timer = QTimer(self, interval=REDRAW_INTERVAL_MS)
        self.redraw_timer.timeout.connect(self._on_redraw_timer_timeout)
        self.redraw_timer.start()
        self._restore_geometry()
        job = self.controller.runner.start(SystemProbeJob())
        job.signals.done.connect(self._on_system_probe_done)
        self.controller.load_model()

    # ---- construction ----
    def _build_widgets(self, trainer_factory: TrainerFactory | None) -> None:
        self.queue_view = QueueView()
        self.queue_view.setModel(self.controller.model)
        self.transport = TransportBar()
        self.spectrogram = SpectrogramView()
        self.overview = OverviewView()
        self.overview.setFixedHeight(90)
        for view in (self.spectrogram, self.overview):
            view.setAcceptDrops(False)  # drops go to the window
        self.placeholder = QLabel(PLACEHOLDER, alignment=Qt.AlignmentFlag.AlignCenter)
        self.placeholder.setObjectName("placeholder")
        self.view_stack = QStackedWidget()
        self.view_stack.addWidget(self.placeholder)
        self.view_stack.addWidget(self.spectrogram)
        lower = QWidget()
        lower_layout = QVBoxLayout(lower)
        lower_layout.setContentsMargins(0, 0, 0, 0)
        lower_layout.setSpacing(2)
        lower_layout.addWidget(self.transport)
        lower_layout.addWidget(self.view_stack, 1)
        lower_layout.addWidget(self.overview)
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.addWidget(self.queue_view)
        self.splitter.addWidget(lower)
        self.splitter.setStretchFactor(1, 3)
        self.splitter.setSizes([170, 600])
        self.panel = SettingsPanel(self.settings)
        scroll = QScrollArea(widgetResizable=True)
        scroll.setWidget(self.panel)
        scroll.setFixedWidth(300)
        restore = QWidget()
        restore_layout = QVBoxLayout(restore)
        restore_layout.setContentsMargins(4, 4, 4, 4)
        side = QSplitter(Qt.Orientation.Horizontal)
        side.addWidget(self.splitter)
        side.addWidget(scroll)
        side.setStretchFactor(0, 1)
        restore_layout.addWidget(side)
        self.finetune = FineTunePage(self.settings)
        self.training = FineTuneController(trainer_factory, parent=self)
        self.finetune.show_available(*self.training.available())
        self.tabs = QTabWidget()
        self.tabs.addTab(restore, "Restore")
        self.tabs.addTab(self.finetune, "Fine-tune")
        self.setCentralWidget(self.tabs)
        self.status_label = QLabel()
        self.progress_bar = QProgressBar(maximum=1000, textVisible=False)
        self.progress_bar.setFixedWidth(220)
        self.progress_bar.hide()
        self.statusBar().addWidget(self.status_label, 1)
        self.statusBar().addPermanentWidget(self.progress_bar)

    def _action(self, menu: object, text: str, slot: object, shortcut: str = "",
                checkable: bool = False) -> QAction:
        action = QAction(text, self, checkable=checkable)
        if shortcut:
            action.setShortcut(shortcut)
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        action.triggered.connect(slot)
        menu.addAction(action)  # type: ignore[attr-defined]
        return action

    def _build_actions(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self.open_action = self._action(file_menu, "&Open files…", self._on_open_triggered,
                                        "Ctrl+O")
        self._action(file_menu, "Open &folder…", self._on_open_folder_triggered, "Ctrl+Shift+O")
        file_menu.addSeparator()
        self._action(file_menu, "&Quit", self.close, "Ctrl+Q")
        queue_menu = bar.addMenu("&Process")
        self.process_all_action = self._action(queue_menu, "Process &all", self._on_process_all,
                                               "Ctrl+R")
        self._action(queue_menu, "&Process selected", self._on_process_selected, "Ctrl+Return")
        self._action(queue_menu, "&Cancel selected", self._on_cancel_selected, "Ctrl+.")
        self.cancel_all_action = self._action(queue_menu, "Cancel a&ll", self._on_cancel_all,
                                              "Ctrl+Shift+.")
        self._action(queue_menu, "&Remove selected", self._on_remove_selected, "Del")
        play = bar.addMenu("P&layback")
        lst = self.listening
        self._action(play, "Play / pause", lst.toggle_play, "Space")
        self._action(play, "Toggle A / B", lst.toggle_ab, "Tab")
        self._action(play, "A: original", lambda: lst.select_mode(0), "A")
        self._action(play, "B: restored", lambda: lst.select_mode(1), "B")
        self._action(play, "B − A: difference", lambda: lst.select_mode(2), "D")
        self._action(play, "Loop selection", lst.toggle_loop, "L")
        self._action(play, "Seek back", lambda: lst.seek_by(-SEEK_STEP_S), "Left")
        self._action(play, "Seek forward", lambda: lst.seek_by(SEEK_STEP_S), "Right")
        self._action(play, "Back to start", lambda: lst.seek_to(0.0), "Home")
        help_menu = bar.addMenu("&Help")
        self._action(help_menu, "&About JaT-SR", self._on_about_triggered)
        self._action(help_menu, "Open &log folder", self._on_open_log_triggered)
        toolbar = self.addToolBar("Queue")
        toolbar.setObjectName("queueToolbar")
        toolbar.setMovable(False)
        for action in (self.open_action, self.process_all_action, self.cancel_all_action):
            toolbar.addAction(action)

    def _wire(self) -> None:
        c = self.controller
        c.model_status.connect(self._on_controller_model_status)
        c.overall_progress.connect(self._on_controller_overall_progress)
        c.item_finished.connect(self.listening.on_item_finished)
        c.unexpected_error.connect(self._on_controller_unexpected_error)
        c.model.dataChanged.connect(self._on_queue_model_data_changed)
        self.queue_view.process_requested.connect(c.process)
        self.queue_view.cancel_requested.connect(c.cancel)
        self.queue_view.remove_requested.connect(c.remove)
        self.queue_view.current_changed.connect(self._on_queue_view_current_changed)
        self.panel.model_changed.connect(c.load_model)
        self.panel.view_changed.connect(self._apply_view_settings)
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
        lst.availability_changed.connect(self._on_listening_availability_changed)
        lst.clip_loaded.connect(self._on_listening_clip_loaded)
        lst.views_ready.connect(self._on_listening_views_ready)
        lst.cleared.connect(self._on_listening_cleared)
        lst.message.connect(self.status_label.setText)
        self.player.state_changed.connect(self._on_player_state_changed)
        self.player.failed.connect(self.status_label.setText)
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
        if paths:
            event.acceptProposedAction()
            self.add_paths(paths)

    def closeEvent(self, event: QCloseEvent) -> None:
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
        position_s = self.listening.position_s
        self.transport.show_position(position_s, self.listening.duration_s)
        self.spectrogram.set_cursor_s(position_s)
        self.overview.set_cursor_s(position_s)
        self.spectrogram.refresh()
        self.overview.refresh()

    @Slot(object)
    def _on_listening_clip_loaded(self, clip: ClipData) -> None:
        self.view_stack.setCurrentIndex(1)
        self.listening.set_region_s(*self.overview.selection_s())

    @Slot(object)
    def _on_listening_views_ready(self, views: ViewData) -> None:
        self.spectrogram.show_views(views.lr, views.sr, views.diff, views.cutoff_hz or None)
        self.overview.show_envelope(views.envelope_min, views.envelope_max, views.duration_s)

    @Slot()
    def _on_listening_cleared(self) -> None:
        self.spectrogram.clear()
        self.overview.clear()
        self.view_stack.setCurrentIndex(0)

    @Slot(bool, str)
    def _on_listening_availability_changed(self, can_play: bool, reason: str) -> None:
        self.transport.set_enabled_state(can_play, reason, self.player.source_count)

    @Slot(bool)
    def _on_listening_loop_changed(self, on: bool) -> None:
        self.transport.show_loop(on)
        self.spectrogram.set_region_s(self.listening.loop_region_s if on else None)

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
        if status.ok:
            self.status_label.setText(f"Model ready on {status.device}")
        else:
            self.status_label.setText(f"No usable model: {status.error}")

    @Slot(float, str)
    def _on_controller_overall_progress(self, fraction: float, text: str) -> None:
        self.progress_bar.setVisible(self.controller.busy)
        self.progress_bar.setValue(round(fraction * 1000))
        if text:
            self.status_label.setText(text)

    @Slot(object)
    def _on_controller_unexpected_error(self, exc_info: object) -> None:
        import sys

        sys.excepthook(*exc_info)  # type: ignore[misc]  # the app's error dialog

    @Slot(QModelIndex, QModelIndex)
    def _on_queue_model_data_changed(self, top: QModelIndex, bottom: QModelIndex) -> None:
        current = self.listening.current_job_id
        if current and top.row() <= (self.controller.model.row_of(current) or -1) <= bottom.row():
            self.listening.show_item(current)

    @Slot(int)
    def _on_queue_view_current_changed(self, job_id: int) -> None:
        self.listening.show_item(job_id)
        item = self.controller.model.item(job_id)
        if item is not None and item.message:
            self.status_label.setText(f"{item.path.name}: {item.message}")

    @Slot()
    def _apply_view_settings(self) -> None:
        s = self.settings
        self.spectrogram.set_levels(s.get("view/db_floor"), s.get("view/db_ceiling"))
        self.spectrogram.set_log_frequency(s.get("view/log_frequency"))
        self.spectrogram.set_difference_visible(s.get("view/show_difference"))

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
    def _on_process_all(self) -> None:
        if not self.controller.process_all():
            self.status_label.setText("Nothing to process: add files, or wait for them to be read")

    @Slot()
    def _on_process_selected(self) -> None:
        self.controller.process(self.queue_view.selected_job_ids())

    @Slot()
    def _on_cancel_selected(self) -> None:
        self.controller.cancel(self.queue_view.selected_job_ids())

    @Slot()
    def _on_cancel_all(self) -> None:
        self.controller.cancel_all()

    @Slot()
    def _on_remove_selected(self) -> None:
        self.controller.remove(self.queue_view.selected_job_ids())

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
        self.status_label.setText(f"Fine-tuned model saved and selected: {path}")

    @property
    def playback_state(self) -> State:
        return self.player.state
