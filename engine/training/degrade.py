"""Simulated low-resolution inputs: full-band 44.1 kHz crops band-limited at a random cutoff.

Families, varied so the model does not learn one filter's signature (all numpy, CPU, per crop):

- `butter`, `cheby1`, `cheby2`, `ellip`: scipy IIR designs (second-order sections) of several
  orders, ripples and stop-band depths, applied zero-phase (`sosfiltfilt`) or, for orders of at
  least `causal_min_order`, causally (`sosfilt`). A causal pass adds its phase response / group
  delay to the LR input, uncompensated: real encoders and resamplers do too.
- `brickwall`: FFT low-pass with a raised-cosine transition of random width (0 Hz = ideal).
- `resample`: a real resample down to `2 x cutoff` Hz (snapped to 8000/16000/22050/32000 near
  them) and back up with `engine.audio.io.resample` (soxr VHQ), the path the inference pipeline
  takes to bring a low-rate file to 44.1 kHz.
- `mp3`: an MP3-like low-pass at 44.1 kHz: a 576-hop sine-window STFT with a steep cut and
  random, frame-varying holes in the scale-factor bands just below it (a starved encoder).
- `phone`: a phone call (`engine.audio.telephone`): down to 8 kHz, the 300-3400 Hz voice band,
  G.711 mu-law or GSM 06.10 (one at random), back up as `resample` does. Its cutoff is the one
  the pipeline would detect on the 8 kHz call (3.1-3.4 kHz), whatever was drawn; weight 0 unless
  asked for (`with_phone_share`).

Cutoff convention: `cutoff_hz` is the -6 dB point of the whole degradation (amplitude 0.5),
which is where `engine.audio.cutoff.detect_cutoff` puts a band edge (its knee is the highest
frequency within 6 dB of the passband). IIR designs are shifted so their effective response
(squared when zero-phase) crosses -6 dB there; the brick-wall and MP3 ramps are centred on it.
For `resample` the edge is the resampler's: soxr VHQ down, then `engine.audio.io.resample` up
(soxr with its own roll-off undone, `engine.audio.rolloff`) is -6 dB at 0.956 x the low rate's
Nyquist (measured on white noise; 0.950 with plain soxr up), so a 16 kHz round trip reports
7650 Hz, not 8000 Hz.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
from dataclasses import dataclass, fields, replace
from typing import Literal

import numpy as np
import scipy.fft
import scipy.signal as ss
from scipy.optimize import brentq

from engine.audio.cutoff import detect_cutoff
from engine.audio.io import resample
from engine.audio.telephone import CODECS, PHONE_RATE, telephone
from engine.config import SAMPLE_RATE

log = logging.getLogger(__name__)
_cutoff_log = logging.getLogger(detect_cutoff.__module__)

FAMILIES = ("butter", "cheby1", "cheby2", "ellip", "brickwall", "resample", "mp3", "phone")
IIR_FAMILIES = ("butter", "cheby1", "cheby2", "ellip")
CPU_FAMILIES = ("resample", "phone")  # always made in the workers (never deferred)
STANDARD_RATES = (8000, 16000, 22050, 32000)  # Hz: low-rate files the named cutoffs stand for
SOXR_BANDWIDTH = 0.956  # -6 dB point of the resample down+up chain / low rate's Nyquist
EDGE_DB = 20 * math.log10(2)  # 6.02 dB: the attenuation that defines the cutoff
MP3_HOP = 576  # MP3 granule
MP3_HOLE_BAND = 0.25  # holes fall in the top quarter of the passband
MP3_SFB_HZ = 600.0  # width of one simulated scale-factor band
DENORMAL_GUARD = np.float32(1e-20)  # DC offset that keeps IIR states out of subnormal range
# A linear filter left for the training device (`Degrader(..., deferred=True)`) travels as one
# float64 row: [mode, cutoff_hz, width_hz, gain, zeros.real, zeros.imag, poles.real, poles.imag]
# with FILTER_ROOTS of each (unused ones are 0 / 0 pairs, which cancel). Digital zeros and
# poles, not sections: scipy designs them 5-10x faster than it factors them into sections.
FILTER_ROOTS = 16  # IIR orders up to 16
FILTER_WIDTH = 4 + 4 * FILTER_ROOTS
MODE_DONE, MODE_ZERO_PHASE, MODE_CAUSAL, MODE_RAMP, MODE_MP3 = 0, 1, 2, 3, 4
MP3_MAX_BANDS = 8  # scale-factor bands with holes, at most (a 20 kHz cutoff's top quarter)

Spread = Literal["uniform", "log"]


def _check(cond: bool, name: str, msg: str) -> None:
    if not cond:
        raise ValueError(f"{name}: {msg}")


@dataclass(frozen=True)
class DegradeConfig:
    """Cutoff distribution and anti-aliasing responses of the simulated LR inputs."""

    named_cutoffs_hz: tuple[float, ...] = (4000.0, 8000.0, 11025.0, 16000.0)  # common real rates
    named_prob: float = 0.5  # share of cutoffs drawn from named_cutoffs_hz ...
    named_jitter_hz: float = 0.0  # ... each moved by U(-jitter, +jitter)
    min_cutoff_hz: float = 2000.0  # the other draws: U or log-U over [min, max]
    max_cutoff_hz: float = 16000.0
    spread: Spread = "uniform"
    butter_prob: float = 0.2  # family weights (normalised by their sum)
    cheby1_prob: float = 0.12
    cheby2_prob: float = 0.12
    ellip_prob: float = 0.12
    brickwall_prob: float = 0.14
    resample_prob: float = 0.2
    mp3_prob: float = 0.1
    phone_prob: float = 0.0  # voice band + speech codec at 8 kHz (off in the trained recipes)
    iir_orders: tuple[int, ...] = (4, 6, 8, 12)
    causal_prob: float = 0.25  # share of IIR filters run once forward (not zero-phase) ...
    causal_min_order: int = 8  # ... only at this order or above (gentler ones leak too much)
    ripple_db: tuple[float, ...] = (0.1, 0.5, 1.0)  # cheby1 / ellip passband ripple
    stopband_db: tuple[float, ...] = (40.0, 60.0, 80.0)  # cheby2 / ellip stop-band depth
    transition_hz: tuple[float, float] = (0.0, 320.0)  # brick-wall / mp3 ramp width range
    mp3_hole_prob: tuple[float, float] = (0.0, 0.3)  # per-crop range of the band-drop rate

    def __post_init__(self) -> None:
        for f in fields(self):  # lists from JSON/TOML become tuples: hashable, comparable
            if isinstance(getattr(self, f.name), list):
                object.__setattr__(self, f.name, tuple(getattr(self, f.name)))
        _check(len(self.named_cutoffs_hz) > 0 or self.named_prob == 0, "named_cutoffs_hz",
               "must not be empty when named_prob > 0")
        _check(all(1000 <= c <= 20000 for c in self.named_cutoffs_hz), "named_cutoffs_hz",
               "each must be in [1000, 20000] Hz")
        _check(0 <= self.named_prob <= 1, "named_prob", "must be in [0, 1]")
        _check(0 <= self.named_jitter_hz <= 1000, "named_jitter_hz", "must be in [0, 1000] Hz")
        _check(1000 <= self.min_cutoff_hz, "min_cutoff_hz", "must be >= 1000 Hz")
        _check(self.min_cutoff_hz <= self.max_cutoff_hz <= 20000, "max_cutoff_hz",
               "must be in [min_cutoff_hz, 20000] Hz")
        _check(self.spread in ("uniform", "log"), "spread", "must be 'uniform' or 'log'")
        for name in self.family_weights():
            _check(getattr(self, f"{name}_prob") >= 0, f"{name}_prob", "must be >= 0")
        _check(sum(self.family_weights().values()) > 0, "butter_prob",
               "family probabilities must not all be zero")
        _check(len(self.iir_orders) > 0 and all(2 <= o <= 16 for o in self.iir_orders),
               "iir_orders", "must be a non-empty tuple of orders in [2, 16]")
        _check(0 <= self.causal_prob <= 1, "causal_prob", "must be in [0, 1]")
        _check(self.causal_min_order >= 6, "causal_min_order",
               "must be >= 6 (a gentler causal filter leaves no detectable band edge)")
        _check(len(self.ripple_db) > 0 and all(0 < r <= 3 for r in self.ripple_db),
               "ripple_db", "must be a non-empty tuple in (0, 3] dB")
        _check(len(self.stopband_db) > 0 and all(30 <= s <= 120 for s in self.stopband_db),
               "stopband_db", "must be a non-empty tuple in [30, 120] dB")
        lo, hi = self.transition_hz
        _check(0 <= lo <= hi <= 2000, "transition_hz", "must be 0 <= low <= high <= 2000 Hz")
        lo, hi = self.mp3_hole_prob
        _check(0 <= lo <= hi <= 0.9, "mp3_hole_prob", "must be 0 <= low <= high <= 0.9")

    def family_weights(self) -> dict[str, float]:
        """Unnormalised draw weight of each family."""
        return {name: float(getattr(self, f"{name}_prob")) for name in FAMILIES}

    def with_phone_share(self, share: float) -> DegradeConfig:
        """This config with phone calls drawn for `share` of the crops (the others keep
        their relative weights)."""
        _check(0 <= share < 1, "phone share", "must be in [0, 1)")
        others = sum(w for name, w in self.family_weights().items() if name != "phone")
        return replace(self, phone_prob=others * share / (1 - share))


@dataclass(frozen=True)
class IIRSpec:
    """One IIR anti-aliasing design: family, order, ripple / stop band, zero-phase or causal."""

    family: str
    order: int
    ripple_db: float = 0.0  # cheby1, ellip
    stop_db: float = 0.0  # cheby2, ellip
    zero_phase: bool = True

    def describe(self) -> str:
        parts = [f"order {self.order}"]
        if self.ripple_db:
            parts.append(f"ripple {self.ripple_db:g} dB")
        if self.stop_db:
            parts.append(f"stop {self.stop_db:g} dB")
        parts.append("zero-phase" if self.zero_phase else "causal")
        return ", ".join(parts)


@dataclass(frozen=True, eq=False)
class Degraded:
    """A simulated LR input, its -6 dB band edge and how it was made."""

    lr: np.ndarray  # (S,) float32 at 44.1 kHz; the input itself while `filter` is pending
    cutoff_hz: float
    kind: str  # one of FAMILIES
    detail: str  # e.g. "order 8, ripple 0.5 dB, causal" or "soxr 44100 -> 16000 -> 44100"
    filter: np.ndarray | None = None  # (FILTER_WIDTH,) left for `device_filter.apply_filters`
    holes: np.ndarray | None = None  # (mp3_frames(S), MP3_MAX_BANDS) bool, a deferred mp3's


def iir_variants(cfg: DegradeConfig, family: str) -> list[IIRSpec]:
    """Every IIR design `cfg` can draw for `family` (the draw is uniform over this list)."""
    if family not in IIR_FAMILIES:
        raise ValueError(f"family: {family!r} is not an IIR family {IIR_FAMILIES}")
    ripples = cfg.ripple_db if family in ("cheby1", "ellip") else (0.0,)
    stops = cfg.stopband_db if family in ("cheby2", "ellip") else (0.0,)
    return [IIRSpec(family, order, ripple, stop, zero_phase)
            for order in cfg.iir_orders for ripple in ripples for stop in stops
            for zero_phase in (True, False) if zero_phase or order >= cfg.causal_min_order]


def resample_rate(cutoff_hz: float) -> int:
    """The low rate whose round trip stands for `cutoff_hz`: 2 x cutoff, snapped within 2 %."""
    rate = 2 * cutoff_hz
    nearest = min(STANDARD_RATES, key=lambda r: abs(r - rate))
    return nearest if abs(nearest - rate) <= 0.02 * nearest else round(rate)


class Degrader:
    """Draws a cutoff and a family and band-limits a crop: `Degrader(cfg)(hr, rng)`."""

    def __init__(self, cfg: DegradeConfig | None = None) -> None:
        self.cfg = cfg or DegradeConfig()
        weights = self.cfg.family_weights()
        total = sum(weights.values())
        self._families = list(weights)
        self._probs = np.array([weights[f] / total for f in self._families])
        self._variants = {f: iir_variants(self.cfg, f) for f in IIR_FAMILIES}
        self._causal = {f: [v for v in vs if not v.zero_phase] for f, vs in self._variants.items()}
        self._zero_phase = {f: [v for v in vs if v.zero_phase] for f, vs in self._variants.items()}

    def __call__(self, hr: np.ndarray, rng: np.random.Generator,
                 deferred: bool = False) -> Degraded:
        """Band-limit `hr` (S,) float32 at 44.1 kHz with a random family and cutoff.

        `deferred`: IIR and brick-wall filters are not run here but described in
        `Degraded.filter` for the training device (the same draws from `rng` either way)."""
        family = self._families[int(rng.choice(len(self._families), p=self._probs))]
        return self.apply(hr, family, self.draw_cutoff(rng), rng, deferred=deferred)

    def draw_cutoff(self, rng: np.random.Generator) -> float:
        """A cutoff from the configured distribution (named values or a continuous spread)."""
        cfg = self.cfg
        if cfg.named_cutoffs_hz and rng.random() < cfg.named_prob:
            cutoff = float(cfg.named_cutoffs_hz[int(rng.integers(len(cfg.named_cutoffs_hz)))])
            if cfg.named_jitter_hz:
                cutoff += float(rng.uniform(-cfg.named_jitter_hz, cfg.named_jitter_hz))
            return cutoff
        if cfg.spread == "log":
            return float(np.exp(rng.uniform(np.log(cfg.min_cutoff_hz), np.log(cfg.max_cutoff_hz))))
        return float(rng.uniform(cfg.min_cutoff_hz, cfg.max_cutoff_hz))

    def apply(self, hr: np.ndarray, family: str, cutoff_hz: float, rng: np.random.Generator,
              spec: IIRSpec | None = None, deferred: bool = False) -> Degraded:
        """Band-limit `hr` (S,) with one family at `cutoff_hz`; IIR: `spec` or a random one.

        `deferred`: leave IIR and brick-wall filtering to the device (see `__call__`)."""
        if hr.ndim != 1:
            raise ValueError(f"hr: expected (S,), got shape {hr.shape}")
        if family not in FAMILIES:
            raise ValueError(f"family: {family!r} not in {FAMILIES}")
        if not 500 <= cutoff_hz <= 20000:
            raise ValueError(f"cutoff_hz: {cutoff_hz} not in [500, 20000] Hz")
        x = np.ascontiguousarray(hr, dtype=np.float32)
        if family in IIR_FAMILIES:
            spec = spec or self._draw_spec(family, rng)
            if deferred:
                return Degraded(x, cutoff_hz, family, spec.describe(),
                                _iir_row(spec, cutoff_hz))
            return Degraded(_iir(x, spec, cutoff_hz), cutoff_hz, family, spec.describe())
        if family == "phone":
            codec = list(CODECS)[int(rng.integers(len(CODECS)))]
            low = telephone(resample(x[None], SAMPLE_RATE, PHONE_RATE), codec)  # (1, S')
            # the edge as the pipeline finds it, on the 8 kHz call itself: ~3.36 kHz with mu-law,
            # ~3.14 with GSM (measured on full-band clips)
            with _quiet(_cutoff_log):  # a quiet crop has no edge: its "assuming full band"
                edge = float(detect_cutoff(low[0], PHONE_RATE))  # note would flood the log
            return Degraded(_up_to(low, PHONE_RATE, x.shape[0]), edge, family,
                            f"voice band, {codec}")
        if family == "resample":
            rate = resample_rate(cutoff_hz)
            lr = _up_to(resample(x[None], SAMPLE_RATE, rate), rate, x.shape[0])
            return Degraded(lr, SOXR_BANDWIDTH * rate / 2, family,
                            f"soxr {SAMPLE_RATE} -> {rate} -> {SAMPLE_RATE}")
        width_hz = float(rng.uniform(*self.cfg.transition_hz))
        if family == "brickwall":
            detail = f"transition {width_hz:.0f} Hz"
            if deferred:
                return Degraded(x, cutoff_hz, family, detail, filter_row(MODE_RAMP, cutoff_hz,
                                                                         width_hz))
            return Degraded(_brickwall(x, cutoff_hz, width_hz), cutoff_hz, family, detail)
        hole_prob = float(rng.uniform(*self.cfg.mp3_hole_prob))
        detail = f"transition {width_hz:.0f} Hz, holes {hole_prob:.2f}"
        if deferred:  # the same draws as _mp3_like, the STFT left to the device
            holes = np.zeros((mp3_frames(x.shape[0]), MP3_MAX_BANDS), bool)
            if hole_prob > 0:
                n_bands = mp3_bands(cutoff_hz)
                holes[:, :n_bands] = rng.random((holes.shape[0], n_bands)) < hole_prob
            return Degraded(x, cutoff_hz, family, detail,
                            filter_row(MODE_MP3, cutoff_hz, width_hz), holes)
        return Degraded(_mp3_like(x, cutoff_hz, width_hz, hole_prob, rng), cutoff_hz, family,
                        detail)

    def _draw_spec(self, family: str, rng: np.random.Generator) -> IIRSpec:
        # the causal share is set by causal_prob, not by how many causal variants there are
        causal = self._causal[family]
        use_causal = bool(causal) and rng.random() < self.cfg.causal_prob
        pool = causal if use_causal else self._zero_phase[family]
        return pool[int(rng.integers(len(pool)))]


# --- IIR ------------------------------------------------------------------------------------


def _iir(x: np.ndarray, spec: IIRSpec, cutoff_hz: float) -> np.ndarray:
    """Low-pass `x` (S,) with `spec` placed so the effective response is -6 dB at the cutoff."""
    sos = _sos(spec, round(float(cutoff_hz), 1))  # (n_sections, 6) float32
    # In digital silence the filter state decays into subnormal floats, which x86 handles
    # ~80x slower (measured: 390 ms instead of 5 ms for an 8th-order zero-phase pass over a
    # 6 s crop that is mostly silent). A -400 dB DC offset keeps the state normal.
    guarded = x + DENORMAL_GUARD
    y = ss.sosfiltfilt(sos, guarded) if spec.zero_phase else ss.sosfilt(sos, guarded)  # (S,)
    y = np.asarray(y, dtype=np.float32) - DENORMAL_GUARD
    return np.ascontiguousarray(y)  # sosfiltfilt returns a reversed view


def filter_row(mode: int, cutoff_hz: float = 0.0, width_hz: float = 0.0,
               zpk: tuple[np.ndarray, np.ndarray, float] | None = None) -> np.ndarray:
    """(FILTER_WIDTH,) float64 description of a filter for the training device."""
    zeros, poles = np.zeros(FILTER_ROOTS, complex), np.zeros(FILTER_ROOTS, complex)
    gain = 1.0
    if zpk is not None:
        z, p, gain = zpk
        if max(len(z), len(p)) > FILTER_ROOTS:
            raise ValueError(f"zpk: {len(z)} zeros / {len(p)} poles > {FILTER_ROOTS}")
        zeros[: len(z)], poles[: len(p)] = z, p
    return np.concatenate([[mode, cutoff_hz, width_hz, gain], zeros.real, zeros.imag,
                           poles.real, poles.imag])


def device_rows(deg: Degraded, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(filter row (FILTER_WIDTH,), holes (mp3_frames(n), MP3_MAX_BANDS)) of a deferred crop of
    n samples: a mode-0 row and no holes when the CPU already made its LR (resampling)."""
    row = deg.filter if deg.filter is not None else filter_row(MODE_DONE)
    holes = deg.holes if deg.holes is not None else np.zeros((mp3_frames(n), MP3_MAX_BANDS), bool)
    return row, holes


