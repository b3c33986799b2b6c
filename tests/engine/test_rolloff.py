"""Our upsampler's own roll-off is undone: the top of a low-rate file's band comes through."""

from __future__ import annotations

import numpy as np
import pytest
import soxr
from scipy import signal

from engine.audio.io import resample
from engine.audio.rolloff import (
    MAX_BOOST_DB,
    RolloffStream,
    compensation_taps,
    precompensate,
    upsampler_response,
)

SR = 44100


def _level_db(x: np.ndarray, ref: np.ndarray, freq_hz: float) -> float:
    """Welch power of x relative to ref at freq_hz, in dB."""
    f, px = signal.welch(x, SR, nperseg=8192)
    _, pr = signal.welch(ref, SR, nperseg=8192)
    return float(10 * np.log10(np.interp(freq_hz, f, px) / np.interp(freq_hz, f, pr)))


@pytest.fixture(scope="module")
def noise() -> np.ndarray:
    return np.random.default_rng(0).standard_normal(SR * 8).astype(np.float32)


@pytest.mark.parametrize("low", [8000, 16000, 22050])
def test_down_and_up_keeps_only_the_downsamplers_edge(noise, low):
    down = resample(noise[None], SR, low)  # a low-rate file, as a resampler made it
    up = resample(down, low, SR)[0]  # as the pipeline reads it
    raw_up = soxr.resample(down[0], low, SR, "VHQ")  # soxr alone
    nyq = low / 2
    # soxr's downsampling alone: -2.8 / -9.7 dB at 0.95 / 0.96 x the Nyquist; soxr down and up
    # twice that in dB; the pipeline's upsampling adds ~nothing
    for frac, most in ((0.95, 3.5), (0.96, 11.0)):
        got, soxr_only = _level_db(up, noise, frac * nyq), _level_db(raw_up, noise, frac * nyq)
        assert got > -most, (frac, got)
        assert soxr_only < got - 2.0, (frac, soxr_only, got)
    # the passband is soxr's, sample for sample (below 0.9 x the Nyquist nothing is boosted)
    assert abs(_level_db(up, noise, 0.5 * nyq)) < 0.05
    # above the input's Nyquist the stop band stays a stop band
    assert _level_db(up, noise, 1.05 * nyq) < -90


@pytest.mark.parametrize("low", [8000, 11025, 22050, 32000])
def test_compensation_never_lifts_a_band_above_where_it_was(low):
    """|FIR x soxr| <= 1 (+ ripple): content is restored towards its level, never past it."""
    taps = compensation_taps(low, SR)
    freqs, mag = upsampler_response(low, SR)
    grid = np.fft.rfftfreq(1 << 15, 1.0 / low)  # 0 .. low / 2
    gain = np.abs(np.fft.rfft(taps, 1 << 15))  # the FIR runs at the input's rate
    net = gain * np.interp(grid, freqs, mag)
    assert float(np.max(net)) < 1.03  # +0.26 dB: the FIR's ripple
    assert float(np.max(gain)) <= 10 ** (MAX_BOOST_DB / 20) * 1.1
    assert float(np.max(np.abs(gain[grid < 0.85 * low / 2] - 1.0))) < 0.01  # passband: 1
    assert float(np.min(net[(grid > 0.5 * low / 2) & (grid < 0.95 * low / 2)])) > 0.9


def test_no_compensation_when_not_upsampling():
    assert compensation_taps(48000, SR) is None and compensation_taps(SR, SR) is None
    x = np.ones((2, 100), np.float32)
    assert precompensate(x, 48000, SR) is x


@pytest.mark.parametrize("block", [1, 777, 5000, 100_000])
def test_stream_in_blocks_equals_the_whole(noise, block):
    taps = compensation_taps(16000, SR)
    x = noise[None, :20_000]
    whole = precompensate(x, 16000, SR)
    stream = RolloffStream(taps, 1)
    parts = [stream.process(x[:, i:i + block]) for i in range(0, x.shape[1], block)]
    got = np.concatenate([*parts, stream.flush()], axis=1)
    assert got.shape == x.shape == whole.shape
    np.testing.assert_allclose(got, whole, atol=1e-5)  # float32 FFTs of other sizes: -100 dB


def test_short_input_keeps_its_length():
    x = np.random.default_rng(1).standard_normal((2, 300)).astype(np.float32)  # < FIR delay
    assert precompensate(x, 8000, SR).shape == (2, 300)


def test_odd_taps_required():
    with pytest.raises(ValueError, match="odd"):
        RolloffStream(np.ones(4), 1)
