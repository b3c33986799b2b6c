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
