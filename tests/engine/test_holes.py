"""Encoder holes in training targets: which STFT bins the loss leaves out."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from engine.codecs.stft import STFTCodec
from engine.training.holes import hole_weights
from tests.engine.conftest import synth_clip


def test_only_deep_bins_in_active_frames_are_holes():
    log_mag = torch.full((1, 6, 4), math.log(1e-2))  # (B, F, T): a quiet but real band
    log_mag[0, :, 3] = math.log(1e-5)  # a digitally silent frame: its emptiness is real
    log_mag[0, 4:, 1] = math.log(1e-5)  # a band zeroed in an active frame
    log_mag[0, 2, 2] = math.log(5e-5)  # one bin under the floor
    log_mag[0, 3, 2] = math.log(2e-4)  # one just over it
    w = hole_weights(log_mag, 1e-4)
    expect = torch.ones(1, 6, 4)
    expect[0, 4:, 1] = 0
    expect[0, 2, 2] = 0
    assert torch.equal(w, expect)
    with pytest.raises(ValueError, match="floor"):
        hole_weights(log_mag, 0.0)
    with pytest.raises(ValueError, match="B, F, T"):
        hole_weights(log_mag[0], 1e-4)


def test_a_band_zeroed_frame_by_frame_is_found_in_the_codec_latent():
    # full-band audio with 12-16 kHz zeroed in every other 4096-sample block, as a starved
    # Vorbis encoder does: the holes are found there and nowhere in the clean audio
    x = synth_clip(2.0, seed=4).astype(np.float64)
    holey = x.copy()
    block = 4096
    for start in range(0, len(x) - block, 2 * block):
        spec = np.fft.rfft(holey[start:start + block])
        f = np.fft.rfftfreq(block, 1 / 44100)
        spec[(f >= 12000) & (f < 16000)] = 0
        holey[start:start + block] = np.fft.irfft(spec, n=block)
    codec = STFTCodec()
    clean_w = hole_weights(codec.encode_raw(torch.tensor(x, dtype=torch.float32)[None, None]),
                           1e-4)
    holey_w = hole_weights(codec.encode_raw(torch.tensor(holey, dtype=torch.float32)[None, None]),
                           1e-4)
    assert clean_w.min() == 1.0
    freqs = torch.arange(1024) * 44100 / 2046
    inside = (freqs > 12500) & (freqs < 15500)
    share_inside = 1 - holey_w[0, inside].mean().item()
    share_outside = 1 - holey_w[0, freqs < 11000].mean().item()
    assert share_inside > 0.15 and share_outside == 0.0
