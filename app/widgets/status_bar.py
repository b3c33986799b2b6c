"""Status bar: the latest message, and the overall progress of the running batch."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QProgressBar, QStatusBar, QWidget

from app.workers.messages import ModelStatus


class AppStatusBar(QStatusBar):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.label = QLabel()
        self.progress = QProgressBar(maximum=1000, textVisible=False)
        self.progress.setFixedWidth(220)
        self.progress.hide()
        self.addWidget(self.label, 1)
        self.addPermanentWidget(self.progress)

    def show_text(self, text: str) -> None:
        self.label.setText(text)

    def show_progress(self, fraction: float, text: str, busy: bool) -> None:
        self.progress.setVisible(busy)
        self.progress.setValue(round(fraction * 1000))
        if text:
            self.label.setText(text)

    def show_model_status(self, status: ModelStatus) -> None:
        self.label.setText(f"Model ready on {status.device}" if status.ok
                           else f"No usable model: {status.error}")
