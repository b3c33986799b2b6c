"""Log-spectral distance (LSD) as NU-Wave2 and AP-BWE compute it, in numpy.

`P = |STFT|^2` (periodic Hann, n_fft 2048, hop 512, centred with reflect padding, unnormalised,
as `torch.stft(..., center=True)`), then per frame `sqrt(mean over bins (log10 max(P_ref, 1e-8)
- log10 max(P_est, 1e-8))^2)` and the mean over frames. The result is in log10 units of power
(a figure quoted "in dB" as 20 log10 |X| is 10 x this).

Deviations, all documented: frames whose reference is digitally silent are skipped (their LSD
only measures the estimate's noise); inputs of different lengths are trimmed to the shorter;
multichannel inputs are scored per channel and averaged.

References: NU-Wave2 (Han & Lee, 2022), AP-BWE (Lu et al., 2024) evaluation code.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

POWER_FLOOR = 1e-8  # clamp before log10, as AP-BWE
SILENT_ENERGY = 1e-20  # a reference frame with windowed energy at or below this is skipped
# where encoder holes in a reference are counted (the eval caps the top at the reference's own
# band limit): the band every input condition regenerates
HOLES_BAND_HZ = (10000.0, 20000.0)
HOLE_FREE_MAX = 0.01  # a reference with at most this share of holes there counts as clean


def lsd(ref: Any, est: Any, sample_rate: int = 44100, n_fft: int = 2048, hop: int = 512,
        low_hz: float | None = None, high_hz: float | None = None) -> float:
    """LSD between reference and estimate, numpy or torch, `(S,)` or `(Ch, S)`.

    Only STFT bins with `low_hz <= f < high_hz` count (None: no bound). Returns NaN when every
    reference frame is silent.
    """
    ref_2d, est_2d = _as_pair(ref, est)
    freqs_hz = np.arange(n_fft // 2 + 1) * sample_rate / n_fft
    keep = np.ones(freqs_hz.shape, dtype=bool)
    if low_hz is not None:
        keep &= freqs_hz >= low_hz
    if high_hz is not None:
        keep &= freqs_hz < high_hz
    if not keep.any():
        raise ValueError(f"no STFT bins in [{low_hz}, {high_hz}) Hz at {sample_rate} Hz")
    per_channel = []
    for ref_ch, est_ch in zip(ref_2d, est_2d, strict=True):
        value = _lsd_channel(ref_ch, est_ch, n_fft, hop, keep)
        if not math.isnan(value):
            per_channel.append(value)
    if not per_channel:
        log.debug("lsd: the reference is silent in every frame")
        return float("nan")
    return float(np.mean(per_channel))


def lsd_bands(ref: Any, est: Any, cutoff_hz: float, sample_rate: int = 44100) -> dict[str, float]:
    """LSD over all bins ("lsd"), above the cutoff ("lsd_high") and below it ("lsd_low")."""
    if not 0 < cutoff_hz < sample_rate / 2:
        raise ValueError(f"cutoff_hz: must be in (0, {sample_rate / 2}), got {cutoff_hz}")
    return {
        "lsd": lsd(ref, est, sample_rate),
        "lsd_high": lsd(ref, est, sample_rate, low_hz=cutoff_hz),
        "lsd_low": lsd(ref, est, sample_rate, high_hz=cutoff_hz),
    }


def hole_share(ref: Any, low_hz: float, high_hz: float, sample_rate: int = 44100,
               n_fft: int = 2048, hop: int = 512, active_db: float = 40.0) -> float:
    """Share of STFT bins in [low_hz, high_hz) below the metric's clamp (`POWER_FLOOR`) in the
    reference's active frames (within `active_db` of its loudest frame; channels mixed down).

    A recording's noise floor keeps every bin far above the clamp (16-bit rounding alone sits
    ~35 dB over it), so holes there are bins a lossy encoder zeroed (Vorbis drops quiet bands
    frame by frame). The LSD scores every such hole the model fills: this says how many there
    are. NaN when the band holds no bin or the reference is silent.
    """
    x = _as_2d(ref, "ref").mean(axis=0)
    freqs_hz = np.arange(n_fft // 2 + 1) * sample_rate / n_fft
    band = (freqs_hz >= low_hz) & (freqs_hz < high_hz)
    if not band.any():
        return float("nan")
    frames = _frames(x, n_fft, hop)  # (T, n_fft) strided view, no copy
    window = np.hanning(n_fft + 1)[:-1]
    energy, holes = np.zeros(frames.shape[0]), np.zeros(frames.shape[0])  # per frame
    for i in range(0, frames.shape[0], 256):  # in chunks: memory stays flat for long files
        power = np.abs(np.fft.rfft(frames[i:i + 256] * window, axis=1)) ** 2  # (t, F)
        energy[i:i + 256] = power.sum(axis=1)
        holes[i:i + 256] = (power[:, band] < POWER_FLOOR).sum(axis=1)
    if not energy.max() > 0:
        return float("nan")
    active = energy >= energy.max() * 10 ** (-active_db / 10)
    return float(holes[active].sum() / (active.sum() * band.sum()))


def _lsd_channel(ref: np.ndarray, est: np.ndarray, n_fft: int, hop: int, keep: np.ndarray,
                 frames_per_chunk: int = 256) -> float:
    """Mean over non-silent reference frames of the per-frame LSD, in chunks of frames."""
    ref_frames = _frames(ref, n_fft, hop)  # (T, n_fft) strided view, no copy
    est_frames = _frames(est, n_fft, hop)
    window = np.hanning(n_fft + 1)[:-1]  # periodic, as torch.hann_window
    per_frame = []
    for i in range(0, ref_frames.shape[0], frames_per_chunk):
        ref_chunk = ref_frames[i:i + frames_per_chunk] * window  # (t, n_fft)
        est_chunk = est_frames[i:i + frames_per_chunk] * window
        voiced = np.sum(ref_chunk**2, axis=1) > SILENT_ENERGY  # (t,)
        if not voiced.any():
            continue
        ref_pow = np.abs(np.fft.rfft(ref_chunk[voiced], axis=1)[:, keep]) ** 2  # (t', F')
        est_pow = np.abs(np.fft.rfft(est_chunk[voiced], axis=1)[:, keep]) ** 2
        diff = (np.log10(np.maximum(ref_pow, POWER_FLOOR))
                - np.log10(np.maximum(est_pow, POWER_FLOOR)))
        per_frame.append(np.sqrt(np.mean(diff**2, axis=1)))
    if not per_frame:
        return float("nan")
    return float(np.mean(np.concatenate(per_frame)))


def _frames(x: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """Centred, reflect-padded frames `(T, n_fft)`, T = 1 + S // hop, as a strided view."""
    pad = n_fft // 2
    if x.shape[0] <= pad:
        raise ValueError(f"signal of {x.shape[0]} samples is too short for n_fft {n_fft} "
                         f"(reflect padding needs more than {pad})")
    padded = np.pad(x, pad, mode="reflect")
    return np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop]


def _as_pair(ref: Any, est: Any) -> tuple[np.ndarray, np.ndarray]:
    """Both inputs as float64 `(Ch, S)`, trimmed to the shorter length."""
    ref_2d, est_2d = _as_2d(ref, "ref"), _as_2d(est, "est")
    if ref_2d.shape[0] != est_2d.shape[0]:
        raise ValueError(f"channel mismatch: ref {ref_2d.shape}, est {est_2d.shape}")
    n = min(ref_2d.shape[1], est_2d.shape[1])
    if ref_2d.shape[1] != est_2d.shape[1]:
        log.debug("lsd: trimming ref %d / est %d samples to %d", ref_2d.shape[1],
                  est_2d.shape[1], n)
    return ref_2d[:, :n], est_2d[:, :n]


def _as_2d(x: Any, name: str) -> np.ndarray:
    if hasattr(x, "detach"):  # torch.Tensor, without importing torch here
        x = x.detach().cpu().double().numpy()
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2:
        raise ValueError(f"{name}: expected (S,) or (Ch, S), got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name}: contains NaN/Inf")
    return arr