def _iir_row(spec: IIRSpec, cutoff_hz: float) -> np.ndarray:
    z, p, k = _design(spec, _design_edge_hz(spec, round(float(cutoff_hz), 1)), analog=False,
                      output="zpk")
    return filter_row(MODE_ZERO_PHASE if spec.zero_phase else MODE_CAUSAL, cutoff_hz, 0.0,
                      (np.asarray(z), np.asarray(p), float(k)))


def _design_edge_hz(spec: IIRSpec, cutoff_hz: float) -> float:
    """The design frequency that puts the effective -6 dB point on `cutoff_hz`."""
    # scipy designs digital filters by the bilinear transform with pre-warping, so the digital
    # response at f equals the analog prototype's at tan(pi f / fs): one ratio serves all rates
    warped = math.tan(math.pi * cutoff_hz / SAMPLE_RATE) / _edge_ratio(spec)
    return SAMPLE_RATE / math.pi * math.atan(warped)


@functools.lru_cache(maxsize=4096)
def _sos(spec: IIRSpec, cutoff_hz: float) -> np.ndarray:
    """Digital SOS design whose -6 dB (effective) point lands on `cutoff_hz`; cached."""
    sos = _design(spec, _design_edge_hz(spec, cutoff_hz), analog=False)
    # float32 sections halve the filter time; the stop band stays below -120 dB in tests
    return np.asarray(sos, dtype=np.float32)


