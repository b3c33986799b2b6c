"""End to end with a tiny real model: drop → probe → process → export → A/B listening."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import PySide6
import pytest
import soundfile as sf
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QWidget
from pytestqt.qtbot import QtBot

from app import analysis
from app.main_window import MainWindow
from app.models.queue_model import QueueModel, Status
from app.playback.player import Mode, State
from app.settings import Settings
from app.workers.messages import JobRequest, SystemInfo
from tests.app.conftest import TEST_RATE, FakeStream, FakeStreamStop, tone_clip

PROCESS_TIMEOUT_MS = 60_000


@pytest.fixture
def window(qtbot: QtBot, settings: Settings, tiny_model_file: Path,
           fake_stream: type[FakeStream]) -> Iterator[MainWindow]:
    settings.set("processing/model", str(tiny_model_file))
    settings.set("processing/steps", 2)
    settings.set("processing/device", "cpu")
    w = MainWindow(settings, stream_factory=fake_stream, callback_stop=FakeStreamStop)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitUntil(lambda: w.model_status is not None, timeout=30_000)
    yield w
    w.close()


def drop(target: QWidget, paths: list[Path]) -> None:
    """Drag and drop local files onto a widget (the event walks up to the window)."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    pos = QPointF(target.width() / 2, target.height() / 2)
    action = Qt.DropAction.CopyAction
    buttons, mods = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    # PySide6 >= 6.12 takes QPointF (the QPoint overload is deprecated there), 6.11 and older
    # QPoint only. Chosen by version, not by catching the TypeError: once torch.compile has
    # run in the process, shiboken's wrong-argument error aborts Python instead of raising
    # ("libshiboken: seterror_argument failed to call update_mapping").
    point = pos if PySide6.__version_info__ >= (6, 12) else pos.toPoint()
    enter = QDragEnterEvent(point, action, mime, buttons, mods)
    QApplication.sendEvent(target, enter)
    assert enter.isAccepted()
    QApplication.sendEvent(target, QDropEvent(pos, action, mime, Qt.MouseButton.LeftButton,
                                              Qt.KeyboardModifier.NoModifier))


def wait_status(qtbot: QtBot, model: QueueModel, name: str, statuses: set[Status],
                timeout: int = 20_000) -> int:
    def find() -> bool:
        return any(i.path.name == name and i.status in statuses for i in model.items())

    qtbot.waitUntil(find, timeout=timeout)
    return next(i.job_id for i in model.items() if i.path.name == name)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_drop_process_export_and_listen(qtbot: QtBot, window: MainWindow,
                                        clip_path: Path) -> None:
    before = digest(clip_path)
    drop(window.spectrogram, [clip_path.parent])  # a folder, dropped onto a child view
    model = window.controller.model
    job = wait_status(qtbot, model, clip_path.name, {Status.READY})
    item = model.item(job)
    assert item is not None and item.sample_rate == TEST_RATE and item.channels == 1
    assert item.cutoff_hz is not None and 3000 < item.cutoff_hz <= 4000
    window.actions_by_text["Process all"].trigger()
    wait_status(qtbot, model, clip_path.name, {Status.DONE}, PROCESS_TIMEOUT_MS)
    out = clip_path.with_name("speech.jatsr.wav")
    assert model.item(job).output_path == out  # type: ignore[union-attr]
    info = sf.info(out)
    assert (info.samplerate, info.channels, info.subtype) == (44100, 1, "PCM_24")
    assert abs(info.duration - 1.5) < 1e-3
    assert digest(clip_path) == before  # the input is never touched
    # the finished item is loaded for listening: A, B and B-A, aligned
    qtbot.waitUntil(lambda: window.player.source_count == 3, timeout=20_000)
    qtbot.waitUntil(lambda: window.spectrogram.images[1].image is not None, timeout=20_000)
    player = window.player
    player.set_loudness_match(False)
    lr, sr, diff = player._sources
    assert lr.shape == sr.shape == (round(1.5 * 44100), 1)
    np.testing.assert_allclose(diff, sr - lr, atol=1e-6)
    window.transport.play_button.click()
    assert player.state is State.PLAYING
    stream = FakeStream.instances[-1]
    np.testing.assert_array_equal(stream.pump(1000), lr[:1000])
    window.transport.mode_buttons[1].click()  # B
    assert player.mode is Mode.RESTORED and player.position == 1000
    np.testing.assert_array_equal(stream.pump(500), sr[1000:1500])
    window.transport.mode_buttons[2].click()  # B - A
    np.testing.assert_array_equal(stream.pump(500), diff[1500:2000])
    assert window.transport.mode_buttons[2].isChecked()


