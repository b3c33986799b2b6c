"""Degradation filters run on the training device, a whole batch at once.

The DataLoader workers' CPU time bounds training when every crop is filtered there (measured:
7-11 ms of a 12 ms crop, mostly 264,600-point FFTs and IIR passes). `Degrader(deferred=True)`
leaves the linear, time-invariant families to this module instead: the IIR designs
(zero-phase: |H|^2, causal: H, from their digital zeros, poles and gain) and the brick-wall
ramp become gains on the rFFT bins of the crop zero-padded to twice its length, so the product
is a linear (not circular) convolution: the causal pass equals `sosfilt` from rest, the
zero-phase one a forward-backward pass over the zero-extended crop (`sosfiltfilt` pads with
an odd extension instead: only the first and last few milliseconds differ). The MP3-like
family runs here too, as a batched STFT with the holes the worker drew. Only resampling
(soxr, the pipeline's own path) stays on the CPU (mode 0).
"""

from __future__ import annotations

import logging
import math
from typing import Any

import torch

from engine.config import SAMPLE_RATE
from engine.training.degrade import (
    FILTER_ROOTS,
    FILTER_WIDTH,
    MODE_CAUSAL,
    MODE_DONE,
    MODE_MP3,
    MODE_RAMP,
    MODE_ZERO_PHASE,
    MP3_HOLE_BAND,
    MP3_HOP,
    MP3_MAX_BANDS,
    MP3_SFB_HZ,
)

log = logging.getLogger(__name__)

FFT_MODES = (MODE_ZERO_PHASE, MODE_CAUSAL, MODE_RAMP)  # filtered by their gains on the rFFT


def filter_gains(filters: torch.Tensor, n_fft: int, compiled: bool | None = None
                 ) -> torch.Tensor:
    """(B, n_fft // 2 + 1) complex64 gains of the rows of `filters` (B, FILTER_WIDTH).

    Mode-0 and MP3-like rows get gain 1 here (`apply_filters` treats the latter apart). The IIR
    response is evaluated in float64: poles near the unit circle at low cutoffs would lose the
    stop band in float32. `compiled` (default: on CUDA) runs `_gain_parts` as one Inductor
    kernel, falling back to eager for good where torch.compile fails (e.g. no Triton).
    """
    if filters.ndim != 2 or filters.shape[1] != FILTER_WIDTH:
        raise ValueError(f"filters: expected (B, {FILTER_WIDTH}), got {tuple(filters.shape)}")
    rows = filters.to(torch.float64)
    if compiled is None:
        compiled = rows.is_cuda
    re, im = (_compiled_gain_parts(rows, n_fft) if compiled
              else _gain_parts(rows, n_fft, fused=False))
    return torch.complex(re, im)


