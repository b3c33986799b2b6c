"""Band crossfade: kept band from `keep`, generated band from `generated`."""

from __future__ import annotations

import math

import pytest
import torch

from engine.codecs import bands
from engine.config import SAMPLE_RATE
from tests.engine.conftest import band_lsd


def _tone(freq_hz: float, num_samples: int, amp: float = 0.5) -> torch.Tensor:
    """A sine with 2048-sample raised-cosine fades, so its edges carry no broadband click."""
    t = torch.arange(num_samples) / SAMPLE_RATE
    fade = torch.ones(num_samples)
    ramp = torch.hann_window(4096, periodic=False)[:2048]
    fade[:2048], fade[-2048:] = ramp, ramp.flip(0)
    return (amp * fade * torch.sin(2 * math.pi * freq_hz * t))[None, None]  # (1, 1, S)



def test_keep_weights_shape_and_ends() -> None:
    w = bands.keep_weights(5000.0, 300.0)
    freqs = bands.bin_freqs_hz()
    assert w.shape == (bands.NUM_BINS,)
    assert torch.all(w[freqs <= 5000.0] == 1.0)
    assert torch.all(w[freqs >= 5300.0] == 0.0)
    assert torch.all(w[1:] <= w[:-1])  # non-increasing
    mid = (freqs - 5150.0).abs().argmin()
    assert abs(float(w[mid]) - 0.5) < 0.1


def test_keep_weights_hard_switch() -> None:
    w = bands.keep_weights(5000.0, 0.0)
    freqs = bands.bin_freqs_hz()
    assert torch.equal(w, (freqs < 5000.0).float())
    assert bands.first_generated_bin(w) == int((freqs < 5000.0).sum())


@pytest.mark.parametrize(("cutoff", "transition"), [(0.0, 300.0), (22050.0, 300.0),
                                                    (5000.0, -1.0)])
def test_keep_weights_rejects_bad_args(cutoff: float, transition: float) -> None:
    with pytest.raises(ValueError):
        bands.keep_weights(cutoff, transition)


def test_merge_takes_low_tone_from_keep_and_high_tone_from_generated() -> None:
    n = SAMPLE_RATE // 2 + 77
    keep = _tone(1000.0, n) + _tone(12000.0, n, 0.3)  # the high tone here must be dropped
    generated = _tone(12000.0, n) + _tone(1000.0, n, 0.2)  # the low tone here must be dropped
    out = bands.merge_bands(generated, keep, cutoff_hz=5000.0, transition_hz=300.0)
    expected = _tone(1000.0, n) + _tone(12000.0, n)
    assert out.shape == keep.shape
    assert float((out - expected).norm() / expected.norm()) < 1e-4
    assert band_lsd(out, keep, hi_hz=4800.0) < 0.05
    assert band_lsd(out, generated, lo_hz=5200.0) < 0.05


def test_merge_noise_below_cutoff_is_keep() -> None:
    g = torch.Generator().manual_seed(0)
    n = SAMPLE_RATE // 3
    keep = 0.1 * torch.randn(2, 1, n, generator=g)
    generated = 0.1 * torch.randn(2, 1, n, generator=g)
    out = bands.merge_bands(generated, keep, cutoff_hz=8000.0, transition_hz=300.0)
    assert band_lsd(out, keep, hi_hz=7800.0) < 0.05
    assert band_lsd(out, generated, lo_hz=8200.0) < 0.05
    # Bins below 6.5 kHz are copied, then resynthesised: equal to float precision away from
    # the two edge frames, where cutting the crossfaded signal back to S samples leaks.
    low_out = bands.analyze(out)[:, :300, 2:-2]
    low_keep = bands.analyze(keep)[:, :300, 2:-2]
    assert float((low_out - low_keep).abs().max() / low_keep.abs().max()) < 1e-5


def test_merge_rejects_shape_mismatch() -> None:
    with pytest.raises(ValueError):
        bands.merge_bands(torch.zeros(1, 1, 1000), torch.zeros(1, 1, 999), 5000.0, 300.0)


def test_analyze_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError):
        bands.analyze(torch.zeros(1, 1000))
    with pytest.raises(ValueError):
        bands.analyze(torch.zeros(1, 2, 1000))
    with pytest.raises(ValueError):
        bands.synthesize(torch.zeros(1, bands.NUM_BINS, 3), 1000)  # not complex