def queue_and_watch(qtbot: QtBot, window: MainWindow, clip_path: Path
                    ) -> tuple[QueueModel, int, float | None, list[JobRequest]]:
    """Queue the clip, wait until it is probed: (model, job, detected cutoff, the requests the
    controller sends from now on)."""
    window.add_paths([str(clip_path)])
    model = window.controller.model
    job = wait_status(qtbot, model, clip_path.name, {Status.READY})
    requests: list[JobRequest] = []
    window.controller._process_requested.connect(requests.append)
    return model, job, model.item(job).cutoff_hz, requests  # type: ignore[union-attr]


def test_a_cutoff_set_in_the_queue_is_the_one_restored_with(qtbot: QtBot, window: MainWindow,
                                                            clip_path: Path) -> None:
    model, job, detected, requests = queue_and_watch(qtbot, window, clip_path)
    assert model.setData(model.index(model.row_of(job), QueueModel.CUTOFF), "2.5 kHz")
    window.actions_by_text["Process all"].trigger()
    wait_status(qtbot, model, clip_path.name, {Status.DONE}, PROCESS_TIMEOUT_MS)
    assert [r.cutoff_hz for r in requests] == [2500.0]
    item = model.item(job)
    assert item is not None and item.cutoff_set_hz == 2500 and item.cutoff_hz == detected
    assert item.cutoff_used_hz == 2500
    window.queue_view.select_job(job)  # the spectrograms mark the cutoff it was restored with
    qtbot.waitUntil(lambda: window.spectrogram._cutoff_hz == 2500, timeout=20_000)


def test_the_fill_holes_box_reaches_the_restoration(qtbot: QtBot, window: MainWindow,
                                                    clip_path: Path) -> None:
    model, _job, _, requests = queue_and_watch(qtbot, window, clip_path)
    assert not window.panel.fill_holes.isChecked()  # the default: the kept band untouched
    window.panel.fill_holes.setChecked(True)
    window.actions_by_text["Process all"].trigger()
    wait_status(qtbot, model, clip_path.name, {Status.DONE}, PROCESS_TIMEOUT_MS)
    assert [r.fill_holes for r in requests] == [True]
    assert window.settings.processing_options().fill_holes is True


def test_a_global_manual_cutoff_does_not_replace_the_detected_one(
        qtbot: QtBot, window: MainWindow, clip_path: Path) -> None:
    model, job, detected, requests = queue_and_watch(qtbot, window, clip_path)
    window.panel.cutoff_auto.setChecked(False)
    window.panel.cutoff_spin.setValue(2000)
    window.actions_by_text["Process all"].trigger()
    wait_status(qtbot, model, clip_path.name, {Status.DONE}, PROCESS_TIMEOUT_MS)
    item = model.item(job)
    assert item is not None and item.cutoff_used_hz == 2000 and item.cutoff_hz == detected
    window.panel.cutoff_auto.setChecked(True)  # back to detection: the next run uses it again
    window.controller.process([job])
    assert [r.cutoff_hz for r in requests] == [2000.0, detected]
    wait_status(qtbot, model, clip_path.name, {Status.DONE}, PROCESS_TIMEOUT_MS)


def test_keyboard_toggles_ab_and_play(qtbot: QtBot, window: MainWindow, clip_path: Path) -> None:
    window.add_paths([str(clip_path)])
    job = wait_status(qtbot, window.controller.model, clip_path.name, {Status.READY})
    window.queue_view.select_job(job)  # an unprocessed item plays its original only
    qtbot.waitUntil(lambda: window.player.source_count == 1, timeout=20_000)
    window.activateWindow()
    qtbot.waitUntil(lambda: window.isActiveWindow(), timeout=5000)
    qtbot.keyClick(window.queue_view, Qt.Key.Key_Space)
    assert window.player.state is State.PLAYING
    FakeStream.instances[-1].pump(300)
    qtbot.keyClick(window.queue_view, Qt.Key.Key_Right)  # seek +5 s: past the end is clamped
    qtbot.keyClick(window.queue_view, Qt.Key.Key_Space)
    assert window.player.state is State.PAUSED
    assert not window.transport.mode_buttons[1].isEnabled()