def _gain_parts(rows: torch.Tensor, n_fft: int, fused: bool
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Real and imaginary parts (B, F) float32 of `filter_gains`, from float64 rows (B, W).

    `fused`: real arithmetic for Inductor to fuse into one pass over (B, F): the numerator's and
    the denominator's products of 16 roots each, then one division (|D| >= prod(1 - |p_i|)
    stays far above float64's range floor), with e^{jw} computed once a bin. On an H100 (32
    crops of 6 s) a division a root cost 5.3 ms in that kernel. Eager, complex128 (~4
    full-size passes a root) is the faster way: on this 2-core CPU, 32 crops of 6 s took 3.9 s
    eager complex, 9.6 s eager real, 0.18 s compiled real.
    """
    dev, n_bins = rows.device, n_fft // 2 + 1
    mode, cutoff, width, k = (rows[:, i : i + 1] for i in range(4))  # (B, 1) each
    n = FILTER_ROOTS
    zero_re, zero_im = rows[:, 4 : 4 + n], rows[:, 4 + n : 4 + 2 * n]  # (B, R)
    pole_re, pole_im = rows[:, 4 + 2 * n : 4 + 3 * n], rows[:, 4 + 3 * n :]  # (B, R)
    omega = torch.arange(n_bins, device=dev, dtype=torch.float64) * (2 * math.pi / n_fft)
    if fused:
        cos, sin = torch.cos(omega)[None], torch.sin(omega)[None]  # (1, F): z = e^{jw}
        num_re, num_im = k.expand(-1, n_bins), torch.zeros_like(k).expand(-1, n_bins)  # (B, F)
        den_re, den_im = torch.ones_like(num_re), torch.zeros_like(num_im)
        for i in range(n):  # N *= z - z_i, D *= z - p_i
            a_re, a_im = cos - zero_re[:, i : i + 1], sin - zero_im[:, i : i + 1]
            b_re, b_im = cos - pole_re[:, i : i + 1], sin - pole_im[:, i : i + 1]
            num_re, num_im = num_re * a_re - num_im * a_im, num_re * a_im + num_im * a_re
            den_re, den_im = den_re * b_re - den_im * b_im, den_re * b_im + den_im * b_re
        inv = 1.0 / (den_re * den_re + den_im * den_im)  # H = N conj(D) / |D|^2
        re = (num_re * den_re + num_im * den_im) * inv
        im = (num_im * den_re - num_re * den_im) * inv
    else:
        zeros = torch.complex(zero_re, zero_im)  # (B, R)
        poles = torch.complex(pole_re, pole_im)
        z = torch.polar(torch.ones_like(omega), omega)  # (F,) e^{jw}
        h = k.to(torch.complex128).expand(-1, n_bins)  # (B, F): k prod (z - z_i) / (z - p_i)
        for i in range(n):
            h = h * (z - zeros[:, i : i + 1]) / (z - poles[:, i : i + 1])
        re, im = h.real, h.imag
    zero = torch.zeros_like(im)
    zero_phase = mode == MODE_ZERO_PHASE  # |H|^2
    re, im = torch.where(zero_phase, re * re + im * im, re), torch.where(zero_phase, zero, im)
    ramp = _ramp(omega * (SAMPLE_RATE / (2 * math.pi)), cutoff, width)  # (B, F)
    re, im = torch.where(mode == MODE_RAMP, ramp, re), torch.where(mode == MODE_RAMP, zero, im)
    unity = (mode == MODE_DONE) | (mode == MODE_MP3)
    re, im = torch.where(unity, torch.ones_like(re), re), torch.where(unity, zero, im)
    known = unity | zero_phase | (mode == MODE_CAUSAL) | (mode == MODE_RAMP)
    re = torch.where(known, re, torch.full_like(re, float("nan")))  # a bad row shows
    return re.float(), im.float()


_compiled: dict[str, Any] = {}  # "fn": the compiled _gain_parts; None once compiling failed


def _compiled_gain_parts(rows: torch.Tensor, n_fft: int) -> tuple[torch.Tensor, torch.Tensor]:
    if "fn" not in _compiled:
        # the row count varies with each batch's mix: the second count met compiles a kernel
        # for any count (torch.compile's automatic dynamic shapes), then no more recompiles
        _compiled["fn"] = torch.compile(_gain_parts)
    fn = _compiled["fn"]
    if fn is not None:
        try:
            return fn(rows, n_fft, fused=True)
        except Exception as e:  # any compiler failure: the eager maths gives the same gains
            log.warning("degradation filters run eagerly: torch.compile failed (%s)",
                        str(e).splitlines()[0] if str(e) else type(e).__name__)
            _compiled["fn"] = None
    return _gain_parts(rows, n_fft, fused=False)


def _ramp(freqs: torch.Tensor, cutoff: torch.Tensor, width: torch.Tensor) -> torch.Tensor:
    """(B, F) raised-cosine low-pass (0.5 at the cutoff, `width` wide; 0 Hz: a step), float64."""
    pos = ((freqs - (cutoff - width / 2)) / width.clamp_min(1e-9)).clamp(0.0, 1.0)
    return torch.where(width > 0, 0.5 + 0.5 * torch.cos(math.pi * pos),
                       (freqs < cutoff).to(torch.float64))


def mp3_like(hr: torch.Tensor, filters: torch.Tensor, holes: torch.Tensor) -> torch.Tensor:
    """(B, S): `degrade._mp3_like` batched — sine-window STFT at hop 576, the ramp at each row's
    cutoff, and the row's dropped scale-factor bands (`holes` (B, K, MP3_MAX_BANDS) bool)."""
    n, hop = hr.shape[-1], MP3_HOP
    n_fft = 2 * hop
    idx = torch.arange(n_fft, device=hr.device, dtype=torch.float64)
    window = torch.sin(math.pi * (idx + 0.5) / n_fft).float()  # (N,), w^2 is COLA
    padded = torch.nn.functional.pad(hr, (hop, hop + (-n) % hop))  # (B, hop * (K + 1))
    spec = torch.fft.rfft(padded.unfold(-1, n_fft, hop) * window)  # (B, K, F)
    freqs = torch.fft.rfftfreq(n_fft, 1 / SAMPLE_RATE, device=hr.device, dtype=torch.float64)
    rows = filters.to(torch.float64)
    # (B, 1); other rows' cutoffs may be 0 (resampled on the CPU): keep their maths finite
    cutoff, width = rows[:, 1:2].clamp_min(1.0), rows[:, 2:3]
    lo = cutoff * (1 - MP3_HOLE_BAND)
    n_bands = torch.round(cutoff * MP3_HOLE_BAND / MP3_SFB_HZ).clamp(1, MP3_MAX_BANDS)
    band = torch.floor((freqs - lo) / (cutoff - lo) * n_bands)  # (B, F)
    inside = (band >= 0) & (band < n_bands)
    k = spec.shape[1]
    picked = band.clamp(0, MP3_MAX_BANDS - 1).long()[:, None, :].expand(-1, k, -1)
    dropped = holes.to(hr.device).gather(2, picked) & inside[:, None, :]  # (B, K, F)
    gain = _ramp(freqs, cutoff, width)[:, None, :] * ~dropped  # (B, K, F)
    out = torch.fft.irfft(spec * gain.to(spec.real.dtype), n=n_fft) * window  # (B, K, N)
    blocks = torch.zeros(hr.shape[0], k + 1, hop, device=hr.device, dtype=out.dtype)
    blocks[:, :-1] += out[..., :hop]  # overlap-add at hop = N / 2
    blocks[:, 1:] += out[..., hop:]
    return blocks.reshape(hr.shape[0], -1)[:, hop : hop + n]


