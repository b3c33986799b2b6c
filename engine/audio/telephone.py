"""A telephone channel: the 300-3400 Hz voice band and a speech codec at 8 kHz.

Resampling a reference down to 8 kHz gives a clean 0-4 kHz band; a real phone call also loses
what lies below ~300 Hz and above ~3.4 kHz (the voice band of ITU-T G.712) and passes through a
codec that adds its own noise to what is kept: G.711 mu-law (8-bit companded samples, the
landline and most VoIP trunks) or GSM 06.10 full rate (13 kbit/s, the first mobile networks and
Asterisk's `.gsm` prompts). Both codecs are libsndfile's own (through soundfile), so the input
is what a `.wav` of that subtype holds. Used by `jatsr eval`'s phone conditions and the training
degradation family "phone".

Dimensions: Ch channels, S samples at 8 kHz.
"""

from __future__ import annotations

import io

import numpy as np
import soundfile as sf
from scipy.signal import butter, sosfiltfilt

PHONE_RATE = 8000
VOICE_BAND_HZ = (300.0, 3400.0)  # G.712's pass band
VOICE_BAND_ORDER = 6  # Butterworth band-pass (each edge 6th order after filtfilt's two passes)
CODECS = {"ulaw": "ULAW", "gsm": "GSM610"}  # name -> libsndfile WAV subtype


def voice_band(x: np.ndarray, sample_rate: int = PHONE_RATE) -> np.ndarray:
    """Zero-phase 300-3400 Hz band-pass of float `(Ch, S)` -> float32 `(Ch, S)`."""
    sos = butter(VOICE_BAND_ORDER // 2, VOICE_BAND_HZ, btype="bandpass", fs=sample_rate,
                 output="sos")
    return sosfiltfilt(sos, x.astype(np.float64), axis=-1).astype(np.float32)


def codec_round_trip(x: np.ndarray, codec: str) -> np.ndarray:
    """Float `(Ch, S)` at 8 kHz encoded with `codec` ("ulaw" or "gsm") and decoded again.

    Each channel is coded on its own (GSM 06.10 is mono); samples beyond full scale clip, as
    they would in the codec. Returns float32 `(Ch, S)`.
    """
    if codec not in CODECS:
        raise ValueError(f"codec must be one of {tuple(CODECS)}, got {codec!r}")
    out = np.empty(x.shape, dtype=np.float32)
    for ch, channel in enumerate(np.clip(x, -1.0, 1.0)):
        buf = io.BytesIO()
        sf.write(buf, channel, PHONE_RATE, format="WAV", subtype=CODECS[codec])
        buf.seek(0)
        decoded, _ = sf.read(buf, dtype="float32")  # (S',) GSM pads to whole blocks
        n = min(decoded.shape[0], x.shape[1])
        out[ch, :n], out[ch, n:] = decoded[:n], 0.0
    return out


def telephone(x: np.ndarray, codec: str) -> np.ndarray:
    """A phone call's input from float `(Ch, S)` at 8 kHz: voice band, then the codec."""
    return codec_round_trip(voice_band(x), codec)