def test_merge_keeps_input_that_is_louder_above_the_cutoff() -> None:
    # a lossy encoder left a loud 9 kHz band in the second half only; generated: a quiet one
    n = SAMPLE_RATE
    half = torch.zeros(1, 1, n)
    half[..., n // 2:] = 1.0
    keep = _tone(1000.0, n) + half * _tone(9000.0, n, 0.4)
    generated = _tone(9000.0, n, 0.01) + _tone(14000.0, n, 0.05)
    off = bands.merge_bands(generated, keep, cutoff_hz=5000.0, transition_hz=300.0)
    on = bands.merge_bands(generated, keep, 5000.0, 300.0, keep_louder=True)
    bin_9k, bin_14k = round(9000 / bands.BIN_HZ), round(14000 / bands.BIN_HZ)
    spec_on, spec_off = bands.analyze(on).abs(), bands.analyze(off).abs()
    frames = spec_on.shape[-1]
    late, early = slice(3 * frames // 4, frames - 4), slice(4, frames // 4)
    assert spec_on[0, bin_9k, late].mean() > 20 * spec_off[0, bin_9k, late].mean()  # kept
    assert torch.allclose(spec_on[0, bin_9k, early], spec_off[0, bin_9k, early])  # generated
    for part in (early, late):  # (the frames at the burst's onset click at every frequency)
        assert torch.allclose(spec_on[0, bin_14k, part], spec_off[0, bin_14k, part], rtol=1e-4)
    # a properly band-limited input is never louder above its cutoff: nothing changes
    limited = bands.merge_bands(torch.zeros_like(keep), keep, 5000.0, 0.0)
    assert torch.equal(bands.merge_bands(generated, limited, 5000.0, 300.0, keep_louder=True),
                       bands.merge_bands(generated, limited, 5000.0, 300.0))


def test_encoder_holes_are_deep_kept_bins_above_the_lowest_quarter_in_active_frames() -> None:
    weights = bands.keep_weights(8000.0, 300.0)  # kept: bins under 8 kHz
    freqs = bands.bin_freqs_hz()
    frames = 40
    keep = torch.ones(1, bands.NUM_BINS, frames, dtype=torch.complex64)
    gen_mag = torch.ones(1, bands.NUM_BINS, frames)
    band = (freqs > 5000) & (freqs < 6000)  # an encoder's hole, frames 10-19
    low = (freqs > 500) & (freqs < 1000)  # zeroed too, but in the kept band's lowest quarter
    keep[0, band, 10:20] = 0.0
    keep[0, low, 10:20] = 0.0
    keep[0, :, 30] = 0.0  # a silent frame: nothing to fill there
    keep[0, freqs > 8000] = 0.0  # above the cutoff: the generated band's business
    shallow = keep.clone()
    shallow[0, band, 10:20] = 0.5  # 6 dB under the network: no hole at 20 dB
    holes = bands.encoder_holes(keep, gen_mag, weights, 20.0)
    want = torch.zeros_like(holes)
    want[0, band, 10:20] = True
    assert torch.equal(holes, want)
    assert not bands.encoder_holes(shallow, gen_mag, weights, 20.0).any()
    assert torch.equal(bands.encoder_holes(shallow, gen_mag, weights, 3.0), want)


def test_merge_fills_encoder_holes_only_when_asked() -> None:
    n = SAMPLE_RATE
    keep_full = _tone(1000.0, n) + _tone(5500.0, n, 0.2)
    spec = bands.analyze(keep_full)
    frames = spec.shape[-1]
    late = slice(frames // 2, frames)
    freqs = bands.bin_freqs_hz()
    spec[:, (freqs > 5000) & (freqs < 6000), late] = 0.0  # the encoder zeroed 5-6 kHz late on
    keep = bands.synthesize(spec, n)
    generated = keep_full + _tone(14000.0, n, 0.05)
    off = bands.merge_bands(generated, keep, cutoff_hz=8000.0, transition_hz=300.0)
    on = bands.merge_bands(generated, keep, 8000.0, 300.0, fill_holes_db=20.0)
    k = round(5500.0 / bands.BIN_HZ)
    inner = slice(frames // 2 + 4, frames - 6)
    s_on, s_off, s_ref = (bands.analyze(x)[0].abs() for x in (on, off, keep_full))
    assert float(s_off[k, inner].mean()) < 0.01 * float(s_ref[k, inner].mean())  # hole stays
    assert torch.allclose(s_on[k, inner], s_ref[k, inner], rtol=0.05)  # filled
    early = slice(4, frames // 2 - 4)
    peak = float(s_off.max())  # no hole early on: as it was, to 80 dB under the peak
    assert torch.allclose(s_on[:, early], s_off[:, early], atol=1e-4 * peak)
    quieter = 0.5 * keep  # a network no louder than the input anywhere: no holes
    assert torch.equal(bands.merge_bands(quieter, keep, 8000.0, 300.0, fill_holes_db=20.0),
                       bands.merge_bands(quieter, keep, 8000.0, 300.0))