@functools.lru_cache(maxsize=256)
def _edge_ratio(spec: IIRSpec) -> float:
    """Where the analog prototype (Wn = 1 rad/s) is EDGE_DB down, counting both passes."""
    passes = 2 if spec.zero_phase else 1
    z, p, k = _design(spec, 1.0, analog=True)

    def excess_db(w: float) -> float:
        _, h = ss.freqs_zpk(z, p, k, worN=[w])
        return -passes * 20 * math.log10(max(abs(h[0]), 1e-30)) - EDGE_DB

    grid = np.geomspace(1e-2, 1e2, 2001)
    _, h = ss.freqs_zpk(z, p, k, worN=grid)
    above = np.flatnonzero(-passes * 20 * np.log10(np.maximum(np.abs(h), 1e-30)) >= EDGE_DB)
    i = int(above[0])  # the first crossing: stop-band ripples of cheby2/ellip come later
    return float(brentq(excess_db, grid[max(i - 1, 0)], grid[i], xtol=1e-10))


def _design(spec: IIRSpec, wn: float, analog: bool, output: str | None = None
            ) -> tuple | np.ndarray:
    out = output or ("zpk" if analog else "sos")
    fs = None if analog else SAMPLE_RATE
    if spec.family == "butter":
        return ss.butter(spec.order, wn, analog=analog, output=out, fs=fs)
    if spec.family == "cheby1":
        return ss.cheby1(spec.order, spec.ripple_db, wn, analog=analog, output=out, fs=fs)
    if spec.family == "cheby2":
        return ss.cheby2(spec.order, spec.stop_db, wn, analog=analog, output=out, fs=fs)
    return ss.ellip(spec.order, spec.ripple_db, spec.stop_db, wn, analog=analog, output=out,
                    fs=fs)


