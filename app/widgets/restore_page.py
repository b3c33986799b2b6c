"""The Restore page: queue table, transport, stacked spectrograms, overview and settings panel."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QLabel,
    QScrollArea,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from app.models.queue_model import QueueModel
from app.settings import Settings
from app.widgets.overview_view import OverviewView
from app.widgets.queue_view import QueueView
from app.widgets.settings_panel import SettingsPanel
from app.widgets.spectrogram_view import SpectrogramView
from app.widgets.transport_bar import TransportBar
from app.workers.messages import DetailViews, ViewData

PLACEHOLDER = ("Drop audio files or folders anywhere on this window\n"
               "or use File › Open…   ·   then Process › Process all (Ctrl+R)")


class RestorePage(QWidget):
    """Lays out the listening and queue views; `show_*` methods update them together."""

    def __init__(self, settings: Settings, model: QueueModel,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.queue_view = QueueView()
        self.queue_view.setModel(model)
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
        self.panel = SettingsPanel(settings)
        scroll = QScrollArea(widgetResizable=True)
        scroll.setWidget(self.panel)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setMinimumWidth(self.panel.sizeHint().width()
                               + scroll.verticalScrollBar().sizeHint().width() + 4)
        side = QSplitter(Qt.Orientation.Horizontal)
        side.addWidget(self.splitter)
        side.addWidget(scroll)
        side.setStretchFactor(0, 1)  # the window's extra width goes to the views
        side.setStretchFactor(1, 0)
        side.setCollapsible(1, False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(side)
        self.apply_view_settings()

    def apply_view_settings(self) -> None:
        settings = self.settings
        self.spectrogram.set_levels(settings.get("view/db_floor"), settings.get("view/db_ceiling"))
        self.spectrogram.set_log_frequency(settings.get("view/log_frequency"))
        self.spectrogram.set_difference_visible(settings.get("view/show_difference"))

    def show_clip_loaded(self) -> None:
        self.view_stack.setCurrentWidget(self.spectrogram)

    def show_views(self, views: ViewData) -> None:
        self.spectrogram.show_views(views.lr, views.sr, views.diff, views.cutoff_hz or None)
        self.overview.show_envelope(views.envelope_min, views.envelope_max, views.duration_s)

    def show_detail(self, detail: DetailViews) -> None:
        self.spectrogram.show_detail(detail)

    def show_cleared(self) -> None:
        self.spectrogram.clear_views()
        self.overview.clear_views()
        self.view_stack.setCurrentWidget(self.placeholder)

    def show_loop(self, on: bool, region_s: tuple[float, float] | None) -> None:
        self.transport.show_loop(on)
        self.spectrogram.set_region_s(region_s if on else None)

    def show_position(self, position_s: float, duration_s: float) -> None:
        """Cursors and time (redraw timer), then upload any new view payloads."""
        self.transport.show_position(position_s, duration_s)
        self.spectrogram.set_cursor_s(position_s)
        self.overview.set_cursor_s(position_s)
        self.spectrogram.refresh()
        self.overview.refresh()