def test_output_folder_and_flac(qtbot: QtBot, window: MainWindow, clip_path: Path,
                                tmp_path: Path) -> None:
    out_dir = tmp_path / "restored"
    out_dir.mkdir()
    window.settings.set("output/folder", str(out_dir))
    window.settings.set("output/format", "flac")
    window.settings.set("output/subtype", "PCM_16")
    window.settings.set("output/rate", 48000)
    (out_dir / "speech.flac").write_bytes(b"an older result")  # never overwritten
    window.add_paths([str(clip_path)])
    job = wait_status(qtbot, window.controller.model, clip_path.name, {Status.READY})
    window.controller.process([job])
    wait_status(qtbot, window.controller.model, clip_path.name, {Status.DONE},
                PROCESS_TIMEOUT_MS)
    assert (out_dir / "speech.flac").read_bytes() == b"an older result"
    info = sf.info(out_dir / "speech (2).flac")
    assert (info.format, info.samplerate) == ("FLAC", 48000)
    window.queue_view.select_job(job)  # A/B at 44.1 kHz: the 48 kHz result resampled back
    qtbot.waitUntil(lambda: window.spectrogram.images[1].image is not None, timeout=20_000)


def test_a_dropped_folder_is_mirrored_in_the_output_folder(qtbot: QtBot, window: MainWindow,
                                                            tmp_path: Path) -> None:
    src = tmp_path / "session"
    (src / "day2").mkdir(parents=True)
    for folder in (src, src / "day2"):  # the same name twice, kept apart by the folders
        sf.write(folder / "take.wav", tone_clip(0.5), TEST_RATE)
    out_dir = tmp_path / "restored"
    out_dir.mkdir()
    window.settings.set("output/folder", str(out_dir))
    drop(window.queue_view, [src])
    model = window.controller.model
    qtbot.waitUntil(lambda: len(model.items()) == 2
                    and all(i.status is Status.READY for i in model.items()), timeout=20_000)
    assert window.controller.process_all() == 2
    qtbot.waitUntil(lambda: all(i.status is Status.DONE for i in model.items()),
                    timeout=PROCESS_TIMEOUT_MS)
    assert sorted(str(p.relative_to(out_dir)) for p in out_dir.rglob("*.wav")) == [
        "day2/take.wav", "take.wav"]


def test_cancel_leaves_no_file(qtbot: QtBot, window: MainWindow, tmp_path: Path) -> None:
    path = tmp_path / "long.wav"
    sf.write(path, tone_clip(14.0), TEST_RATE)
    window.settings.set("processing/steps", 16)
    window.add_paths([str(path)])
    job = wait_status(qtbot, window.controller.model, path.name, {Status.READY})
    window.controller.process([job])
    qtbot.waitUntil(lambda: window.controller.model.item(job).progress > 0.01,  # type: ignore
                    timeout=PROCESS_TIMEOUT_MS)
    window.controller.cancel([job])
    wait_status(qtbot, window.controller.model, path.name, {Status.CANCELLED},
                PROCESS_TIMEOUT_MS)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["long.wav", "settings.ini"]


def test_bad_files_get_a_reason_and_the_queue_goes_on(qtbot: QtBot, window: MainWindow,
                                                      tmp_path: Path, clip_path: Path) -> None:
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros((0, 1), np.float32), TEST_RATE)
    window.add_paths([str(bad), str(empty), str(clip_path)])
    model = window.controller.model
    for name in ("broken.wav", "empty.wav"):
        job = wait_status(qtbot, model, name, {Status.INVALID})
        row = model.row_of(job)
        tip = model.index(row, QueueModel.STATUS).data(Qt.ItemDataRole.ToolTipRole)
        assert "readable" in tip or "no audio frames" in tip
    good = wait_status(qtbot, model, clip_path.name, {Status.READY})
    window.queue_view.select_job(good)  # the original's views, then a bad row clears them
    qtbot.waitUntil(lambda: window.spectrogram.images[0].image is not None, timeout=20_000)
    assert window.view_stack.currentWidget() is window.spectrogram
    window.queue_view.select_job(model.items()[0].job_id)
    assert window.view_stack.currentWidget() is window.placeholder
    assert not window.transport.play_button.isEnabled()
    window.queue_view.select_job(good)
    qtbot.waitUntil(lambda: window.spectrogram.images[0].image is not None, timeout=20_000)
    assert window.spectrogram.plots[0].scene() is window.spectrogram.scene()
    window.settings.set("output/folder", str(tmp_path / "missing"))  # fails while processing
    assert window.controller.process_all() == 1
    job = wait_status(qtbot, model, clip_path.name, {Status.FAILED}, PROCESS_TIMEOUT_MS)
    assert "does not exist" in model.item(job).message  # type: ignore[union-attr]


