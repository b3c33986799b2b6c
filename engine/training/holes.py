"""Encoder holes in training targets: STFT bins a lossy encoder zeroed, left out of the loss.

Vorbis (and other lossy encoders) drop quiet bands frame by frame. Decoded, those bins sit far
below any recording's noise floor: 16-bit rounding alone keeps a bin of this STFT near
|X| ~ 8e-4, and the LSD's clamp is |X| = 1e-4 (power 1e-8). Measured on the validation split's
references (10-20 kHz bins in active frames, levelled to -20 dBFS, 2046-point Hann STFT): the
Vorbis speech has 5-20 % of its bins below 1e-4, almost all of them at the codec's 1e-5 floor;
lossless drums and Opus music 0-1 %. A network trained on such targets learns to hedge between
"this frame's band was zeroed" and "there is sibilance here", which no input tells it: a duller
band than clean recordings have. With `DataConfig.hole_floor` > 0 those bins carry no loss.

Dimensions: B batch, F bins, T frames.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

ACTIVE_DB = 40.0  # frames within this of the crop's loudest are active (as metrics.hole_share)


def hole_weights(log_mag: Tensor, floor: float, active_db: float = ACTIVE_DB) -> Tensor:
    """Natural-log STFT magnitudes (B, F, T) -> loss weights (B, F, T): 0 at bins below `floor`
    in active frames (encoder holes), 1 elsewhere.

    Silent and near-silent frames keep every bin: there the target's emptiness is real, and the
    network must learn to leave the band empty when the input is.
    """
    if log_mag.ndim != 3:
        raise ValueError(f"expected (B, F, T) log-magnitudes, got shape {tuple(log_mag.shape)}")
    if not floor > 0:
        raise ValueError(f"floor must be positive, got {floor}")
    mag = log_mag.float()
    energy = (2 * mag).exp().sum(1)  # (B, T) frame power
    active = energy >= energy.amax(1, keepdim=True) * 10 ** (-active_db / 10)  # (B, T)
    hole = (mag < math.log(floor)) & active[:, None, :]  # (B, F, T)
    return (~hole).to(torch.float32)