# --- spectral ------------------------------------------------------------------------------


def _ramp(freqs_hz: np.ndarray, cutoff_hz: float, width_hz: float) -> np.ndarray:
    """Raised-cosine low-pass gain: 1 below, 0 above, 0.5 at the cutoff, `width_hz` wide."""
    if width_hz <= 0:
        return (freqs_hz < cutoff_hz).astype(np.float32)
    pos = np.clip((freqs_hz - (cutoff_hz - width_hz / 2)) / width_hz, 0.0, 1.0)
    return (0.5 + 0.5 * np.cos(np.pi * pos)).astype(np.float32)


def _brickwall(x: np.ndarray, cutoff_hz: float, width_hz: float) -> np.ndarray:
    """FFT low-pass of the whole crop (S,) (circular; a crop's ends see a little wrap-around)."""
    spec = scipy.fft.rfft(x)  # (S//2+1,)
    bin_hz = SAMPLE_RATE / x.shape[0]
    lo = max(0, math.ceil((cutoff_hz - width_hz / 2) / bin_hz))  # first bin below 1
    hi = math.ceil((cutoff_hz + width_hz / 2) / bin_hz)  # first bin at 0
    spec[hi:] = 0
    if hi > lo:
        spec[lo:hi] *= _ramp(np.arange(lo, hi) * bin_hz, cutoff_hz, width_hz)
    return scipy.fft.irfft(spec, n=x.shape[0]).astype(np.float32, copy=False)


