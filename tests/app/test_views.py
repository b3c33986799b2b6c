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


def test_spectrograms_upload_on_refresh_and_switch_axes(qtbot: QtBot) -> None:
    view = SpectrogramView()
    qtbot.addWidget(view)
    view.show()
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
    view = OverviewView()
    qtbot.addWidget(view)
    view.resize(600, 90)
    view.show()
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
