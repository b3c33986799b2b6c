"""engine.audio.cutoff: band-limit detection on synthetic low-passed, resampled and MP3 audio."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import scipy.signal as ss
import soundfile as sf
import soxr

from engine.audio.cutoff import detect_cutoff, detect_cutoff_file
from engine.audio.io import resample

SR = 44100
DURATION_S = 3.0


def _white(n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.standard_normal(n)


def _pink(n: int, rng: np.random.Generator) -> np.ndarray:
    spectrum = np.fft.rfft(rng.standard_normal(n))
    bins = np.maximum(np.arange(spectrum.shape[0]), 1)
    return np.fft.irfft(spectrum / np.sqrt(bins), n)


def _chirp_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(n) / SR
    return ss.chirp(t, 20.0, t[-1], 21000.0) + 0.3 * rng.standard_normal(n)


SIGNALS: dict[str, Callable[[int, np.random.Generator], np.ndarray]] = {
    "white": _white, "pink": _pink, "chirp": _chirp_noise,
}


def _signal(kind: str, sample_rate: int = SR, seed: int = 0) -> np.ndarray:
    return SIGNALS[kind](round(DURATION_S * sample_rate), np.random.default_rng(seed))


def _lowpass(x: np.ndarray, cutoff_hz: float, design: str, sample_rate: int = SR) -> np.ndarray:
    """Zero-phase low-pass: Butterworth order 4/8 (nominal -6 dB point), elliptic, or FIR."""
    if design == "fir":
        return ss.filtfilt(ss.firwin(511, cutoff_hz, fs=sample_rate), [1.0], x)
    if design == "ellip":
        sos = ss.ellip(8, 0.1, 80, cutoff_hz, fs=sample_rate, output="sos")
    else:
        sos = ss.butter(int(design[-1]), cutoff_hz, fs=sample_rate, output="sos")
    return ss.sosfiltfilt(sos, x)


def _normalise(x: np.ndarray, peak: float = 0.5) -> np.ndarray:
    return (peak * x / np.max(np.abs(x))).astype(np.float32)


@pytest.mark.parametrize("design", ["butter4", "butter8", "ellip", "fir"])
@pytest.mark.parametrize("cutoff_hz", [4000.0, 8000.0, 11025.0, 16000.0])
@pytest.mark.parametrize("kind", sorted(SIGNALS))
def test_lowpassed_44k(kind: str, cutoff_hz: float, design: str) -> None:
    x = _normalise(_lowpass(_signal(kind), cutoff_hz, design))
    detected = detect_cutoff(x[None], SR)
    assert detected == pytest.approx(cutoff_hz, rel=0.04)


@pytest.mark.parametrize("file_rate", [8000, 16000, 22050])
@pytest.mark.parametrize("kind", sorted(SIGNALS))
def test_resampled_low_rate_file(tmp_path: Path, kind: str, file_rate: int) -> None:
    x = soxr.resample(_normalise(_signal(kind)), SR, file_rate, quality="HQ")
    path = tmp_path / "low.wav"
    sf.write(path, x, file_rate, subtype="PCM_16")
    detected = detect_cutoff_file(path)
    nyquist_hz = file_rate / 2
    # soxr HQ passes ~95 % of the new Nyquist; the knee lands in its roll-off
    assert detected <= nyquist_hz
    assert detected == pytest.approx(0.95 * nyquist_hz, rel=0.1)


@pytest.mark.parametrize("kind", sorted(SIGNALS))
def test_full_band(kind: str) -> None:
    assert detect_cutoff(_normalise(_signal(kind))[None], SR) >= 20000


def test_full_band_high_rate_is_capped() -> None:
    x = _normalise(_signal("white", sample_rate=96000))
    assert detect_cutoff(x[None], 96000) == 22050.0
    y = _normalise(_lowpass(x, 16000.0, "butter8", 96000))
    assert detect_cutoff(y[None], 96000) == pytest.approx(16000, rel=0.04)


def test_silence(tmp_path: Path) -> None:
    assert detect_cutoff(np.zeros((2, SR), np.float32), SR) == 22050.0
    assert detect_cutoff(np.zeros((1, 8000), np.float32), 8000) == 4000.0
    path = tmp_path / "silence.wav"
    sf.write(path, np.zeros((SR, 2), np.float32), SR)
    assert detect_cutoff_file(path) == 22050.0


def test_lone_sine_counts_as_full_band() -> None:
    t = np.arange(round(DURATION_S * SR)) / SR
    x = (0.5 * np.sin(2 * np.pi * 1000.0 * t)).astype(np.float32)
    assert detect_cutoff(x[None], SR) == 22050.0  # documented: no band limit to speak of


@pytest.mark.parametrize("hiss_db", [-70.0, -40.0])
@pytest.mark.parametrize("kind", sorted(SIGNALS))
def test_hiss_floor_above_cutoff_is_not_content(kind: str, hiss_db: float) -> None:
    x = _lowpass(_signal(kind), 11000.0, "butter8")
    x /= np.sqrt(np.mean(x**2))
    hiss = 10 ** (hiss_db / 20) * np.random.default_rng(9).standard_normal(x.shape[0])
    detected = detect_cutoff(_normalise(x + hiss)[None], SR)
    assert detected == pytest.approx(11000, rel=0.04)


def test_pilot_tone_above_cutoff_is_ignored() -> None:
    x = _normalise(_lowpass(_signal("white"), 11025.0, "butter8"), 0.3).astype(np.float64)
    t = np.arange(x.shape[0]) / SR
    x += 0.1 * np.sin(2 * np.pi * 19000.0 * t)
    assert detect_cutoff(x[None], SR) == pytest.approx(11025, rel=0.04)


def test_48k_file_lowpassed_at_16k(tmp_path: Path) -> None:
    x = _normalise(_lowpass(_signal("pink", sample_rate=48000), 16000.0, "butter8", 48000))
    path = tmp_path / "a.flac"
    sf.write(path, np.stack([x, x[::-1]], axis=1), 48000, subtype="PCM_24")
    assert detect_cutoff_file(path) == pytest.approx(16000, rel=0.04)


def test_mp3_encoder_lowpass(tmp_path: Path) -> None:
    x = _normalise(_signal("white", seed=3), 0.3)
    path = tmp_path / "a.mp3"
    sf.write(path, x, SR, format="MP3", subtype="MPEG_LAYER_III", compression_level=0.9,
             bitrate_mode="CONSTANT")  # a low bit rate: LAME low-passes well below 20 kHz
    detected = detect_cutoff_file(path)
    decoded, _ = sf.read(path, dtype="float32")
    assert 10000 < detected < 19000
    assert detect_cutoff(decoded[None], SR) == detected


def test_file_segments_agree_with_whole(tmp_path: Path) -> None:
    x = _normalise(_lowpass(_signal("pink"), 8000.0, "butter8"))
    long = np.tile(x, 10)  # 30 s; stationary, so 3 excerpts of 1 s see the same spectrum
    path = tmp_path / "long.wav"
    sf.write(path, long, SR, subtype="PCM_16")
    few = detect_cutoff_file(path, max_segments=3, segment_s=1.0)
    assert few == pytest.approx(detect_cutoff(long[None], SR), rel=0.02)
    assert few == pytest.approx(8000, rel=0.04)


def test_shapes_and_short_input() -> None:
    x = _normalise(_lowpass(_signal("white"), 8000.0, "butter8"))
    assert detect_cutoff(x, SR) == detect_cutoff(x[None], SR)  # (S,) accepted
    assert detect_cutoff(x[None, :100], SR) == 22050.0  # too short to tell
    with pytest.raises(ValueError, match="Ch, S"):
        detect_cutoff(x[None, None], SR)


@pytest.mark.parametrize("cutoff_hz", [9000.0, 12000.0, 16000.0])
def test_quiet_recording_with_hiss_above_its_edge(cutoff_hz: float) -> None:
    # Speech-like tones whose level falls towards the edge, at -50 dBFS RMS, over white hiss at
    # -80 dBFS: the edge drops only ~17 dB into the hiss (less than EDGE_DROP_DB), but above it
    # there is nothing but the flat floor. (Reported Nyquist before the floor-step rule.)
    from tests.engine.conftest import lowpass, synth_clip

    x = lowpass(synth_clip(4.0, seed=1), cutoff_hz)
    x = x / np.sqrt(np.mean(x**2)) * 10 ** (-50 / 20)
    x = x + 10 ** (-80 / 20) * np.random.default_rng(0).standard_normal(x.shape)
    assert detect_cutoff(x.astype(np.float32)[None], SR) == pytest.approx(cutoff_hz, rel=0.04)


@pytest.mark.parametrize("file_rate", [8000, 16000, 22050])
@pytest.mark.parametrize("shelf_db", [-12.0, -20.0])
def test_content_sagging_before_a_resampler_edge(file_rate: int, shelf_db: float) -> None:
    # Speech or a dark mix: strong up to 0.7 x the new Nyquist, then a shelf `shelf_db` lower
    # until the resampler's roll-off. The passband trend, fitted an octave lower, overshoots the
    # shelf, walks the knee down to the shelf's start, and that knee is no edge. Reported the
    # Nyquist before the local-knee fallback (the roll-off then stayed in the kept band).
    rng = np.random.default_rng(3)
    n = round(DURATION_S * SR)
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1 / SR)
    spectrum[freqs > 0.7 * file_rate / 2] *= 10 ** (shelf_db / 20)
    x = soxr.resample(_normalise(np.fft.irfft(spectrum, n)), SR, file_rate, quality="HQ")
    detected = detect_cutoff(x[None], file_rate)
    assert detected < file_rate / 2
    assert detected == pytest.approx(0.95 * file_rate / 2, rel=0.04)


@pytest.mark.parametrize("slope_db", [-20.0, -30.0])
def test_resampler_edge_under_a_falling_spectrum_is_found_at_its_knee(slope_db: float) -> None:
    """Speech-like: falling steeply above 1 kHz, then a sibilance plateau up to the edge. The
    octave trend below under-predicts the plateau, so judged by it alone the knee ran down the
    resampler's edge (0.965 x the Nyquist, ~-15 dB); judged by the level just below: ~0.953."""
    n = 44100 * 8
    spec = np.fft.rfft(np.random.default_rng(0).standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / 44100)
    db = np.where(f < 1000, 0.0, slope_db * np.log2(np.maximum(f, 1) / 1000))
    db = np.maximum(db, slope_db * np.log2(2800 / 1000))  # the plateau from 2.8 kHz up
    x = np.fft.irfft(spec * 10 ** (db / 20), n)[None].astype(np.float32)
    lr = resample(x / np.abs(x).max(), 44100, 8000)
    assert 0.94 * 4000 <= detect_cutoff(lr, 8000) <= 0.958 * 4000


