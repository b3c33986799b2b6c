"""How noise-like the top of the kept band is: the gate of the sampler's warm start.

Spectral flatness (geometric over arithmetic mean power; ~0.56 for white noise's periodogram,
near 0 for a few partials) of the octave under the cutoff, [cutoff / 2, 0.95 x cutoff], in
1024-sample Hann frames (hop 256) at the input's own rate; the median over the frames within
30 dB of the loudest. Measured on the shipped model (`docs/training_log.md`, eleventh session,
8 / 16 kHz inputs of three sets): starting from the DSP estimate beats starting from noise
on inputs whose flatness exceeds ~0.3 — fire, water, crowds, breathy and sibilant voices —
and loses on tonal material (drum kits, guitars, most music and narrated speech).
"""

from __future__ import annotations

import os

import numpy as np

from engine.audio import io as audio_io

FRAME, HOP = 1024, 256
ACTIVE = 1e-3  # frames with at least this share of the loudest frame's power
TINY = 1e-12  # power floor: digital silence is not "flat"


def _frame_flatness(mono: np.ndarray, sample_rate: int, cutoff_hz: float
                    ) -> tuple[np.ndarray, np.ndarray] | None:
    """(flatness of each frame, its total power) of `mono` (S,), or None if too short."""
    if mono.shape[0] < FRAME:
        return None
    freqs = np.fft.rfftfreq(FRAME, 1.0 / sample_rate)
    band = (freqs > cutoff_hz / 2) & (freqs < 0.95 * cutoff_hz)
    if band.sum() < 2:
        return None
    frames = np.lib.stride_tricks.sliding_window_view(mono, FRAME)[::HOP] * np.hanning(FRAME)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2 + TINY  # (frames, F)
    pb = power[:, band]
    flat = np.exp(np.log(pb).mean(axis=1)) / pb.mean(axis=1)
    return flat, power.sum(axis=1)


def _median_active(parts: list[tuple[np.ndarray, np.ndarray]]) -> float | None:
    if not parts:
        return None
    flat = np.concatenate([f for f, _ in parts])
    total = np.concatenate([p for _, p in parts])
    if total.max() <= TINY * 2 * (FRAME // 2 + 1):  # digital silence
        return None
    return float(np.median(flat[total > total.max() * ACTIVE]))


def band_flatness(x: np.ndarray, sample_rate: int, cutoff_hz: float) -> float | None:
    """Flatness of the octave under `cutoff_hz` of `x` (Ch, S) or (S,); None when `x` is too
    short or silent to tell."""
    mono = x.mean(axis=0) if x.ndim == 2 else x
    part = _frame_flatness(np.asarray(mono, np.float64), sample_rate, cutoff_hz)
    return _median_active([part] if part is not None else [])


def band_flatness_file(path: str | os.PathLike[str], cutoff_hz: float, max_segments: int = 16,
                       segment_s: float = 10.0) -> float | None:
    """`band_flatness` of a file from up to `max_segments` excerpts of `segment_s` (seeks), at
    the file's own rate: a long file costs a few seconds of audio, not its length."""
    info = audio_io.probe(path)
    seg = max(FRAME, round(segment_s * info.sample_rate))
    parts = []
    for block in audio_io.read_segments(path, seg, max_segments):  # (Ch, n)
        part = _frame_flatness(block.mean(axis=0).astype(np.float64), info.sample_rate,
                               cutoff_hz)
        if part is not None:
            parts.append(part)
    return _median_active(parts)
