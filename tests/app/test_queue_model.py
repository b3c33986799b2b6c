"""The queue's table model: Qt model contract, dedupe, updates and roles."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from pytestqt.modeltest import ModelTester
from pytestqt.qtbot import QtBot

from app.models.queue_model import QueueModel, Status


def test_qtmodeltester(qtbot: QtBot, qtmodeltester: ModelTester) -> None:
    model = QueueModel()
    ids = model.add_paths([Path("/x/a.wav"), Path("/x/b.flac")])
    model.update(ids[0], status=Status.READY, sample_rate=8000, channels=1, duration_s=61.5,
                 cutoff_hz=3800.0)
    model.update(ids[1], status=Status.PROCESSING, progress=0.4, step_text="40%")
    qtmodeltester.check(model, force_py=True)
    model.remove([ids[0]])
    qtmodeltester.check(model, force_py=True)


def test_rows_show_the_item(qtbot: QtBot) -> None:
    model = QueueModel()
    (job,) = model.add_paths([Path("/x/a.wav")])
    assert model.add_paths([Path("/x/a.wav")]) == []  # no duplicates
    with qtbot.waitSignal(model.dataChanged):
        model.update(job, status=Status.INVALID, message="not a readable audio file",
                     sample_rate=8000, duration_s=61.5, cutoff_hz=3800.0)
    row = [model.index(0, c).data() for c in range(model.columnCount())]
    assert row[:5] == ["a.wav", "8 kHz", "3.8 kHz", "", "1:01.5"]
    assert row[QueueModel.STATUS] == "Bad file"
    tip = model.index(0, QueueModel.STATUS).data(Qt.ItemDataRole.ToolTipRole)
    assert "not a readable audio file" in tip
    assert model.index(0, QueueModel.STATUS).data(Qt.ItemDataRole.DecorationRole) is not None
    assert model.index(0, 0).data(QueueModel.JobIdRole) == job


def test_parse_cutoff() -> None:
    from app.models.queue_model import parse_cutoff

    assert parse_cutoff("11025") == parse_cutoff("11025 Hz") == parse_cutoff("11.025") == 11025
    assert parse_cutoff("11 kHz") == parse_cutoff("11k") == parse_cutoff(" 11,0 ") == 11000
    assert parse_cutoff("") is None and parse_cutoff(" Auto ") is None
    for bad in ("abc", "-3", "nan", "0"):
        try:
            parse_cutoff(bad)
        except ValueError:
            continue
        raise AssertionError(f"{bad!r} accepted")


def test_a_files_cutoff_is_set_by_hand_in_its_cell(qtbot: QtBot) -> None:
    model = QueueModel()
    ready, busy = model.add_paths([Path("/x/a.wav"), Path("/x/b.wav")])
    model.update(ready, status=Status.READY, sample_rate=8000, cutoff_hz=3800.0)
    model.update(busy, status=Status.PROCESSING, sample_rate=8000, cutoff_hz=3800.0)
    cell, busy_cell = model.index(0, QueueModel.CUTOFF), model.index(1, QueueModel.CUTOFF)
    assert cell.flags() & Qt.ItemFlag.ItemIsEditable
    assert not busy_cell.flags() & Qt.ItemFlag.ItemIsEditable  # not while it is processed
    assert not model.setData(busy_cell, "3 kHz")
    assert "Double-click" in cell.data(Qt.ItemDataRole.ToolTipRole)
    assert model.setData(cell, "3 kHz")
    item = model.item(ready)
    assert item is not None and item.cutoff_set_hz == 3000 and item.cutoff_hz == 3800
    assert cell.data() == "3.0 kHz" and cell.data(Qt.ItemDataRole.EditRole) == "3 kHz"
    assert cell.data(Qt.ItemDataRole.FontRole).italic()
    assert "detected: 3.8 kHz" in cell.data(Qt.ItemDataRole.ToolTipRole)
    for refused in ("5 kHz", "500", "loud"):  # above the 4 kHz Nyquist, under 1 kHz, not a number
        assert not model.setData(cell, refused)
    assert model.item(ready).cutoff_set_hz == 3000  # type: ignore[union-attr]
    assert model.setData(cell, "")  # cleared: the detected one again
    assert model.item(ready).cutoff_set_hz is None  # type: ignore[union-attr]
    assert cell.data() == "3.8 kHz" and cell.data(Qt.ItemDataRole.FontRole) is None
