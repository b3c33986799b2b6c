"""Player tests with a fake output stream: A/B at the same sample, difference, loop, end."""

from __future__ import annotations

import numpy as np
import pytest
from pytestqt.qtbot import QtBot

from app.playback.player import Mode, Player, State
from tests.app.conftest import FakeStream, FakeStreamStop

N = 10_000


def sources() -> list[np.ndarray]:
    ramp = np.arange(N, dtype=np.float32)[:, None] / N  # (S, 1): value encodes the position
    lr = np.repeat(ramp, 2, axis=1)
    sr = lr + 1.0
    return [lr, sr, sr - lr]


@pytest.fixture
def player(qtbot: QtBot, fake_stream: type[FakeStream]) -> Player:
    p = Player(fake_stream, FakeStreamStop)
    p.set_sources(sources(), (1.0, 0.5, 1.0), 44100)
    p.set_loudness_match(False)
    return p


def stream() -> FakeStream:
    return FakeStream.instances[-1]


def test_play_copies_from_the_current_source(player: Player) -> None:
    player.play()
    assert player.state is State.PLAYING
    kwargs = stream().kwargs
    assert (kwargs["samplerate"], kwargs["channels"], kwargs["dtype"]) == (44100, 2, "float32")
    block = stream().pump(256)
    np.testing.assert_array_equal(block, sources()[0][:256])
    assert player.position == 256


def test_ab_toggle_keeps_the_sample_position(player: Player) -> None:
    player.play()
    first = stream().pump(300)
    player.set_mode(Mode.RESTORED)
    assert player.position == 300
    second = stream().pump(300)
    np.testing.assert_array_equal(first, sources()[0][:300])
    np.testing.assert_array_equal(second, sources()[1][300:600])  # B continues at sample 300
    player.set_mode(Mode.ORIGINAL)
    third = stream().pump(100)
    np.testing.assert_array_equal(third, sources()[0][600:700])
    assert player.position == 700


def test_difference_mode_plays_sr_minus_lr(player: Player) -> None:
    player.seek(1000)
    player.play()
    player.set_mode(Mode.DIFFERENCE)
    block = stream().pump(128)
    np.testing.assert_allclose(block, 1.0)  # sr - lr of the fixture


def test_loudness_gain_applies_per_mode_and_switches_off(player: Player) -> None:
    player.set_loudness_match(True)
    player.set_mode(Mode.RESTORED)
    player.play()
    np.testing.assert_allclose(stream().pump(64), sources()[1][:64] * 0.5)
    player.set_loudness_match(False)
    np.testing.assert_allclose(stream().pump(64), sources()[1][64:128])


def test_seek_while_playing_is_applied_by_the_callback(player: Player) -> None:
    player.play()
    stream().pump(100)
    player.seek(5000)
    assert player.position == 5000
    np.testing.assert_array_equal(stream().pump(10), sources()[0][5000:5010])


def test_loop_wraps_inside_one_block(player: Player) -> None:
    player.set_loop((1000, 1100))
    player.seek(1050)
    player.play()
    block = stream().pump(80)
    expected = np.concatenate([sources()[0][1050:1100], sources()[0][1000:1030]])
    np.testing.assert_array_equal(block, expected)
    assert player.position == 1030


def test_end_fills_zeros_stops_and_reports(qtbot: QtBot, player: Player) -> None:
    player.seek(N - 100)
    player.play()
    s = stream()
    with qtbot.waitSignal(player.finished, timeout=2000):
        block = s.pump(256)
    np.testing.assert_array_equal(block[:100], sources()[0][N - 100:])
    assert not block[100:].any()
    assert player.state is State.STOPPED and s.closed
    assert player.position == 0


def test_pause_keeps_position_and_resume_opens_a_new_stream(player: Player) -> None:
    player.play()
    stream().pump(500)
    player.pause()
    assert player.state is State.PAUSED and stream().closed and player.position == 500
    player.play()
    assert len(FakeStream.instances) == 2
    np.testing.assert_array_equal(stream().pump(10), sources()[0][500:510])


def test_stale_finished_callback_is_ignored(qtbot: QtBot, player: Player) -> None:
    player.play()
    player.pause()  # the closed stream reports its end later, queued
    player.play()
    qtbot.wait(20)
    assert player.state is State.PLAYING


def test_without_a_stream_factory_nothing_plays(qtbot: QtBot) -> None:
    p = Player(None)
    p.set_sources(sources(), (1, 1, 1), 44100)
    p.play()
    assert p.state is State.STOPPED and not p.available


def test_a_failing_device_reports_and_stays_stopped(qtbot: QtBot) -> None:
    def broken(**kwargs: object) -> FakeStream:
        raise OSError("Error opening OutputStream: Invalid sample rate")

    p = Player(broken)
    p.set_sources(sources(), (1, 1, 1), 44100)
    with qtbot.waitSignal(p.failed, timeout=1000) as blocker:
        p.play()
    assert "Invalid sample rate" in blocker.args[0]
    assert p.state is State.STOPPED


def test_sources_must_be_aligned(qtbot: QtBot) -> None:
    p = Player(None)
    lr, sr, _ = sources()
    with pytest.raises(ValueError):
        p.set_sources([lr, sr[:-1]], (1, 1), 44100)