@torch.no_grad()
def with_cpu_rows(hr: torch.Tensor, lr_rows: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """The LR batch (B, 1, S) before `apply_filters`: `hr`, with the K rows the CPU already
    degraded (`rows` (K,), their audio `lr_rows` (K, 1, S)) put in place. No host sync."""
    if lr_rows.shape[0] != rows.shape[0] or lr_rows.shape[1:] != hr.shape[1:]:
        raise ValueError(f"lr_rows {tuple(lr_rows.shape)} for rows {tuple(rows.shape)} of a "
                         f"batch {tuple(hr.shape)}")
    return hr.index_copy(0, rows, lr_rows.to(hr.dtype))


def apply_filters(hr: torch.Tensor, lr: torch.Tensor, filters: torch.Tensor,
                  holes: torch.Tensor | None = None) -> torch.Tensor:
    """LR batch (B, 1, S): rows of `filters` with a mode filter `hr`, mode-0 rows keep `lr`.

    Each path runs on its own rows only: the IIR and brick-wall rows through one zero-padded
    FFT, the MP3-like rows (which need `holes` (B, K, MP3_MAX_BANDS)) through the STFT, the
    CPU-degraded rows not at all (the default mix: ~70 %, ~10 % and ~20 % of a batch). The
    modes are read on the host, so pass `filters` and `holes` as the DataLoader's batch holds
    them, in host memory: only the chosen rows then travel, and nothing waits for the device
    (rows already on a GPU cost one wait, to read their modes). An unknown mode, or MP3-like
    rows without holes, raise ValueError. Returns `lr` itself when no row is filtered here.
    """
    if hr.ndim != 3 or hr.shape[1] != 1 or lr.shape != hr.shape:
        raise ValueError(f"hr, lr: expected equal (B, 1, S), got {tuple(hr.shape)}, "
                         f"{tuple(lr.shape)}")
    if filters.ndim != 2 or filters.shape != (hr.shape[0], FILTER_WIDTH):
        raise ValueError(f"filters: expected ({hr.shape[0]}, {FILTER_WIDTH}), got "
                         f"{tuple(filters.shape)}")
    modes = filters[:, 0].cpu()  # (B,)
    fft = torch.isin(modes, torch.tensor(FFT_MODES, dtype=modes.dtype))  # (B,) bool
    mp3 = modes == MODE_MP3
    bad = ~(fft | mp3 | (modes == MODE_DONE))
    if bad.any():
        row = int(torch.nonzero(bad)[0, 0])
        known = (MODE_DONE, *FFT_MODES, MODE_MP3)
        raise ValueError(f"filters: row {row} has no filter mode {float(modes[row]):g} "
                         f"(known: {', '.join(map(str, known))})")
    n, out = hr.shape[-1], lr
    fft_rows = torch.nonzero(fft)[:, 0]  # (F_rows,)
    if len(fft_rows):
        idx = _to(fft_rows, hr.device)
        n_fft = 2 * n  # zero padding: linear convolution over the crop
        gains = filter_gains(_to(filters[fft_rows], hr.device), n_fft)  # (F_rows, n_fft/2+1)
        spec = torch.fft.rfft(hr.index_select(0, idx)[:, 0].float(), n=n_fft)
        filtered = torch.fft.irfft(spec * gains, n=n_fft)[:, :n]  # (F_rows, S)
        out = out.index_copy(0, idx, filtered[:, None].to(lr.dtype))
    mp3_rows = torch.nonzero(mp3)[:, 0]  # (M,)
    if len(mp3_rows):
        if holes is None:
            raise ValueError(f"holes: {len(mp3_rows)} MP3-like rows need their dropped bands")
        idx = _to(mp3_rows, hr.device)
        coded = mp3_like(hr.index_select(0, idx)[:, 0].float(), _to(filters[mp3_rows], hr.device),
                         _to(holes[mp3_rows], hr.device))  # (M, S)
        out = out.index_copy(0, idx, coded[:, None].to(lr.dtype))
    return out


def _to(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """`x` on `device`, copied without waiting for the device's queue (from pinned memory: a
    pageable source may make the host wait)."""
    if device.type == "cuda" and x.device.type == "cpu" and not x.is_pinned():
        x = x.pin_memory()
    return x.to(device, non_blocking=True)