@pytest.mark.parametrize("slope_db", [-7.0, -9.0])
def test_dark_input_over_a_digital_zero_floor(slope_db: float) -> None:
    """Dark speech or a dull mix, low-passed at 16 kHz in float (an MP3 decoder zeroes the
    band): at -9 dB/octave the passband just below the edge sits ~75 dB under the spectral
    peak, beyond the usual 60 dB content range, yet far above the floor; the 60 dB rule found
    no edge there (22050). 20 of 76 held-out files low-passed at 16 kHz were missed so."""
    n = 44100 * 4
    spec = np.fft.rfft(np.random.default_rng(3).standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / 44100)
    db = slope_db * np.log2(np.maximum(f, 50.0) / 50.0)  # flat to 50 Hz, then falling
    x = np.fft.irfft(spec * 10 ** (db / 20), n)
    taps = ss.firwin(2047, 16000.0, window=("kaiser", 8.0), fs=SR)
    lr = _normalise(ss.oaconvolve(x, taps, mode="same"))
    assert detect_cutoff(lr[None], SR) == pytest.approx(16000, rel=0.02)


@pytest.mark.parametrize("cutoff_hz", [11025.0, 16000.0])
@pytest.mark.parametrize("shelf_db", [-15.0, -25.0])
def test_sagging_content_into_a_brick_wall_is_cut_at_the_wall(cutoff_hz: float,
                                                              shelf_db: float) -> None:
    """Speech or a dark mix whose top sits a shelf lower from 0.7 x the cutoff, then an
    encoder's brick wall (60-90 dB down within 200 Hz). Against the passband trend the knee
    ran down to the shelf's start (~0.7 x), and the real content between it and the wall was
    regenerated: 17 of 76 held-out files low-passed at 16 kHz were cut at 10.3-15.2 kHz so."""
    n = 44100 * 4
    spec = np.fft.rfft(np.random.default_rng(5).standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / SR)
    db = -6.0 * np.log2(np.maximum(f, 200.0) / 200.0) + np.where(f > 0.7 * cutoff_hz,
                                                                 shelf_db, 0.0)
    x = np.fft.irfft(spec * 10 ** (db / 20), n)
    taps = ss.firwin(2047, cutoff_hz, window=("kaiser", 8.0), fs=SR)
    lr = _normalise(ss.oaconvolve(x, taps, mode="same"))
    assert detect_cutoff(lr[None], SR) == pytest.approx(cutoff_hz, rel=0.02)
