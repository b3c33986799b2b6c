"""The STFT both codecs share, and the crossfade joining a kept band to a generated one.

Dimensions: B batch, S waveform samples, F frequency bins (1024), T STFT frames.

STFT: 2046-point periodic Hann window, hop 512, `center=True` with zero ("constant") padding, so
`F = 2046 // 2 + 1 = 1024` bins and `T = 1 + S // 512` frames. Zero padding (not reflect) lets
inputs shorter than the window through; the inverse is exact either way because the Hann window
at hop n_fft/4 satisfies the NOLA condition over the whole padded signal.

Crossfade: `keep_weights` is 1 up to the cutoff, 0 from `cutoff + transition`, and a raised
cosine between (above the cutoff, so the input's band is untouched; `transition_hz = 0` is a hard
switch at the cutoff). Bins with weight 1 are copied from the kept signal's STFT unchanged, so
after the inverse STFT everything more than a window's main lobe (~2 bins, 43 Hz) below the fade
is the kept signal to float precision, except in the first and last two frames: the crossfade
spreads each band slightly past the ends of the signal and cutting back to S samples leaks there
(callers crossfade overlapping chunks, which hides those edges).
"""

from __future__ import annotations

import logging
import math

import torch
from torch import Tensor

from engine.config import HOP_SAMPLES, SAMPLE_RATE

log = logging.getLogger(__name__)

N_FFT = 2046  # even window length giving exactly 1024 one-sided bins
NUM_BINS = N_FFT // 2 + 1  # F = 1024
BIN_HZ = SAMPLE_RATE / N_FFT  # 21.55 Hz between bins


def _window(like: Tensor) -> Tensor:
    dtype = like.real.dtype if like.is_complex() else like.dtype
    return torch.hann_window(N_FFT, periodic=True, dtype=dtype, device=like.device)


def analyze(wav: Tensor) -> Tensor:
    """Complex STFT of a (B, 1, S) waveform -> (B, F, T) with T = 1 + S // 512."""
    if wav.ndim != 3 or wav.shape[1] != 1:
        raise ValueError(f"expected a (B, 1, S) waveform, got shape {tuple(wav.shape)}")
    if wav.shape[-1] < 1:
        raise ValueError("waveform has no samples")
    return torch.stft(wav[:, 0], N_FFT, HOP_SAMPLES, window=_window(wav), center=True,
                      pad_mode="constant", return_complex=True)  # (B, F, T)


def synthesize(spec: Tensor, length: int) -> Tensor:
    """Inverse of `analyze`: complex (B, F, T) -> (B, 1, length) waveform."""
    if spec.ndim != 3 or spec.shape[1] != NUM_BINS or not spec.is_complex():
        raise ValueError(f"expected a complex (B, {NUM_BINS}, T) spectrum, got "
                         f"{spec.dtype} {tuple(spec.shape)}")
    if length < 1:
        raise ValueError(f"length must be >= 1, got {length}")
    wav = torch.istft(spec, N_FFT, HOP_SAMPLES, window=_window(spec), center=True,
                      length=length)  # (B, S)
    return wav[:, None]  # (B, 1, S)


def bin_freqs_hz(device: torch.device | None = None) -> Tensor:
    """Centre frequency of each of the F bins in Hz, (F,)."""
    return torch.arange(NUM_BINS, dtype=torch.float32, device=device) * BIN_HZ


def keep_weights(cutoff_hz: float, transition_hz: float,
                 device: torch.device | None = None) -> Tensor:
    """Per-bin weight of the kept band, (F,): 1 up to the cutoff, 0 from cutoff + transition,
    raised cosine between. The fade lies above the cutoff so the input's band stays untouched."""
    if not 0 < cutoff_hz < SAMPLE_RATE / 2:
        raise ValueError(f"cutoff_hz must be in (0, {SAMPLE_RATE / 2:g}), got {cutoff_hz}")
    if transition_hz < 0:
        raise ValueError(f"transition_hz must be >= 0, got {transition_hz}")
    freqs = bin_freqs_hz(device)  # (F,)
    if transition_hz == 0:
        return (freqs < cutoff_hz).float()
    lo = cutoff_hz
    pos = ((freqs - lo) / transition_hz).clamp(0.0, 1.0)  # 0 at lo, 1 at hi
    return 0.5 * (1.0 + torch.cos(math.pi * pos))


