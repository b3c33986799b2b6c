"""Numpy analysis for the views and the player: STFT images, envelopes, loudness gains.

Pure functions, no Qt: they run in pool threads (never on the GUI thread). Layouts:
audio `(S, Ch)` float32 as the player holds it; images `(F, T)` row-major (rows = frequency).
References: ITU-R BS.1770-4 (K-weighting pre-filter), pyqtgraph row-major `ImageItem`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import signal

N_FFT = 2048  # 21.5 Hz bins at 44.1 kHz
HOP_SAMPLES = 512
MAX_COLUMNS = 4096  # time columns per image: bounded memory for a 10-minute file
LOG_ROWS = 384  # rows of the log-frequency image
LOG_MIN_HZ = 20.0
FLOOR_DB = -140.0  # dB of digital silence in the images
ENVELOPE_BUCKETS = 4000
FRAMES_PER_BLOCK = 512  # STFT frames transformed at once (bounded temporary memory)
ANALYSIS_BLOCK_FRAMES = 2**18  # samples per step of the envelope and loudness


@dataclass(frozen=True)
class Spectrogram:
    """A power spectrogram in dB, linear rows `(F, T)` and log-spaced rows `(LOG_ROWS, T)`."""

    linear_db: np.ndarray  # (F, T) float32, row k at k * nyquist / (F - 1) Hz
    log_db: np.ndarray  # (LOG_ROWS, T) float32, rows log-spaced from LOG_MIN_HZ to nyquist
    duration_s: float
    nyquist_hz: float


def stft_power(x: np.ndarray, n_fft: int = N_FFT, hop: int = HOP_SAMPLES,
               max_columns: int = MAX_COLUMNS) -> np.ndarray:
    """Channel-averaged Hann STFT power `(F, T)` of `(S, Ch)` audio; T <= max_columns.

    Consecutive frames are averaged into columns when the file has more than max_columns.
    Frames are centred (zero-padded at both ends) and cut from `x` a block at a time, so the
    temporary memory does not grow with the file (x may be a disk-backed buffer).
    """
    if x.ndim != 2:
        raise ValueError(f"x: expected (S, Ch), got shape {x.shape}")
    n_samples, channels = x.shape
    n_frames = max(1, math.ceil(n_samples / hop))
    group = max(1, math.ceil(n_frames / max_columns))
    n_columns = math.ceil(n_frames / group)
    window = np.hanning(n_fft + 1)[:-1].astype(np.float32)
    block_frames = group * max(1, FRAMES_PER_BLOCK // group)  # whole columns per block
    power = np.zeros((n_columns, n_fft // 2 + 1), np.float32)
    for start in range(0, n_frames, block_frames):
        stop = min(start + block_frames, n_frames)
        lo = start * hop - n_fft // 2  # first sample of frame `start` (centred frames)
        seg = np.zeros(((stop - 1 - start) * hop + n_fft, channels), np.float32)
        a, b = max(lo, 0), min(lo + seg.shape[0], n_samples)
        if b > a:
            seg[a - lo : b - lo] = x[a:b]
        first = start // group
        for c in range(channels):
            frames = np.lib.stride_tricks.sliding_window_view(seg[:, c], n_fft)[::hop]
            spec = np.fft.rfft(frames * window, axis=1)  # (n, F) complex64
            p = spec.real**2 + spec.imag**2
            sums = np.add.reduceat(p, np.arange(0, p.shape[0], group), axis=0)  # (cols, F)
            power[first : first + sums.shape[0]] += sums
    counts = np.full(n_columns, group * channels, np.float32)
    counts[-1] = (n_frames - (n_columns - 1) * group) * channels
    power /= counts[:, None] * np.float32(window.sum() ** 2)
    return np.ascontiguousarray(power.T)  # (F, T)


def to_db(power: np.ndarray) -> np.ndarray:
    """10 log10(power) as float32, floored at FLOOR_DB."""
    return np.maximum(10.0 * np.log10(np.maximum(power, 1e-30)), FLOOR_DB).astype(np.float32)


def log_rows(linear: np.ndarray, nyquist_hz: float, n_rows: int = LOG_ROWS,
             min_hz: float = LOG_MIN_HZ) -> np.ndarray:
    """Resample `(F, T)` rows onto `n_rows` log-spaced frequencies (linear interpolation)."""
    n_bins = linear.shape[0]
    edges = np.logspace(math.log10(min_hz), math.log10(nyquist_hz), n_rows)
    pos = edges / nyquist_hz * (n_bins - 1)
    lo = np.clip(np.floor(pos).astype(int), 0, n_bins - 2)
    frac = (pos - lo).astype(np.float32)[:, None]
    return np.ascontiguousarray(linear[lo] * (1 - frac) + linear[lo + 1] * frac)


def spectrogram(x: np.ndarray, sample_rate: int, max_columns: int = MAX_COLUMNS) -> Spectrogram:
    """The view payload of one `(S, Ch)` clip (or of a span of it, for a zoomed-in view)."""
    linear_db = to_db(stft_power(x, max_columns=max_columns))
    nyquist_hz = sample_rate / 2
    return Spectrogram(linear_db, log_rows(linear_db, nyquist_hz), x.shape[0] / sample_rate,
                       nyquist_hz)


def envelope(x: np.ndarray, buckets: int = ENVELOPE_BUCKETS) -> tuple[np.ndarray, np.ndarray]:
    """Peak envelope (min, max) over `buckets` equal slices of the channel mix of `(S, Ch)`,
    read a run of buckets at a time (bounded temporary memory)."""
    n = x.shape[0]
    buckets = max(1, min(buckets, n))
    edges = np.linspace(0, n, buckets + 1).astype(int)
    lows = np.empty(buckets, np.float32)
    highs = np.empty(buckets, np.float32)
    step = max(1, buckets * ANALYSIS_BLOCK_FRAMES // n)  # buckets per read
    for i in range(0, buckets, step):
        j = min(i + step, buckets)
        seg = x[edges[i]:edges[j]]
        mono = seg.mean(axis=1) if seg.shape[1] > 1 else seg[:, 0]
        lows[i:j] = np.minimum.reduceat(mono, edges[i:j] - edges[i])
        highs[i:j] = np.maximum.reduceat(mono, edges[i:j] - edges[i])
    return lows, highs


def k_weighting_sos(sample_rate: int) -> np.ndarray:
    """BS.1770 K-weighting (high-shelf + RLB high-pass) as second-order sections."""
    # Shelf: +4 dB above ~1.68 kHz (BS.1770-4 Table 1 re-derived for any rate).
    f0, gain_db, q = 1681.974450955533, 3.999843853973347, 0.7071752369554196
    k = math.tan(math.pi * f0 / sample_rate)
    vh = 10 ** (gain_db / 20)
    vb = vh ** 0.4996667741545416
    a0 = 1 + k / q + k * k
    shelf = [(vh + vb * k / q + k * k) / a0, 2 * (k * k - vh) / a0,
             (vh - vb * k / q + k * k) / a0, 1.0, 2 * (k * k - 1) / a0, (1 - k / q + k * k) / a0]
    f0, q = 38.13547087602444, 0.5003270373238773
    k = math.tan(math.pi * f0 / sample_rate)
    a0 = 1 + k / q + k * k
    highpass = [1.0, -2.0, 1.0, 1.0, 2 * (k * k - 1) / a0, (1 - k / q + k * k) / a0]
    return np.array([shelf, highpass])


def loudness_db(x: np.ndarray, sample_rate: int, weighted: bool = True) -> float:
    """Ungated loudness of `(S, Ch)` in dB: K-weighted (LUFS-like) or plain RMS; filtered a
    block at a time with the filter state carried over (bounded temporary memory)."""
    sos = k_weighting_sos(sample_rate) if weighted else None
    state = np.zeros((2, 2, x.shape[1])) if weighted else None  # (sections, 2, Ch)
    total = 0.0
    for start in range(0, x.shape[0], ANALYSIS_BLOCK_FRAMES):
        block = x[start : start + ANALYSIS_BLOCK_FRAMES]
        if weighted:
            # A -400 dB DC offset (removed by the weighting's high-pass) keeps the filter state
            # out of subnormal floats in digital silence: 0.08 s instead of 1.8 s for 60 s.
            block, state = signal.sosfilt(sos, block + 1e-20, axis=0, zi=state)
        total += float(np.sum(np.square(block, dtype=np.float64)))
    power = total / x.size if x.size else 0.0
    return -0.691 + 10 * math.log10(max(power, 1e-20)) if weighted else \
        10 * math.log10(max(power, 1e-20))


def match_gain(reference: np.ndarray, other: np.ndarray, sample_rate: int,
               weighted: bool = True, max_gain_db: float = 12.0) -> float:
    """Linear gain that brings `other` to the loudness of `reference` (clamped to ±max_gain_db)."""
    diff_db = loudness_db(reference, sample_rate, weighted) - loudness_db(other, sample_rate,
                                                                          weighted)
    return float(10 ** (max(-max_gain_db, min(max_gain_db, diff_db)) / 20))
