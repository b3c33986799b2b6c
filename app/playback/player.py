"""Gapless A/B player: original (LR), restored (SR) and difference, sample-aligned.

All three sources are preallocated float32 `(S, Ch)` arrays of the same shape. The audio callback
only copies (with the loudness gain, `np.multiply(..., out=...)`) from the current source at the
shared position, so switching source is one attribute swap at the same sample: no gap, no
click. The callback never allocates buffers, locks, logs or touches Qt; seeks reach it through
one atomically replaced `(serial, position)` tuple. Streams are opened, stopped and closed only
from the GUI thread; the end of a stream arrives via `finished_callback` as a queued signal.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np
from PySide6.QtCore import QObject, Signal, Slot

log = logging.getLogger(__name__)

BLOCK_FRAMES = 1024  # ~23 ms at 44.1 kHz


class Mode(enum.IntEnum):
    """Which source plays."""

    ORIGINAL = 0  # A: the input, resampled to 44.1 kHz
    RESTORED = 1  # B: the model's output
    DIFFERENCE = 2  # B - A: what the model added


class State(enum.Enum):
    STOPPED = "stopped"
    PLAYING = "playing"
    PAUSED = "paused"


class Stream(Protocol):
    """The part of `sounddevice.OutputStream` the player uses."""

    def start(self) -> None: ...
    def stop(self) -> None: ...
    def close(self) -> None: ...


StreamFactory = Callable[..., Stream]  # called like sounddevice.OutputStream(**kwargs)


class StreamStopped(Exception):
    """Raised by the callback at the end when no backend exception class was given."""


def sounddevice_factory() -> tuple[StreamFactory, type[BaseException]]:
    """(sounddevice.OutputStream, sounddevice.CallbackStop); raises OSError without PortAudio."""
    import sounddevice

    return sounddevice.OutputStream, sounddevice.CallbackStop


class Player(QObject):
    """Plays one item's sources through an injectable output stream."""

    state_changed = Signal(object)  # State
    finished = Signal()  # reached the end (not looping)
    failed = Signal(str)  # the output stream could not be opened
    _stream_ended = Signal(int)  # from the audio thread: serial of the stream that ended

    def __init__(self, stream_factory: StreamFactory | None = None,
                 callback_stop: type[BaseException] = StreamStopped,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._factory = stream_factory
        self._stop_exc = callback_stop
        self._stream: Any = None
        self._state = State.STOPPED
        self._device: int | None = None
        self._sources: tuple[np.ndarray, ...] = ()
        self._gains: tuple[float, ...] = ()
        self._unity: tuple[float, ...] = ()
        self.sample_rate = 44100
        self._mode = Mode.ORIGINAL
        self._match = True
        self._pos = 0  # written by the callback while playing
        self._seek: tuple[int, int] = (0, 0)  # (serial, position), replaced atomically
        self._seek_applied = 0
        self._loop: tuple[int, int] | None = None
        self._stream_serial = 0
        self._stream_ended.connect(self._on_self_stream_ended)

    # ---- configuration (GUI thread) ----
    def set_stream_factory(self, factory: StreamFactory | None,
                           callback_stop: type[BaseException] = StreamStopped) -> None:
        self.stop()
        self._factory, self._stop_exc = factory, callback_stop

    @property
    def available(self) -> bool:
        return self._factory is not None

    def set_sources(self, sources: Sequence[np.ndarray], gains: Sequence[float],
                    sample_rate: int) -> None:
        """Install new aligned `(S, Ch)` float32 sources (stops playback, position to 0)."""
        shapes = {s.shape for s in sources}
        if not sources or len(shapes) != 1 or any(s.dtype != np.float32 for s in sources):
            raise ValueError(f"sources must be float32 arrays of one shape, got {shapes}")
        if len(gains) != len(sources) or next(iter(shapes))[1] < 1:
            raise ValueError("one gain per source and at least one channel are needed")
        self.stop()
        self._sources = tuple(np.ascontiguousarray(s) for s in sources)
        self._gains = tuple(float(g) for g in gains)
        self._unity = (1.0,) * len(sources)
        self.sample_rate = int(sample_rate)
        self._mode = Mode(min(int(self._mode), len(sources) - 1))
        self._loop = None
        self._pos = 0

    def clear(self) -> None:
        self.stop()
        self._sources, self._gains, self._pos = (), (), 0

    @property
    def has_sources(self) -> bool:
        return bool(self._sources)

    @property
    def source_count(self) -> int:
        return len(self._sources)

    @property
    def length(self) -> int:
        return self._sources[0].shape[0] if self._sources else 0

    @property
    def channels(self) -> int:
        return self._sources[0].shape[1] if self._sources else 0

    @property
    def mode(self) -> Mode:
        return self._mode

    def set_mode(self, mode: Mode) -> None:
        """Switch source; takes effect at the next audio block, at the same sample position."""
        if int(mode) < len(self._sources):
            self._mode = Mode(mode)

    @property
    def loudness_match(self) -> bool:
        return self._match

    def set_loudness_match(self, on: bool) -> None:
        self._match = bool(on)

    def gain(self, mode: Mode) -> float:
        gains = self._gains if self._match else self._unity
        return gains[int(mode)] if int(mode) < len(gains) else 1.0

    @property
    def loop(self) -> tuple[int, int] | None:
        return self._loop

    def set_loop(self, region: tuple[int, int] | None) -> None:
        """Loop [start, end) in samples while playing, or None for no loop."""
        if region is not None:
            start, end = max(0, int(region[0])), min(self.length, int(region[1]))
            region = (start, end) if end - start >= 64 else None
        self._loop = region

    def set_device(self, device: int | None) -> None:
        """Output device index (None: the system default); restarts a playing stream."""
        if device == self._device:
            return
        self._device = device
        if self._state is State.PLAYING:
            self.pause()
            self.play()

    # ---- transport (GUI thread) ----
    @property
    def state(self) -> State:
        return self._state

    @property
    def position(self) -> int:
        """Current sample (what the callback will play next, or a pending seek)."""
        serial, target = self._seek
        return target if serial != self._seek_applied else self._pos

    def seek(self, sample: int) -> None:
        target = int(min(max(sample, 0), max(self.length - 1, 0)))
        if self._state is State.PLAYING:
            self._seek = (self._seek[0] + 1, target)
        else:
            self._pos = target
            self._seek_applied = self._seek[0]

    def play(self) -> None:
        if self._state is State.PLAYING or not self._sources or self._factory is None:
            return
        if self._pos >= self.length - 1:
            self._pos = 0
        self._stream_serial += 1
        serial = self._stream_serial
        try:
            self._stream = self._factory(
                samplerate=self.sample_rate, channels=self.channels, dtype="float32",
                blocksize=BLOCK_FRAMES, device=self._device, callback=self._callback,
                finished_callback=lambda: self._stream_ended.emit(serial))
            self._stream.start()
        except Exception as e:  # PortAudioError, unsupported rate or channel count
            log.warning("could not open the audio output: %s", e)
            self._close_stream()
            self.failed.emit(f"Could not open the audio output: {e}")
            return
        self._set_state(State.PLAYING)

    def pause(self) -> None:
        if self._state is State.PLAYING:
            self._close_stream()
            self._pos = self.position
            self._seek_applied = self._seek[0]
            self._set_state(State.PAUSED)

    def toggle(self) -> None:
        self.pause() if self._state is State.PLAYING else self.play()

    def stop(self) -> None:
        self._close_stream()
        self._pos = 0
        self._seek_applied = self._seek[0]
        self._set_state(State.STOPPED)

    def _close_stream(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.stop()
                stream.close()
            except Exception as e:
                log.warning("closing the audio output failed: %s", e)

    def _set_state(self, state: State) -> None:
        if state is not self._state:
            self._state = state
            self.state_changed.emit(state)

    @Slot(int)
    def _on_self_stream_ended(self, serial: int) -> None:
        # queued from the audio thread; streams we closed ourselves are no longer current
        if serial == self._stream_serial and self._stream is not None:
            self._close_stream()
            self._pos = 0
            self._seek_applied = self._seek[0]
            self._set_state(State.STOPPED)
            self.finished.emit()

    # ---- audio thread ----
    def _callback(self, outdata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        serial, target = self._seek
        if serial != self._seek_applied:
            self._pos, self._seek_applied = target, serial
        src = self._sources[self._mode]
        gain = self._gains[self._mode] if self._match else 1.0
        pos, length, loop = self._pos, src.shape[0], self._loop
        written = 0
        while written < frames:
            if loop is not None and pos == loop[1]:
                pos = loop[0]  # wrap; a position past the loop plays on to the end
            end = loop[1] if loop is not None and pos < loop[1] else length
            if pos >= end:
                outdata[written:].fill(0.0)
                self._pos = length
                raise self._stop_exc
            n = min(frames - written, end - pos)
            np.multiply(src[pos : pos + n], gain, out=outdata[written : written + n])
            written += n
            pos += n
        self._pos = pos
