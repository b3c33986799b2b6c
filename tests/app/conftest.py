"""App test fixtures: offscreen Qt, settings in tmp_path, a fake audio stream, a tiny model."""

from __future__ import annotations

import os

os.environ["QT_QPA_PLATFORM"] = "offscreen"  # before any Qt import

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import soundfile as sf
from PySide6.QtCore import QSettings

from app.settings import Settings

TINY_TRAIN_STEPS = 30  # quality does not matter here, only a valid model file
TEST_RATE = 8000  # the input rate of the test clips (phone band)


class FakeStreamStop(Exception):
    """Stands in for sounddevice.CallbackStop."""


class FakeStream:
    """Records its arguments; `pump(frames)` runs the callback like PortAudio would."""

    instances: ClassVar[list[FakeStream]] = []

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.callback: Callable[..., None] = kwargs["callback"]
        self.finished_callback: Callable[[], None] | None = kwargs.get("finished_callback")
        self.channels = int(kwargs["channels"])
        self.started = self.closed = self.ended = False
        FakeStream.instances.append(self)

    def start(self) -> None:
        self.started = True

    def stop(self) -> None:
        self._end()

    def close(self) -> None:
        self.closed = True

    def _end(self) -> None:
        if self.started and not self.ended:
            self.ended = True
            if self.finished_callback is not None:
                self.finished_callback()

    def pump(self, frames: int) -> np.ndarray:
        """One callback of `frames`; returns the block (S, Ch). Ends the stream on stop."""
        out = np.full((frames, self.channels), np.nan, np.float32)
        try:
            self.callback(out, frames, None, None)
        except FakeStreamStop:
            self._end()
        return out


@pytest.fixture
def fake_stream() -> Iterator[type[FakeStream]]:
    FakeStream.instances = []
    yield FakeStream
    FakeStream.instances = []


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))


def tone_clip(seconds: float, rate: int = TEST_RATE, channels: int = 1, seed: int = 0
              ) -> np.ndarray:
    """Band-limited test audio (S, Ch): harmonics below rate/2 plus a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * rate)) / rate
    x = sum(np.sin(2 * np.pi * 220 * k * t) / k for k in range(1, int(rate / 2 / 220)))
    x = 0.3 * x / np.max(np.abs(x)) + 0.02 * rng.standard_normal(t.shape)
    return np.repeat(x[:, None], channels, axis=1).astype(np.float32)


@pytest.fixture
def clip_path(tmp_path: Path) -> Path:
    path = tmp_path / "in" / "speech.wav"
    path.parent.mkdir()
    sf.write(path, tone_clip(1.5), TEST_RATE, subtype="PCM_16")
    return path


@pytest.fixture(scope="session")
def tiny_model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model trained for a few steps, saved as a model file (session-wide)."""
    from engine import save_model
    from tests.engine.conftest import synth_clip, train_tiny

    model = train_tiny(synth_clip(3.0, seed=1), steps=TINY_TRAIN_STEPS)
    return save_model(tmp_path_factory.mktemp("model") / "tiny", model)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """App tests get a thread-based timeout: a hung Qt event loop never runs SIGALRM handlers."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.timeout(120, method="thread"))
