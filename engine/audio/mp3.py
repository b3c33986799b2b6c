"""A real MP3 round trip: constant-bitrate MPEG-1 Layer III at 44.1 kHz, encoded and decoded.

The eval's "lp16k" condition imitates an MP3 encoder's low-pass alone; a real encode also
quantises what it keeps, zeroes scale-factor bands it cannot afford (holes below the low-pass)
and smears transients. libsndfile encodes with LAME and decodes with mpg123 (through
soundfile), gapless: the decoded file has the input's length and no delay. LAME picks its
low-pass from the bitrate per channel, so every input is coded as two-channel (joint stereo)
files: a stereo input as it is, any other channel by itself as two identical channels, read
back as their mean. The band then ends where `detect_cutoff` finds it near 16.5 kHz at
128 kbit/s, 15.2 kHz at 96 and 11.0 kHz at 64 (white noise and six references of the
validation split): the MP3s low-passed at 11-16 kHz that `jatsr upsample` is for.

Dimensions: Ch channels, S samples at 44.1 kHz.
"""

from __future__ import annotations

import io

import numpy as np
import soundfile as sf

MP3_RATE = 44100
MAX_KBPS, MIN_KBPS = 320, 32  # libsndfile's constant bitrates at compression level 0 and 1


def compression_level(kbps: int) -> float:
    """libsndfile's compression level for a constant bitrate: 320 kbit/s at 0 to 32 at 1."""
    if not MIN_KBPS <= kbps <= MAX_KBPS:
        raise ValueError(f"bitrate must be {MIN_KBPS}-{MAX_KBPS} kbit/s, got {kbps}")
    return (MAX_KBPS - kbps) / (MAX_KBPS - MIN_KBPS)


def mp3_round_trip(x: np.ndarray, kbps: int) -> np.ndarray:
    """Float `(Ch, S)` at 44.1 kHz through a `kbps` constant-bitrate MP3 and back.

    A stereo input is coded as one joint-stereo file; any other channel count one channel at a
    time, each as an identical pair. Samples beyond full scale clip, as the encoder's PCM input
    would. Returns float32 `(Ch, S)`.
    """
    if x.ndim != 2:
        raise ValueError(f"expected (Ch, S) audio, got shape {x.shape}")
    if x.shape[0] == 2:
        return _code_pair(x, kbps)
    return np.concatenate([_code_pair(np.repeat(ch[None], 2, axis=0), kbps).mean(0, keepdims=True)
                           for ch in x]) if x.shape[0] else x.astype(np.float32)


def _code_pair(pair: np.ndarray, kbps: int) -> np.ndarray:
    """`(2, S)` through the encoder and decoder -> float32 `(2, S)` (gapless: same length)."""
    buf = io.BytesIO()
    sf.write(buf, np.clip(pair, -1.0, 1.0).T.astype(np.float32), MP3_RATE, format="MP3",
             subtype="MPEG_LAYER_III", compression_level=compression_level(kbps),
             bitrate_mode="CONSTANT")
    buf.seek(0)
    decoded, _ = sf.read(buf, dtype="float32", always_2d=True)  # (S', 2)
    out = np.zeros(pair.shape, dtype=np.float32)
    n = min(decoded.shape[0], pair.shape[1])
    out[:, :n] = decoded[:n].T
    return out