def test_settings_panel_persists(qtbot: QtBot, window: MainWindow, tmp_path: Path) -> None:
    panel = window.panel
    panel.steps_spin.setValue(7)
    panel.solver_combo.setCurrentText("heun")
    panel.format_combo.setCurrentIndex(panel.format_combo.findText("FLAC 24-bit"))
    assert panel.rate_combo.currentData() == 44100  # the default
    panel.rate_combo.setCurrentIndex(panel.rate_combo.findText("48 kHz"))
    panel.cutoff_auto.setChecked(False)
    panel.cutoff_spin.setValue(5000)
    panel.log_check.setChecked(True)
    assert not panel.warm_start.isChecked()  # the default
    panel.warm_start.setChecked(True)
    assert panel.keep_louder.isChecked()  # the default
    panel.keep_louder.setChecked(False)
    window.settings.sync()
    again = Settings(type(window.settings.store)(str(tmp_path / "settings.ini"),
                                                 window.settings.store.format()))
    opts = again.processing_options()
    assert (opts.steps, opts.solver, opts.fmt, opts.subtype, opts.cutoff_hz) == (
        7, "heun", "flac", "PCM_24", 5000.0)
    assert opts.warm_start is True and opts.keep_louder_input is False
    assert opts.rate == 48000
    assert again.get("view/log_frequency") is True


def test_no_audio_device_disables_playback_with_a_reason(qtbot: QtBot,
                                                         settings: Settings) -> None:
    w = MainWindow(settings)
    qtbot.addWidget(w)
    qtbot.waitUntil(lambda: w.system_info is not None, timeout=30_000)
    info = SystemInfo({}, False, (), (), "Playback is off: no audio output device was found.")
    w._on_system_probe_done(info)
    assert not w.transport.play_button.isEnabled()
    assert "no audio output" in w.transport.status_label.text()
    w.close()


def test_zooming_in_draws_a_full_resolution_span(qtbot: QtBot, window: MainWindow,
                                                 clip_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    real = analysis.spectrogram  # a coarse overview (as an hour-long file has) of the clip

    def coarse(x: np.ndarray, rate: int, max_columns: int = 10) -> analysis.Spectrogram:
        return real(x, rate, max_columns)

    monkeypatch.setattr(analysis, "spectrogram", coarse)
    window.add_paths([str(clip_path)])
    job = wait_status(qtbot, window.controller.model, clip_path.name, {Status.READY})
    window.queue_view.select_job(job)
    view = window.spectrogram
    qtbot.waitUntil(lambda: view.images[0].image is not None, timeout=20_000)
    assert view.images[0].image.shape[1] == 10
    view.plots[0].setXRange(0.5, 0.8, padding=0.0)

    def detail() -> tuple[float, float, int] | None:
        """(start s, stop s, columns) of the detail drawn over the first overview."""
        image = view.detail_images[0]
        if image.image is None:
            return None
        rect = image.mapRectToParent(image.boundingRect())
        return rect.left(), rect.right(), image.image.shape[1]

    # The detail spans the zoomed view (0.425-0.875 s with its margins), or the whole clip when
    # the unzoomed view, already too coarse at 10 columns, got its own detail first; either way
    # at full resolution, one column per hop.
    qtbot.waitUntil(lambda: (d := detail()) is not None and d[0] <= 0.5 and d[1] >= 0.8,
                    timeout=20_000)
    start, stop, columns = detail()
    assert columns == pytest.approx((stop - start) * 44100 / analysis.HOP_SAMPLES, abs=1)
    window.queue_view.select_job(job)  # same item: nothing reloads, the detail stays
    assert detail() == (start, stop, columns)


def test_settings_panel_shows_every_label_in_full(qtbot: QtBot, window: MainWindow) -> None:
    """The option boxes' text was cut off at a fixed 300 px panel width ("Above cuto…")."""
    from PySide6.QtWidgets import QCheckBox, QLabel

    window.resize(1280, 800)
    qtbot.wait(50)
    widgets = window.panel.findChildren(QCheckBox) + [
        w for w in window.panel.findChildren(QLabel) if not w.wordWrap() and w.text()]
    assert len(widgets) >= 4
    for w in widgets:
        if w.isVisible():
            assert w.width() >= w.sizeHint().width(), (w.text(), w.width(), w.sizeHint())
