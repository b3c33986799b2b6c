"""Baselines for `jatsr eval`: sinc interpolation and a classical DSP bandwidth extension.

Both take band-limited audio `(Ch, S)` at its own rate and return `(Ch, S')` at 44.1 kHz, as
`Restorer.iter_array` does, so the three systems see the same input and are timed alike.

`sinc`: the input resampled to 44.1 kHz (soxr, its own roll-off undone, as the pipeline reads
files); nothing is generated above the cutoff. This is what a player does with a low-rate file.

`dsp`: the input resampled to 44.1 kHz, its cutoff detected as the pipeline does, then spectral
band replication with envelope extrapolation (`engine/sbr.py`, which describes the method).
"""

from __future__ import annotations

import numpy as np

from engine.audio.cutoff import detect_cutoff
from engine.audio.io import resample
from engine.config import SAMPLE_RATE
from engine.pipeline import FULL_BAND_HZ
from engine.sbr import SBRConfig, sbr_extend


def sinc_upsample(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """The sinc baseline: float `(Ch, S)` at `sample_rate` -> `(Ch, S')` at 44.1 kHz."""
    return resample(audio, sample_rate, SAMPLE_RATE)


def sbr_upsample(audio: np.ndarray, sample_rate: int, cutoff_hz: float | None = None,
                 cfg: SBRConfig | None = None) -> tuple[np.ndarray, float]:
    """The DSP baseline: `(Ch, S)` at `sample_rate` -> (`(Ch, S')` at 44.1 kHz, cutoff in Hz).

    The cutoff is detected on the input as the pipeline does, unless given.
    """
    if audio.ndim != 2 or audio.shape[1] == 0:
        raise ValueError(f"audio must be (channels, samples) and non-empty, got {audio.shape}")
    x = resample(audio, sample_rate, SAMPLE_RATE)  # (Ch, S')
    if cutoff_hz is None:
        cutoff_hz = float(detect_cutoff(audio, sample_rate))
    cutoff_hz = float(min(cutoff_hz, sample_rate / 2))
    if cutoff_hz >= FULL_BAND_HZ:
        return x, cutoff_hz
    return sbr_extend(x, cutoff_hz, cfg), cutoff_hz
