"""Waveform overview of the whole item: peak envelope, selection (loop) region, play cursor."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Signal, Slot
from PySide6.QtWidgets import QWidget

from app.widgets.theme import ACCENT, ACCENT_B, CURSOR


class OverviewView(pg.PlotWidget):
    """Click to seek; drag the region's edges to select the loop."""

    region_changed = Signal(float, float)  # seconds
    seek_requested = Signal(float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMenuEnabled(False)
        self.hideButtons()
        self.setMouseEnabled(x=False, y=False)
        self.hideAxis("left")
        self.getPlotItem().setContentsMargins(4, 0, 4, 0)
        self.getViewBox().setDefaultPadding(0.0)
        self.setYRange(-1.0, 1.0, padding=0.02)
        pen = pg.mkPen(ACCENT_B, width=1)
        self._upper = pg.PlotCurveItem(pen=pen)
        self._lower = pg.PlotCurveItem(pen=pen)
        self._fill = pg.FillBetweenItem(self._upper, self._lower,
                                        brush=pg.mkBrush(76, 194, 255, 90))
        for item in (self._fill, self._upper, self._lower):
            self.addItem(item)
        self.region = pg.LinearRegionItem(brush=pg.mkBrush(245, 165, 36, 45),
                                          pen=pg.mkPen(ACCENT, width=2))
        self.region.setZValue(10)
        self.region.hide()
        self.addItem(self.region, ignoreBounds=True)
        self._cursor = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen(CURSOR, width=1.5))
        self._cursor.setZValue(20)
        self.addItem(self._cursor, ignoreBounds=True)
        self._pending: tuple[np.ndarray, np.ndarray, float] | None = None
        self._duration_s = 0.0
        self.region.sigRegionChangeFinished.connect(self._on_region_change_finished)
        self.scene().sigMouseClicked.connect(self._on_scene_clicked)

    def show_envelope(self, low: np.ndarray, high: np.ndarray, duration_s: float) -> None:
        """Store a new envelope; drawn on the next `refresh()`."""
        self._pending = (low, high, duration_s)

    def clear_views(self) -> None:
        self._pending = (np.zeros(0, np.float32), np.zeros(0, np.float32), 0.0)

    def refresh(self) -> None:
        if self._pending is None:
            return
        low, high, duration_s = self._pending
        self._pending = None
        self._duration_s = duration_s
        x = np.linspace(0.0, duration_s, low.shape[0]) if low.size else np.zeros(0)
        self._upper.setData(x, high)
        self._lower.setData(x, low)
        if duration_s > 0:
            self.setXRange(0.0, duration_s, padding=0.0)
            self.region.setBounds((0.0, duration_s))
            self.region.blockSignals(True)
            self.region.setRegion((0.0, duration_s))
            self.region.blockSignals(False)
            self.region.show()
        else:
            self.region.hide()

    def set_cursor_s(self, seconds: float) -> None:
        self._cursor.setValue(seconds)

    def selection_s(self) -> tuple[float, float]:
        low, high = self.region.getRegion()
        return float(low), float(high)

    def set_selection_s(self, start_s: float, end_s: float) -> None:
        self.region.setRegion((start_s, end_s))

    @Slot(object)
    def _on_region_change_finished(self, region: pg.LinearRegionItem) -> None:
        low, high = self.selection_s()
        self.region_changed.emit(low, high)

    @Slot(object)
    def _on_scene_clicked(self, event: object) -> None:
        pos: QPointF = event.scenePos()  # type: ignore[attr-defined]
        vb = self.getViewBox()
        if self._duration_s > 0 and vb.sceneBoundingRect().contains(pos):
            x = float(vb.mapSceneToView(pos).x())
            self.seek_requested.emit(min(max(x, 0.0), self._duration_s))
