"""Spectrogram and overview views: payload upload, axis modes, difference view, seeking."""

from __future__ import annotations

import math
import sys

import numpy as np
from PySide6.QtCore import QObject, QPointF, Qt, Signal
from pytestqt.qtbot import QtBot

from app import analysis
from app.widgets.overview_view import OverviewView
from app.widgets.spectrogram_view import SpectrogramView


def spec(seconds: float = 2.0) -> analysis.Spectrogram:
    rng = np.random.default_rng(0)
    return analysis.spectrogram((0.1 * rng.standard_normal((round(seconds * 44100), 1)))
                                .astype(np.float32), 44100)


def shown(qtbot: QtBot, view: SpectrogramView | OverviewView, width: int = 0, height: int = 0
          ) -> SpectrogramView | OverviewView:
    """The view, owned by qtbot, resized (when given) and shown."""
    qtbot.addWidget(view)
    if width:
        view.resize(width, height)
    view.show()
    return view


def test_spectrograms_upload_on_refresh_and_switch_axes(qtbot: QtBot) -> None:
    view = shown(qtbot, SpectrogramView())
    s = spec()
    view.show_views(s, s, s, 3800.0)
    assert view.images[0].image is None  # stored only: the redraw timer uploads
    view.refresh()
    assert view.images[0].image.shape == s.linear_db.shape
    assert view.images[0].levels is not None and tuple(view.images[0].levels) == view.levels
    assert view._cutoffs[0].value() == 3800.0 and "3.8 kHz" in view._cutoffs[0].label.toPlainText()
    for _ in range(2):  # log <-> linear, with no overflow warning (filterwarnings = error)
        view.set_log_frequency(True)
        view.refresh()
        qtbot.wait(10)
        assert view.images[1].image.shape == s.log_db.shape
        assert math.isclose(view._cutoffs[1].value(), math.log10(3800.0))
        view.set_log_frequency(False)
        view.refresh()
        qtbot.wait(10)
    assert view.plots[2].scene() is None  # the difference view is off by default
    view.set_difference_visible(True)
    assert view.plots[2].scene() is view.scene()
    view.set_levels(-90.0, -30.0)
    assert view.colorbar.levels() == (-90.0, -30.0)
    view.set_cursor_s(1.25)
    assert view._cursors[2].value() == 1.25
    view.clear_views()
    view.refresh()
    assert view.images[0].image is None


def test_overview_region_and_seek(qtbot: QtBot) -> None:
    view = shown(qtbot, OverviewView(), 600, 90)
    low, high = analysis.envelope((0.5 * np.sin(np.arange(44100 * 3) / 50.0))[:, None])
    view.show_envelope(low, high, 3.0)
    view.refresh()
    assert view.selection_s() == (0.0, 3.0)
    with qtbot.waitSignal(view.region_changed) as blocker:
        view.set_selection_s(1.0, 2.0)
    assert blocker.args == [1.0, 2.0]
    with qtbot.waitSignal(view.seek_requested) as seek:
        centre = view.getViewBox().mapViewToScene(QPointF(1.5, 0.0))
        qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton,
                         pos=view.mapFromScene(centre))
    assert abs(seek.args[0] - 1.5) < 0.1


class _Emitter(QObject):
    fired = Signal()


def test_signal_emit_does_not_leak_true() -> None:
    # PySide6-Essentials 6.12.0 dropped a reference to True per emit and crashed the process
    # after a few thousand (pinned out in pyproject.toml); this guards against such a release.
    emitter = _Emitter()
    before = sys.getrefcount(True)
    for _ in range(20_000):
        emitter.fired.emit()
    assert sys.getrefcount(True) >= before - 100


def test_zoom_asks_for_a_full_resolution_span_and_draws_it(qtbot: QtBot) -> None:
    from app.workers.jobs import DetailJob
    from app.workers.messages import ClipData

    view = shown(qtbot, SpectrogramView(), 700, 500)
    rng = np.random.default_rng(1)
    x = (0.1 * rng.standard_normal((10 * 44100, 1))).astype(np.float32)
    overview = analysis.spectrogram(x, 44100, max_columns=431)  # 2 STFT hops a column
    view.show_views(overview, overview, None, None)
    view.refresh()
    width = view.plots[0].getViewBox().width()
    assert overview.linear_db.shape[1] * 2 >= width  # whole clip: >= 1 column per 2 pixels
    with qtbot.assertNotEmitted(view.detail_requested, wait=400):  # whole clip: fine enough
        view.plots[0].setXRange(0.0, 10.0, padding=0.0)
    with qtbot.waitSignal(view.detail_requested, timeout=3000) as asked:
        view.plots[0].setXRange(4.0, 5.0, padding=0.0)
    start, stop, columns = asked.args
    assert start == 3.75 and stop == 5.25  # the view plus a quarter on each side
    assert columns == math.ceil(view.plots[0].getViewBox().width() * 1.5)  # 1 per pixel
    clip = ClipData(3, 44100, x, x, None, (1.0, 1.0, 1.0), 0.0)
    done = []
    job = DetailJob(clip, 1, start, stop, columns)
    job.signals.done.connect(done.append)
    job.work()
    detail = done[0]
    assert (detail.start_s, detail.stop_s) == (start, stop) and detail.diff is None
    assert detail.lr.linear_db.shape[1] == math.ceil((stop - start) * 44100 / 512)  # every hop
    view.show_detail(detail)
    view.refresh()
    assert view.detail_images[0].image.shape == detail.lr.linear_db.shape
    assert view.detail_images[2].image is None
    rect = view.detail_images[0].boundingRect()
    assert rect.width() == detail.lr.linear_db.shape[1]  # pixels; mapped to seconds below
    assert math.isclose(view.detail_images[0].mapRectToParent(rect).left(), start)
    assert view.plots[0].getViewBox().viewRange()[0] == [4.0, 5.0]  # the zoom stays
    with qtbot.assertNotEmitted(view.detail_requested, wait=400):  # panning inside it: covered
        view.plots[0].setXRange(4.1, 5.1, padding=0.0)
    view.plots[0].setXRange(0.0, 10.0, padding=0.0)  # zoomed out: the detail goes
    qtbot.waitUntil(lambda: view._detail is None, timeout=3000)
    view.refresh()
    assert view.detail_images[0].image is None
    view.show_detail(detail)
    view.show_views(overview, None, None, None)  # a new clip drops the old detail
    view.refresh()
    assert view.detail_images[0].image is None


def test_short_clip_overview_needs_no_detail(qtbot: QtBot) -> None:
    view = shown(qtbot, SpectrogramView(), 900, 600)
    s = spec(2.0)  # one column per STFT hop already
    view.show_views(s, None, None, None)
    view.refresh()
    with qtbot.assertNotEmitted(view.detail_requested, wait=400):
        view.plots[0].setXRange(0.5, 0.6, padding=0.0)
