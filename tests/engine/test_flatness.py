"""engine.audio.flatness: how noise-like the octave under the cutoff is."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from engine.audio.flatness import band_flatness, band_flatness_file
from tests.engine.conftest import lowpass


def _harmonic(seconds: float, rate: int, f0: float = 180.0) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return sum(0.1 / k * np.sin(2 * np.pi * k * f0 * t) for k in range(1, 40)
               if k * f0 < rate / 2).astype(np.float32)


def test_noise_is_flat_and_partials_are_not():
    rng = np.random.default_rng(0)
    noise = lowpass(0.1 * rng.standard_normal(5 * 8000), 3800.0, sample_rate=8000)
    flat = band_flatness(noise, 8000, 3800.0)
    assert 0.45 < flat < 0.65  # a periodogram of noise: exp(-Euler's gamma) ~ 0.56
    assert band_flatness(_harmonic(5.0, 8000), 8000, 3800.0) < 0.1
    stereo = np.stack([noise, noise])
    assert band_flatness(stereo, 8000, 3800.0) == flat  # channels are mixed down


def test_silence_and_too_short_inputs_tell_nothing():
    assert band_flatness(np.zeros(8000, np.float32), 8000, 3800.0) is None
    assert band_flatness(np.ones(500, np.float32), 8000, 3800.0) is None
    assert band_flatness(np.ones(8000, np.float32), 8000, 10.0) is None  # no band to measure


def test_a_file_measures_like_its_audio(tmp_path):
    rng = np.random.default_rng(1)
    mixed = _harmonic(4.0, 16000) + 0.02 * rng.standard_normal(4 * 16000).astype(np.float32)
    sf.write(tmp_path / "x.wav", mixed, 16000, subtype="FLOAT")
    whole = band_flatness(mixed, 16000, 7600.0)
    assert band_flatness_file(tmp_path / "x.wav", 7600.0) == pytest.approx(whole, rel=1e-4)
    sf.write(tmp_path / "quiet.wav", np.zeros(16000, np.float32), 16000)
    assert band_flatness_file(tmp_path / "quiet.wav", 7600.0) is None