def first_generated_bin(weights: Tensor) -> int:
    """Index of the lowest bin that is not fully kept (weights are non-increasing)."""
    below = torch.nonzero(weights < 1.0)
    return int(below[0, 0]) if below.numel() else NUM_BINS


LOUDER_MIN_RELATIVE = 1e-5  # louder_kept: -100 dB re the loudest input bin


def louder_kept(keep_spec: Tensor, gen_mag: Tensor, weights: Tensor) -> Tensor:
    """Where the input is louder than the generated band above the fade, (B, F, T) bool.

    A lossy encoder can leave content above the long-term band edge in some frames (Vorbis or
    MP3 keeping a high band while it is loud): that content is the recording's own and beats a
    generated guess. Where the input was really removed, it is far quieter than anything
    generated, so a properly band-limited input gets the generated band everywhere. Bins more
    than 100 dB under the chunk's loudest input bin never count (a resampler's stop band or
    rounding noise, where the generated band may be near silence too); real high-band content
    of speech sits 60-90 dB under its loudest low bin."""
    level = keep_spec.abs()  # (B, F, T)
    floor = level.amax(dim=(-2, -1), keepdim=True) * LOUDER_MIN_RELATIVE
    return (weights[:, None] == 0) & (level > gen_mag) & (level > floor)


HOLE_ACTIVE_DB = 60.0  # encoder_holes: frames within this of the chunk's loudest input bin
HOLE_LOWEST_SHARE = 0.25  # encoder_holes: the kept band's lowest quarter never counts


def encoder_holes(keep_spec: Tensor, gen_mag: Tensor, weights: Tensor, depth_db: float
                  ) -> Tensor:
    """Where the kept band is a lossy encoder's hole, (B, F, T) bool.

    An MP3 or Vorbis encoder short of bits zeroes whole scale-factor bands of the band it keeps,
    frame by frame; the network was trained on such holes against clean targets, so its
    magnitude there is its estimate of what was removed. A hole: a fully kept bin (weight 1)
    above the kept band's lowest quarter, whose input lies more than `depth_db` under the
    network's magnitude, in a frame within 60 dB of the chunk's loudest input bin. A clean
    input's own spectral valleys can pass this test too (measured in `docs/training_log.md`,
    eighteenth session), which is why filling is an option, off by default."""
    level = keep_spec.abs()  # (B, F, T)
    loudest = level.amax(dim=(-2, -1), keepdim=True)  # (B, 1, 1)
    active = level.amax(dim=-2, keepdim=True) > loudest * 10 ** (-HOLE_ACTIVE_DB / 20)  # (B,1,T)
    kept = weights == 1  # (F,): a prefix of the bins (weights are non-increasing)
    kept[: int(kept.sum() * HOLE_LOWEST_SHARE)] = False
    return kept[:, None] & active & (level * 10 ** (depth_db / 20) < gen_mag)


def merge_bands(generated: Tensor, keep: Tensor, cutoff_hz: float,
                transition_hz: float, keep_louder: bool = False,
                fill_holes_db: float | None = None) -> Tensor:
    """Join two (B, 1, S) waveforms: `keep` below the cutoff, `generated` above -> (B, 1, S);
    with `keep_louder`, also `keep` above the cutoff wherever it is louder (`louder_kept`);
    with `fill_holes_db`, `generated` in the kept band's encoder holes (`encoder_holes`)."""
    if generated.shape != keep.shape:
        raise ValueError(f"generated {tuple(generated.shape)} and keep {tuple(keep.shape)} "
                         "must have the same shape")
    weights = keep_weights(cutoff_hz, transition_hz, keep.device)
    w = weights[:, None]  # (F, 1)
    spec_keep = analyze(keep)  # (B, F, T)
    spec_gen = analyze(generated.to(keep.dtype))  # (B, F, T)
    merged = w * spec_keep + (1.0 - w) * spec_gen  # (B, F, T)
    if keep_louder:
        merged = torch.where(louder_kept(spec_keep, spec_gen.abs(), weights), spec_keep, merged)
    if fill_holes_db is not None:
        holes = encoder_holes(spec_keep, spec_gen.abs(), weights, fill_holes_db)
        merged = torch.where(holes, spec_gen, merged)
    return synthesize(merged, keep.shape[-1])  # (B, 1, S)