def mp3_frames(n: int) -> int:
    """K: frames of the MP3-like STFT over n samples (hop MP3_HOP, half a hop padded each side)."""
    return -(-n // MP3_HOP) + 1


def mp3_bands(cutoff_hz: float) -> int:
    """Scale-factor bands in the top quarter of the passband that holes can drop."""
    return min(MP3_MAX_BANDS, max(1, round(cutoff_hz * MP3_HOLE_BAND / MP3_SFB_HZ)))


def _mp3_like(x: np.ndarray, cutoff_hz: float, width_hz: float, hole_prob: float,
              rng: np.random.Generator) -> np.ndarray:
    """Sine-window STFT (hop 576) low-pass with frame-varying holes below the cutoff."""
    n_fft, hop, n = 2 * MP3_HOP, MP3_HOP, x.shape[0]
    window = np.sin(np.pi * (np.arange(n_fft) + 0.5) / n_fft).astype(np.float32)  # w^2 is COLA
    padded = np.pad(x, (hop, hop + (-n) % hop))  # (hop * (K + 1),)
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop] * window  # (K, N)
    spec = scipy.fft.rfft(frames, axis=1)  # (K, F)
    freqs_hz = scipy.fft.rfftfreq(n_fft, 1 / SAMPLE_RATE)
    gain = np.broadcast_to(_ramp(freqs_hz, cutoff_hz, width_hz), spec.shape).copy()  # (K, F)
    if hole_prob > 0:
        lo_hz = cutoff_hz * (1 - MP3_HOLE_BAND)
        n_bands = mp3_bands(cutoff_hz)
        band = np.floor((freqs_hz - lo_hz) / (cutoff_hz - lo_hz) * n_bands).astype(int)  # (F,)
        inside = (band >= 0) & (band < n_bands)
        dropped = rng.random((spec.shape[0], n_bands)) < hole_prob  # (K, n_bands)
        gain[:, inside] *= ~dropped[:, band[inside]]
    out = scipy.fft.irfft(spec * gain, n=n_fft, axis=1) * window  # (K, N)
    blocks = np.zeros((out.shape[0] + 1, hop), np.float32)  # overlap-add at hop = N / 2
    blocks[:-1] += out[:, :hop]
    blocks[1:] += out[:, hop:]
    return blocks.reshape(-1)[hop : hop + n]


def _up_to(low: np.ndarray, rate: int, n: int) -> np.ndarray:
    """A low-rate crop `(1, S')` back at 44.1 kHz as the pipeline brings it there, cut or
    zero-padded to the crop's `n` samples -> `(n,)`."""
    lr = resample(low, rate, SAMPLE_RATE)[0]  # (S'',)
    return np.pad(lr[:n], (0, max(0, n - lr.shape[0])))


@contextlib.contextmanager
def _quiet(logger: logging.Logger):
    """Drop `logger`'s notes below WARNING for the duration (a worker degrades crops by the
    thousand; the detector's per-call notes are for one user file, not for training logs)."""
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)
