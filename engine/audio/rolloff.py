"""Undo our own upsampler's roll-off, so the kept band of a low-rate file stays as it came.

soxr (VHQ) is flat to ~0.93 x the input's Nyquist and falls to -6 dB at 0.95 and -22 dB at
0.97 of it when it upsamples. A file that was itself resampled down has a similar edge already;
upsampling it with soxr doubles the edge (in dB): measured on white noise at 8 kHz, down alone
-2.8 / -9.7 / -23 dB at 0.95 / 0.96 / 0.97 x the Nyquist, down and up -5.9 / -19 / -44 dB. The
part the upsampler adds is known, so it is taken out: before soxr a zero-phase FIR at the input
rate divides by the upsampler's own magnitude response (at most +20 dB near the Nyquist, where
soxr then takes it down again: no frequency ends up louder than it was in the file).

The response is measured once per rate pair (soxr on an impulse) and the FIR designed from it
by frequency sampling; `RolloffStream` applies it to a stream of blocks with its delay removed,
so a whole array and the same array in blocks agree (to float32 rounding). Filtering at the input
rate costs 0.8 / 3.0 / 6.2 ms for 6 s of 8 / 22.05 / 32 kHz audio on a 2-core Xeon (the same
FIR at 44.1 kHz after soxr took ~28 ms).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import numpy as np
import soxr
from scipy import fft as sp_fft
from scipy import signal

MAX_BOOST_DB = 20.0  # 20, 30 and 40 dB gave the same LSD below the cutoff (24 files)
# soxr's edge spans a fixed fraction of the Nyquist (0.93-0.98), so one FIR length resolves it
# at every rate: 1,481 taps = 5.4 Hz at 8 kHz (0.14 % of the Nyquist), +0.2 dB overshoot at most
TAPS = 1481
_PROBE = 4096  # impulse length at the input rate (soxr's response is far shorter)


@lru_cache(maxsize=16)
def upsampler_response(rate_in: int, rate_out: int, quality: str = "VHQ", n_fft: int = 1 << 16
                       ) -> tuple[np.ndarray, np.ndarray]:
    """(freqs Hz, |H|) of soxr's upsampling from rate_in to rate_out, 1.0 in the passband."""
    x = np.zeros(_PROBE, np.float32)
    x[_PROBE // 2] = 1.0
    y = soxr.resample(x, rate_in, rate_out, quality).astype(np.float64)  # the whole response
    n_fft = max(n_fft, 1 << int(np.ceil(np.log2(y.shape[0]))))  # never cut the response off
    mag = np.abs(np.fft.rfft(y, n_fft))  # (n_fft/2+1,)
    freqs = np.fft.rfftfreq(n_fft, 1.0 / rate_out)
    passband = (freqs > 0.1 * rate_in / 2) & (freqs < 0.5 * rate_in / 2)
    return freqs, mag / np.median(mag[passband])


@lru_cache(maxsize=256)  # 12 KB each; training draws many odd rates (2 x a random cutoff)
def compensation_taps(rate_in: int, rate_out: int, quality: str = "VHQ") -> np.ndarray | None:
    """Zero-phase FIR (odd length) at rate_in that pre-flattens soxr's upsampling edge to
    rate_out; None when not upsampling."""
    if rate_out <= rate_in:
        return None
    freqs, mag = upsampler_response(rate_in, rate_out, quality)
    taps = TAPS
    n_fft = 2 * (taps - 1)
    grid = np.fft.rfftfreq(n_fft, 1.0 / rate_in)  # (n_fft/2+1,) 0 .. rate_in/2
    floor = 10.0 ** (-MAX_BOOST_DB / 20.0)
    gain = 1.0 / np.maximum(np.interp(grid, freqs, mag), floor)
    impulse = np.fft.fftshift(np.fft.irfft(gain, n_fft))  # (n_fft,) centred at n_fft/2
    centre = n_fft // 2
    kernel = impulse[centre - taps // 2: centre + taps // 2 + 1]  # (taps,) symmetric
    return kernel * signal.windows.kaiser(taps, 8.0)


class RolloffStream:
    """The compensation FIR over a stream of (Ch, n) blocks, its delay removed.

    Output lags the input by the FIR's half-length until `flush()`, which returns the rest:
    all outputs together have exactly as many samples as all inputs. Each block is one float32
    FFT convolution (the FIR's spectrum kept for the last FFT size).
    """

    def __init__(self, taps: np.ndarray, channels: int):
        if taps.ndim != 1 or taps.shape[0] % 2 != 1:
            raise ValueError("taps must be 1-D of odd length")
        self.taps = taps
        self.delay = taps.shape[0] // 2
        self.history = np.zeros((channels, taps.shape[0] - 1), np.float32)  # last inputs
        self.to_drop = self.delay  # outputs that belong before the first sample
        self._n_fft, self._spectrum = 0, np.zeros(0, np.complex64)

    def process(self, block: np.ndarray) -> np.ndarray:
        """(Ch, n) -> (Ch, m) float32, m <= n."""
        buf = np.concatenate([self.history, block.astype(np.float32)], axis=1)  # (Ch, L-1+n)
        self.history = buf[:, buf.shape[1] - self.history.shape[1]:]
        if block.shape[1] == 0:
            return np.zeros((block.shape[0], 0), np.float32)
        out = _filter_valid(buf, self.taps.shape[0], self._spectrum_for)  # (Ch, n)
        drop = min(self.to_drop, out.shape[1])
        self.to_drop -= drop
        return np.ascontiguousarray(out[:, drop:])

    def flush(self) -> np.ndarray:
        """The last `delay` outputs (the input's end padded with zeros)."""
        pad = np.zeros((self.history.shape[0], self.delay), np.float32)
        return self.process(pad)

    def _spectrum_for(self, n_fft: int) -> np.ndarray:
        if n_fft != self._n_fft:  # block sizes repeat: one spectrum serves a whole stream
            self._n_fft, self._spectrum = n_fft, sp_fft.rfft(self.taps.astype(np.float32), n_fft)
        return self._spectrum


def precompensate(x: np.ndarray, rate_in: int, rate_out: int, quality: str = "VHQ"
                  ) -> np.ndarray:
    """Whole float (Ch, S) audio at rate_in, about to be upsampled to rate_out by soxr, with
    soxr's edge pre-divided out; same shape, float32. Unchanged when not upsampling.

    The same samples as `RolloffStream` over the whole array (zeros before and after), in one
    FFT convolution."""
    taps = compensation_taps(rate_in, rate_out, quality)
    if taps is None or x.shape[1] == 0:
        return x
    half = taps.shape[0] // 2
    buf = np.pad(x.astype(np.float32, copy=False), ((0, 0), (half, half)))  # (Ch, S + L - 1)
    return _filter_valid(buf, taps.shape[0],
                         lambda n_fft: _taps_spectrum(rate_in, rate_out, quality, n_fft))


def _filter_valid(buf: np.ndarray, n_taps: int, spectrum_for: Callable[[int], np.ndarray]
                  ) -> np.ndarray:
    """(Ch, N) -> (Ch, N - n_taps + 1) float32: the FIR's 'valid' outputs, one FFT convolution
    (FFT size >= N, so the circular wrap stays in the discarded first n_taps - 1 outputs)."""
    n_fft = sp_fft.next_fast_len(buf.shape[1], real=True)
    full = sp_fft.irfft(sp_fft.rfft(buf, n_fft, axis=1) * spectrum_for(n_fft), n_fft, axis=1)
    return np.ascontiguousarray(full[:, n_taps - 1: buf.shape[1]], dtype=np.float32)


@lru_cache(maxsize=8)  # ~1 MB each: training crops repeat a few (rate, length) pairs
def _taps_spectrum(rate_in: int, rate_out: int, quality: str, n_fft: int) -> np.ndarray:
    taps = compensation_taps(rate_in, rate_out, quality)
    return sp_fft.rfft(taps.astype(np.float32), n_fft)
