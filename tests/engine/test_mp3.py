"""The eval's real MP3 round trip: LAME through libsndfile, gapless, band limits by bitrate."""

from __future__ import annotations

import numpy as np
import pytest

from engine.audio.cutoff import detect_cutoff
from engine.audio.mp3 import MP3_RATE, compression_level, mp3_round_trip
from engine.eval.evaluate import CONDITIONS
from tests.engine.conftest import synth_clip


def _noise(channels: int, seconds: float = 2.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (0.1 * rng.standard_normal((channels, int(seconds * MP3_RATE)))).astype(np.float32)


def _band_db(x: np.ndarray, lo: float, hi: float) -> float:
    """Mean power (dB) of `x`'s bins in [lo, hi) Hz, over all channels."""
    spec = np.abs(np.fft.rfft(x, axis=-1)) ** 2
    f = np.fft.rfftfreq(x.shape[-1], 1 / MP3_RATE)
    return float(10 * np.log10(spec[:, (f >= lo) & (f < hi)].mean() + 1e-30))


def test_compression_level_spans_libsndfiles_constant_bitrates():
    assert compression_level(320) == 0.0 and compression_level(32) == 1.0
    assert compression_level(128) == pytest.approx(2 / 3)
    for bad in (16, 400):
        with pytest.raises(ValueError, match="bitrate must be 32-320"):
            compression_level(bad)


@pytest.mark.parametrize(("kbps", "lo", "hi"), [(128, 15500, 17500), (64, 10000, 12000)])
def test_the_band_ends_where_lame_puts_it_for_the_bitrate(kbps, lo, hi):
    x = _noise(1)
    y = mp3_round_trip(x, kbps)
    assert lo < detect_cutoff(y, MP3_RATE) < hi
    below = (1000.0, lo - 1000.0)
    assert abs(_band_db(y, *below) - _band_db(x, *below)) < 1.0  # the kept band's level stays
    assert _band_db(y, hi + 1000, 21000) < _band_db(x, hi + 1000, 21000) - 40  # nothing above


def test_the_round_trip_is_gapless_and_keeps_shape_and_channels():
    ref = (0.5 * synth_clip(1.5, seed=2))[None]  # (1, S) full band
    stereo = np.concatenate([ref, 0.3 * np.roll(ref, 441, axis=1)])  # (2, S), channels differ
    for x in (ref, stereo, np.concatenate([ref, ref, ref])):
        y = mp3_round_trip(x, 128)
        assert y.shape == x.shape and y.dtype == np.float32 and np.isfinite(y).all()
        a, b = x[0, 4410:-4410], y[0, 4410:-4410]
        lags = range(-600, 601, 3)  # no encoder or decoder delay is left in the output
        corr = [float(np.dot(a[600:-600], np.roll(b, -lag)[600:-600])) for lag in lags]
        assert list(lags)[int(np.argmax(corr))] == 0
    y = mp3_round_trip(stereo, 128)
    assert np.std(y[1]) < 0.5 * np.std(y[0])  # the quiet channel stays quiet: coded as a pair


def test_loud_input_clips_and_short_or_bad_shapes_are_handled():
    x = _noise(2, seconds=0.5)
    x[:, :100] = 3.0  # beyond full scale
    y = mp3_round_trip(x, 64)
    assert y.shape == x.shape and np.abs(y).max() < 1.5  # clipped before coding (unclipped: 3.3)
    tiny = _noise(1, seconds=0.01)  # shorter than one MP3 frame (1,152 samples)
    assert mp3_round_trip(tiny, 128).shape == tiny.shape
    with pytest.raises(ValueError, match=r"expected \(Ch, S\)"):
        mp3_round_trip(np.zeros(100, np.float32), 128)


@pytest.mark.parametrize(("name", "lo", "hi"), [("mp3-128k", 15500, 17500),
                                                ("mp3-64k", 10000, 12000)])
def test_mp3_conditions_give_a_44_1_khz_input_cut_near_their_nominal_edge(name, lo, hi):
    cond = CONDITIONS[name]
    ref = (0.5 * synth_clip(2.0, seed=4))[None]
    lr = cond.simulate(ref)
    assert cond.sample_rate == MP3_RATE and lr.shape == ref.shape
    assert lo < cond.nominal_cutoff_hz < hi and lo < detect_cutoff(lr, MP3_RATE) < hi
