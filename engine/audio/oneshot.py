"""Whether a recording is a one-shot: one struck or plucked sound that starts at its loudest and
dies away (a drum or cymbal hit, a guitar strum). The sampler's warm start leaves them out.

Why (docs/training_log.md, fourteenth session; jatsr-medium-v7, 94 files of three sets):
starting from the DSP estimate instead of noise gains on speech, music and effects cut off at
7-16 kHz, but loses 0.1-0.6 LSD on isolated drum and guitar samples, which the network renders
well from noise. Their envelope tells them apart. In 20 ms frames (hop 10 ms), with "active"
meaning within `RANGE_DB` of the loudest frame: the loudest frame comes at most `ATTACK_S`
after the first active one, and from it to the last active frame the level in dB falls
steadily (its correlation with time is at most -`MIN_DECAY`). All 12 drum and guitar samples of
those sets have attacks of 0-20 ms and decays of 0.84-0.99; no speech, music or effect file
passes (nearest: a 60 ms attack with a rising tail, a 140 ms attack decaying at 0.90). On a
fourth set drawn afterwards it flagged 8 of 10 instruments (not a drum loop, not an upstroke
strum) and nothing else.
"""

from __future__ import annotations

import os

import numpy as np

from engine.audio import io as audio_io

FRAME_S, HOP_S = 0.02, 0.01
RANGE_DB = 50.0
ATTACK_S = 0.05
MIN_DECAY = 0.8
MIN_DECAY_FRAMES = 8  # a decay shorter than 80 ms says nothing
BLOCK_FRAMES = 1 << 16  # file reads
MAX_SECONDS = 30.0  # longer recordings are not one-shots (and a file is not read to find out)


def envelope_shape(x: np.ndarray, sample_rate: int) -> tuple[float, float] | None:
    """(attack in seconds, decay) of `x` (Ch, S) or (S,): the time from the first active frame
    to the loudest, and minus the correlation of the level in dB with time from there to the
    last active frame (1: a steady fall). None when too short, silent or non-finite."""
    return _shape(_power(np.asarray(x)), sample_rate)


def _power(x: np.ndarray) -> np.ndarray:
    """Instantaneous power (S,) of `x` (Ch, S) or (S,), mean over channels, float64."""
    return np.square(np.atleast_2d(x), dtype=np.float64).mean(axis=0)


def _shape(power: np.ndarray, sample_rate: int) -> tuple[float, float] | None:
    frame, hop = round(FRAME_S * sample_rate), round(HOP_S * sample_rate)
    if frame < 1 or power.shape[0] < frame + hop * MIN_DECAY_FRAMES:
        return None
    csum = np.concatenate([[0.0], np.cumsum(power)])
    starts = np.arange(0, power.shape[0] - frame + 1, hop)
    energy = (csum[starts + frame] - csum[starts]) / frame  # (frames,)
    if not np.isfinite(energy).all() or energy.max() <= 0:
        return None
    active = np.flatnonzero(energy >= energy.max() * 10 ** (-RANGE_DB / 10))
    peak = int(np.argmax(energy))
    tail = 10 * np.log10(np.maximum(energy[peak:active[-1] + 1], 1e-30))
    attack = (peak - active[0]) * hop / sample_rate
    if tail.shape[0] < MIN_DECAY_FRAMES or np.ptp(tail) == 0:
        return attack, 0.0
    return attack, float(-np.corrcoef(np.arange(tail.shape[0]), tail)[0, 1])


def _verdict(shape: tuple[float, float] | None) -> bool:
    return shape is not None and bool(shape[0] <= ATTACK_S and shape[1] >= MIN_DECAY)


def is_one_shot(x: np.ndarray, sample_rate: int) -> bool:
    """Whether `x` (Ch, S) or (S,) is a one-shot (module doc); recordings longer than
    `MAX_SECONDS` never are."""
    if x.shape[-1] > MAX_SECONDS * sample_rate:
        return False
    return _verdict(envelope_shape(x, sample_rate))


def is_one_shot_file(path: str | os.PathLike[str]) -> bool:
    """`is_one_shot` of a file, read in blocks (memory: one float64 per frame, not per sample
    and channel); a file longer than `MAX_SECONDS` is not read."""
    info = audio_io.probe(path)
    if info.frames > MAX_SECONDS * info.sample_rate:
        return False
    power = np.concatenate([_power(block) for block in audio_io.iter_blocks(path, BLOCK_FRAMES)])
    return _verdict(_shape(power, info.sample_rate))
