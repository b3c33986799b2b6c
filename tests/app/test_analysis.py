"""Numpy analysis for the views and the loudness match."""

from __future__ import annotations

import numpy as np

from app import analysis


def test_spectrogram_is_bounded_and_finds_the_tone() -> None:
    rate = 44100
    t = np.arange(rate * 2) / rate
    x = np.sin(2 * np.pi * 1000 * t).astype(np.float32)[:, None]
    power = analysis.stft_power(x, max_columns=50)
    assert power.shape[0] == analysis.N_FFT // 2 + 1 and 40 <= power.shape[1] <= 50
    peak_hz = np.argmax(power.mean(axis=1)) * rate / analysis.N_FFT
    assert abs(peak_hz - 1000) < 25
    spec = analysis.spectrogram(x, rate)
    assert spec.log_db.shape[0] == analysis.LOG_ROWS
    assert spec.linear_db.dtype == np.float32 and np.isfinite(spec.linear_db).all()
    assert spec.duration_s == 2.0 and spec.nyquist_hz == rate / 2


def test_silence_and_short_input_do_not_break() -> None:
    spec = analysis.spectrogram(np.zeros((100, 2), np.float32), 44100)
    assert spec.linear_db.min() == analysis.FLOOR_DB


def test_envelope_keeps_peaks() -> None:
    x = np.zeros((10_000, 1), np.float32)
    x[1234, 0] = 0.9
    x[7777, 0] = -0.8
    low, high = analysis.envelope(x, buckets=100)
    assert low.shape == high.shape == (100,)
    assert high.max() == np.float32(0.9) and low.min() == np.float32(-0.8)


def test_match_gain_brings_other_to_reference_loudness() -> None:
    rng = np.random.default_rng(0)
    ref = (0.1 * rng.standard_normal((44100, 2))).astype(np.float32)
    for weighted in (True, False):
        gain = analysis.match_gain(ref, ref * 0.5, 44100, weighted)
        assert abs(gain - 2.0) < 1e-3
    assert analysis.match_gain(ref, ref * 1e-6, 44100) == 10 ** (12 / 20)  # clamped


def test_blockwise_analysis_equals_one_block(monkeypatch) -> None:
    # the view and loudness maths read long (disk-backed) buffers a block at a time: block
    # edges must not show (centred STFT frames straddle them, the K-weighting carries state)
    rng = np.random.default_rng(5)
    x = (0.1 * rng.standard_normal((200_003, 2))).astype(np.float32)
    whole = (analysis.stft_power(x, max_columns=97), analysis.envelope(x, buckets=300),
             analysis.loudness_db(x, 44100), analysis.loudness_db(x, 44100, weighted=False))
    monkeypatch.setattr(analysis, "FRAMES_PER_BLOCK", 7)
    monkeypatch.setattr(analysis, "ANALYSIS_BLOCK_FRAMES", 3001)
    blocked = (analysis.stft_power(x, max_columns=97), analysis.envelope(x, buckets=300),
               analysis.loudness_db(x, 44100), analysis.loudness_db(x, 44100, weighted=False))
    np.testing.assert_allclose(blocked[0], whole[0], rtol=1e-5, atol=1e-12)
    np.testing.assert_array_equal(blocked[1][0], whole[1][0])
    np.testing.assert_array_equal(blocked[1][1], whole[1][1])
    assert abs(blocked[2] - whole[2]) < 1e-9 and abs(blocked[3] - whole[3]) < 1e-9
