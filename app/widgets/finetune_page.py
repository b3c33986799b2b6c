"""Fine-tuning page: data folders, base model, steps/batch, start/stop/resume, live loss and LSD
plots. Every Start makes a run folder of its own under the runs folder, so no run's checkpoints
are ever replaced; Resume continues the last run from its checkpoint."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QTimer, Signal, Slot
from PySide6.QtWidgets import (
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.settings import Settings
from app.widgets.theme import ACCENT, ACCENT_B, OK
from app.workers.messages import SystemInfo
from app.workers.train_worker import FineTuneParams, TrainUpdate

LOSS_KEY = "loss/flow"
VAL_KEYS = (("val/lsd", "model", ACCENT), ("val/lsd_sinc", "sinc baseline", ACCENT_B))
MODEL_FILTER = "JaT-SR model (*.safetensors *.json)"
PLOT_INTERVAL_MS = 100  # plots redraw at most 10 times a second


class FineTunePage(QWidget):
    """Emits start/stop/export intents; `show_*` methods reflect the training worker."""

    start_requested = Signal(object)  # FineTuneParams
    stop_requested = Signal()
    export_requested = Signal(str)

    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self._series: dict[str, tuple[list[float], list[float]]] = {}
        self._running = False
        self._available, self._cuda, self._can_export = True, False, False
        self._dirty: set[str] = set()  # curves with new points, drawn by the timer
        self._timer = QTimer(self, interval=PLOT_INTERVAL_MS)
        self._timer.timeout.connect(self._on_timer_timeout)
        self._timer.start()
        layout = QHBoxLayout(self)
        layout.addWidget(self._controls(), 0)
        layout.addWidget(self._plots(), 1)
        self._refresh_buttons()

    def _controls(self) -> QWidget:
        s = self.settings
        box = QGroupBox("Fine-tune a model on your own full-band audio")
        box.setFixedWidth(360)
        form = QFormLayout(box)
        self.folder_list = QListWidget()
        self.folder_list.addItems(s.get("finetune/folders"))
        add, remove = QPushButton("Add folder…"), QPushButton("Remove")
        add.clicked.connect(self._on_add_clicked)
        remove.clicked.connect(self._on_remove_clicked)
        row = QHBoxLayout()
        row.addWidget(add)
        row.addWidget(remove)
        form.addRow(QLabel("Folders of full-band (44.1 kHz+) audio (add or drop them):"))
        form.addRow(self.folder_list)
        form.addRow(row)
        self.base_label = QLabel()
        self.base_label.setWordWrap(True)
        base = QPushButton("Base model…")
        base.clicked.connect(self._on_base_clicked)
        form.addRow(self.base_label)
        form.addRow(base)
        self.steps_spin = QSpinBox(minimum=1, maximum=1_000_000, singleStep=500,
                                   value=s.get("finetune/steps"))
        self.batch_spin = QSpinBox(minimum=1, maximum=512, value=s.get("finetune/batch_size"))
        self.minutes_spin = QSpinBox(minimum=0, maximum=7 * 24 * 60, singleStep=15,
                                     value=int(s.get("finetune/max_minutes")), suffix=" min")
        self.minutes_spin.setSpecialValueText("none")
        self.minutes_spin.setToolTip(
            "Stop after this long with a checkpoint; the learning rate's decay is planned from "
            "the measured speed to end then (Steps becomes an upper bound)")
        form.addRow("Steps", self.steps_spin)
        form.addRow("Batch", self.batch_spin)
        form.addRow("Time limit", self.minutes_spin)
        self.out_label = QLabel()
        self.out_label.setWordWrap(True)
        out = QPushButton("Runs folder…")
        out.clicked.connect(self._on_out_clicked)
        form.addRow(self.out_label)
        form.addRow(out)
        self.device_label = QLabel("Checking for a CUDA GPU…")
        self.device_label.setWordWrap(True)
        form.addRow(self.device_label)
        self.start_button, self.stop_button = QPushButton("Start"), QPushButton("Stop")
        self.resume_button = QPushButton("Resume")
        self.resume_button.setToolTip("Continue the last run from its checkpoint")
        self.export_button = QPushButton("Save model…")
        self.start_button.clicked.connect(self._on_start_clicked)
        self.resume_button.clicked.connect(self._on_resume_clicked)
        self.stop_button.clicked.connect(self.stop_requested)
        self.export_button.clicked.connect(self._on_export_clicked)
        row = QHBoxLayout()
        for b in (self.start_button, self.resume_button, self.stop_button, self.export_button):
            row.addWidget(b)
        form.addRow(row)
        self.progress = QProgressBar(maximum=1000)
        self.status = QLabel("Idle")
        self.status.setWordWrap(True)
        form.addRow(self.progress)
        form.addRow(self.status)
        self.refresh_paths()
        return box

    def _plots(self) -> QWidget:
        panel = QWidget()
        layout = QVBoxLayout(panel)
        layout.setContentsMargins(0, 0, 0, 0)
        self.loss_plot = pg.PlotWidget(title="Training loss (loss/flow)")
        self.loss_plot.setLogMode(y=True)
        self.loss_plot.setLabel("bottom", "step")
        self.val_plot = pg.PlotWidget(title="Validation log-spectral distance "
                                           "(log10 power, lower is better)")
        self.val_plot.setLabel("bottom", "step")
        self.val_plot.addLegend(offset=(-10, 10))
        self.curves = {LOSS_KEY: self.loss_plot.plot(pen=pg.mkPen(OK, width=1.5))}
        for key, name, colour in VAL_KEYS:
            self.curves[key] = self.val_plot.plot(pen=pg.mkPen(colour, width=2), name=name,
                                                  symbol="o", symbolSize=5,
                                                  symbolBrush=colour)
        self.log_view = QPlainTextEdit(readOnly=True)
        self.log_view.setMaximumBlockCount(500)
        self.log_view.setFixedHeight(110)
        for w in (self.loss_plot, self.val_plot, self.log_view):
            layout.addWidget(w)
        return panel

    # ---- show_* API ----
    def show_available(self, ok: bool, reason: str) -> None:
        self._available = ok
        if not ok:
            self.status.setText(reason)
        self._refresh_buttons()

    def show_system(self, info: SystemInfo) -> None:
        self._cuda = info.cuda_available
        if info.cuda_available:
            self.device_label.setText(f"Trains on CUDA: {info.gpus[0].name}")
            self.device_label.setObjectName("okLabel")
        else:
            self.device_label.setText("No CUDA GPU: training runs on the CPU and will be very "
                                      "slow (fine for a smoke test only).")
            self.device_label.setObjectName("errorLabel")
        self.device_label.style().polish(self.device_label)

    def show_update(self, update: TrainUpdate) -> None:
        for key, value in update.metrics.items():
            if key in self.curves and np.isfinite(value):
                steps, values = self._series.setdefault(key, ([], []))
                steps.append(update.step)
                values.append(value)
                self._dirty.add(key)
        if update.total_steps:
            self.progress.setValue(round(1000 * update.step / update.total_steps))
        self.status.setText(f"{update.kind}: step {update.step}/{update.total_steps}")
        if update.message:
            self.log_view.appendPlainText(update.message)

    def show_running(self, running: bool) -> None:
        self._running = running
        self._refresh_buttons()

    def show_finished(self, stopped: bool) -> None:
        self.show_running(False)
        self.status.setText("Stopped (checkpoint saved; Resume continues it)." if stopped
                            else "Finished.")
        self._can_export = True
        self._refresh_buttons()

    def show_failed(self, reason: str) -> None:
        self.show_running(False)
        self.status.setText(f"Failed: {reason}")
        self.log_view.appendPlainText(reason)
        self._refresh_buttons()  # a run that saved a checkpoint before failing can resume

    def show_exported(self, path: str) -> None:
        self.status.setText(f"Saved {path}; it is now the model in the settings.")

    def _refresh_buttons(self) -> None:
        self.start_button.setEnabled(self._available and not self._running)
        last = self.last_run()
        self.resume_button.setEnabled(self._available and not self._running and last is not None
                                      and (last / "ckpt" / "last.pt").exists())
        self.stop_button.setEnabled(self._running)
        self.export_button.setEnabled(self._can_export and not self._running)

    def refresh_paths(self) -> None:
        base = self.settings.get("finetune/base_model")
        current = self.settings.get("processing/model")
        name = Path(base).name if base else (
            "the shipped default" if current == "default" else Path(current).name)
        self.base_label.setText(f"Base model: {name}")
        self.out_label.setText(f"Runs folder: {self.runs_dir()}")

    def runs_dir(self) -> Path:
        """Where runs go, each in a folder of its own."""
        out = self.settings.get("finetune/out_dir")
        return Path(out) if out else Path.home() / "JaT-SR" / "finetune"

    def last_run(self) -> Path | None:
        last = self.settings.get("finetune/last_run")
        return Path(last) if last else None

    def new_run_dir(self) -> Path:
        """A folder under runs_dir() that does not exist yet, named after the time."""
        stem = time.strftime("run-%Y%m%d-%H%M%S")
        path, n = self.runs_dir() / stem, 1
        while path.exists():
            n += 1
            path = self.runs_dir() / f"{stem}-{n}"
        return path

    def add_folders(self, paths: list[str]) -> int:
        """Add the folders among `paths` that are not listed yet; returns how many were added
        (files and missing paths are skipped: training reads folders)."""
        listed = {self.folder_list.item(i).text() for i in range(self.folder_list.count())}
        added = 0
        for path in paths:
            if Path(path).is_dir() and path not in listed:
                self.folder_list.addItem(path)
                listed.add(path)
                added += 1
        return added

    def params(self, run_dir: Path | None = None, resume: bool = False) -> FineTuneParams:
        """The run the controls describe, in `run_dir` (default: a new folder)."""
        s = self.settings
        base = s.get("finetune/base_model") or s.get("processing/model")
        folders = tuple(self.folder_list.item(i).text() for i in range(self.folder_list.count()))
        return FineTuneParams(folders, base, self.steps_spin.value(),
                              self.batch_spin.value(), run_dir or self.new_run_dir(),
                              s.get("processing/device"), float(self.minutes_spin.value()),
                              resume=resume, cache_dir=self.runs_dir() / "cache")

    # ---- slots ----
    @Slot()
    def _on_timer_timeout(self) -> None:
        for key in self._dirty:
            self.curves[key].setData(*self._series[key])
        self._dirty.clear()

    @Slot()
    def _on_start_clicked(self) -> None:
        self._start(self.params())

    @Slot()
    def _on_resume_clicked(self) -> None:
        last = self.last_run()
        if last is not None:
            self._start(self.params(last, resume=True))

    def _start(self, params: FineTuneParams) -> None:
        if not params.folders:
            self.status.setText("Add at least one folder of full-band audio first.")
            return
        self.settings.set("finetune/folders", list(params.folders))
        self.settings.set("finetune/steps", params.steps)
        self.settings.set("finetune/batch_size", params.batch_size)
        self.settings.set("finetune/max_minutes", int(params.max_minutes))
        self.settings.set("finetune/last_run", str(params.out_dir))
        if not params.resume:  # a resumed run's curves go on where they were
            for steps, values in self._series.values():
                steps.clear()
                values.clear()
            for curve in self.curves.values():
                curve.setData([], [])
            self._dirty.clear()
            self.log_view.clear()
            self.progress.setValue(0)
        self.log_view.appendPlainText(("Resuming " if params.resume else "Run folder: ")
                                      + str(params.out_dir))
        self.status.setText(("Resuming…" if params.resume else "Starting…")
                            + ("" if self._cuda else " (on the CPU: slow)"))
        self._can_export = False
        self.show_running(True)
        self.start_requested.emit(params)

    @Slot()
    def _on_add_clicked(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder of full-band audio")
        if folder:
            self.add_folders([folder])

    @Slot()
    def _on_remove_clicked(self) -> None:
        for item in self.folder_list.selectedItems():
            self.folder_list.takeItem(self.folder_list.row(item))

    @Slot()
    def _on_base_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Base model", "", MODEL_FILTER)
        self.settings.set("finetune/base_model", path)  # cancelled: "" = the current model
        self.refresh_paths()

    @Slot()
    def _on_out_clicked(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder for training runs")
        if folder:
            self.settings.set("finetune/out_dir", folder)
            self.refresh_paths()

    @Slot()
    def _on_export_clicked(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save the fine-tuned model",
                                              str((self.last_run() or self.runs_dir())
                                                  / "finetuned.safetensors"),
                                              MODEL_FILTER)
        if path:
            self.export_requested.emit(path)
