"""Transport and A/B controls: play/pause, stop, A | B | B−A, loop, loudness match, device."""

from __future__ import annotations

from PySide6.QtCore import QSize, Signal, Slot
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QToolButton,
    QWidget,
)

from app.models.queue_model import format_duration
from app.widgets.theme import ACCENT, transport_icon
from app.workers.messages import AudioDevice

MODE_LABELS = (("A", "Original: the input resampled to 44.1 kHz (A)"),
               ("B", "Restored by the model (B)"),
               ("B−A", "Difference: what the model added (D)"))


class TransportBar(QWidget):
    """Emits intent signals; `show_*` methods reflect the player's state."""

    play_toggled = Signal()
    stop_requested = Signal()
    mode_selected = Signal(int)  # app.playback.player.Mode value
    loop_toggled = Signal(bool)
    match_toggled = Signal(bool)
    device_selected = Signal(int)  # device index, -1 = system default

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 2, 6, 2)
        layout.setSpacing(4)
        self.play_button = self._button(transport_icon("play", ACCENT), "Play / pause (Space)")
        self.play_button.clicked.connect(self.play_toggled)
        self.stop_button = self._button(transport_icon("stop"), "Stop")
        self.stop_button.clicked.connect(self.stop_requested)
        self.time_label = QLabel("0:00.0 / 0:00.0")
        self.time_label.setObjectName("timeLabel")
        for w in (self.play_button, self.stop_button, self.time_label):
            layout.addWidget(w)
        self.mode_group = QButtonGroup(self)
        self.mode_group.setExclusive(True)
        self.mode_buttons: list[QToolButton] = []
        for i, (text, tip) in enumerate(MODE_LABELS):
            button = QToolButton(text=text, toolTip=tip + " — Tab toggles A/B", checkable=True)
            button.setObjectName("abButton")
            button.setMinimumWidth(42)
            self.mode_group.addButton(button, i)
            self.mode_buttons.append(button)
            layout.addWidget(button)
        self.mode_buttons[0].setChecked(True)
        self.mode_group.idClicked.connect(self.mode_selected)
        self.loop_button = QToolButton(text="Loop", checkable=True,
                                       toolTip="Loop the selection of the overview (L)")
        self.loop_button.toggled.connect(self.loop_toggled)
        self.match_button = QToolButton(text="Match loudness", checkable=True, checked=True,
                                        toolTip="Play A and B at the same loudness "
                                                "(K-weighted, like LUFS)")
        self.match_button.toggled.connect(self.match_toggled)
        layout.addWidget(self.loop_button)
        layout.addWidget(self.match_button)
        layout.addStretch(1)
        self.status_label = QLabel()
        self.status_label.setObjectName("dimLabel")
        layout.addWidget(self.status_label)
        self.device_combo = QComboBox(toolTip="Audio output device")
        self.device_combo.setMinimumWidth(180)
        self.device_combo.activated.connect(self._on_device_combo_activated)
        layout.addWidget(self.device_combo)
        self._can_play = False
        self.set_enabled_state(False, "Select a file in the queue to listen.")

    def _button(self, icon: QIcon, tip: str) -> QToolButton:
        button = QToolButton(toolTip=tip)
        button.setIcon(icon)
        button.setIconSize(QSize(18, 18))
        return button

    @Slot(bool, str, int)
    def set_enabled_state(self, can_play: bool, reason: str = "", sources: int = 3) -> None:
        """Enable playback (with how many sources) or disable it, saying why."""
        self._can_play = can_play
        for w in (self.play_button, self.stop_button, self.loop_button, self.match_button):
            w.setEnabled(can_play)
        for i, button in enumerate(self.mode_buttons):
            button.setEnabled(can_play and i < sources)
        self.status_label.setText(reason)
        self.status_label.setToolTip(reason)
        self.device_combo.setEnabled(self.device_combo.count() > 0)

    def show_devices(self, devices: tuple[AudioDevice, ...], selected: int) -> None:
        self.device_combo.clear()
        if not devices:
            self.device_combo.addItem("No audio output", -1)
        for device in devices:
            label = device.name + (" (default)" if device.is_default else "")
            self.device_combo.addItem(label, device.index)
        index = self.device_combo.findData(selected)
        if index < 0:
            index = next((i for i, d in enumerate(devices) if d.is_default), 0)
        self.device_combo.setCurrentIndex(index)
        self.device_combo.setEnabled(bool(devices))

    def show_position(self, position_s: float, duration_s: float) -> None:
        self.time_label.setText(f"{format_duration(position_s)} / {format_duration(duration_s)}")

    def show_playing(self, playing: bool) -> None:
        self.play_button.setIcon(transport_icon("pause" if playing else "play", ACCENT))

    def show_mode(self, mode: int) -> None:
        button = self.mode_group.button(mode)
        if button is not None and not button.isChecked():
            button.setChecked(True)

    def show_loop(self, on: bool) -> None:
        if self.loop_button.isChecked() != on:
            self.loop_button.setChecked(on)

    @Slot(int)
    def _on_device_combo_activated(self, index: int) -> None:
        self.device_selected.emit(int(self.device_combo.itemData(index)))
