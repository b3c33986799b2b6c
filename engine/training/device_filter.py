"""Degradation filters run on the training device, a whole batch at once.

The DataLoader workers' CPU time bounds training when every crop is filtered there (measured:
7-11 ms of a 12 ms crop, mostly 264,600-point FFTs and IIR passes). `Degrader(deferred=True)`
leaves the linear, time-invariant families to this module instead: the IIR designs
(zero-phase: |H|^2, causal: H, from their digital zeros, poles and gain) and the brick-wall
ramp become gains on the rFFT bins of the crop zero-padded to twice its length, so the product
is a linear (not circular) convolution:
the causal pass equals `sosfilt` from rest, the zero-phase one a forward-backward pass over the
zero-extended crop (`sosfiltfilt` pads with an odd extension instead: only the first and last
few milliseconds differ). Resampling and the MP3-like family stay on the CPU (mode 0 rows).
"""

from __future__ import annotations

import math

import torch

from engine.config import SAMPLE_RATE
from engine.training.degrade import (
    FILTER_ROOTS,
    FILTER_WIDTH,
    MODE_CAUSAL,
    MODE_DONE,
    MODE_RAMP,
    MODE_ZERO_PHASE,
)


def filter_gains(filters: torch.Tensor, n_fft: int) -> torch.Tensor:
    """(B, n_fft // 2 + 1) complex64 gains of the rows of `filters` (B, FILTER_WIDTH).

    Mode-0 rows (already degraded) get gain 1. The IIR response is evaluated in float64: poles
    near the unit circle at low cutoffs would lose the stop band in float32.
    """
    if filters.ndim != 2 or filters.shape[1] != FILTER_WIDTH:
        raise ValueError(f"filters: expected (B, {FILTER_WIDTH}), got {tuple(filters.shape)}")
    dev, n_bins = filters.device, n_fft // 2 + 1
    rows = filters.to(torch.float64)
    mode, cutoff, width, k = (rows[:, i : i + 1] for i in range(4))  # (B, 1) each
    n = FILTER_ROOTS
    zeros = torch.complex(rows[:, 4 : 4 + n], rows[:, 4 + n : 4 + 2 * n])  # (B, R)
    poles = torch.complex(rows[:, 4 + 2 * n : 4 + 3 * n], rows[:, 4 + 3 * n :])  # (B, R)
    omega = torch.arange(n_bins, device=dev, dtype=torch.float64) * (2 * math.pi / n_fft)
    z = torch.polar(torch.ones_like(omega), omega)  # (F,) e^{jw}
    h = k.to(torch.complex128).expand(-1, n_bins)  # (B, F): k prod (z - z_i) / (z - p_i)
    for i in range(n):
        h = h * (z - zeros[:, i : i + 1]) / (z - poles[:, i : i + 1])
    freqs = omega * (SAMPLE_RATE / (2 * math.pi))  # (F,) Hz
    pos = ((freqs - (cutoff - width / 2)) / width.clamp_min(1e-9)).clamp(0.0, 1.0)
    ramp = torch.where(width > 0, 0.5 + 0.5 * torch.cos(math.pi * pos),
                       (freqs < cutoff).to(torch.float64))  # (B, F) raised cosine or a step
    gain = torch.where(mode == MODE_ZERO_PHASE, h.abs().square().to(torch.complex128), h)
    gain = torch.where(mode == MODE_RAMP, ramp.to(torch.complex128), gain)
    gain = torch.where(mode == MODE_DONE, torch.ones_like(gain), gain)
    known = (mode == MODE_DONE) | (mode == MODE_ZERO_PHASE) | (mode == MODE_CAUSAL) | (
        mode == MODE_RAMP)
    gain = torch.where(known, gain, torch.full_like(gain, float("nan")))  # a bad row shows
    return gain.to(torch.complex64)


@torch.no_grad()
def apply_filters(hr: torch.Tensor, lr: torch.Tensor, filters: torch.Tensor) -> torch.Tensor:
    """LR batch (B, 1, S): rows of `filters` with a mode filter `hr`, mode-0 rows keep `lr`.

    Runs wherever the tensors are, without a host sync (the rows are not inspected on the host).
    """
    if hr.ndim != 3 or hr.shape[1] != 1 or lr.shape != hr.shape:
        raise ValueError(f"hr, lr: expected equal (B, 1, S), got {tuple(hr.shape)}, "
                         f"{tuple(lr.shape)}")
    n = hr.shape[-1]
    n_fft = 2 * n  # zero padding: linear convolution over the crop
    gains = filter_gains(filters.to(hr.device), n_fft)  # (B, F)
    spec = torch.fft.rfft(hr[:, 0].float(), n=n_fft)  # (B, F)
    filtered = torch.fft.irfft(spec * gains, n=n_fft)[:, :n]  # (B, S)
    done = (filters[:, 0] == MODE_DONE).to(hr.device)[:, None, None]  # (B, 1, 1)
    return torch.where(done, lr, filtered[:, None].to(lr.dtype))
