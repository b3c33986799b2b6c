"""Spectral band replication in torch: batched per-item cutoffs, the smoothing it shares with
scipy, and the frequency shift that keeps a replicated tone a tone."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.ndimage import uniform_filter1d

from engine.codecs.bands import BIN_HZ, N_FFT, analyze
from engine.config import HOP_SAMPLES, SAMPLE_RATE
from engine.sbr import _smooth_bins, sbr_batch, sbr_extend
from tests.engine.conftest import band_limit, synth_clip


@pytest.mark.parametrize("size", [3, 14, 15])
def test_smoothing_matches_scipy_nearest(size: int) -> None:
    x = torch.randn(2, 64, 5, generator=torch.Generator().manual_seed(size))
    ours = _smooth_bins(x, size).numpy()
    theirs = uniform_filter1d(x.numpy(), size, axis=1, mode="nearest")
    np.testing.assert_allclose(ours, theirs, atol=1e-5)


def test_batch_items_keep_their_own_cutoffs() -> None:
    clips = [band_limit(synth_clip(2.0, seed=s)[None], rate)[0] for s, rate in
             ((1, 8000), (2, 16000), (3, 32000))]
    cutoffs = [3800.0, 7600.0, 15000.0]
    n = min(len(c) for c in clips)
    wav = torch.from_numpy(np.stack([c[:n] for c in clips]))[:, None]  # (3, 1, S)
    together = sbr_batch(wav, cutoffs)
    for i, cutoff in enumerate(cutoffs):
        alone = sbr_extend(wav[i].numpy(), cutoff)  # (1, S)
        np.testing.assert_allclose(together[i].numpy(), alone, atol=1e-5)


def test_a_tone_is_shifted_up_as_a_tone_and_the_band_below_is_kept() -> None:
    seconds, cutoff = 2.0, 6000.0
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    tone_bin = 200  # on a bin, inside the source band (the octave under 0.96 x cutoff)
    noise = np.random.default_rng(0).standard_normal(t.size)  # gives the fit band a level
    x = (0.3 * np.sin(2 * np.pi * tone_bin * BIN_HZ * t) + 1e-3 * noise).astype(np.float32)[None]
    y = sbr_extend(x, cutoff)
    spec = analyze(torch.from_numpy(y)[:, None])[0, :, 10:-10]  # (F, T) away from the edges
    first = round(cutoff / BIN_HZ) + 20  # above the crossfade
    peak = first + int(spec[first:first + 150].abs().mean(1).argmax())
    assert spec[peak].abs().mean() > 30 * spec[peak + 4].abs().mean()
    # an exact single-sideband shift: the copy's phase turns per hop as a tone at its new bin
    step = torch.angle(spec[peak, 1:] * spec[peak, :-1].conj())  # (T-1,)
    expected = torch.tensor(2 * np.pi * peak * HOP_SAMPLES / N_FFT)
    wrapped = torch.angle(torch.polar(torch.ones_like(step), step - expected))
    assert wrapped.abs().max() < 0.05  # the noise moves it ~0.02
    below = round(0.9 * cutoff / BIN_HZ)
    kept = analyze(torch.from_numpy(x)[:, None]).abs()[0, :below, 10:-10]
    np.testing.assert_allclose(spec[:below].abs().numpy(), kept.numpy(), rtol=1e-3, atol=1e-4)


def test_cutoffs_are_checked() -> None:
    wav = torch.zeros(2, 1, 4096)
    with pytest.raises(ValueError, match="2 items"):
        sbr_batch(wav, [4000.0])
    with pytest.raises(ValueError, match="cutoff_hz"):
        sbr_batch(wav, [4000.0, 30000.0])
