"""Side panel: model, sampler, device, cutoff, output and view settings (persisted at once)."""

from __future__ import annotations

import functools
from pathlib import Path

from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.settings import OUTPUT_RATES, Settings
from app.workers.messages import ModelStatus, SystemInfo

OUTPUT_FORMATS = (("WAV 16-bit", "wav", "PCM_16"), ("WAV 24-bit", "wav", "PCM_24"),
                  ("WAV 32-bit float", "wav", "FLOAT"), ("FLAC 16-bit", "flac", "PCM_16"),
                  ("FLAC 24-bit", "flac", "PCM_24"))
MODEL_FILTER = "JaT-SR model (*.safetensors *.json)"


class SettingsPanel(QWidget):
    """Edits write through to `Settings`; signals say what changed."""

    model_changed = Signal()  # model or device: the worker should reload
    view_changed = Signal()  # dB range, log axis, difference view

    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self._model_group())
        layout.addWidget(self._output_group())
        layout.addWidget(self._view_group())
        layout.addStretch(1)
        self.setMinimumWidth(260)

    # ---- groups ----
    def _model_group(self) -> QGroupBox:
        s = self.settings
        box = QGroupBox("Model")
        form = QFormLayout(box)
        self.model_label = QLabel()
        self.model_label.setWordWrap(True)
        self.model_status = QLabel("checking…")
        self.model_status.setWordWrap(True)
        choose = QPushButton("Choose file…")
        choose.clicked.connect(self._on_choose_clicked)
        default = QPushButton("Default")
        default.clicked.connect(self._on_default_clicked)
        buttons = QHBoxLayout()
        buttons.addWidget(choose)
        buttons.addWidget(default)
        form.addRow(self.model_label)
        form.addRow(self.model_status)
        form.addRow(buttons)
        self.steps_spin = QSpinBox(minimum=1, maximum=256, value=s.get("processing/steps"))
        self.steps_spin.valueChanged.connect(self._on_steps_spin_value_changed)
        self.solver_combo = QComboBox()
        self.solver_combo.addItems(["euler", "heun"])
        self.solver_combo.setCurrentText(s.get("processing/solver"))
        self.solver_combo.currentTextChanged.connect(self._on_solver_combo_changed)
        self.warm_start = self._setting_box(
            "Always warm start from the DSP estimate", "processing/warm_start",
            "The model refines a spectral-band-replication estimate instead of starting from "
            "noise. Off, it does so where that measures closer to the original: inputs cut off "
            "above 6 kHz except one-shots (a drum hit, a strum), and lower ones only when "
            "noise-like (rain, fire, crowds, breathy voices); on, for every input")
        self.keep_louder = self._setting_box(
            "Keep input content above the cutoff", "processing/keep_louder_input",
            "Where the input is louder than the generated band above the cutoff (content a lossy "
            "encoder kept in some frames), keep the original instead of generating over it")
        self.fill_holes = self._setting_box(
            "Fill encoder holes below the cutoff", "processing/fill_holes",
            "For MP3s and other lossy files: where the encoder zeroed parts of the band it kept "
            "(dark patches below the cutoff), put generated content there too. Off, the band "
            "below the cutoff is the input's, untouched; leave it off for clean recordings, "
            "whose own quiet spots it would fill as well")
        self.device_combo = QComboBox()
        for label, key in (("Auto", "auto"), ("CUDA GPU", "cuda"), ("CPU", "cpu")):
            self.device_combo.addItem(label, key)
        self.device_combo.setCurrentIndex(max(0, self.device_combo.findData(
            s.get("processing/device"))))
        self.device_combo.currentIndexChanged.connect(self._on_device_combo_changed)
        self.cutoff_auto = QCheckBox("Detect", checked=s.get("processing/cutoff_auto"))
        self.cutoff_spin = QDoubleSpinBox(minimum=1000.0, maximum=22000.0, decimals=0,
                                          singleStep=250.0, suffix=" Hz",
                                          value=s.get("processing/cutoff_hz"))
        self.cutoff_spin.setEnabled(not self.cutoff_auto.isChecked())
        self.cutoff_auto.toggled.connect(self._on_cutoff_auto_toggled)
        self.cutoff_spin.valueChanged.connect(self._on_cutoff_spin_value_changed)
        cutoff = QHBoxLayout()
        cutoff.addWidget(self.cutoff_auto)
        cutoff.addWidget(self.cutoff_spin, 1)
        form.addRow("Steps", self.steps_spin)
        form.addRow("Solver", self.solver_combo)
        form.addRow(self.warm_start)  # whole rows: the box's text is its label
        form.addRow(self.keep_louder)
        form.addRow(self.fill_holes)
        form.addRow("Device", self.device_combo)
        form.addRow("Cutoff", cutoff)
        self._show_model_spec()
        return box

    def _output_group(self) -> QGroupBox:
        box = QGroupBox("Output")
        form = QFormLayout(box)
        self.format_combo = QComboBox()
        for label, fmt, subtype in OUTPUT_FORMATS:
            self.format_combo.addItem(label, f"{fmt}/{subtype}")
        current = f"{self.settings.get('output/format')}/{self.settings.get('output/subtype')}"
        self.format_combo.setCurrentIndex(max(0, self.format_combo.findData(current)))
        self.format_combo.currentIndexChanged.connect(self._on_format_combo_changed)
        self.rate_combo = QComboBox()
        for rate in OUTPUT_RATES:
            self.rate_combo.addItem(f"{rate / 1000:g} kHz", rate)
        self.rate_combo.setToolTip(
            "The restoration is made at 44.1 kHz; other rates resample it on the way to the file "
            "(48 kHz for video work). Nothing is generated above 22.05 kHz.")
        self.rate_combo.setCurrentIndex(
            max(0, self.rate_combo.findData(int(self.settings.get("output/rate")))))
        self.rate_combo.currentIndexChanged.connect(self._on_rate_combo_changed)
        self.folder_label = QLabel()
        self.folder_label.setWordWrap(True)
        choose = QPushButton("Folder…")
        choose.clicked.connect(self._on_folder_clicked)
        beside = QPushButton("Next to input")
        beside.clicked.connect(self._on_beside_clicked)
        buttons = QHBoxLayout()
        buttons.addWidget(choose)
        buttons.addWidget(beside)
        form.addRow("Format", self.format_combo)
        form.addRow("Rate", self.rate_combo)
        form.addRow(self.folder_label)
        form.addRow(buttons)
        self._show_folder()
        return box

    def _view_group(self) -> QGroupBox:
        s = self.settings
        box = QGroupBox("View")
        form = QFormLayout(box)
        self.floor_spin = QSpinBox(minimum=-160, maximum=-20, suffix=" dB",
                                   value=round(s.get("view/db_floor")))
        self.ceiling_spin = QSpinBox(minimum=-80, maximum=20, suffix=" dB",
                                     value=round(s.get("view/db_ceiling")))
        self.log_check = QCheckBox("Log frequency axis", checked=s.get("view/log_frequency"))
        self.diff_check = QCheckBox("Difference view (B − A)",
                                    checked=s.get("view/show_difference"))
        for w in (self.floor_spin, self.ceiling_spin):
            w.valueChanged.connect(self._on_view_control_changed)
        for c in (self.log_check, self.diff_check):
            c.toggled.connect(self._on_view_control_changed)
        form.addRow("Floor", self.floor_spin)
        form.addRow("Ceiling", self.ceiling_spin)
        form.addRow(self.log_check)
        form.addRow(self.diff_check)
        return box

    # ---- show_* API ----
    def show_model_status(self, status: ModelStatus) -> None:
        if status.ok:
            name = status.summary.get("training", {}).get("name") or (
                status.path.stem if status.path else status.spec)
            self.model_status.setText(f"✔ {name} — on {status.device}")
            self.model_status.setObjectName("okLabel")
        else:
            self.model_status.setText(f"✖ {status.error}")
            self.model_status.setObjectName("errorLabel")
        self.model_status.setToolTip(status.error or str(status.path))
        self.model_status.style().polish(self.model_status)

    def show_system(self, info: SystemInfo) -> None:
        """Label the device choices with what torch found."""
        gpu = info.gpus[0].name if info.gpus else ""
        auto = f"Auto → CUDA ({gpu})" if info.cuda_available else "Auto → CPU (no CUDA GPU)"
        self.device_combo.setItemText(0, auto)
        self.device_combo.setItemText(1, f"CUDA ({gpu})" if gpu else "CUDA (not available)")

    def show_levels(self, floor_db: float, ceiling_db: float) -> None:
        for spin, value in ((self.floor_spin, floor_db), (self.ceiling_spin, ceiling_db)):
            spin.blockSignals(True)
            spin.setValue(round(value))
            spin.blockSignals(False)
        self.settings.set("view/db_floor", float(floor_db))
        self.settings.set("view/db_ceiling", float(ceiling_db))

    def set_model_spec(self, spec: str) -> None:
        self.settings.set("processing/model", spec)
        self._show_model_spec()
        self.model_status.setText("checking…")
        self.model_changed.emit()

    def _show_model_spec(self) -> None:
        spec = self.settings.get("processing/model")
        self.model_label.setText("Shipped default model" if spec == "default" else Path(spec).name)
        self.model_label.setToolTip(spec)

    def _show_folder(self) -> None:
        folder = self.settings.get("output/folder")
        self.folder_label.setText(f"To: {folder}" if folder else "To: next to each input")
        self.folder_label.setToolTip(folder)

    # ---- slots ----
    @Slot()
    def _on_choose_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose a model file", "", MODEL_FILTER)
        if path:
            self.set_model_spec(path)

    def _setting_box(self, text: str, key: str, tip: str) -> QCheckBox:
        """A check box showing the boolean setting `key` and writing it back when toggled."""
        box = QCheckBox(text, checked=self.settings.get(key))
        box.setToolTip(tip)
        box.toggled.connect(functools.partial(self.settings.set, key))
        return box

    @Slot()
    def _on_default_clicked(self) -> None:
        self.set_model_spec("default")

    @Slot(int)
    def _on_steps_spin_value_changed(self, value: int) -> None:
        self.settings.set("processing/steps", value)

    @Slot(str)
    def _on_solver_combo_changed(self, text: str) -> None:
        self.settings.set("processing/solver", text)

    @Slot(int)
    def _on_device_combo_changed(self, index: int) -> None:
        self.settings.set("processing/device", self.device_combo.itemData(index))
        self.model_changed.emit()

    @Slot(bool)
    def _on_cutoff_auto_toggled(self, on: bool) -> None:
        self.settings.set("processing/cutoff_auto", on)
        self.cutoff_spin.setEnabled(not on)

    @Slot(float)
    def _on_cutoff_spin_value_changed(self, value: float) -> None:
        self.settings.set("processing/cutoff_hz", value)

    @Slot(int)
    def _on_format_combo_changed(self, index: int) -> None:
        fmt, subtype = str(self.format_combo.itemData(index)).split("/")
        self.settings.set("output/format", fmt)
        self.settings.set("output/subtype", subtype)

    @Slot(int)
    def _on_rate_combo_changed(self, index: int) -> None:
        self.settings.set("output/rate", int(self.rate_combo.itemData(index)))

    @Slot()
    def _on_folder_clicked(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Output folder",
                                                  self.settings.get("output/folder"))
        if folder:
            self.settings.set("output/folder", folder)
            self._show_folder()

    @Slot()
    def _on_beside_clicked(self) -> None:
        self.settings.set("output/folder", "")
        self._show_folder()

    @Slot()
    def _on_view_control_changed(self) -> None:
        s = self.settings
        s.set("view/db_floor", float(self.floor_spin.value()))
        s.set("view/db_ceiling", float(self.ceiling_spin.value()))
        s.set("view/log_frequency", self.log_check.isChecked())
        s.set("view/show_difference", self.diff_check.isChecked())
        self.view_changed.emit()
