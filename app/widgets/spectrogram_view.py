"""Stacked, linked spectrograms of the original, the restored and (optionally) the difference.

One persistent row-major `ImageItem` per plot; `show_views` only stores the payload and the
redraw timer calls `refresh()` (at most 30 fps), which uploads it. Frequencies are linear, or
log-spaced rows placed in log10(Hz) view units with the axis in log mode.

The overview images have at most `analysis.MAX_COLUMNS` columns (an hour is ~0.9 s a column).
Zoomed in past that, the view asks for the visible span at full resolution
(`detail_requested`, debounced) and draws the answer (`show_detail`) over the overview in a
second image per plot.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, QTimer, Signal, Slot
from PySide6.QtWidgets import QWidget

from app.analysis import HOP_SAMPLES, LOG_MIN_HZ, Spectrogram
from app.widgets.theme import CURSOR, CUTOFF, REGION_BRUSH, TEXT_DIM
from app.workers.messages import DetailViews

TITLES = ("A · Original (input at 44.1 kHz)", "B · Restored", "B − A · What the model added")
COLORMAP = "inferno"
DETAIL_DELAY_MS = 150  # zoom/pan settles this long before a detail is asked for
DETAIL_MARGIN = 0.25  # the detail spans this fraction of the visible span more on each side
COARSE_PX_PER_COLUMN = 2.0  # a detail is wanted when overview columns are wider than this
LOG_TICKS = ((50, "50"), (100, "100"), (200, "200"), (500, "500"), (1000, "1k"), (2000, "2k"),
             (5000, "5k"), (10000, "10k"), (20000, "20k"))


class SpectrogramView(pg.GraphicsLayoutWidget):
    """Three linked spectrogram plots with a shared dB colour bar."""

    seek_requested = Signal(float)  # seconds
    detail_requested = Signal(float, float, int)  # start s, stop s, columns
    levels_changed = Signal(float, float)  # dB floor, ceiling (dragged on the colour bar)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ci.setSpacing(2)
        self.ci.setContentsMargins(2, 2, 2, 2)
        self._levels = (-100.0, -10.0)
        self._log = False
        self._show_diff = False
        self._payload: tuple[Spectrogram | None, ...] = (None, None, None)
        self._dirty = False
        self._cutoff_hz: float | None = None
        self.plots: list[pg.PlotItem] = []
        self.images: list[pg.ImageItem] = []
        self.detail_images: list[pg.ImageItem] = []
        self._detail: DetailViews | None = None
        self._new_overview = False  # the next refresh frames the whole clip
        self._detail_timer = QTimer(self, singleShot=True, interval=DETAIL_DELAY_MS)
        self._detail_timer.timeout.connect(self._check_detail)
        self._cursors: list[pg.InfiniteLine] = []
        self._cutoffs: list[pg.InfiniteLine] = []
        self._regions: list[pg.LinearRegionItem] = []
        for row, title in enumerate(TITLES):
            self._add_plot(row, title)
        self.colorbar = pg.ColorBarItem(values=self._levels, colorMap=COLORMAP, label="dB",
                                        interactive=True, width=14)
        self.colorbar.setImageItem(self.images + self.detail_images)
        self.addItem(self.colorbar, row=0, col=1, rowspan=2)
        self.colorbar.sigLevelsChangeFinished.connect(self._on_colorbar_levels_changed)
        self.scene().sigMouseClicked.connect(self._on_scene_clicked)
        self._place_diff()
        self._apply_axis_mode()
        self.plots[0].getViewBox().sigXRangeChanged.connect(self._detail_timer.start)

    def _add_plot(self, row: int, title: str) -> None:
        plot = pg.PlotItem()
        plot.setTitle(title, size="9pt", color=TEXT_DIM, justify="left")
        plot.setLabel("left", "", units="Hz")
        plot.showAxis("right", False)
        plot.setMenuEnabled(False)
        plot.hideButtons()
        plot.getViewBox().setMouseEnabled(x=True, y=True)
        plot.getViewBox().setDefaultPadding(0.0)
        if self.plots:
            plot.setXLink(self.plots[0])
            plot.setYLink(self.plots[0])
        image = pg.ImageItem(axisOrder="row-major")
        plot.addItem(image)
        detail = pg.ImageItem(axisOrder="row-major")
        detail.setZValue(1)  # over the overview image, under the region and lines
        plot.addItem(detail)
        self.detail_images.append(detail)
        region = pg.LinearRegionItem(movable=False, brush=REGION_BRUSH, pen=pg.mkPen(None))
        region.setZValue(5)
        region.hide()
        plot.addItem(region, ignoreBounds=True)
        dashed = pg.mkPen(CUTOFF, width=1, style=Qt.PenStyle.DashLine)
        cutoff = pg.InfiniteLine(angle=0, movable=False, label="", pen=dashed,
                                 labelOpts={"position": 0.97, "color": CUTOFF, "anchors":
                                            [(1, 1), (1, 1)]})
        cutoff.setZValue(10)
        cutoff.hide()
        plot.addItem(cutoff, ignoreBounds=True)
        cursor = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen(CURSOR, width=1.5))
        cursor.setZValue(20)
        plot.addItem(cursor, ignoreBounds=True)
        self.addItem(plot, row=row, col=0)
        self.plots.append(plot)
        self.images.append(image)
        self._regions.append(region)
        self._cutoffs.append(cutoff)
        self._cursors.append(cursor)

    # ---- show_* API ----
    def show_views(self, lr: Spectrogram | None, sr: Spectrogram | None,
                   diff: Spectrogram | None, cutoff_hz: float | None) -> None:
        """Store a new payload; uploaded on the next `refresh()`."""
        self._payload = (lr, sr, diff)
        self._cutoff_hz = cutoff_hz
        self._detail = None
        self._new_overview = True
        self._dirty = True
        if lr is not None:
            self._detail_timer.start()  # a view already zoomed in asks for its detail

    def show_detail(self, detail: DetailViews) -> None:
        """Store a full-resolution span (drawn over the overview on the next `refresh()`)."""
        if self._payload[0] is None:
            return
        self._detail = detail
        self._dirty = True

    def clear_views(self) -> None:
        self.show_views(None, None, None, None)

    def set_levels(self, floor_db: float, ceiling_db: float) -> None:
        if ceiling_db - floor_db < 1.0 or (floor_db, ceiling_db) == self._levels:
            return
        self._levels = (floor_db, ceiling_db)
        self.colorbar.setLevels(self._levels)

    @property
    def levels(self) -> tuple[float, float]:
        return self._levels

    def set_log_frequency(self, on: bool) -> None:
        if on != self._log:
            self._log = on
            self._apply_axis_mode()
            self._dirty = True

    def set_difference_visible(self, on: bool) -> None:
        if on != self._show_diff:
            self._show_diff = on
            self._place_diff()

    def set_cursor_s(self, seconds: float) -> None:
        for line in self._cursors:
            line.setValue(seconds)

    def set_region_s(self, region: tuple[float, float] | None) -> None:
        for item in self._regions:
            if region is None:
                item.hide()
            else:
                item.setRegion(region)
                item.show()

    # ---- drawing ----
    def refresh(self) -> None:
        """Upload a changed payload to the image items (called by the redraw timer)."""
        if not self._dirty:
            return
        self._dirty = False
        duration_s = 0.0
        for image, spec in zip(self.images, self._payload, strict=True):
            if spec is None:
                image.clear()
                continue
            image.setImage(spec.log_db if self._log else spec.linear_db, autoLevels=False,
                           levels=self._levels)
            image.setRect(self._rect(spec))
            duration_s = max(duration_s, spec.duration_s)
        self._show_cutoff()
        detail = self._detail
        parts = (detail.lr, detail.sr, detail.diff) if detail is not None else (None,) * 3
        for image, spec in zip(self.detail_images, parts, strict=True):
            if spec is None:
                image.clear()
                continue
            assert detail is not None
            low, high = self._y_span(spec.nyquist_hz)
            image.setImage(spec.log_db if self._log else spec.linear_db, autoLevels=False,
                           levels=self._levels)
            image.setRect(QRectF(detail.start_s, low, detail.stop_s - detail.start_s,
                                 high - low))
        if duration_s > 0 and self._new_overview:
            self._new_overview = False
            nyquist = next(s.nyquist_hz for s in self._payload if s is not None)
            self.plots[0].setXRange(0.0, duration_s, padding=0.0)
            self.plots[0].setYRange(*self._y_span(nyquist), padding=0.0)
            self.plots[0].getViewBox().setLimits(xMin=0.0, xMax=duration_s)

    def _check_detail(self) -> None:
        """Ask for the visible span at full resolution when the overview is too coarse there;
        drop the detail when zoomed back out."""
        lr = self._payload[0]
        if lr is None:
            return
        (x0, x1), _ = self.plots[0].getViewBox().viewRange()
        x0, x1 = max(0.0, x0), min(lr.duration_s, x1)
        width_px = max(1.0, float(self.plots[0].getViewBox().width()))
        column_s = lr.duration_s / lr.linear_db.shape[1]
        hop_s = HOP_SAMPLES / (2 * lr.nyquist_hz)
        if (x1 <= x0 or column_s <= 1.01 * hop_s  # the overview is at full resolution
                or (x1 - x0) / column_s * COARSE_PX_PER_COLUMN >= width_px):
            if self._detail is not None:
                self._detail = None
                self._dirty = True
            return
        detail = self._detail
        if detail is not None and detail.start_s <= x0 and x1 <= detail.stop_s:
            detail_column_s = (detail.stop_s - detail.start_s) / detail.lr.linear_db.shape[1]
            if (detail_column_s <= 1.01 * hop_s
                    or (x1 - x0) / detail_column_s * COARSE_PX_PER_COLUMN >= width_px):
                return  # the detail on screen already covers the view finely enough
        margin = DETAIL_MARGIN * (x1 - x0)
        start, stop = max(0.0, x0 - margin), min(lr.duration_s, x1 + margin)
        columns = math.ceil(width_px * (stop - start) / (x1 - x0))
        self.detail_requested.emit(start, stop, columns)

    def _rect(self, spec: Spectrogram) -> QRectF:
        low, high = self._y_span(spec.nyquist_hz)
        return QRectF(0.0, low, spec.duration_s, high - low)

    def _y_span(self, nyquist_hz: float) -> tuple[float, float]:
        if self._log:
            return math.log10(LOG_MIN_HZ), math.log10(nyquist_hz)
        return 0.0, nyquist_hz

    def _show_cutoff(self) -> None:
        hz = self._cutoff_hz
        for line in self._cutoffs:
            if hz is None or hz <= LOG_MIN_HZ:
                line.hide()
                continue
            line.show()  # the label only updates while visible
            line.setValue(math.log10(hz) if self._log else hz)
            line.label.setFormat(f"cutoff {hz / 1000:.1f} kHz")

    def _apply_axis_mode(self) -> None:
        # the view range changes units first: a log axis would compute 10**22050 otherwise
        nyquist = next((s.nyquist_hz for s in self._payload if s is not None), 22050.0)
        self.plots[0].setYRange(*self._y_span(nyquist), padding=0.0)
        ticks = [[(math.log10(hz), label) for hz, label in LOG_TICKS]] if self._log else None
        for plot in self.plots:
            plot.setLogMode(x=False, y=self._log)
            axis = plot.getAxis("left")
            axis.enableAutoSIPrefix(not self._log)
            axis.setTicks(ticks)
            plot.setLabel("left", "", units="Hz")

    def _place_diff(self) -> None:
        plot = self.plots[2]
        if self._show_diff and plot.scene() is None:
            self.addItem(plot, row=2, col=0)
        elif not self._show_diff and plot.scene() is not None:
            self.removeItem(plot)
        self.plots[1].getAxis("bottom").setStyle(showValues=not self._show_diff)
        self.plots[0].getAxis("bottom").setStyle(showValues=False)

    @Slot(object)
    def _on_colorbar_levels_changed(self, bar: pg.ColorBarItem) -> None:
        low, high = (float(v) for v in bar.levels())
        self._levels = (low, high)
        self.levels_changed.emit(low, high)

    @Slot(object)
    def _on_scene_clicked(self, event: object) -> None:
        scene_pos: QPointF = event.scenePos()  # type: ignore[attr-defined]
        for plot in self.plots:
            if plot.scene() is not None and plot.sceneBoundingRect().contains(scene_pos):
                vb = plot.getViewBox()
                if vb.sceneBoundingRect().contains(scene_pos):
                    x = float(vb.mapSceneToView(scene_pos).x())
                    if np.isfinite(x):
                        self.seek_requested.emit(max(0.0, x))
                return
