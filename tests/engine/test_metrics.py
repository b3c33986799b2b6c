"""engine.metrics: LSD against hand-computed values and a torch.stft reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from engine.metrics import hole_share, lsd, lsd_bands

SR = 44100
N_FFT = 2048
N_BINS = N_FFT // 2 + 1


def _noise(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return 0.1 * np.random.default_rng(seed).standard_normal(shape)


def _torch_lsd(ref: np.ndarray, est: np.ndarray) -> float:
    """The AP-BWE formula written with torch.stft, for cross-checking."""
    window = torch.hann_window(N_FFT, dtype=torch.float64)

    def log_power(x: np.ndarray) -> torch.Tensor:
        spec = torch.stft(torch.as_tensor(x, dtype=torch.float64), N_FFT, 512, window=window,
                          center=True, return_complex=True)
        return torch.log10(spec.abs().square().clamp(min=1e-8))

    diff = log_power(ref) - log_power(est)  # (Ch, F, T)
    return diff.square().mean(dim=-2).sqrt().mean(dim=-1).mean().item()


@pytest.mark.parametrize("gain", [0.5, 2.0, 10.0])
def test_gain_gives_twice_log_gain(gain: float) -> None:
    ref = _noise((SR,))
    assert lsd(ref, gain * ref) == pytest.approx(abs(2 * math.log10(gain)), abs=1e-12)


def test_matches_torch_stft_reference() -> None:
    ref = _noise((2, SR))
    est = ref + 0.5 * _noise((2, SR), seed=1)
    assert lsd(ref, est) == pytest.approx(_torch_lsd(ref, est), rel=1e-9)


def test_constant_signal_band_restriction() -> None:
    # A constant c has power only in bins 0 and 1 of every frame ((cN/2)^2 and (cN/4)^2);
    # scaling it by g changes those two bins by 2 log10 g and leaves the clamped rest equal.
    ref = np.full(SR, 0.25)
    delta = 2 * math.log10(3.0)
    assert lsd(ref, 3.0 * ref) == pytest.approx(delta * math.sqrt(2 / N_BINS), rel=1e-9)
    assert lsd(ref, 3.0 * ref, high_hz=2 * SR / N_FFT) == pytest.approx(delta, rel=1e-9)
    assert lsd(ref, 3.0 * ref, low_hz=1000.0) == pytest.approx(0.0, abs=1e-12)
    n_low = int(np.sum(np.arange(N_BINS) * SR / N_FFT < 1000.0))  # bins in [0, 1000) Hz
    bands = lsd_bands(ref, 3.0 * ref, 1000.0)
    assert set(bands) == {"lsd", "lsd_high", "lsd_low"}
    assert bands["lsd_low"] == pytest.approx(delta * math.sqrt(2 / n_low), rel=1e-9)
    assert bands["lsd_high"] == pytest.approx(0.0, abs=1e-12)


def test_clamp_keeps_an_empty_estimate_finite() -> None:
    ref = np.full(SR, 0.25)
    dc_db, bin1_db = (math.log10((0.25 * N_FFT / d) ** 2) + 8 for d in (2, 4))
    expected = math.sqrt((dc_db**2 + bin1_db**2) / N_BINS)
    assert lsd(ref, np.zeros(SR)) == pytest.approx(expected, rel=1e-9)
    assert lsd(ref, np.zeros(SR), low_hz=5000.0) == pytest.approx(0.0, abs=1e-12)
    assert math.isfinite(lsd(_noise((SR,)), np.zeros(SR), low_hz=5000.0))


def test_silent_reference_frames_are_skipped() -> None:
    ref = np.concatenate([_noise((SR,)), np.zeros(SR)])
    noise_after_gap = np.concatenate([np.zeros(SR + N_FFT), _noise((SR - N_FFT,), seed=2)])
    est = 2.0 * ref + noise_after_gap  # no frame sees both the reference and the added noise
    # the silent frames would score about |log10 1e-8 - log10 P_noise| each if they counted
    assert lsd(ref, est) == pytest.approx(2 * math.log10(2.0), abs=1e-12)
    assert math.isnan(lsd(np.zeros(SR), _noise((SR,))))


def test_channels_are_averaged() -> None:
    ref = _noise((2, SR))
    est = ref * np.array([[2.0], [10.0]])
    expected = (2 * math.log10(2.0) + 2.0) / 2
    assert lsd(ref, est) == pytest.approx(expected, abs=1e-12)
    silent_right = ref * np.array([[1.0], [0.0]])
    assert lsd(silent_right, 2.0 * silent_right) == pytest.approx(2 * math.log10(2.0), abs=1e-12)


def test_inputs_torch_1d_and_length_mismatch() -> None:
    ref = _noise((SR,))
    est = ref + 0.3 * _noise((SR,), seed=3)
    value = lsd(ref, est)
    assert lsd(torch.from_numpy(ref).float(), torch.from_numpy(est).float()) == pytest.approx(
        value, rel=1e-5)
    assert lsd(ref[None], est[None]) == value
    longer = np.concatenate([est, _noise((777,), seed=4)])
    assert lsd(ref, longer) == value  # trimmed to the shorter input
    assert lsd(longer, ref) == lsd(longer[:SR], ref)


def test_argument_errors() -> None:
    ref = _noise((2, SR))
    with pytest.raises(ValueError, match="channel"):
        lsd(ref, ref[:1])
    with pytest.raises(ValueError, match="no STFT bins"):
        lsd(ref, ref, low_hz=30000.0)
    with pytest.raises(ValueError, match="too short"):
        lsd(ref[:, :100], ref[:, :100])
    with pytest.raises(ValueError, match="NaN"):
        lsd(ref, np.full_like(ref, np.nan))
    with pytest.raises(ValueError, match="cutoff_hz"):
        lsd_bands(ref, ref, 22050.0)


def test_hole_share_counts_encoder_zeroed_bins_in_active_frames() -> None:
    x = _noise((4 * SR,), seed=3)
    assert hole_share(x, 10000, 20000) == 0.0  # noise: no bin near the clamp
    assert hole_share(np.round(x * 32767) / 32767, 10000, 20000) == 0.0  # 16-bit rounding
    holey = x.copy()
    for start in range(0, holey.size, SR):  # every other 0.5 s, 9 kHz and up zeroed
        seg = holey[start:start + SR // 2]
        spec = np.fft.rfft(seg)
        spec[np.fft.rfftfreq(seg.size, 1 / SR) >= 9000] = 0
        holey[start:start + SR // 2] = np.fft.irfft(spec, seg.size)
    share = hole_share(holey, 10000, 20000)
    assert 0.4 < share < 0.5  # half the time, less the frames straddling a switch
    quiet = np.concatenate([x, 1e-9 * x])  # frames 40 dB under the loudest are not counted
    assert hole_share(quiet, 10000, 20000) == 0.0
    assert math.isnan(hole_share(np.zeros(SR), 10000, 20000))  # silent
    assert math.isnan(hole_share(x, 30000, 40000))  # no bin in the band
